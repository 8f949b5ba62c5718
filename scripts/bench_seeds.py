"""Parallel seeds on one device: ``K`` processes sharing it vs one vmapped ``SeedEnsemble``.

Both modes train GIN-virtual (the OGB ogbg-molhiv baseline: 5 layers, 300 hidden, BatchNorm,
mean pooling, virtual node, OGB atom / bond encoders, dropout 0.5, Adam 1e-3, batch 32) on
``molhiv-like`` (scripts/bench_loader.py: 41,127 synthetic molecules the size of ogbg-molhiv,
features clamped to OGB's atom / bond vocabularies), 80% train split, with the packed loader
(graphlab.data.packed) on the device, and report the time for *all K seeds* to advance one
training epoch:

* ``processes``: K worker processes (``graphlab train --jobs K``'s arrangement), each packing
  the data and training its seed; they start together after a warm-up epoch (a file barrier)
  and the slowest one's epoch time is the figure;
* ``ensemble``: one process, the K seeds as a ``SeedEnsemble`` (``graphlab train --ensemble``:
  one forward / backward per batch, vmapped per-member losses); dropout draws per-member masks
  (``randomness='different'``);
* ``single``: one seed alone, for reference (K x single = running the seeds one after another).

Both loops are the training step only (no evaluation, no Lightning), so the figures compare the
two ways of sharing the device. ``--max-steps`` caps the steps per epoch; full-epoch times are
extrapolated from the per-step time.

    python scripts/bench_seeds.py --device cuda                       # the real thing (GPU)
    python scripts/bench_seeds.py --num-graphs 400 --hidden 16 --layers 2 --seeds 3 --epochs 1
                                                                      # tiny CPU smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(_HERE)]  # bench_loader; graphlab without install
from bench_loader import MolhivLike  # noqa: E402

from graphlab.data.packed import PackedGraphs, PackedLoader  # noqa: E402
from graphlab.models.basic import GIN  # noqa: E402
from graphlab.train.ensemble import SeedEnsemble, seed_everything  # noqa: E402


def build(args, device):
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims
    ds = MolhivLike(num_graphs=args.num_graphs)
    atom = torch.tensor(get_atom_feature_dims())
    bond = torch.tensor(get_bond_feature_dims())
    ds._data.x = ds._data.x % atom  # valid OGB categories
    ds._data.edge_attr = ds._data.edge_attr % bond
    n = len(ds)
    train = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:int(0.8 * n)]
    packed = PackedGraphs(ds, train, device=device)
    loader = PackedLoader(packed, batch_size=args.batch_size, shuffle=True, seed=0)
    return loader


def make_model(args):
    return GIN(9, 1, hidden_channels=args.hidden, num_layers=args.layers, dropout=args.dropout,
               virtual_node=True, pool="mean", norm="batch", node_encoder="atom", edge_dim=3,
               edge_encoder="bond")


def graphed_step(model, opt, loader, ensemble, device):
    """``task.cuda_graphs``' step for this loop: padded static batches, masked BatchNorm, the
    loss weighted by real graphs, one CUDA graph per bucket (graphlab.train.cuda_graphs)."""
    from graphlab.nn.masked_norm import mask_batchnorms, padding_masks
    from graphlab.train.cuda_graphs import GraphedSteps, make_capturable
    from graphlab.tasks import TASKS
    mask_batchnorms(model._base[0] if ensemble else model)
    if device.type == "cuda":
        make_capturable(opt)

    loss_of = TASKS.get("graph_multilabel")("rocauc").masked_loss

    def step(sb):
        with padding_masks(sb.node_mask, sb.edge_mask, sb.graph_mask):
            out = model(sb)
        y = sb.y.view(-1, 1)
        if ensemble:
            loss = torch.func.vmap(loss_of, in_dims=(0, None, None))(out, y, sb.graph_mask).sum()
        else:
            loss = loss_of(out, y, sb.graph_mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()
    return GraphedSteps(step, loader.batch_size, capture=device.type == "cuda", device=device)


def epoch(model, opt, loader, ep, device, max_steps, ensemble, graphed=None):
    model.train()
    loader.set_epoch(ep)
    steps = 0
    t = time.perf_counter()
    for batch in loader:
        if graphed is not None:
            graphed(batch)
            steps += 1
            if max_steps and steps >= max_steps:
                break
            continue
        y = batch.y.view(-1, 1).float()
        out = model(batch)
        if ensemble:
            # per-member losses, mapped as graphlab.train.ensemble_run does
            loss = torch.func.vmap(F.binary_cross_entropy_with_logits, in_dims=(0, None))(
                out, y).sum()
        else:
            loss = F.binary_cross_entropy_with_logits(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        if max_steps and steps >= max_steps:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t, steps


def train_timed(args, seeds, device, ensemble, barrier=None):
    """Warm-up epoch, optional barrier, then ``args.epochs`` timed epochs: (s, steps, per-step)."""
    loader = build(args, device)
    if ensemble:
        model = SeedEnsemble.from_seeds(lambda: make_model(args), seeds,
                                        randomness="different" if args.dropout > 0 else "error")
    else:
        seed_everything(seeds[0])
        model = make_model(args)
    model = model.to(device)
    if args.compile and ensemble:
        raise SystemExit("--compile: not for the ensemble mode (the vmapped graph recompiles for "
                         "every batch size); use --modes single processes")
    if args.compile:  # as task.compile: the forward compiled in place, dynamic shapes
        model.compile(dynamic=True, mode=None if args.compile == "default" else args.compile)
    fused = args.fused_adam and device.type == "cuda"
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
    graphed = graphed_step(model, opt, loader, ensemble, device) if args.cuda_graphs else None
    # warm-up (allocator, cuDNN; with --cuda-graphs a whole epoch, which records every bucket)
    epoch(model, opt, loader, 0, device, 0 if graphed else args.max_steps, ensemble, graphed)
    if barrier is not None:
        ready_dir, k = barrier
        open(os.path.join(ready_dir, f"ready{seeds[0]}"), "w").close()
        while len([f for f in os.listdir(ready_dir) if f.startswith("ready")]) < k:
            time.sleep(0.01)
    total, steps = 0.0, 0
    for ep in range(1, args.epochs + 1):
        dt, s = epoch(model, opt, loader, ep, device, args.max_steps, ensemble, graphed)
        total, steps = total + dt, steps + s
    full = len(loader)
    extra = {} if graphed is None else {"cuda_graphs": dict(graphed.stats),
                                        "buckets": len(graphed.batcher.buffers)}
    return {**extra, "s_per_epoch": total / args.epochs * (full * args.epochs / steps),
            "s_per_step": total / steps, "steps_per_epoch": full, "timed_steps": steps,
            "peak_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20
            if device.type == "cuda" else None}


def run_processes(args, device):
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.seeds)))
        for s in range(args.seeds):
            cmd = [sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--worker", str(s),
                   "--barrier", tmp]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env))
        outs = []
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"worker failed ({p.returncode})")
            outs.append(json.loads(out.decode().strip().splitlines()[-1]))
    slowest = max(outs, key=lambda r: r["s_per_epoch"])
    return {**slowest, "workers_s_per_epoch": [r["s_per_epoch"] for r in outs]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--num-graphs", type=int, default=41127)
    ap.add_argument("--hidden", type=int, default=300)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs (after one warm-up)")
    ap.add_argument("--max-steps", type=int, default=0,
                    help="cap the steps per epoch (0: whole epochs); times are extrapolated")
    ap.add_argument("--modes", nargs="+", default=["single", "processes", "ensemble"],
                    choices=["single", "processes", "ensemble"])
    ap.add_argument("--compile", default=None, nargs="?", const="default",
                    help="compile the model (torch.compile mode, e.g. max-autotune-no-cudagraphs)")
    ap.add_argument("--fused-adam", action="store_true", help="Adam(fused=True) on CUDA")
    ap.add_argument("--cuda-graphs", action="store_true",
                    help="padded static batches + one CUDA graph per bucket (task.cuda_graphs); "
                         "on CPU the padded steps run eagerly")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--barrier", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.worker is not None:
        r = train_timed(args, [args.worker], device, False, barrier=(args.barrier, args.seeds))
        print(json.dumps(r))
        return
    rows = {}
    for mode in args.modes:
        if mode == "single":
            rows[mode] = train_timed(args, [0], device, False)
        elif mode == "processes":
            rows[mode] = run_processes(args, device)
        else:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            rows[mode] = train_timed(args, list(range(args.seeds)), device, True)
        print(mode, json.dumps(rows[mode]))
    hw = (torch.cuda.get_device_name(device) if device.type == "cuda" else
          f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    K = args.seeds
    print(f"\n{hw}; torch {torch.__version__}; GIN-virtual hidden {args.hidden}, {args.layers} "
          f"layers, {args.num_graphs} graphs, batch {args.batch_size}, {K} seeds\n")
    print("| mode | s / epoch (all seeds) | s / step (of one process / the ensemble) | "
          "vs K x single |")
    print("|---|---|---|---|")
    base = rows["single"]["s_per_epoch"] * K if "single" in rows else None
    for mode, r in rows.items():
        t = r["s_per_epoch"] * (K if mode == "single" else 1)
        label = f"{K} x single (sequential)" if mode == "single" else \
            (f"{K} processes" if mode == "processes" else f"ensemble of {K}")
        speedup = f"{base / t:.2f}x" if base else "–"
        print(f"| {label} | {t:.2f} | {r['s_per_step']:.4f} | {speedup} |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"hardware": hw, "torch": torch.__version__, "args": vars(args),
                       "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
