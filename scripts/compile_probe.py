"""Does ``torch.compile(dynamic=True)`` of the padded, vmapped ensemble step compile once for
all batch buckets? (A question for issue #9: fusing the step's ~1,000 element-wise kernels needs
a compiled step that CUDA graphs can then record per bucket.)

Builds a small GIN-virtual ensemble (masked BatchNorm, edge features, 2 members), pads random
batches to a few bucket sizes with :class:`~graphlab.data.static_batch.StaticBatcher`, compiles
forward + per-member loss and runs forward + backward on each bucket. Prints, per bucket, the
compile time and the number of distinct compiled graphs so far, then the recompile reasons
(guard failures) that dynamo logged.

    python scripts/compile_probe.py [--buckets 3] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def random_batch(num_graphs: int, seed: int, device):
    from torch_geometric.data import Batch, Data
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(num_graphs):
        n = int(torch.randint(3, 9, (1,), generator=g))
        e = int(torch.randint(n, 3 * n, (1,), generator=g))
        graphs.append(Data(x=torch.randn(n, 4, generator=g),
                           edge_index=torch.randint(0, n, (2, e), generator=g),
                           edge_attr=torch.randn(e, 2, generator=g),
                           y=torch.randint(0, 3, (1,), generator=g)))
    return Batch.from_data_list(graphs).to(device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--buckets", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch._dynamo
    from torch._dynamo.utils import counters

    from graphlab.data.static_batch import StaticBatcher
    from graphlab.models.basic import GIN
    from graphlab.nn.masked_norm import mask_batchnorms, padding_masks
    from graphlab.train.ensemble import SeedEnsemble
    from graphlab.tasks import TASKS

    device = torch.device(args.device)
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = GIN(4, 3, hidden_channels=16, num_layers=3, dropout=0.0, norm="batch", pool="mean",
                virtual_node=True, task_level="graph", edge_dim=2)
        mask_batchnorms(m)
        members.append(m)
    ens = SeedEnsemble(members, seeds=[0, 1], randomness="different").to(device)
    task = TASKS.get("graph_classification")("accuracy")

    def step(s):
        with padding_masks(s.node_mask, s.edge_mask, s.graph_mask):
            out = ens(s)
        return torch.func.vmap(lambda o: task.masked_loss(o, s.y, s.graph_mask))(out).sum()

    reasons = []

    class Catch(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if "triggered by" in msg or "size mismatch" in msg:
                reasons.append(msg.strip())
    torch._logging.set_logs(recompiles=True)
    logging.getLogger("torch._dynamo").addHandler(Catch())
    torch._dynamo.config.cache_size_limit = 64
    compiled = torch.compile(step, dynamic=True)
    batcher = StaticBatcher(batch_size=8, granularity=2)
    for i in range(args.buckets):
        key, s = batcher(random_batch(5 + i, seed=i, device=device))
        t = time.perf_counter()
        compiled(s).backward()
        print(f"bucket {key}: {time.perf_counter() - t:.1f} s, "
              f"{counters['stats']['unique_graphs']} compiled graph(s) so far, "
              f"graph breaks {sum(counters['graph_break'].values())}", flush=True)
    print("recompile reasons:")
    for r in reasons:
        print("  ", r.splitlines()[-1][:200])
    return 0


if __name__ == "__main__":
    sys.exit(main())
