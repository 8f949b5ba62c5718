"""Training throughput and peak memory of GRIT: sparse pair list vs padded dense (same weights).

Every (mode, batch size) runs in a fresh subprocess, so peak memory is not polluted by the
previous run: on CUDA ``torch.cuda.max_memory_allocated`` during the timed steps, on CPU the
growth of the process's peak RSS (``ru_maxrss``) from just before the first (warm-up) step.
Also reported on both: the bytes autograd keeps for backward in one step (each storage counted
once), a deterministic proxy for activation memory. One training
step = forward + loss + backward + AdamW step (+ grad clipping at 1.0), as in the Peptides config;
throughput is batch size / median step time, and ``--repeats R`` runs every setting R times
(modes interleaved) and reports medians.

Modes: ``sparse`` (GRIT.forward, full attention as pairs), ``dense`` (GRIT.forward_dense,
``[B, n_max, n_max, C]`` padded pair tensors), ``khop`` (GRIT.forward with
``full_attention=False``: only pairs within K-1 hops).

Data: ``--dataset synthetic-peptides`` (default) draws Peptides-func-shaped molecules: a
backbone chain with one ring closure (i, i+5) per ~25 atoms (about 2.1 directed edges per node,
Peptides-func averages 150.9 nodes and 307.3 edges), OGB atom (9 columns) and bond (3 columns)
features, 10 binary labels; node counts ~ N(mean, std^2) clipped to [min, max]. Any graphlab
dataset name (``--dataset peptides-func``, ``ogbg-molhiv``, ...) is loaded through
``graphlab.data.load`` instead (Peptides needs rdkit to process). RRWP is computed on the fly.

Examples::

    python scripts/bench_grit.py                                    # published model size
    python scripts/bench_grit.py --device cpu --hidden 32 --layers 2 --mean-nodes 50 --std-nodes 20
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def synthetic_peptides(num, mean, std, lo, hi, seed):
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims
    from torch_geometric.data import Data
    gen = torch.Generator().manual_seed(seed)
    atom_dims, bond_dims = get_atom_feature_dims(), get_bond_feature_dims()
    out = []
    for _ in range(num):
        n = int(torch.randn(1, generator=gen).mul(std).add(mean).round().clamp(lo, hi))
        src = torch.arange(n - 1)
        extra = torch.randint(0, max(n - 5, 1), (max(round(n / 25), 0),), generator=gen)
        extra = extra[extra + 5 < n]
        u = torch.cat([src, extra])
        v = torch.cat([src + 1, extra + 5])
        ei = torch.cat([torch.stack([u, v]), torch.stack([v, u])], 1)
        x = torch.stack([torch.randint(0, min(d, 6), (n,), generator=gen) for d in atom_dims], 1)
        ea = torch.stack([torch.randint(0, min(d, 3), (ei.size(1),), generator=gen)
                          for d in bond_dims], 1)
        out.append(Data(x=x, edge_index=ei, edge_attr=ea, num_nodes=n,
                        y=torch.randint(0, 2, (1, 10), generator=gen).float()))
    return out, dict(in_channels=9, out_channels=10, node_encoder="atom", edge_encoder="bond",
                     edge_dim=3), "multilabel"


def real_dataset(name, num, seed):
    from graphlab import data as gdata
    info = gdata.info(name)
    ds = gdata.load(name)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:num]
    graphs = [ds[int(i)] for i in idx]
    from graphlab.tasks import build_task
    dims = build_task({}, info).dims(ds, info, None)
    keep = ("in_channels", "out_channels", "node_encoder", "edge_encoder", "edge_dim")
    dims = {k: v for k, v in dims.items() if k in keep and v is not None}
    kind = {"graph_multilabel": "multilabel", "graph_regression": "regression"}.get(
        info.task, "multiclass")
    return graphs, dims, kind


def loss_fn(kind, out, y):
    if kind == "multilabel":
        y = y.view(out.shape).float()
        mask = ~torch.isnan(y)
        return F.binary_cross_entropy_with_logits(out[mask], y[mask])
    if kind == "regression":
        return F.l1_loss(out, y.view(out.shape).float())
    if out.size(-1) == 1:
        return F.binary_cross_entropy_with_logits(out, y.view(out.shape).float())
    return F.cross_entropy(out, y.view(-1).long())


def run_one(args) -> dict:
    from torch_geometric.data import Batch
    from graphlab.models import GRIT
    from graphlab.transforms import AddRRWP
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    B, steps = args.batch_size, args.warmup + args.steps
    if args.dataset == "synthetic-peptides":
        graphs, dims, kind = synthetic_peptides(B * steps, args.mean_nodes, args.std_nodes,
                                                args.min_nodes, args.max_nodes, args.seed)
    else:
        graphs, dims, kind = real_dataset(args.dataset, B * steps, args.seed)
    rrwp = AddRRWP(args.walk_length)
    t0 = time.perf_counter()
    batches = [Batch.from_data_list([rrwp(g.clone()) for g in graphs[i * B:(i + 1) * B]])
               for i in range(steps)]
    rrwp_s = (time.perf_counter() - t0) / len(graphs)
    model = GRIT(**dims, hidden_channels=args.hidden, num_layers=args.layers, heads=args.heads,
                 walk_length=args.walk_length, attn_dropout=0.5,
                 full_attention=args.mode != "khop").to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    fwd = model.forward_dense if args.mode == "dense" else model.forward
    model.train()

    def step(b):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(kind, fwd(b), b.y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    batches = [b.to(dev) for b in batches]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    saved = {}

    def pack(t):  # bytes kept alive for backward, each storage once (views share storage)
        st = t.untyped_storage()
        saved[(st.data_ptr(), st.device)] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(batches[0])
    for b in batches[1:args.warmup]:
        step(b)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for b in batches[args.warmup:]:
        t0 = time.perf_counter()
        loss = step(b)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    dt = sorted(times)[len(times) // 2]  # median step: robust to a busy shared machine
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    timed = batches[args.warmup:]
    ns = [torch.bincount(b.batch) for b in timed]
    return dict(mode=args.mode, batch_size=B, graphs_per_s=B / dt, s_per_step=dt,
                peak_mib=peak,
                peak_kind="cuda_max_allocated" if dev.type == "cuda" else "cpu_peak_rss_growth",
                saved_for_backward_mib=sum(saved.values()) / 2**20,
                mean_nodes=float(torch.cat(ns).float().mean()),
                mean_max_nodes=float(torch.stack([n.max() for n in ns]).float().mean()),
                sparse_pairs=float(sum(int((n ** 2).sum()) for n in ns) / len(ns)),
                padded_pairs=float(sum(B * int(n.max()) ** 2 for n in ns) / len(ns)),
                rrwp_ms_per_graph=1e3 * rrwp_s, loss=float(loss),
                params=sum(p.numel() for p in model.parameters()), device=str(dev))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="synthetic-peptides")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    p.add_argument("--modes", nargs="+", default=["sparse", "dense", "khop"],
                   choices=["sparse", "dense", "khop"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--hidden", type=int, default=96)       # published Peptides-func setup
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--walk-length", type=int, default=17)
    p.add_argument("--mean-nodes", type=float, default=151.0)  # Peptides-func mean 150.94
    p.add_argument("--std-nodes", type=float, default=60.0)    # assumed spread (not published)
    p.add_argument("--min-nodes", type=int, default=8)
    p.add_argument("--max-nodes", type=int, default=444)       # Peptides-func largest graph
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2, help=">= 1")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, help="runs per setting; medians reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--mode", default=None, help=argparse.SUPPRESS)        # child process
    p.add_argument("--batch-size", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or args.repeats < 1:
        p.error("--warmup, --steps and --repeats must be >= 1")
    if args.mode is not None:
        print("RESULT " + json.dumps(run_one(args)), flush=True)
        return
    runs = {}
    for rep in range(args.repeats):          # modes interleaved, so load changes hit all alike
        for B in args.batch_sizes:
            for mode in args.modes:
                passed = sys.argv[1:] if argv is None else list(argv)
                cmd = [sys.executable, os.path.abspath(__file__), *passed, "--mode", mode,
                       "--batch-size", str(B)]
                r = subprocess.run(cmd, capture_output=True, text=True)
                line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
                if r.returncode or not line:
                    err = (r.stderr.strip().splitlines() or ["?"])[-1]
                    row = dict(mode=mode, batch_size=B, error=err)
                else:
                    row = json.loads(line[-1][7:])
                row["repeat"] = rep
                runs.setdefault((B, mode), []).append(row)
                print(json.dumps(row), flush=True)
    rows = []
    for (B, mode), rs in runs.items():  # median over repeats (throughput and memory)
        ok = [r for r in rs if "error" not in r]
        if not ok:
            rows.append(rs[-1])
            continue
        row = dict(ok[0])
        for key in ("graphs_per_s", "s_per_step", "peak_mib", "saved_for_backward_mib"):
            vals = sorted(r[key] for r in ok)
            row[key] = vals[len(vals) // 2]
        row["graphs_per_s_all"] = [round(r["graphs_per_s"], 3) for r in ok]
        rows.append(row)
    print(f"\n| batch | mode | graphs/s | peak MiB | saved-for-backward MiB | mean n | mean max n "
          f"| pairs (sparse) | pairs (padded) |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['batch_size']} | {r['mode']} | error: {r['error']} | | | | | | |")
        else:
            print(f"| {r['batch_size']} | {r['mode']} | {r['graphs_per_s']:.1f} | "
                  f"{r['peak_mib']:.0f} | {r['saved_for_backward_mib']:.0f} | {r['mean_nodes']:.0f} | {r['mean_max_nodes']:.0f} | "
                  f"{r['sparse_pairs']:.0f} | {r['padded_pairs']:.0f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(args=vars(args), results=rows,
                           runs=[r for rs in runs.values() for r in rs]), f, indent=1)


if __name__ == "__main__":
    main()
