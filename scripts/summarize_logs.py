"""Best-on-validation results from the per-epoch CSV logs of runs that wrote no metrics.json.

A run stopped from outside (a machine's deadline, a kill) keeps ``seed*/logs/metrics.csv`` with
the validation and test metric of every finished epoch. This script selects, per seed, the
epoch with the best validation value (higher is better for accuracy / rocauc / ap, lower for
mae / rmse / mse) and reports the test value there, as the trainer's own selection does, plus
the epochs done. ``--max-epochs N`` restricts the choice to epochs ``< N`` (a comparison at
equal epochs).

    python scripts/summarize_logs.py scripts/results/cycles-pe-h200/gin-cycles-* [--max-epochs 38]
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import statistics

LOWER = ("mae", "rmse", "mse")


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
    args = ap.parse_args()
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
