"""Peak memory of SPEN (order-2 layers on k-hop ego-nets) vs the same order-2 layers on the whole
graph (a global 2-IGN), on sparse random graphs of growing size.

SPEN's claim (Mitton & Murray-Smith, arXiv 2111.11840, abstract): local update functions give
"a significant improvement in GPU memory over global methods". Both variants below run the
*same* :class:`graphlab.nn.EquivariantLinear` stack (2→2, 2→2, 2→1, ReLU, identical weights) on the same
input tensor (node features on the diagonal + adjacency); only the sets differ: one set per node
(its ego-net, ``Σ_c n_c²`` entries) or one set per graph (``|V|²`` entries). One forward and
backward pass is measured.

Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU. On CPU, torch's profiler records every
tensor allocation and free (``profile_memory=True``); the script replays them in time order (each
op's own ``self_cpu_memory_usage`` plus the frees recorded between ops) and reports the highest
running total, i.e. the peak of tensor memory allocated during the forward+backward pass, at op
granularity (a transient that lives and dies inside one op is not seen). The process's peak
resident-set growth (``ru_maxrss``, fresh subprocess per point) is reported beside it as a
cross-check; it is noisy because the allocator reuses memory that setup already touched. Usage::

    python scripts/bench_spen_memory.py                       # CPU, sizes 100..1600
    python scripts/bench_spen_memory.py --device cuda --sizes 250 500 1000 2000 4000
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def build(n: int, degree: float, seed: int):
    from torch_geometric.utils import erdos_renyi_graph
    torch.manual_seed(seed)
    return erdos_renyi_graph(n, min(degree / max(n - 1, 1), 1.0))


def measure(n: int, mode: str, hops: int, hidden: int, degree: float, seed: int, device: str):
    from graphlab.models.spen import ego_net_layout
    from graphlab.nn.equivariant import EquivariantLinear, SetLayout
    ei = build(n, degree, seed).to(device)
    torch.manual_seed(seed)
    layers = torch.nn.ModuleList([EquivariantLinear(2, 2, hidden + 1, hidden),
                                  EquivariantLinear(2, 2, hidden, hidden),
                                  EquivariantLinear(2, 1, hidden, hidden)]).to(device)
    x = torch.randn(n, hidden, device=device)
    if mode == "global":
        layout = SetLayout(torch.tensor([n], device=device))
        slot_node = torch.arange(n, device=device)
        edge_pair = layout.pair_index(ei[0], ei[1])
    else:
        layout, slot_node, edge_pair, _ = ego_net_layout(ei, n, hops)
    def step():
        X = x.new_zeros(layout.num_pairs, hidden + 1)
        X = X.index_copy(0, layout.diag,
                         torch.cat([x[slot_node], x.new_zeros(slot_node.numel(), 1)], 1))
        X = X.index_add(0, edge_pair, torch.cat([x.new_zeros(edge_pair.numel(), hidden),
                                                 x.new_ones(edge_pair.numel(), 1)], 1))
        h = X
        for layer in layers:
            h = torch.relu(layer(h, layout))
        node = torch.zeros(n, hidden, device=device).index_add(0, slot_node, h)
        node.sum().backward()

    row = {"n": n, "mode": mode, "hops": hops if mode == "spen" else None,
           "entries": layout.num_pairs, "max_set": int(layout.sizes.max())}
    t0 = time.perf_counter()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        row["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    else:
        from torch.profiler import ProfilerActivity, profile
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        events = sorted(prof.events(), key=lambda e: e.time_range.start)
        total = peak = 0
        for e in events:
            total += e.self_cpu_memory_usage if e.name != "[memory]" else e.cpu_memory_usage
            peak = max(peak, total)
        row["peak_mib"] = peak / 2 ** 20
        row["rss_growth_mib"] = (rss1 - rss0) / 2 ** 20
    row["seconds"] = time.perf_counter() - t0
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400, 800, 1600])
    p.add_argument("--hops", type=int, nargs="+", default=[1, 2])
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--degree", type=float, default=4.0, help="mean degree (molecule-like)")
    p.add_argument("--global-max", type=int, default=1600,
                   help="skip the global variant above this size (its memory grows as n^2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the rows to this file")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one measurement
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.one:
        n, mode, hops = args.one.split(",")
        print(json.dumps(measure(int(n), mode, int(hops), args.hidden, args.degree, args.seed,
                                 args.device)))
        return None
    rows = []
    for n in args.sizes:
        jobs = [("spen", h) for h in args.hops]
        if n <= args.global_max:
            jobs.append(("global", 0))
        for mode, hops in jobs:
            if args.device == "cuda":
                row = measure(n, mode, hops, args.hidden, args.degree, args.seed, "cuda")
            else:  # fresh process per point: ru_maxrss is a process-wide high-water mark
                out = subprocess.run([sys.executable, __file__, "--one", f"{n},{mode},{hops}",
                                      "--hidden", str(args.hidden), "--degree", str(args.degree),
                                      "--seed", str(args.seed)], capture_output=True, text=True,
                                     check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            label = f"spen k={hops}" if mode == "spen" else "global"
            print(f"n={n:6d} {label:9s} entries={row['entries']:>10d} max_set={row['max_set']:5d} "
                  f"peak={row['peak_mib']:9.1f} MiB"
                  + (f" (rss +{row['rss_growth_mib']:.0f})" if "rss_growth_mib" in row else "")
                  + f"  time={row['seconds']:.2f}s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
