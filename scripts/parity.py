"""Length generalisation on parity and modular arithmetic: negative eigenvalues on/off.

Grazzi et al. (ICLR 2025, arXiv 2411.12537) report that DeltaNet and Mamba solve parity and
extrapolate in length only when their transition eigenvalues may be negative. This script checks
that claim with graphlab's cores at a small budget: train on lengths 3..40, test at length 256,
and report the scaled accuracy (acc - chance) / (1 - chance) of the *final* prediction, median
over seeds, after the same learning-rate sweep for every model (best lr chosen on the
training-length accuracy, never on the test length).

Tasks (generated):
  parity   bits; label = parity of the number of ones so far.
  mod<m>   alternating digits 0..m-1 and operators + - *, evaluated left to right modulo m
           (no brackets, no precedence: a finite-state computation); label after each digit.
Supervision is on every labelled position (``--supervise all``, the default: denser signal for a
CPU budget) or on the last one only (``--supervise last``, as in the paper's setup).

Usage:  python scripts/parity.py [--tasks parity mod3 mod5] [--seeds 3] [--lrs 1e-3 3e-3 1e-2]
Defaults (1000 steps x 32, d=32, one layer, lr 3e-3, one seed) took 1-4 min per DeltaNet run and
5-15 min per Mamba run on a shared 2-core CPU (2026-11-28).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from graphlab.nn.seq import build_seq_core

MODELS = {
    "deltanet[0,1]": ("deltanet", dict(allow_neg_eigval=False, num_heads=1)),
    "deltanet[-1,1]": ("deltanet", dict(allow_neg_eigval=True, num_heads=1)),
    "mamba[0,1]": ("mamba", dict(allow_neg_eigval=False)),
    "mamba[-1,1]": ("mamba", dict(allow_neg_eigval=True)),
}
OPS = 3  # + - *


def make_batch(task: str, batch: int, length: int, gen: torch.Generator):
    """Tokens ``[B, L]``, labels ``[B, L]`` (-1 = unlabelled), mask ``[B, L]``, number of classes."""
    if task == "parity":
        bits = torch.randint(0, 2, (batch, length), generator=gen)
        return bits, bits.cumsum(1) % 2, 2
    m = int(task[3:])
    n_num = length // 2 + 1
    nums = torch.randint(0, m, (batch, n_num), generator=gen)
    ops = torch.randint(0, OPS, (batch, n_num), generator=gen)
    val = nums[:, 0].clone()
    labels = torch.full((batch, n_num), -1, dtype=torch.long)
    labels[:, 0] = val
    for i in range(1, n_num):  # data generation only; the models never loop over time
        o, x = ops[:, i], nums[:, i]
        val = torch.where(o == 0, val + x, torch.where(o == 1, val - x, val * x)) % m
        labels[:, i] = val
    tokens = torch.stack([m + ops, nums], 2).flatten(1)[:, 1:length + 1]  # digit, op, digit, ...
    lab = torch.stack([torch.full_like(labels, -1), labels], 2).flatten(1)[:, 1:length + 1]
    return tokens, lab, m


def vocab(task: str) -> int:
    return 2 if task == "parity" else int(task[3:]) + OPS


class Net(nn.Module):
    def __init__(self, task: str, core: str, kw: dict, d: int, layers: int, classes: int):
        super().__init__()
        self.emb = nn.Embedding(vocab(task), d)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.cores = nn.ModuleList(build_seq_core(core, d, **kw) for _ in range(layers))
        self.mlps = nn.ModuleList(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.GELU(),
                                                nn.Linear(2 * d, d)) for _ in range(layers))
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, classes))

    def forward(self, tokens, mask=None):
        h = self.emb(tokens)
        for norm, core, mlp in zip(self.norms, self.cores, self.mlps):
            h = h + core(norm(h), mask)
            h = h + mlp(h)
        return self.head(h)


@torch.no_grad()
def evaluate(net, task, length, n, seed):
    gen = torch.Generator().manual_seed(seed)
    tokens, labels, classes = make_batch(task, n, length, gen)
    last = (labels >= 0).long().cumsum(1).argmax(1)  # index of the last labelled position
    # in slices: Mamba's scan holds [batch, L, expand * d, d_state] states
    pred = torch.cat([net(t)[torch.arange(t.size(0)), i].argmax(-1)
                      for t, i in zip(tokens.split(64), last.split(64))])
    acc = (pred == labels[torch.arange(n), last]).float().mean().item()
    chance = 1.0 / classes
    return (acc - chance) / (1 - chance)


def train(task, name, lr, seed, args):
    core, kw = MODELS[name]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    _, _, classes = make_batch(task, 1, 3, torch.Generator().manual_seed(0))
    net = Net(task, core, kw, args.d, args.layers, classes)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=args.steps, pct_start=0.1)
    for _ in range(args.steps):
        # variable lengths 3..40, right-padded with a mask
        lengths = torch.randint(3, args.train_len + 1, (args.batch,), generator=gen)
        tokens, labels, _ = make_batch(task, args.batch, args.train_len, gen)
        mask = torch.arange(args.train_len)[None] < lengths[:, None]
        labels = labels.masked_fill(~mask, -1)
        if args.supervise == "last":
            last = torch.where(labels >= 0, torch.arange(args.train_len)[None], -1).max(1).values
            keep = torch.zeros_like(mask)
            keep[torch.arange(args.batch), last] = True
            labels = labels.masked_fill(~keep, -1)
        logits = net(tokens, mask)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
    net.eval()
    return (evaluate(net, task, args.train_len, args.eval_n, 77 + seed),
            evaluate(net, task, args.test_len, args.eval_n, 99 + seed))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["parity", "mod3"])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--lrs", nargs="+", type=float, default=[3e-3])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--d", type=int, default=32)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--train-len", type=int, default=40)
    p.add_argument("--test-len", type=int, default=256)
    p.add_argument("--eval-n", type=int, default=512)
    p.add_argument("--supervise", choices=["all", "last"], default="all")
    p.add_argument("--threads", type=int, default=1, help="torch threads (small ops run fastest on one)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# budget: {args.steps} steps x batch {args.batch}, d={args.d}, layers={args.layers}, "
          f"lrs={args.lrs}, seeds={args.seeds}, supervise={args.supervise}; "
          f"train len <= {args.train_len}, test len {args.test_len}; scaled accuracy of the final "
          f"prediction; 'solves' >= 0.9, 'fails' <= 0.1, 'did not train' if train-length < 0.9")
    print(f"{'task':8s} {'model':16s} {'best lr':>8s} {'acc@train':>10s} {'acc@test':>9s}  verdict  time")
    for task in args.tasks:
        for name in args.models:
            t0 = time.time()
            best = None
            for lr in args.lrs:
                runs = [train(task, name, lr, s, args) for s in range(args.seeds)]
                tr = statistics.median(r[0] for r in runs)
                te = statistics.median(r[1] for r in runs)
                if best is None or tr > best[1]:
                    best = (lr, tr, te)
            lr, tr, te = best
            verdict = ("did not train" if tr < 0.9 else "solves" if te >= 0.9
                       else "fails" if te <= 0.1 else "partial")
            print(f"{task:8s} {name:16s} {lr:8.0e} {tr:10.3f} {te:9.3f}  {verdict}  {time.time() - t0:.0f}s",
                  flush=True)


if __name__ == "__main__":
    main()
