"""Training time per epoch and parameter count of the models of a matched-budget comparison.

Builds each model from its config (``configs/<model>/<dataset>.yaml``, the ``model:`` section; the
dataset-dependent arguments are filled as the trainer would), then times forward + backward +
Adam step over ``--batches`` training batches and extrapolates to one epoch. This measures cost,
not accuracy (accuracy comes from ``graphlab train`` with the same configs)::

    GRAPHLAB_MIRROR=../shared/data python scripts/bench_sinc_epoch.py \
        --dataset ogbg-molhiv --configs configs/sincgcn/ogbg-molhiv.yaml \
        configs/gin/ogbg-molhiv-100k.yaml configs/gat/ogbg-molhiv-100k.yaml \
        configs/gcn/ogbg-molhiv-100k.yaml
"""
from __future__ import annotations

import argparse
import inspect
import time

import torch
import torch.nn.functional as F
import yaml
from torch_geometric.loader import DataLoader

from graphlab.registry import MODELS


def build(cfg_path: str, in_channels: int, out_channels: int, node_encoder: str,
          edge_dim, edge_encoder: str, task_level: str):
    with open(cfg_path) as f:
        kw = dict(yaml.safe_load(f)["model"])
    cls = MODELS.get(kw.pop("name"))
    extra = dict(task_level=task_level, node_encoder=node_encoder, edge_dim=edge_dim,
                 edge_encoder=edge_encoder)
    params = inspect.signature(cls.__init__).parameters
    kw.update({k: v for k, v in extra.items() if k in params})
    return cls(in_channels, out_channels, **kw)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ogbg-molhiv")
    p.add_argument("--root", default=None)
    p.add_argument("--configs", nargs="+", required=True)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from graphlab.data.catalog import load
    ds = load(args.dataset, root=args.root)
    ogb = args.dataset.startswith("ogbg-mol")
    split = ds.get_idx_split() if hasattr(ds, "get_idx_split") else None
    train = ds[split["train"]] if split is not None else ds
    ed = None if getattr(ds[0], "edge_attr", None) is None else ds[0].edge_attr.view(
        ds[0].edge_attr.size(0), -1).size(1)
    out = ds.num_tasks if hasattr(ds, "num_tasks") else ds.num_classes
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True)
    steps_per_epoch = len(train) // args.batch_size
    dev = torch.device(args.device)
    for path in args.configs:
        torch.manual_seed(0)
        model = build(path, ds.num_features, out, "atom" if ogb else "linear", ed,
                      "bond" if ogb else "linear", "graph").to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        it = iter(loader)
        times = []
        for i in range(args.batches + 2):
            b = next(it, None)
            if b is None:  # small datasets: start another pass
                it = iter(loader)
                b = next(it)
            b = b.to(dev)
            t0 = time.perf_counter()
            opt.zero_grad()
            logits = model(b)
            if ogb:
                y = b.y.view(logits.shape).float()
                mask = ~torch.isnan(y)
                loss = F.binary_cross_entropy_with_logits(logits[mask], y[mask])
            else:
                loss = F.cross_entropy(logits, b.y.view(-1))
            loss.backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:  # first steps warm up allocator and caches
                times.append(time.perf_counter() - t0)
        per_step = sorted(times)[len(times) // 2]
        n_params = sum(q.numel() for q in model.parameters())
        print(f"{path:45s} params {n_params:8,d}  median step {per_step * 1e3:7.1f} ms  "
              f"epoch ~{per_step * steps_per_epoch:7.1f} s ({steps_per_epoch} steps)", flush=True)


if __name__ == "__main__":
    main()
