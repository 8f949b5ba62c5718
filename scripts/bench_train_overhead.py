"""Fixed cost of one :func:`graphlab.train.train` call, for code that trains many times
(valuation, block coordinate descent, simulated workers).

Trains the same tiny GCN on the same in-memory graph for ``--epochs`` epochs twice per repeat,
side by side in one process: through ``graphlab.train.train`` (config validation, task,
Lightning loop, evaluation of both splits every epoch, the metrics record) and through a plain
PyTorch loop doing the same optimisation and evaluation work. Prints the medians and the
difference, i.e. the per-call overhead.

    python scripts/bench_train_overhead.py [--epochs 1] [--repeats 20]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OUTDATED_IGNORE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch_geometric.data import Data  # noqa: E402


def graph(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.arange(n)
    return Data(x=torch.randn(n, 16, generator=g), y=torch.randint(0, 4, (n,), generator=g),
                edge_index=torch.randint(0, n, (2, 4 * n), generator=g),
                train_mask=idx < n // 2, val_mask=(idx >= n // 2) & (idx < 3 * n // 4),
                test_mask=idx >= 3 * n // 4)


def plain(data, epochs):
    from graphlab.models import GCN
    torch.manual_seed(0)
    model = GCN(16, 4, hidden_channels=16, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(data)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            out = model(data)
            for m in (data.val_mask, data.test_mask):
                (out[m].argmax(-1) == data.y[m]).float().mean().item()


def graphlab_train(data, epochs):
    from graphlab.train import train
    cfg = {"task": {"name": "node_classification", "metric": "accuracy"},
           "model": {"name": "gcn", "hidden_channels": 16, "dropout": 0.0},
           "optim": {"name": "adam", "lr": 0.01},
           "trainer": {"max_epochs": epochs, "accelerator": "cpu"}}
    train(None, data, cfg)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    import logging
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    data = graph()
    graphlab_train(data, args.epochs)  # warm-up: imports, registries
    plain(data, args.epochs)
    times = {"graphlab.train.train": [], "plain torch loop": []}
    for _ in range(args.repeats):
        for name, fn in (("graphlab.train.train", graphlab_train), ("plain torch loop", plain)):
            t0 = time.perf_counter()
            fn(data, args.epochs)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, {args.epochs} epoch(s), "
          f"{args.repeats} repeats, median seconds per call")
    for k, v in med.items():
        print(f"  {k:22s} {v * 1e3:9.1f} ms")
    print(f"  overhead per call      {(med['graphlab.train.train'] - med['plain torch loop']) * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
