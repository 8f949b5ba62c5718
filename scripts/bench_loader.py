"""Loader throughput: PyG's ``DataLoader`` (the trainer's standard path) vs ``PackedLoader``.

Both loaders iterate the same training split in the same seeded order (``EpochSeededSampler``
/ :func:`graphlab.data.packed.epoch_permutation`), batch for batch; the script checks that the
first batches agree field for field, then times whole epochs (best of ``--repeats``), touching
every batch as a model would (``batch.x.sum()``) and, on CUDA, synchronising at the epoch end.

Datasets:

* ``motifs``: graphlab's generated benchmark (600 graphs, ~20 nodes; 80% train split);
* ``molhiv-like``: a synthetic ``InMemoryDataset`` the size of ogbg-molhiv (41,127 graphs of
  25 +- 6 nodes; chain backbone plus two ring closures, i.e. ~2.2 directed edges per node;
  ``x [N, 9]`` and ``edge_attr [E, 3]`` integer categories like OGB's atom/bond features,
  ``y [1, 1]``), built with tensor ops in about a second; 80% train split.

    python scripts/bench_loader.py [--device cpu|cuda] [--batch-size 32] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.loader import DataLoader

from graphlab.data.packed import PackedGraphs, PackedLoader
from graphlab.data.loaders import EpochSeededSampler, IndexedSubset


class MolhivLike(InMemoryDataset):
    """ogbg-molhiv-sized random molecules, stored collated like any PyG InMemoryDataset."""

    def __init__(self, num_graphs: int = 41127, mean_nodes: int = 25, seed: int = 0):
        super().__init__(None)
        g = torch.Generator().manual_seed(seed)
        n = (mean_nodes + torch.randn(num_graphs, generator=g) * 6).round().clamp(2, 120).long()
        node_ptr = torch.cat([torch.zeros(1, dtype=torch.long), n.cumsum(0)])
        num_n = int(node_ptr[-1])
        # backbone i -> i + 1 inside each graph, plus two random closures per graph
        local = torch.arange(num_n) - node_ptr[:-1].repeat_interleave(n)
        graph_of = torch.arange(num_graphs).repeat_interleave(n)
        chain = local < n[graph_of] - 1
        src_b, dst_b = local[chain], local[chain] + 1
        g_b = graph_of[chain]
        g_c = torch.arange(num_graphs).repeat_interleave(2)
        src_c = (torch.rand(g_c.numel(), generator=g) * n[g_c]).long()
        dst_c = (torch.rand(g_c.numel(), generator=g) * n[g_c]).long()
        src, dst, ge = torch.cat([src_b, src_c]), torch.cat([dst_b, dst_c]), torch.cat([g_b, g_c])
        perm = torch.argsort(ge, stable=True)
        src, dst, ge = src[perm], dst[perm], ge[perm]
        # both directions, grouped by graph
        ei = torch.stack([torch.stack([src, dst]), torch.stack([dst, src])], 2).reshape(2, -1)
        ge = ge.repeat_interleave(2)
        m = torch.bincount(ge, minlength=num_graphs)
        edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long), m.cumsum(0)])
        data = Data(x=torch.randint(0, 30, (num_n, 9), generator=g),
                    edge_index=ei,
                    edge_attr=torch.randint(0, 4, (ei.size(1), 3), generator=g),
                    y=torch.randint(0, 2, (num_graphs, 1), generator=g))
        self.data = data
        self.slices = {"x": node_ptr, "edge_index": edge_ptr, "edge_attr": edge_ptr,
                       "y": torch.arange(num_graphs + 1)}


def epoch_time(loader, device, repeats: int) -> float:
    best = float("inf")
    for r in range(repeats):
        loader.sampler.set_epoch(r)
        t = time.perf_counter()
        acc = torch.zeros((), device=device)
        for batch in loader:
            batch = batch.to(device)  # what Lightning does; a no-op for packed batches
            acc += batch.x.sum()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t)
    return best


def bench(name: str, dataset, batch_size: int, device: torch.device, repeats: int, seed: int = 0):
    n = len(dataset)
    train = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:int(0.8 * n)]
    sub = IndexedSubset(dataset, train)
    std = DataLoader(sub, batch_size=batch_size, sampler=EpochSeededSampler(len(sub), seed))
    t = time.perf_counter()
    packed = PackedGraphs(dataset, train, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t_pack = time.perf_counter() - t
    pk = PackedLoader(packed, batch_size=batch_size, shuffle=True, seed=seed)
    for i, (a, b) in enumerate(zip(std, pk)):  # the same batches (epoch 0, first three)
        a = a.to(device)
        assert all(torch.equal(a[k], b[k]) for k in a.keys()), "packed batch differs"
        if i == 2:
            break
    t_std = epoch_time(std, device, repeats)
    t_pk = epoch_time(pk, device, repeats)
    return {"dataset": name, "graphs": len(train), "batch_size": batch_size,
            "batches": len(pk), "pyg_epoch_s": t_std, "packed_epoch_s": t_pk,
            "speedup": t_std / t_pk, "pack_s": t_pack, "packed_mib": packed.nbytes / 2**20}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--datasets", nargs="+", default=["motifs", "molhiv-like"])
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows = []
    for name in args.datasets:
        if name == "motifs":
            import graphlab.data as gd
            ds = gd.load("motifs")
        elif name == "molhiv-like":
            t = time.perf_counter()
            ds = MolhivLike()
            print(f"built molhiv-like ({len(ds)} graphs) in {time.perf_counter() - t:.2f} s")
        else:
            raise SystemExit(f"unknown dataset {name!r}")
        for bs in args.batch_size:
            rows.append(bench(name, ds, bs, device, args.repeats))
            print(json.dumps(rows[-1]))
    hw = (torch.cuda.get_device_name(device) if device.type == "cuda" else
          f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"\n{hw}; torch {torch.__version__}\n")
    print("| dataset | train graphs | batch | PyG DataLoader s/epoch | PackedLoader s/epoch | "
          "speedup | packing s (once) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['graphs']} | {r['batch_size']} | {r['pyg_epoch_s']:.3f} | "
              f"{r['packed_epoch_s']:.4f} | {r['speedup']:.1f}x | {r['pack_s']:.2f} |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"hardware": hw, "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
