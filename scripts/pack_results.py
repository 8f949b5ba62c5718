"""Pack one ``graphlab train`` experiment folder into the committed results layout.

``graphlab train ... --out RUNS`` writes ``RUNS/<experiment>/`` with per-seed ``metrics.json``,
``logs/metrics.csv``, TensorBoard files, predictions and checkpoints. What reproduces and checks
a results row is much smaller; this script writes it to ``DEST`` (``scripts/results/<name>/``):

* ``summary.json``: the results summary, in the schema of ``scripts/results/README.md``
  (experiment, config, command, metric, mean, std, seeds, budget, hardware, commit, then the
  validation statistics and one record per seed or fold);
* ``metrics.csv``: every seed's per-epoch history in one table, one row per ``(run, epoch)``
  (``run`` is the seed folder's name, e.g. ``seed3`` or ``fold2-seed0``); column names as the
  trainer's history (``valid_<metric>``, ``test_<metric>``, ``train_loss``, ...); values to 6
  significant digits (the logs hold float32 values, about 7 digits, printed with 17);
* ``run.log``: the run's console output and each seed's own log, without progress bars and
  library warnings.

The mean and std are those of the test metric at each seed's best validation epoch (the
trainer's selection), std unbiased (0 for one run). A folder whose seeds were stopped from
outside before writing ``metrics.json`` gets ``metrics.csv`` and ``run.log`` only;
``scripts/summarize_logs.py`` reads them.

    python scripts/pack_results.py runs/gin-virtual-ogbg-molhiv scripts/results/gin-virtual-ogbg-molhiv-ogb-protocol \\
        --command "graphlab train configs/gin/ogbg-molhiv.yaml --seeds 10 ..." --budget "100 of 100 epochs"
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import re
import statistics
from typing import Dict, List, Optional

#: Summary fields every results row is checked against (tests/test_readme.py), in this order.
ROW_FIELDS = ("experiment", "config", "command", "metric", "mean", "std", "seeds", "budget",
              "hardware", "commit")

# console lines that carry no result: progress bars and warnings of the libraries
_NOISE = re.compile(r"it/s\]|s/it\]|UserWarning|from pkg_resources|Tip: |LeafSpec|"
                    r"set_float32_matmul_precision|warnings\.warn|^\s*$")


def run_dirs(exp: str) -> List[str]:
    """The seed / fold folders of an experiment, sorted by fold then seed."""
    dirs = [d for d in glob.glob(os.path.join(exp, "*seed*")) if os.path.isdir(d)]

    def key(d):
        nums = [int(n) for n in re.findall(r"\d+", os.path.basename(d))]
        return nums, os.path.basename(d)
    return sorted(dirs, key=key)


def _column(name: str) -> Optional[str]:
    """Lightning's CSV names (``val/ap``, ``train/loss``) as the trainer's history names them."""
    if name == "step":
        return None
    for old, new in (("val/", "valid_"), ("test/", "test_"), ("train/", "train_")):
        if name.startswith(old):
            return new + name[len(old):]
    return name


def epoch_rows(path: str) -> List[Dict[str, str]]:
    """One row per epoch of a seed's ``logs/metrics.csv`` (Lightning spreads an epoch over
    several rows; their non-empty cells are merged, a later value wins)."""
    by_epoch: Dict[int, Dict[str, str]] = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            row = by_epoch.setdefault(int(r["epoch"]), {})
            for k, v in r.items():
                col = _column(k)
                if col and v not in ("", None):
                    row[col] = v
    return [by_epoch[e] for e in sorted(by_epoch)]


def _short(value: str) -> str:
    try:
        return f"{float(value):.6g}"
    except ValueError:
        return value


def _order(cols) -> List[str]:
    # metric columns before losses, so a reader scanning for valid_<metric> finds it first
    first = ["run", "epoch"]
    rest = sorted(c for c in cols if c not in first)
    rank = lambda c: (c.endswith("loss"), c == "lr", not c.startswith("valid_"), c)  # noqa: E731
    return first + sorted(rest, key=rank)


def write_metrics_csv(exp: str, dest: str) -> int:
    """Concatenate the seeds' per-epoch logs into ``dest/metrics.csv``; returns the row count."""
    rows = []
    for d in run_dirs(exp):
        path = os.path.join(d, "logs", "metrics.csv")
        if os.path.exists(path):
            rows += [dict(run=os.path.basename(d), epoch=r.pop("epoch"),
                          **{k: _short(v) for k, v in r.items()}) for r in epoch_rows(path)]
    if not rows:
        return 0
    cols = _order({k for r in rows for k in r})
    with open(os.path.join(dest, "metrics.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def short_log(text: str) -> str:
    lines = [l.rsplit("\r", 1)[-1] for l in text.splitlines()]
    return "\n".join(l for l in lines if not _NOISE.search(l))


def write_log(exp: str, dest: str, extra: Optional[str] = None) -> None:
    parts = []
    if os.path.exists(os.path.join(exp, "run.log")):
        parts.append(short_log(open(os.path.join(exp, "run.log"), errors="replace").read()))
    for d in run_dirs(exp):
        for name in ("stdout.log", "run.log"):
            p = os.path.join(d, name)
            if os.path.exists(p):
                body = short_log(open(p, errors="replace").read())
                if body:
                    parts.append(f"--- {os.path.basename(d)}/{name}\n{body}")
    if extra:
        parts.append(extra)
    if parts:
        with open(os.path.join(dest, "run.log"), "w") as f:
            f.write("\n".join(parts).rstrip() + "\n")


def config_of(command: str) -> str:
    m = re.search(r"graphlab train (\S+\.ya?ml)", command)
    if not m:
        raise ValueError(f"command does not start with 'graphlab train CONFIG.yaml': {command!r}")
    return m.group(1)


def commit_of(sha: str) -> str:
    """A short SHA, with ``+dirty`` when the run's working tree had uncommitted changes."""
    m = re.match(r"([0-9a-f]{7,40})(\+.*)?$", sha or "")
    if not m:
        raise ValueError(f"not a git SHA: {sha!r}")
    return m.group(1)[:7] + ("+dirty" if m.group(2) else "")


def _stats(xs: List[float]) -> Dict[str, float]:
    return {"mean": statistics.mean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0}


def summary(exp: str, name: str, command: str, budget: str, hardware: Optional[str] = None,
            notes: Optional[str] = None) -> Optional[dict]:
    """The results summary of ``exp`` (None when no seed wrote ``metrics.json``)."""
    recs = [(os.path.basename(d), json.load(open(os.path.join(d, "metrics.json"))))
            for d in run_dirs(exp) if os.path.exists(os.path.join(d, "metrics.json"))]
    if not recs:
        return None
    first = recs[0][1]
    metric = first["metric"]
    test = [r["test"][metric] for _, r in recs]
    valid = [r["valid"][metric] for _, r in recs]
    # seeds added or resumed later may have run at another commit: all of them are named
    commits = ", ".join(dict.fromkeys(commit_of(r["git_sha"]) for _, r in recs))
    runs = []
    for run, r in recs:
        rec = {"run": run, "seed": r.get("seed"), "fold": r.get("fold"),
               "commit": commit_of(r["git_sha"]) if ", " in commits else None,
               "best_epoch": r.get("best_epoch"), "epochs": r.get("epochs"),
               "valid": r["valid"][metric], "test": r["test"][metric],
               "wall_time_s": r.get("wall_time_s"), "peak_memory_mb": r.get("peak_memory_mb")}
        runs.append({k: v for k, v in rec.items() if v is not None})
    out = {"experiment": name, "config": config_of(command), "command": command,
           "metric": metric, **_stats(test), "seeds": len(recs), "budget": budget,
           "hardware": hardware or first["hardware"], "commit": commits,
           "valid": _stats(valid), "dataset": first.get("dataset"), "model": first.get("model"),
           "num_parameters": first.get("num_parameters"), "max_epochs": first.get("max_epochs"),
           "versions": first.get("versions")}
    times = first.get("ensemble", {}).get("epoch_times_s") if first.get("ensemble") else None
    if times:
        out["ensemble_epoch_times_s"] = times
    if notes:
        out["notes"] = notes
    out["runs"] = runs
    return out


def pack(exp: str, dest: str, name: Optional[str] = None, command: Optional[str] = None,
         budget: Optional[str] = None, hardware: Optional[str] = None,
         notes: Optional[str] = None, extra_log: Optional[str] = None) -> Optional[dict]:
    os.makedirs(dest, exist_ok=True)
    write_metrics_csv(exp, dest)
    write_log(exp, dest, extra_log)
    s = None
    if command is not None:
        s = summary(exp, name or os.path.basename(os.path.normpath(dest)), command,
                    budget or "", hardware, notes)
    if s is not None:
        with open(os.path.join(dest, "summary.json"), "w") as f:
            json.dump(s, f, indent=1)
            f.write("\n")
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", help="RUNS/<experiment>, as graphlab train wrote it")
    ap.add_argument("dest", help="scripts/results/<name>")
    ap.add_argument("--command", help="the command that reproduces the row (graphlab train ...)")
    ap.add_argument("--budget", help="what the run covered, e.g. '12 of 100 epochs (6:45 limit)'")
    ap.add_argument("--hardware", help="override the hardware the run recorded")
    ap.add_argument("--notes", help="one line stored with the summary")
    args = ap.parse_args()
    if args.command is not None and not args.budget:
        ap.error("--budget is required with --command")
    s = pack(args.experiment, args.dest, command=args.command, budget=args.budget,
             hardware=args.hardware, notes=args.notes)
    if s:
        print(f"| {s['experiment']} | `{s['config']}` | {s['metric']} | "
              f"{s['mean']:.4f} ± {s['std']:.4f} | {s['seeds']} | {s['budget']} | "
              f"{s['hardware']} | `{s['command']}` |")


if __name__ == "__main__":
    main()
