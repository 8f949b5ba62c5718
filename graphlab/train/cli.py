"""The ``graphlab`` command.

    graphlab train CONFIG [key=value ...] [--seeds N | --seed K] [--folds F] [--jobs J]
                   [--out DIR] [--resume] [--ensemble [--ensemble-randomness R]]
    graphlab data list
    graphlab data prepare CONFIG [key=value ...]
    graphlab report OUT_DIR

Config errors (unknown keys, wrong types, missing required fields) exit with code 2 and one line
naming the key and the valid choices.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from graphlab.sampling.cli import add_parser as add_sample_parser, main as sample_main

os.environ.setdefault("OUTDATED_IGNORE", "1")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphlab", description="graphlab: graph learning on PyG")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a config (one or more seeds)")
    t.add_argument("config", help="YAML config, e.g. configs/gcn/cora.yaml")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-3")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--seeds", type=int, default=None,
                   help="run seeds 0..N-1 and write summary.json (default: config 'seeds' or 1)")
    g.add_argument("--seed", type=int, default=None, help="run this one seed")
    t.add_argument("--folds", type=int, default=None,
                   help="cross-validation: run folds 0..N-1 (data.fold), each with the seeds, "
                        "and summarise over all runs (TU protocol: --folds 10)")
    t.add_argument("--fold", type=int, default=None, help="with --seed: run this one fold")
    t.add_argument("--jobs", type=int, default=1, help="runs to execute concurrently (processes)")
    t.add_argument("--ensemble", action="store_true",
                   help="train the seeds as one vmapped ensemble on one device "
                        "(graphlab.train.ensemble_run): same per-seed outputs; all members use "
                        "the first seed's split and batch order")
    t.add_argument("--ensemble-randomness", default="error",
                   choices=["error", "different", "same"],
                   help="with --ensemble: random layers (dropout) are refused ('error', "
                        "default) or draw per-member masks ('different'), which are not those "
                        "of separate runs")
    t.add_argument("--out", default="runs", help="output directory (default: runs)")
    t.add_argument("--resume", action="store_true",
                   help="continue from the last checkpoint; finished seeds are skipped")
    t.add_argument("--dry-run", action="store_true", help="validate the config and exit")
    t.add_argument("--quiet", action="store_true",
                   help="print only the final table (default: a line per seed start and end "
                        "and a compact bar per running seed)")
    t.add_argument("--verbose", action="store_true",
                   help="Lightning's own progress bars and messages")
    d = sub.add_parser("data", help="dataset registry; prepare a config's dataset")
    d.add_argument("action", choices=["list", "prepare"],
                   help="list: the registered datasets; prepare: fetch and process CONFIG's "
                        "dataset (with its pre-computed encodings) once, e.g. before parallel "
                        "runs or a timed one")
    d.add_argument("config", nargs="?", help="with prepare: a YAML config")
    d.add_argument("overrides", nargs="*", help="with prepare: dotted overrides")
    r = sub.add_parser("report", help="markdown results table and training curves")
    r.add_argument("out", help="an output directory written by 'graphlab train'")
    add_sample_parser(sub)
    return p


def _train(args) -> int:
    from graphlab.errors import ConfigError
    from graphlab.train.config import load_config, validate
    from graphlab.train.records import format_summary
    from graphlab.train.run import run_seed, run_seeds
    cfg = validate(load_config(args.config, args.overrides))
    if args.dry_run:
        return _dry_run(cfg, args)
    if args.quiet and args.verbose:
        raise ConfigError("--quiet and --verbose exclude each other")
    if args.ensemble and args.seed is not None:
        raise ConfigError("--ensemble trains several seeds at once; use --seeds N, not --seed")
    if args.ensemble and args.jobs > 1:
        raise ConfigError("--ensemble runs the seeds in one process; drop --jobs")
    if args.seed is not None:
        rec = run_seed(cfg, args.seed, args.out, resume=args.resume, quiet=args.quiet,
                       fold=args.fold, verbose=args.verbose)
        if rec:
            m = rec["metric"]
            print(f"seed {args.seed}: best epoch {rec['best_epoch']}  valid {m} "
                  f"{rec['valid'][m]:.4f}  test {m} {rec['test'][m]:.4f}")
        return 0
    if args.fold is not None:
        raise ConfigError("--fold selects one run and needs --seed; use --folds N for a CV")
    if args.folds is not None:
        n = args.seeds if args.seeds is not None else 1  # TU protocol: one seed per fold
    else:
        n = args.seeds if args.seeds is not None else int(cfg.get("seeds", 1))
    folds = list(range(args.folds)) if args.folds is not None else None
    if args.ensemble:
        from graphlab.train.ensemble_run import run_ensembles
        summary = run_ensembles(cfg, list(range(n)), args.out, resume=args.resume,
                                quiet=args.quiet, folds=folds,
                                randomness=args.ensemble_randomness)
        print(format_summary(summary))
        _where(cfg, args)
        return 0
    summary = run_seeds(cfg, list(range(n)), args.out, resume=args.resume, jobs=args.jobs,
                        config_path=args.config, overrides=args.overrides, quiet=args.quiet,
                        folds=folds, verbose=args.verbose)
    print(format_summary(summary))
    _where(cfg, args)
    return 0


def _where(cfg: dict, args) -> None:
    from graphlab.train.config import experiment_name
    exp = os.path.join(args.out, experiment_name(cfg))
    print(f"results: {exp}/ (summary.json; <run>/metrics.json, test_predictions.pt, "
          f"checkpoints/last.ckpt, logs/)")


def _size(part) -> int:
    """Samples in one split entry: a mask, an index tensor, (user, item) pairs or a graph
    whose labelled edges are the samples."""
    import torch
    if hasattr(part, "edge_label_index"):
        return int(part.edge_label_index.size(1))
    t = torch.as_tensor(part)
    if t.dtype == torch.bool:
        return int(t.sum())
    return int(t.size(1)) if t.dim() == 2 else int(t.numel())


def _dry_run(cfg: dict, args) -> int:
    """What the run would do, without training: data, split, task, model and its parameter
    count, schedule, runs, device, output folder (building the dataset if not yet built)."""
    import torch

    from graphlab.train.config import experiment_name
    from graphlab.train.records import count_parameters
    from graphlab.train.run import build_model, prepare
    try:
        rd = prepare(cfg, 0)
        model = build_model(cfg, rd.dims)
    except Exception as e:  # noqa: BLE001 - a dry run reports any problem as one line
        print(f"graphlab: dry run failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    split = rd.split
    sizes = "/".join(str(_size(split[k])) for k in ("train", "valid", "test")
                     if isinstance(split, dict) and k in split)
    n = len(rd.dataset) if hasattr(rd.dataset, "__len__") else 1
    o, sch, tr = cfg["optim"], cfg["scheduler"], cfg["trainer"]
    runs = (f"{args.folds} folds x {args.seeds or 1} seed(s)" if args.folds else
            f"seed {args.seed}" if args.seed is not None else
            f"{args.seeds or cfg.get('seeds', 1)} seed(s)")
    runs += " as one vmapped ensemble" if args.ensemble else \
        (f", {args.jobs} processes at a time" if args.jobs > 1 else "")
    accel = tr.get("accelerator", "auto")
    device = "cuda" if accel in ("gpu", "cuda") or (accel == "auto" and
                                                      torch.cuda.is_available()) else "cpu"
    lr = f" lr {o['lr']}" if "lr" in o else ""
    print(f"config OK: {args.config}")
    print(f"  data      {rd.info.name}: {n:,} graph(s), split {sizes or '-'} "
          f"(train/valid/test)")
    print(f"  task      {rd.task.name}, metric {rd.task.metric}, select on "
          f"{cfg['task'].get('select_on', 'metric')}")
    print(f"  model     {cfg['model']['name']}, {count_parameters(model):,} parameters")
    print(f"  training  {tr.get('max_epochs', 100)} epochs, {o['name']}{lr}, scheduler "
          f"{sch.get('name', 'none')}, batch {cfg['data']['batch_size']}, {runs}, on {device}")
    print(f"  output    {os.path.join(args.out, experiment_name(cfg))}/")
    return 0


def _data(args) -> int:
    from graphlab import data as gdata
    from graphlab.errors import ConfigError
    if args.action == "prepare":
        return _prepare(args)
    if args.config is not None:
        raise ConfigError("'graphlab data list' takes no config")
    rows = gdata.list_datasets()
    cols = ["name", "task", "metric", "files", "source"]
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols[:-1]}
    print("  ".join(c.ljust(width.get(c, 0)) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(width.get(c, 0)) for c in cols))
    return 0


def _prepare(args) -> int:
    """Build CONFIG's dataset as ``graphlab train`` does (raw files from the mirror or a
    download, processing with the config's pre-transform), so that later runs only load it."""
    import time

    from graphlab.data.pipeline import build_data
    from graphlab.errors import ConfigError
    from graphlab.train.config import load_config, validate
    if args.config is None:
        raise ConfigError("'graphlab data prepare' needs a config, e.g. "
                          "graphlab data prepare configs/gps/peptides-func.yaml")
    cfg = validate(load_config(args.config, args.overrides))
    t0 = time.perf_counter()
    dataset, info, split = build_data(cfg["data"], 0)
    n = len(dataset) if hasattr(dataset, "__len__") else 1
    where = getattr(dataset, "processed_dir", None)
    print(f"{info.name}: {n:,} graph(s) ready in {time.perf_counter() - t0:.1f} s"
          + (f" ({where})" if where else ""))
    return 0


def _report(args) -> int:
    from graphlab.train.report import write_report
    written: List[str] = []
    write_report(args.out, written)
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    from graphlab.errors import ConfigError
    args = _parser().parse_args(argv)
    try:
        return {"train": _train, "data": _data, "report": _report,
                "sample": sample_main}[args.command](args)
    except ConfigError as e:
        print(f"graphlab: config error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # data problems get one line too, not a traceback
        from graphlab.errors import DataError
        if not isinstance(e, DataError):
            raise
        print(f"graphlab: data error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("graphlab: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
