"""Collect the EHGNN experiments' runs into ``scripts/results/<experiment>/`` (``summary.json``
and a short ``run.log``) and print the results table of configs/ehgnn/README.md.

* TU cross-validation (``<runs>/<experiment>/fold<f>-seed0/metrics.json``): mean and unbiased
  std of the test accuracy at the best-validation epoch over the folds that finished, with the
  epochs each fold trained (``complete`` is false where ``trainer.max_time`` stopped it), the
  wall seconds per epoch (training, evaluation of both splits and the checkpoint) and the
  hardware of every fold.
* ogbg-molhiv (``--molhiv``): runs stopped before writing metrics.json keep
  ``seed<k>/logs/metrics.csv``; per seed, the epoch with the best validation ROC-AUC among the
  first ``--molhiv-epochs`` epochs (equal epochs for every model) gives the test ROC-AUC.
* Bond-type reconstruction (``--recon``): the ``summary.json`` of
  ``scripts/ehgnn_reconstruction.py``, copied with its per-seed records.

    python scripts/ehgnn_results.py --tu RUNS --molhiv RUNS --molhiv-epochs 27 \\
        --recon RECON_RUNS --out scripts/results
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import os.path as osp
import shutil
import statistics
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

MODELS = ("ehgnn", "topk", "sag", "edgepool", "gin")
SETS = ("mutag", "proteins", "nci1", "imdb-binary", "imdb-multi", "ptc_mr")


def tu_name(model: str, dataset: str) -> str:
    return f"gin-{dataset}-ehgnn-budget" if model == "gin" else f"{model}-{dataset}"


def folds_text(folds) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2, 5``."""
    out, start = [], None
    for i, f in enumerate(folds):
        if start is None:
            start = f
        if i + 1 == len(folds) or folds[i + 1] != f + 1:
            out.append(str(start) if start == f else f"{start}-{f}")
            start = None
    return ", ".join(out)


def collect_tu(runs: str, name: str, out_root: str) -> dict | None:
    from graphlab.train.run import atomic_write_json, summarize_seeds
    paths = sorted(glob.glob(osp.join(runs, name, "fold*-seed0", "metrics.json")),
                   key=lambda p: int(p.split("fold")[-1].split("-")[0]))
    if not paths:
        return None
    recs = [json.load(open(p)) for p in paths]
    summary = summarize_seeds(recs)
    by_hw: dict = {}
    for r in recs:
        by_hw.setdefault(r["hardware"], []).append(r["fold"])
    summary["hardware"] = "; ".join(f"{hw} (folds {folds_text(f)})" if len(by_hw) > 1 else hw
                                    for hw, f in by_hw.items())
    summary["git_sha"] = sorted({r["git_sha"] for r in recs})[0]
    per_fold = [{"fold": r["fold"], "hardware": r["hardware"], "epochs": r["epochs"],
                 "max_epochs": r["max_epochs"], "complete": r["complete"],
                 "best_epoch": r["best_epoch"], "valid_accuracy": r["valid"]["accuracy"],
                 "test_accuracy": r["test"]["accuracy"],
                 "seconds_per_epoch": r["wall_time_s"] / max(r["epochs"], 1)} for r in recs]
    summary.update(folds_done=len(recs), per_fold=per_fold,
                   max_epochs=recs[0]["max_epochs"],
                   all_complete=all(r["complete"] for r in recs),
                   median_seconds_per_epoch=statistics.median(
                       f["seconds_per_epoch"] for f in per_fold))
    out_dir = osp.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_json(osp.join(out_dir, "summary.json"), summary)
    with open(osp.join(out_dir, "run.log"), "w") as f:
        f.write(f"{name}: test accuracy {summary['metrics']['test_accuracy']['mean']:.4f} ± "
                f"{summary['metrics']['test_accuracy']['std']:.4f} over {len(recs)} folds, "
                f"{summary['num_parameters']:,} parameters, git {summary['git_sha']}\n")
        f.write("fold | hardware | epochs/max | best epoch | valid acc | test acc | s/epoch\n")
        for p in per_fold:
            f.write(f"{p['fold']} | {p['hardware']} | {p['epochs']}/{p['max_epochs']}"
                    f"{'' if p['complete'] else ' (max_time)'} | {p['best_epoch']} | "
                    f"{p['valid_accuracy']:.4f} | {p['test_accuracy']:.4f} | "
                    f"{p['seconds_per_epoch']:.2f}\n")
    return summary


MOLHIV = {"ehgnn-ogbg-molhiv": "configs/ehgnn/ogbg-molhiv.yaml",
          "gin-ogbg-molhiv-ehgnn-budget": "configs/gin/ogbg-molhiv-ehgnn-budget.yaml"}


def count_config_parameters(config: str) -> int:
    """Parameters of the model a config builds on its dataset."""
    from graphlab.train.config import load_config, validate
    from graphlab.train.run import build_data, build_model, count_parameters, dataset_dims
    cfg = validate(load_config(config))
    dataset, info, split, _ = build_data(cfg, 0)
    return count_parameters(build_model(cfg, dataset_dims(dataset, info, split)))


def collect_csv(runs: str, name: str, max_epochs: int, out_root: str, hardware: str | None,
                git: str | None) -> dict | None:
    """Best-validation test ROC-AUC per seed from ``seed*/logs/metrics.csv``; ``hardware`` and
    ``git`` describe runs that wrote no metrics.json."""
    from graphlab.train import metrics as M
    from graphlab.train.run import atomic_write_json
    seeds = sorted(glob.glob(osp.join(runs, name, "seed*", "logs", "metrics.csv")))
    if not seeds:
        return None
    rows_out, vals = [], {"valid_rocauc": [], "test_rocauc": []}
    for path in seeds:
        rows = [r for r in csv.DictReader(open(path)) if r.get("val/rocauc")]
        done = len(rows)
        rows = [r for r in rows if int(r["epoch"]) < max_epochs]
        best = max(rows, key=lambda r: float(r["val/rocauc"]))
        seed = int(path.split("seed")[-1].split(os.sep)[0])
        vals["valid_rocauc"].append(float(best["val/rocauc"]))
        vals["test_rocauc"].append(float(best["test/rocauc"]))
        rows_out.append({"seed": seed, "epochs_done": done, "best_epoch": int(best["epoch"]),
                         "valid_rocauc": float(best["val/rocauc"]),
                         "test_rocauc": float(best["test/rocauc"])})
    sample = glob.glob(osp.join(runs, name, "seed*", "metrics.json"))
    if sample:
        rec = json.load(open(sample[0]))
        facts = {k: rec[k] for k in ("num_parameters", "hardware", "git_sha")}
    else:
        if not (hardware and git):
            raise SystemExit(f"{name} has no metrics.json: give --hardware and --git-sha")
        facts = {"num_parameters": count_config_parameters(MOLHIV[name]), "hardware": hardware,
                 "git_sha": git}
    summary = {"experiment": name, "seeds": [r["seed"] for r in rows_out],
               "metrics": M.summarize(vals), "selection_epochs": max_epochs,
               "per_seed": rows_out, **facts}
    out_dir = osp.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    for path in seeds:  # the raw per-epoch logs are the record of these runs
        seed_dir = path.split(os.sep)[-3]
        shutil.copy(path, osp.join(out_dir, f"{seed_dir}-metrics.log"))
    with open(osp.join(out_dir, "run.log"), "w") as f:
        for r in rows_out:
            f.write(f"seed {r['seed']}: {r['epochs_done']} epochs done; best valid ROC-AUC "
                    f"{r['valid_rocauc']:.4f} at epoch {r['best_epoch']} (of the first "
                    f"{max_epochs}), test {r['test_rocauc']:.4f}\n")
    return summary


def collect_recon(runs: str, out_root: str) -> list:
    out = []
    for src in sorted(glob.glob(osp.join(runs, "ehgnn-recon-*", "summary.json"))):
        name = osp.basename(osp.dirname(src))
        dst = osp.join(out_root, name)
        os.makedirs(dst, exist_ok=True)
        shutil.copy(src, osp.join(dst, "summary.json"))
        summary = json.load(open(src))
        with open(osp.join(dst, "run.log"), "w") as f:
            for seed_file in sorted(glob.glob(osp.join(osp.dirname(src), "seed*.json"))):
                rec = json.load(open(seed_file))
                for row in rec["history"]:
                    f.write(f"seed {rec['seed']} epoch {row['epoch']}: train loss "
                            f"{row['train_loss']:.4f} valid loss {row['valid_loss']:.4f} "
                            f"valid acc {row['valid_accuracy']:.4f} test acc "
                            f"{row['test_accuracy']:.4f} exact {row['test_exact_match']:.4f}\n")
        out.append(summary)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tu", help="runs folder of the TU cross-validations")
    ap.add_argument("--molhiv", help="runs folder of the ogbg-molhiv runs")
    ap.add_argument("--molhiv-epochs", type=int, default=500)
    ap.add_argument("--hardware", help="hardware of molhiv runs without metrics.json")
    ap.add_argument("--git-sha", help="commit of molhiv runs without metrics.json")
    ap.add_argument("--recon", help="runs folder of scripts/ehgnn_reconstruction.py")
    ap.add_argument("--out", default="scripts/results")
    args = ap.parse_args(argv)
    if args.tu:
        print("| set | " + " | ".join(MODELS) + " |")
        print("|---" * (len(MODELS) + 1) + "|")
        for s in SETS:
            cells = []
            for m in MODELS:
                sm = collect_tu(args.tu, tu_name(m, s), args.out)
                if sm is None:
                    cells.append("-")
                    continue
                acc = sm["metrics"]["test_accuracy"]
                cells.append(f"{acc['mean']:.4f} ± {acc['std']:.4f} ({sm['folds_done']}f, "
                             f"{sm['median_seconds_per_epoch']:.2f} s/ep"
                             f"{'' if sm['all_complete'] else ', max_time'})")
            print(f"| {s} | " + " | ".join(cells) + " |")
    if args.molhiv:
        from graphlab.train.run import atomic_write_json
        for name in MOLHIV:
            sm = collect_csv(args.molhiv, name, args.molhiv_epochs, args.out, args.hardware,
                             args.git_sha)
            if sm is not None:
                atomic_write_json(osp.join(args.out, name, "summary.json"), sm)
                t = sm["metrics"]["test_rocauc"]
                print(f"{name}: test ROC-AUC {t['mean']:.4f} ± {t['std']:.4f} "
                      f"({[r['epochs_done'] for r in sm['per_seed']]} epochs)")
    if args.recon:
        for sm in collect_recon(args.recon, args.out):
            t, e = sm["metrics"]["test_accuracy"], sm["metrics"]["test_exact_match"]
            print(f"{sm['experiment']}: bond accuracy {t['mean']:.4f} ± {t['std']:.4f}, "
                  f"exact match {e['mean']:.4f} ± {e['std']:.4f}, epochs {sm['epochs']}")


if __name__ == "__main__":
    main()
