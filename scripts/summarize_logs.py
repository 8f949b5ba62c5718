"""Best-on-validation results and learning curves from per-epoch logs.

Reads an experiment's per-epoch history: the committed ``metrics.csv`` of a folder under
``scripts/results/`` (one table, a ``run`` column per seed; ``scripts/pack_results.py``), or
the ``seed*/logs/metrics.csv`` that ``graphlab train`` writes, which a run stopped from outside
(a time limit, a kill) keeps for every finished epoch. Per seed, the epoch with the best
validation value (higher is better for accuracy / rocauc / ap, lower for mae / rmse / mse) is
selected and the test value there reported, as the trainer's own selection does, plus the epochs
done. ``--max-epochs N`` restricts the choice to epochs ``< N`` (a comparison at equal epochs).

``--curve`` prints learning curves instead: per epoch, the mean ± std over seeds of the
validation and test metric of that epoch (not the best so far), one column pair per experiment,
over the epochs every seed of every experiment finished; with two experiments a last column
gives the largest of the two gaps (valid, test) in units of the larger std (a comparison of two
loaders or two code paths at equal epochs).

    python scripts/summarize_logs.py scripts/results/cycles-pe-h200/gin-cycles-* [--max-epochs 38]
    python scripts/summarize_logs.py scripts/results/gps-peptides-func-{cudagraphs-pool-per-bucket,pyg-loader-18min} --curve
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pack_results import epoch_rows, run_dirs  # noqa: E402

LOWER = ("mae", "rmse", "mse")


def runs_of(exp: str) -> List[Tuple[str, List[dict]]]:
    """``(run, per-epoch rows)`` of every seed of an experiment folder, in run order."""
    combined = os.path.join(exp, "metrics.csv")
    if os.path.exists(combined):
        by_run: Dict[str, List[dict]] = {}
        with open(combined) as f:
            for r in csv.DictReader(f):
                by_run.setdefault(r.pop("run"), []).append(r)
        return list(by_run.items())
    return [(os.path.basename(d), epoch_rows(os.path.join(d, "logs", "metrics.csv")))
            for d in run_dirs(exp) if os.path.exists(os.path.join(d, "logs", "metrics.csv"))]


def metric_of(rows: List[dict]) -> Optional[str]:
    """The validation metric a history logs (``valid_<metric>``, not the loss), or None."""
    for r in rows:
        for k, v in r.items():
            if k.startswith("valid_") and not k.endswith("loss") and v not in ("", None):
                return k[len("valid_"):]
    return None


def epoch_values(rows: List[dict]):
    """``(metric, {epoch: (valid, test)})`` of one seed's history (epochs with a validation
    value; test is None where it was not logged)."""
    name = metric_of(rows)
    if name is None:
        return None, {}
    out = {}
    for r in rows:
        v, t = r.get(f"valid_{name}"), r.get(f"test_{name}")
        if v not in ("", None):
            out[int(r["epoch"])] = (float(v), float(t) if t not in ("", None) else None)
    return name, out


def curves(experiments, max_epochs=None):
    """Print the per-epoch mean ± std table of ``--curve``; returns the rows."""
    sd = lambda x: statistics.stdev(x) if len(x) > 1 else 0.0  # noqa: E731
    per_exp, kept, metric = [], [], None
    for exp in experiments:
        seeds = []
        for _, hist in runs_of(exp):
            m, vals = epoch_values(hist)
            if vals:
                seeds.append(vals)
                metric = metric or m
        if not seeds:
            print(f"{exp}: no per-epoch log with a validation metric; left out")
            continue
        per_exp.append(seeds)
        kept.append(exp)
    experiments = kept
    common = None
    for seeds in per_exp:
        for vals in seeds:
            common = set(vals) if common is None else common & set(vals)
    epochs = sorted(e for e in (common or ()) if max_epochs is None or e < max_epochs)
    head = " | ".join(f"{os.path.basename(os.path.normpath(x))} valid | test" for x in experiments)
    gap = len(experiments) == 2
    print(f"| epoch | {head} |" + (" gap / std |" if gap else ""))
    print("|---|" + "---|---|" * len(experiments) + ("---|" if gap else ""))
    rows = []
    for e in epochs:
        cells, stats = [], []
        for seeds in per_exp:
            v = [s[e][0] for s in seeds]
            t = [s[e][1] for s in seeds if s[e][1] is not None]
            stats.append((v, t))
            cells.append(f"{statistics.mean(v):.4f} ± {sd(v):.4f} | "
                         + (f"{statistics.mean(t):.4f} ± {sd(t):.4f}" if t else "-"))
        line = f"| {e} | " + " | ".join(cells) + " |"
        g = None
        if gap:
            gs = []
            for i in (0, 1):  # valid, test
                a, b = stats[0][i], stats[1][i]
                if a and b:
                    scale = max(sd(a), sd(b)) or float("nan")
                    gs.append(abs(statistics.mean(a) - statistics.mean(b)) / scale)
            g = max(gs) if gs else float("nan")
            line += f" {g:.2f} |"
        print(line)
        rows.append((e, stats, g))
    print(f"({metric}; {', '.join(str(len(s)) for s in per_exp)} seeds; epochs every seed "
          f"finished: {len(epochs)})")
    if gap and rows:
        # a systematic shift shows as one sign in most epochs and a mean difference that is
        # large against the epoch-to-epoch scatter; noise as mixed signs around zero
        d = [statistics.mean(st[0][0]) - statistics.mean(st[1][0]) for _, st, _ in rows]
        above = sum(x > 0 for x in d)
        far = sum(g > 2 for _, _, g in rows if g == g)
        print(f"(valid, first minus second: mean {statistics.mean(d):+.4f} over {len(d)} epochs"
              f" (scatter {sd(d):.4f}); first higher in {above} of {len(d)}; gap above 2 std in "
              f"{far})")
    return rows


def seed_result(rows: List[dict], max_epochs: Optional[int]):
    """Best-on-validation epoch of one seed's history (epochs ``< max_epochs``), or None."""
    name, vals = epoch_values(rows)
    ev = {e: vt for e, vt in vals.items() if max_epochs is None or e < max_epochs}
    if not ev:
        return None
    lower = any(name.startswith(p) for p in LOWER)
    best = (min if lower else max)(ev, key=lambda e: ev[e][0])
    test = ev[best][1]
    return dict(metric=name, epochs=max(ev) + 1, best_epoch=best, valid=ev[best][0],
                test=float("nan") if test is None else test)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiments", nargs="+",
                    help="experiment folders (metrics.csv with a run column, or seed*/logs/metrics.csv)")
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--curve", action="store_true",
                    help="per-epoch mean ± std of valid and test, side by side")
    args = ap.parse_args()
    if args.curve:
        curves(args.experiments, args.max_epochs)
        return
    print("| experiment | metric | seeds | epochs done | test (best valid) | valid |")
    print("|---|---|---|---|---|---|")
    for exp in args.experiments:
        res = [r for r in (seed_result(h, args.max_epochs) for _, h in runs_of(exp)) if r]
        if not res:
            print(f"| {os.path.basename(exp)} | - | 0 | - | - | - |")
            continue
        t = [r["test"] for r in res]
        v = [r["valid"] for r in res]
        sd = lambda x: statistics.stdev(x) if len(x) > 1 else 0.0  # noqa: E731
        print(f"| {os.path.basename(exp)} | {res[0]['metric']} | {len(res)} | "
              f"{', '.join(str(r['epochs']) for r in res)} | {statistics.mean(t):.4f} ± {sd(t):.4f} | "
              f"{statistics.mean(v):.4f} ± {sd(v):.4f} |")


if __name__ == "__main__":
    main()
