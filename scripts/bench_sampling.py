"""Directed graph samplers side by side on the SNAP graphs (configs/sampling/README.md, Results).

For every dataset and ratio, all methods run in this one process on the same graph
(``graphlab.sampling.compare``): the JDM/DCM construction ('jdm'), NetworkX's directed 2K
construction on the same rescaled targets ('nx2k'), and the random node / edge / walk and
forest fire subgraphs. Reported per method: KS of the out- and in-degree distributions to the
original's, JDM and DCM deviation (total variation of the normalised matrices), average
clustering and reciprocity, seconds per sample (the seed-independent target, computed once per
dataset and ratio, is added to each constructed sample) and construction seconds alone.

    python scripts/bench_sampling.py [--datasets email-Eu-core wiki-Vote p2p-Gnutella08]
        [--ratios 0.1 0.2 0.3 0.5] [--seeds 10] [--budget-min 20]
        [--out scripts/results/sampling-directed]

Writes ``results.json`` (hardware, command, git commit, targets, per-method means and stds),
``summary.csv``, ``table.md``, ``bench.log`` and one degree-distribution plot per dataset.
With ``--budget-min``, configurations not started within the budget are listed as skipped.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's graphlab, installed or not


def hardware() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs visible, 1 process"


def git_sha() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                       text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Tee:
    def __init__(self, path):
        self.f = open(path, "w")

    def __call__(self, *parts):
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+",
                    default=["email-Eu-core", "wiki-Vote", "p2p-Gnutella08"])
    ap.add_argument("--ratios", nargs="+", type=float, default=[0.1, 0.2, 0.3, 0.5])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget-min", type=float, default=None,
                    help="start no new (dataset, ratio) after this many minutes")
    ap.add_argument("--out", default=os.path.join(ROOT, "scripts", "results",
                                                  "sampling-directed"))
    ap.add_argument("--plots", default=None,
                    help="folder for the degree-distribution plots at ratio 0.2 (default: none; "
                         "images stay out of scripts/results)")
    args = ap.parse_args()

    import networkx
    import scipy
    import graphlab.data as gd
    from graphlab.sampling.compare import (compare, format_table, original_stats,
                                           plot_degrees, summarise)
    from graphlab.sampling.degree_matrices import degree_matrices
    from graphlab.sampling.metrics import degree_ks
    from graphlab.sampling.sample import METHODS

    os.makedirs(args.out, exist_ok=True)
    log = Tee(os.path.join(args.out, "bench.log"))
    command = "python scripts/bench_sampling.py " + " ".join(sys.argv[1:])
    hw = hardware()
    log(f"command: {command}")
    log(f"hardware: {hw}; python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, networkx {networkx.__version__}; commit {git_sha()}")
    t_start = time.perf_counter()
    all_rows, targets, skipped, originals = [], [], [], {}
    tables = []
    for name in args.datasets:
        d = gd.load(name)[0]
        ei, n = d.edge_index.numpy(), int(d.num_nodes)
        originals[name] = original_stats(ei, n)
        M = degree_matrices(ei, n)
        log(f"\n## {name}: {n} nodes, {originals[name]['edges']} edges (simple), "
            f"JDM {M.jdm.nnz} non-zero entries, DCM {M.dcm.nnz}; clustering "
            f"{originals[name]['clustering']:.4f}, reciprocity "
            f"{originals[name]['reciprocity']:.4f}")
        rows_ds = []
        for ratio in args.ratios:
            elapsed = (time.perf_counter() - t_start) / 60
            if args.budget_min is not None and elapsed > args.budget_min:
                skipped.append({"dataset": name, "ratio": ratio})
                log(f"ratio {ratio}: skipped (budget of {args.budget_min} min spent)")
                continue
            samples, info = {}, {}
            t0 = time.perf_counter()
            rows = compare(ei, n, ratio, range(args.seeds), METHODS,
                           samples=samples if ratio == 0.2 else None, info=info)
            T, t_target = info["target"], info["target_s"]
            out_t, in_t = T.degree_sequences()
            targets.append({"dataset": name, "ratio": ratio, "nodes": T.num_nodes,
                            "edges": T.num_edges, "target_s": t_target,
                            "target_ks_out": degree_ks(out_t, M.out_degree),
                            "target_ks_in": degree_ks(in_t, M.in_degree),
                            "realisable": T.report.realisable, "report": str(T.report)})
            log(f"ratio {ratio}: target {T.num_nodes} nodes, {T.num_edges} edges in "
                f"{t_target:.2f} s; {T.report}")
            for r in rows:
                r["dataset"] = name
            rows_ds += rows
            all_rows += rows
            log(f"ratio {ratio}: {len(rows)} samples in {time.perf_counter() - t0:.1f} s; "
                f"jdm fallbacks {sum(r.get('fallback', False) for r in rows)}")
            if samples and args.plots:
                os.makedirs(args.plots, exist_ok=True)
                plot_degrees(os.path.join(args.plots, f"degrees-{name}-0.2.png"), ei, n, samples,
                             f"{name}: degree distributions at ratio 0.2, seed 0")
        table = format_table(summarise(rows_ds), originals[name])
        tables.append(f"### {name}\n\n{table}\n")
        log(table)
    summary = {"command": command, "hardware": hw, "git_sha": git_sha(),
               "seeds": args.seeds, "ratios": args.ratios, "datasets": args.datasets,
               "originals": originals, "targets": targets, "skipped": skipped,
               "wall_s": time.perf_counter() - t_start, "methods": list(METHODS),
               "results": [dict(s, dataset=ds) for ds in args.datasets
                           for s in summarise([r for r in all_rows if r["dataset"] == ds])]}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(args.out, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summary["results"][0]), extrasaction="ignore")
        w.writeheader()
        w.writerows(summary["results"])
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(f"Command: `{command}`  \nHardware: {hw}  \nCommit: {summary['git_sha']}\n\n")
        f.write("\n".join(tables))
    log(f"\nwall time {summary['wall_s'] / 60:.1f} min; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
