"""``graphlab report OUT``: a markdown results table and PNG training curves per experiment.

Reads either layout under ``OUT``: what ``graphlab train --out OUT`` writes
(``<experiment>/seed*/metrics.json``) or the compact committed one of ``scripts/results``
(``<experiment>/summary.json`` with one ``metrics.csv`` of every run's per-epoch history).
"""
from __future__ import annotations

import csv
import glob
import json
import math
import os
from typing import Any, Dict, List, Optional, Tuple


def _load(path: str):
    with open(path) as f:
        return json.load(f)


def _float(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return math.nan


def _experiments(out_dir: str) -> List[Tuple[str, Dict[str, Any], Dict[str, List[dict]]]]:
    """``(folder, facts, {run label: history rows})`` per experiment, in name order."""
    from graphlab.tasks.metrics import summarize
    found = {}
    for p in glob.glob(os.path.join(out_dir, "*", "*seed*", "metrics.json")):
        found.setdefault(os.path.dirname(os.path.dirname(p)), "runs")
    for p in glob.glob(os.path.join(out_dir, "*", "summary.json")):
        exp = os.path.dirname(p)
        if exp not in found and os.path.exists(os.path.join(exp, "metrics.csv")):
            found[exp] = "compact"
    out = []
    for exp, kind in sorted(found.items()):
        if kind == "runs":
            recs = [_load(p) for p in sorted(glob.glob(os.path.join(exp, "*seed*", "metrics.json")))]
            m = recs[0]["metric"]
            s = summarize({"valid": [r["valid"][m] for r in recs],
                           "test": [r["test"][m] for r in recs if r["test"][m] is not None]})
            facts = {"dataset": recs[0]["dataset"], "model": recs[0]["model"], "metric": m,
                     "params": recs[0]["num_parameters"], "runs": len(recs),
                     "valid": s.get("valid"), "test": s.get("test"), "epochs": recs[0]["epochs"]}
            hist = {(f"seed {r['seed']}" if r.get("fold") is None else f"fold {r['fold']}"):
                    r["history"] for r in recs}
        else:
            summ = _load(os.path.join(exp, "summary.json"))
            hist: Dict[str, List[dict]] = {}
            with open(os.path.join(exp, "metrics.csv")) as f:
                for row in csv.DictReader(f):
                    hist.setdefault(row.pop("run"), []).append(
                        {k: _float(v) for k, v in row.items()})
            facts = {"dataset": summ.get("dataset", "–"), "model": summ.get("model", "–"),
                     "metric": summ["metric"], "params": summ.get("num_parameters"),
                     "runs": summ["seeds"], "valid": summ.get("valid"),
                     "test": {"mean": summ["mean"], "std": summ["std"]},
                     "epochs": max((len(h) for h in hist.values()), default=0)}
        out.append((exp, facts, hist))
    return out


def write_report(out_dir: str, written: Optional[List[str]] = None) -> str:
    """Write ``OUT/results.md`` and ``OUT/<experiment>/curves.png`` per experiment; returns the
    table's path (every written path is appended to ``written`` when given)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exps = _experiments(out_dir)
    if not exps:
        raise FileNotFoundError(f"no <experiment>/seed*/metrics.json nor <experiment>/"
                                f"summary.json + metrics.csv under '{out_dir}'")
    lines: List[str] = ["# Results", "",
                        "| experiment | dataset | model | params | seeds | metric | valid | test | epochs |",
                        "|---|---|---|---|---|---|---|---|---|"]
    for exp, f, hist in exps:
        fmt = lambda s: f"{s['mean']:.4f} ± {s['std']:.4f}" if s else "–"  # noqa: E731
        name = os.path.basename(exp)  # the folder: runs renamed after the fact keep their label
        params = f"{f['params']:,}" if isinstance(f["params"], int) else "–"
        m = f["metric"]
        lines.append(f"| {name} | {f['dataset']} | {f['model']} | {params} | {f['runs']} | {m} | "
                     f"{fmt(f['valid'])} | {fmt(f['test'])} | {f['epochs']} |")
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        for label, h in hist.items():
            ep = [row["epoch"] for row in h]
            axes[0].plot(ep, [row.get("train_loss", math.nan) for row in h], label=label)
            axes[1].plot(ep, [row.get(f"valid_{m}", math.nan) for row in h], label=label)
        axes[0].set(xlabel="epoch", ylabel="train loss")
        axes[1].set(xlabel="epoch", ylabel=f"valid {m}")
        axes[1].legend(fontsize=7)
        fig.suptitle(name)
        fig.tight_layout()
        fig.savefig(os.path.join(exp, "curves.png"), dpi=100)
        plt.close(fig)
        if written is not None:
            written.append(os.path.join(exp, "curves.png"))
    lines += [""] + [f"![{os.path.basename(e)}]({os.path.relpath(os.path.join(e, 'curves.png'), out_dir)})"
                     for e, _, _ in exps]
    path = os.path.join(out_dir, "results.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    if written is not None:
        written.insert(0, path)
    return path
