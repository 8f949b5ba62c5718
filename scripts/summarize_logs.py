"""Best-on-validation results from the per-epoch CSV logs of runs that wrote no metrics.json.

A run stopped from outside (a machine's deadline, a kill) keeps ``seed*/logs/metrics.csv`` with
the validation and test metric of every finished epoch. This script selects, per seed, the
epoch with the best validation value (higher is better for accuracy / rocauc / ap, lower for
mae / rmse / mse) and reports the test value there, as the trainer's own selection does, plus
the epochs done. ``--max-epochs N`` restricts the choice to epochs ``< N`` (a comparison at
equal epochs).

``--curve`` prints learning curves instead: per epoch, the mean ± std over seeds of the
validation and test metric of that epoch (not the best so far), one column pair per experiment,
over the epochs every seed of every experiment finished; with two experiments a last column
gives the largest of the two gaps (valid, test) in units of the larger std (a comparison of two
loaders or two code paths at equal epochs).

    python scripts/summarize_logs.py scripts/results/cycles-pe-h200/gin-cycles-* [--max-epochs 38]
    python scripts/summarize_logs.py runs/gps-cg/gps-peptides-func runs/gps-pyg/gps-peptides-func --curve
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import statistics

LOWER = ("mae", "rmse", "mse")


def _keys(rows):
    """(validation key, test key, metric name) of a metrics.csv, or None."""
    # Lightning's CSV logger writes val/<metric>, test/<metric>; the ensemble runner's
    # history (graphlab.train.ensemble_run) valid_<metric>, test_<metric>
    vkeys = [k for k in rows[0] if k.startswith("val/") and k.count("_t") == 0]
    if vkeys:
        return vkeys[0], "test/" + vkeys[0][4:], vkeys[0][4:]
    vkeys = [k for k in rows[0] if k.startswith("valid_") and k.count("_t") == 0]
    if not vkeys:
        return None
    return vkeys[0], "test_" + vkeys[0][6:], vkeys[0][6:]


def epoch_values(path: str):
    """``(metric, {epoch: (valid, test)})`` of one seed's metrics.csv (Lightning writes an epoch
    over several rows: their non-empty cells are merged)."""
    rows = list(csv.DictReader(open(path)))
    keys = _keys(rows) if rows else None
    if keys is None:
        return None, {}
    vk, tk, name = keys
    out = {}
    for r in rows:
        e = int(r["epoch"])
        v, t = out.get(e, (None, None))
        v = float(r[vk]) if r.get(vk) else v
        t = float(r[tk]) if r.get(tk) else t
        out[e] = (v, t)
    return name, {e: vt for e, vt in out.items() if vt[0] is not None}


def curves(experiments, max_epochs=None):
    """Print the per-epoch mean ± std table of ``--curve``; returns the rows."""
    sd = lambda x: statistics.stdev(x) if len(x) > 1 else 0.0  # noqa: E731
    per_exp, kept, metric = [], [], None
    for exp in experiments:
        seeds = []
        for f in sorted(glob.glob(os.path.join(exp, "*seed*", "logs", "metrics.csv"))):
            m, vals = epoch_values(f)
            if vals:
                seeds.append(vals)
                metric = metric or m
        if not seeds:
            print(f"{exp}: no seed*/logs/metrics.csv with a validation metric; left out")
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


def seed_result(path: str, max_epochs: int | None):
    rows = list(csv.DictReader(open(path)))
    if not rows:
        return None
    # Lightning's CSV logger writes val/<metric>, test/<metric>; the ensemble runner's
    # history (graphlab.train.ensemble_run) valid_<metric>, test_<metric>
    vkeys = [k for k in rows[0] if k.startswith("val/") and k.count("_t") == 0]
    if vkeys:
        vk = vkeys[0]
        tk = "test/" + vk[4:]
    else:
        vkeys = [k for k in rows[0] if k.startswith("valid_") and k.count("_t") == 0]
        if not vkeys:
            return None
        vk = vkeys[0]
        tk = "test_" + vk[6:]
    ev = [r for r in rows if r.get(vk) and (max_epochs is None or int(r["epoch"]) < max_epochs)]
    if not ev:
        return None
    name = vk[4:] if vk.startswith("val/") else vk[6:]
    lower = any(name.startswith(p) for p in LOWER)
    best = (min if lower else max)(ev, key=lambda r: float(r[vk]))
    return dict(metric=name, epochs=int(ev[-1]["epoch"]) + 1, best_epoch=int(best["epoch"]),
                valid=float(best[vk]), test=float(best[tk]) if best.get(tk) else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiments", nargs="+", help="experiment folders holding seed*/logs/metrics.csv")
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
        res = [r for r in (seed_result(f, args.max_epochs) for f in
                           sorted(glob.glob(os.path.join(exp, "*seed*", "logs", "metrics.csv")))) if r]
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
