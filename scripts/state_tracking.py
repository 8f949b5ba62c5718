"""State tracking and length generalisation: negative eigenvalues and Householder products.

Checks three claims with graphlab's sequence cores (issue #6):
  * Grazzi et al., "Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues"
    (ICLR 2025, arXiv 2411.12537): DeltaNet and Mamba solve parity (and modular arithmetic
    without brackets) and extrapolate in length only when their transition eigenvalues may be
    negative ([-1,1]); with eigenvalues in [0,1] they fail.
  * Siems et al., "DeltaProduct" (arXiv 2502.10297): with n_h >= 2 Householder factors per token
    and negative eigenvalues, ONE layer solves the S3 word problem.

Tasks (generated on the fly; every token carries a label unless said otherwise):
  parity   bits; label = parity of the number of ones so far (chance 1/2).
  mod3/5   digits 0..m-1 alternating with operators + - *, evaluated left to right modulo m (no
           brackets, no precedence: a finite-state computation); label after each digit
           (chance 1/m).
  s3/s5    permutation word problem: token = index of a permutation g_t of {0..n-1} (lexicographic
           order of ``itertools.permutations``); label = index of the running product
           P_t = g_t o g_{t-1} o ... o g_1, with (p o q)(i) = p(q(i)) (chance 1/6, 1/120).

Protocol: train on random lengths 3..40 (right-padded, masked), supervision on every labelled
position (``--supervise all``; ``last`` supervises the final one only, as in the paper); evaluate
the *final* prediction of fresh sequences of exactly length 40 ("train length") and 256 ("test
length"); scaled accuracy (acc - chance) / (1 - chance). Every model gets the same learning-rate
sweep (``--lrs``); per (task, model) the best lr is the one with the highest median
training-length scaled accuracy over seeds (the test length is never used to choose); the cell
reports the medians at that lr. Verdicts at length 256: "solves" >= 0.9, "fails" <= 0.1, else
"partial"; "did not train" when the median training-length scaled accuracy < 0.9 (each run also
gets its own verdict in results.json).

Models (``build_seq_core``; one head, short conv on, as fla's defaults otherwise):
  deltanet[0,1] / deltanet[-1,1]              DeltaNet, allow_neg_eigval False / True (beta in (0,2))
  deltaproduct2[0,1] / deltaproduct2[-1,1]    DeltaProduct num_householder=2 (gated, as fla's)
  mamba[0,1] / mamba[-1,1]                    Mamba (d_state 16, expand 2), allow_neg_eigval
Each block: x + core(LN(x)), then x + MLP(LN(x)); ``--layers`` blocks (default 1).
Training uses the cores' chunked paths (DeltaNet/DeltaProduct: chunked WY form or fla on CUDA;
Mamba: chunked parallel scan, or mamba-ssm's fused scan for [0,1] on CUDA when installed).

Outputs (``--out DIR``): results.json (every run: task, model, lr, seed, acc/scaled acc at 40 and
256, steps, seconds, status) rewritten after every run, and results.md (rows = model, columns =
task, cell = median scaled acc@256 (acc@40), verdict, best lr).

Cost (2-core CPU, one torch thread, defaults d=64, batch 64, one layer, train length 40;
``ms_per_step`` in results.json): deltanet ~60-125 ms/step, deltaproduct2 ~160-215 ms/step,
mamba ~370-720 ms/step; evaluation (512 sequences at 40 and 256) adds ~1 s (DeltaNet), ~4 s
(DeltaProduct) and ~35 s (Mamba). The models are tiny, so on a GPU a step is launch-bound: size
``--steps`` from the ``ms_per_step`` of a short run (``--steps 200 --seeds 1 --lrs 3e-3``).
``--time-budget`` makes a run return tables in any case (seeds are the outer loop, so a cut
leaves complete early seeds rather than missing tasks).

Usage (CPU smoke):  python scripts/state_tracking.py --steps 20 --seeds 1 --lrs 3e-3 --out /tmp/st
One H200 (scripts/results/state-tracking-h200):  python scripts/state_tracking.py --device cuda \\
                        --jobs 16 --steps 1000 --seeds 3 --lrs 3e-3 1e-2 --out scripts/results/state_tracking
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
import time
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(_HERE)]  # scripts/ (for _grid) and the repo root
from _grid import (add_grid_args, budget_left, command_line, make_optimizer,  # noqa: E402
                   optimizer_step, run_grid, worker_device, write_json)

from graphlab.nn.seq import build_seq_core  # noqa: E402

MODELS = {
    "deltanet[0,1]": ("deltanet", dict(allow_neg_eigval=False, num_heads=1)),
    "deltanet[-1,1]": ("deltanet", dict(allow_neg_eigval=True, num_heads=1)),
    "deltaproduct2[0,1]": ("deltaproduct", dict(num_householder=2, allow_neg_eigval=False, num_heads=1)),
    "deltaproduct2[-1,1]": ("deltaproduct", dict(num_householder=2, allow_neg_eigval=True, num_heads=1)),
    "mamba[0,1]": ("mamba", dict(allow_neg_eigval=False)),
    "mamba[-1,1]": ("mamba", dict(allow_neg_eigval=True)),
}
TASKS = ("parity", "mod3", "mod5", "s3", "s5")
OPS = 3  # + - *


# ----------------------------------------------------------------------------- task generators
@lru_cache(maxsize=None)
def perm_table(n: int):
    """``(perms, mul)``: the permutations of ``range(n)`` in lexicographic order and the table
    ``mul[a, b] = index(perms[a] o perms[b])`` with ``(p o q)(i) = p(q(i))``."""
    perms = list(itertools.permutations(range(n)))
    index = {p: i for i, p in enumerate(perms)}
    mul = torch.tensor([[index[tuple(p[q[i]] for i in range(n))] for q in perms] for p in perms])
    return perms, mul


def num_classes(task: str) -> int:
    if task == "parity":
        return 2
    if task.startswith("mod"):
        return int(task[3:])
    if task.startswith("s"):
        return math.factorial(int(task[1:]))
    raise ValueError(f"unknown task '{task}'; choose from {', '.join(TASKS)}")


def vocab(task: str) -> int:
    if task.startswith("mod"):
        return int(task[3:]) + OPS
    return num_classes(task)


def make_batch(task: str, batch: int, length: int, gen: torch.Generator):
    """Tokens ``[B, L]`` and labels ``[B, L]`` (``-1`` = unlabelled), on ``gen``'s device."""
    dev = gen.device
    if task == "parity":
        bits = torch.randint(0, 2, (batch, length), generator=gen, device=dev)
        return bits, bits.cumsum(1) % 2
    if task.startswith("mod"):
        m = int(task[3:])
        n_num = length // 2 + 1
        nums = torch.randint(0, m, (batch, n_num), generator=gen, device=dev)
        ops = torch.randint(0, OPS, (batch, n_num), generator=gen, device=dev)
        val = nums[:, 0].clone()
        labels = torch.empty(batch, n_num, dtype=torch.long, device=dev)
        labels[:, 0] = val
        for i in range(1, n_num):  # data generation only; the models never loop over time
            o, x = ops[:, i], nums[:, i]
            val = torch.where(o == 0, val + x, torch.where(o == 1, val - x, val * x)) % m
            labels[:, i] = val
        tokens = torch.stack([m + ops, nums], 2).flatten(1)[:, 1:length + 1]  # digit, op, digit, ...
        lab = torch.stack([torch.full_like(labels, -1), labels], 2).flatten(1)[:, 1:length + 1]
        return tokens, lab
    if task.startswith("s"):
        _, mul = perm_table(int(task[1:]))
        mul = mul.to(dev)
        g = torch.randint(0, mul.size(0), (batch, length), generator=gen, device=dev)
        labels = torch.empty_like(g)
        acc = g[:, 0]
        labels[:, 0] = acc
        for t in range(1, length):  # data generation only
            acc = mul[g[:, t], acc]
            labels[:, t] = acc
        return g, labels
    raise ValueError(f"unknown task '{task}'; choose from {', '.join(TASKS)}")


# ----------------------------------------------------------------------------- model
class Net(nn.Module):
    def __init__(self, task: str, core: str, kw: dict, d: int, layers: int):
        super().__init__()
        self.emb = nn.Embedding(vocab(task), d)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.cores = nn.ModuleList(build_seq_core(core, d, **kw) for _ in range(layers))
        self.mlps = nn.ModuleList(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.GELU(),
                                                nn.Linear(2 * d, d)) for _ in range(layers))
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, num_classes(task)))

    def forward(self, tokens, mask=None):
        h = self.emb(tokens)
        for norm, core, mlp in zip(self.norms, self.cores, self.mlps):
            h = h + core(norm(h), mask)
            h = h + mlp(h)
        return self.head(h)


def scaled(acc: float, chance: float) -> float:
    return (acc - chance) / (1 - chance)


@torch.no_grad()
def evaluate(net, task, length, n, seed, device, slice_size=128):
    """Accuracy of the final prediction on ``n`` fresh sequences of exactly ``length``."""
    gen = torch.Generator(device=device).manual_seed(seed)
    tokens, labels = make_batch(task, n, length, gen)
    pos = torch.arange(length, device=device)
    last = torch.where(labels >= 0, pos, -1).max(1).values            # last labelled position
    rows = torch.arange(n, device=device)
    pred = torch.cat([net(t)[torch.arange(t.size(0), device=device), i].argmax(-1)
                      for t, i in zip(tokens.split(slice_size), last.split(slice_size))])
    return (pred == labels[rows, last]).float().mean().item()


def verdict(train_scaled: float, test_scaled: float) -> str:
    if train_scaled < 0.9:
        return "did not train"
    return "solves" if test_scaled >= 0.9 else "fails" if test_scaled <= 0.1 else "partial"


def train_run(cfg: dict) -> dict:
    """One (task, model, lr, seed) run; module level so that it pickles into spawn workers."""
    out = {k: cfg[k] for k in ("task", "model", "lr", "seed")}
    if budget_left(cfg) <= 0:
        return dict(out, status="not run (budget)")
    device = torch.device(worker_device())
    t0 = time.time()
    task, seed, L = cfg["task"], cfg["seed"], cfg["train_len"]
    core, kw = MODELS[cfg["model"]]
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(1000 + seed)
    net = Net(task, core, kw, cfg["d"], cfg["layers"]).to(device)
    opt, sched = make_optimizer(net, cfg["lr"], cfg["steps"])
    B = cfg["batch"]
    pos = torch.arange(L, device=device)
    steps, status, loss_v = 0, "ok", float("nan")
    for step in range(cfg["steps"]):
        if budget_left(cfg) <= 0:
            status = "stopped (budget)"
            break
        lengths = torch.randint(3, L + 1, (B,), generator=gen, device=device)
        tokens, labels = make_batch(task, B, L, gen)
        mask = pos[None] < lengths[:, None]
        labels = labels.masked_fill(~mask, -1)
        if cfg["supervise"] == "last":
            last = torch.where(labels >= 0, pos[None], -1).max(1).values
            keep = torch.zeros_like(mask)
            keep[torch.arange(B, device=device), last] = True
            labels = labels.masked_fill(~keep, -1)
        logits = net(tokens, mask)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-1)
        optimizer_step(net, opt, sched, loss)
        steps = step + 1
        if step % 200 == 0 or step == cfg["steps"] - 1:
            loss_v = loss.item()
    train_s = time.time() - t0
    net.eval()
    chance = 1.0 / num_classes(task)
    acc_tr = evaluate(net, task, L, cfg["eval_n"], 77 + seed, device)
    acc_te = evaluate(net, task, cfg["test_len"], cfg["eval_n"], 99 + seed, device)
    s_tr, s_te = scaled(acc_tr, chance), scaled(acc_te, chance)
    return dict(out, status=status, steps=steps, acc_train_len=acc_tr, acc_test_len=acc_te,
                scaled_train_len=round(s_tr, 4), scaled_test_len=round(s_te, 4),
                verdict=verdict(s_tr, s_te), final_loss=round(loss_v, 4),
                ms_per_step=round(1000 * train_s / max(steps, 1), 2),
                seconds=round(time.time() - t0, 2), device=str(device))


# ----------------------------------------------------------------------------- tables
def summarise(results, tasks, models):
    """``{(task, model): dict(lr, train, test, verdict, n, steps) | None}`` at the best lr."""
    table = {}
    for task in tasks:
        for model in models:
            runs = [r for r in results if r["task"] == task and r["model"] == model
                    and "scaled_test_len" in r]
            if not runs:
                table[task, model] = None
                continue
            best = None
            for lr in sorted({r["lr"] for r in runs}):
                rs = [r for r in runs if r["lr"] == lr]
                tr = statistics.median(r["scaled_train_len"] for r in rs)
                te = statistics.median(r["scaled_test_len"] for r in rs)
                if best is None or tr > best["train"]:
                    best = dict(lr=lr, train=tr, test=te, n=len(rs),
                                steps=min(r["steps"] for r in rs),
                                stopped=sum(r["status"] != "ok" for r in rs))
            v = "did not train" if best["train"] < 0.9 else verdict(best["train"], best["test"])
            table[task, model] = dict(best, verdict=v)
    return table


def write_outputs(out_dir, meta, results, tasks, models):
    write_json(os.path.join(out_dir, "results.json"), meta, results)
    table = summarise(results, tasks, models)
    lines = [f"# State tracking ({meta['date']})", "",
             f"`{meta['command']}`", "",
             "Cell: median scaled accuracy at length %d (at length %d), verdict, best lr (chosen on "
             "length-%d accuracy), seeds at that lr; 'solves' >= 0.9, 'fails' <= 0.1 at length %d, "
             "'did not train' if the length-%d median < 0.9. '(k stopped)' = runs cut by the time "
             "budget (fewer steps)." % (meta["test_len"], meta["train_len"], meta["train_len"],
                                        meta["test_len"], meta["train_len"]), "",
             "| model | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for model in models:
        cells = []
        for task in tasks:
            c = table[task, model]
            if c is None:
                cells.append("error" if any(r["task"] == task and r["model"] == model and
                                            str(r.get("status", "")).startswith("error")
                                            for r in results) else "not run (budget)")
                continue
            extra = f", {c['stopped']} stopped at {c['steps']} steps" if c["stopped"] else ""
            cells.append(f"{c['test']:.2f} ({c['train']:.2f}) {c['verdict']}, lr {c['lr']:g}, "
                         f"n={c['n']}{extra}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    not_run = sum(r.get("status") == "not run (budget)" for r in results)
    errors = [r for r in results if str(r.get("status", "")).startswith("error")]
    lines += ["", f"Runs: {len(results)} recorded, {not_run} not run (budget), {len(errors)} errors."]
    lines += [f"- {r['task']} {r['model']} lr {r['lr']} seed {r['seed']}: {r['status']}" for r in errors]
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 3e-3, 1e-2])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--train-len", type=int, default=40)
    p.add_argument("--test-len", type=int, default=256)
    p.add_argument("--eval-n", type=int, default=512)
    p.add_argument("--supervise", choices=["all", "last"], default="all")
    add_grid_args(p)
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available")
    out_dir = args.out or "scripts/results/state_tracking"
    os.makedirs(out_dir, exist_ok=True)
    meta = dict(vars(args), command=command_line(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    common = dict(steps=args.steps, batch=args.batch, d=args.d, layers=args.layers,
                  train_len=args.train_len, test_len=args.test_len, eval_n=args.eval_n,
                  supervise=args.supervise)
    # seeds outermost so that a budget cut leaves one complete seed rather than one complete task
    configs = [dict(common, task=t, model=m, lr=lr, seed=s) for s in range(args.seeds)
               for t in args.tasks for m in args.models for lr in args.lrs]
    print(f"# {len(configs)} runs, {args.jobs} jobs on {args.device}; budget "
          f"{args.time_budget} s; {command_line()}", flush=True)
    results = run_grid(train_run, configs, args,
                       lambda res: write_outputs(out_dir, meta, res, args.tasks, args.models))
    table = write_outputs(out_dir, meta, results, args.tasks, args.models)
    for (task, model), c in table.items():
        if c is not None:
            print(f"{task:7s} {model:20s} lr {c['lr']:<7g} @{args.train_len} {c['train']:6.3f} "
                  f"@{args.test_len} {c['test']:6.3f}  {c['verdict']}", flush=True)
    print(f"# wrote {out_dir}/results.json and results.md", flush=True)


if __name__ == "__main__":
    main()
