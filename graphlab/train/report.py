"""``graphlab report OUT``: a markdown results table and PNG training curves per experiment."""
from __future__ import annotations

import glob
import json
import os
from typing import List


def _load(path: str):
    with open(path) as f:
        return json.load(f)


def write_report(out_dir: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graphlab.tasks.metrics import summarize

    exps = sorted({os.path.dirname(os.path.dirname(p))
                   for p in glob.glob(os.path.join(out_dir, "*", "*seed*", "metrics.json"))})
    if not exps:
        raise FileNotFoundError(f"no <experiment>/seed*/metrics.json under '{out_dir}'")
    lines: List[str] = ["# Results", "",
                        "| experiment | dataset | model | params | seeds | metric | valid | test | epochs |",
                        "|---|---|---|---|---|---|---|---|---|"]
    for exp in exps:
        recs = [_load(p) for p in sorted(glob.glob(os.path.join(exp, "*seed*", "metrics.json")))]
        m = recs[0]["metric"]
        s = summarize({"valid": [r["valid"][m] for r in recs],
                       "test": [r["test"][m] for r in recs if r["test"][m] is not None]})
        fmt = lambda k: f"{s[k]['mean']:.4f} ± {s[k]['std']:.4f}" if k in s else "–"  # noqa: E731
        name = os.path.basename(exp)  # the folder: runs renamed after the fact keep their label
        lines.append(f"| {name} | {recs[0]['dataset']} | {recs[0]['model']} | "
                     f"{recs[0]['num_parameters']:,} | {len(recs)} | {m} | {fmt('valid')} | "
                     f"{fmt('test')} | {recs[0]['epochs']} |")
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        for r in recs:
            h = r["history"]
            ep = [row["epoch"] for row in h]
            label = f"seed {r['seed']}" if r.get("fold") is None else f"fold {r['fold']}"
            axes[0].plot(ep, [row["train_loss"] for row in h], label=label)
            axes[1].plot(ep, [row[f"valid_{m}"] for row in h], label=label)
        axes[0].set(xlabel="epoch", ylabel="train loss")
        axes[1].set(xlabel="epoch", ylabel=f"valid {m}")
        axes[1].legend(fontsize=7)
        fig.suptitle(name)
        fig.tight_layout()
        png = os.path.join(exp, "curves.png")
        fig.savefig(png, dpi=100)
        plt.close(fig)
        lines.append(f"")
    lines = [l for l in lines if l != ""] + [""]
    lines += [f"![{os.path.basename(e)}]({os.path.relpath(os.path.join(e, 'curves.png'), out_dir)})"
              for e in exps]
    path = os.path.join(out_dir, "results.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
