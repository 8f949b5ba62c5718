"""M-FAC against Adam and SGD with momentum on GCN / Cora in one process, and M-FAC's step time
and state memory over the window length m.

    python scripts/bench_mfac.py --out scripts/results/bench-mfac-cpu

Every optimizer trains the same seeded 2-layer GCN (Kipf & Welling: 16 hidden, dropout 0.5,
weight decay 5e-4, row-normalised features, public split) full-batch for ``--epochs`` epochs;
reported: best validation accuracy, its test accuracy, the first epoch whose validation accuracy
reaches Adam's best, and the mean wall time per step. The sweep times one M-FAC step of a
``--sweep-dim``-parameter model over m = 8 .. 1024 and reports the window's bytes.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv
from torch_geometric.transforms import NormalizeFeatures

from graphlab.data import load
from graphlab.optim.mfac import MFAC

OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=5e-4),
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9, weight_decay=5e-4),
    "mfac": lambda p: MFAC(p, lr=0.01, momentum=0.9, weight_decay=5e-4, ngrads=32, damp=1e-3),
}


class GCN(torch.nn.Module):
    def __init__(self, fin, hidden, classes):
        super().__init__()
        self.conv1, self.conv2 = GCNConv(fin, hidden, cached=True), GCNConv(hidden, classes,
                                                                            cached=True)

    def forward(self, x, edge_index):
        x = F.dropout(F.relu(self.conv1(F.dropout(x, 0.5, self.training), edge_index)), 0.5,
                      self.training)
        return self.conv2(x, edge_index)


def train(name, data, epochs, seed):
    torch.manual_seed(seed)
    model = GCN(data.num_features, 16, int(data.y.max()) + 1)
    opt = OPTIMIZERS[name](model.parameters())
    history, step_time = [], 0.0
    for _ in range(epochs):
        model.train()
        t = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(data.x, data.edge_index)[data.train_mask],
                        data.y[data.train_mask]).backward()
        opt.step()
        step_time += time.perf_counter() - t
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(-1)
        history.append([float((pred[m] == data.y[m]).float().mean())
                        for m in (data.val_mask, data.test_mask)])
    best = max(range(epochs), key=lambda e: history[e][0])
    return {"optimizer": name, "best_valid": history[best][0], "test_at_best": history[best][1],
            "best_epoch": best + 1, "step_ms": 1e3 * step_time / epochs, "history": history}


def sweep(dim, ms, reps):
    rows = []
    for m in ms:
        p = torch.nn.Parameter(torch.zeros(dim))
        opt = MFAC([p], lr=1e-3, ngrads=m, damp=1e-3)
        for _ in range(m + 2):   # fill the window (timing covers the slide and the refresh)
            p.grad = torch.randn(dim)
            opt.step()
        t = time.perf_counter()
        for _ in range(reps):
            p.grad = torch.randn(dim)
            opt.step()
        rows.append({"m": m, "step_ms": 1e3 * (time.perf_counter() - t) / reps,
                     "window_bytes": opt.fisher.grads.numel() * opt.fisher.grads.element_size(),
                     "d_m_4": dim * m * 4})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep-dim", type=int, default=23063)
    ap.add_argument("--sweep-reps", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = load("Cora", transform=NormalizeFeatures())[0]
    runs = [train(n, data, args.epochs, args.seed) for n in OPTIMIZERS]
    target = next(r["best_valid"] for r in runs if r["optimizer"] == "adam")
    lines = ["| optimizer | best valid acc | test acc at best | best epoch | first epoch >= "
             "Adam's best | ms / step |", "|---|---|---|---|---|---|"]
    for r in runs:
        reach = next((e + 1 for e, h in enumerate(r["history"]) if h[0] >= target), None)
        r["epoch_reaching_adam_best"] = reach
        lines.append(f"| {r['optimizer']} | {r['best_valid']:.4f} | {r['test_at_best']:.4f} | "
                     f"{r['best_epoch']} | {reach if reach else 'never'} | {r['step_ms']:.2f} |")
    rows = sweep(args.sweep_dim, [8, 16, 32, 64, 128, 256, 512, 1024], args.sweep_reps)
    lines += ["", f"| m | ms / step (d = {args.sweep_dim}) | window bytes | d*m*4 |",
              "|---|---|---|---|"]
    lines += [f"| {r['m']} | {r['step_ms']:.2f} | {r['window_bytes']} | {r['d_m_4']} |"
              for r in rows]
    text = "\n".join(lines)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"args": vars(args), "runs": runs, "sweep": rows}, f, indent=1)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
