"""Reference metrics records: one short seeded CPU run per task family and per runner.

The records under ``tests/reference/`` were written by this module *before* the trainer was
reorganised into registered tasks, optimizers, schedulers and strategies
(``python tests/reference_records.py`` regenerates them). ``tests/test_reference_records.py``
runs every case again and asks for the same history, best epoch and metrics: the refactor must
not change a number.

Each case is ``(name, runner, realdata, cfg, seeds)``: ``runner`` is ``lightning`` (one
``run_seed`` per seed) or ``ensemble`` (``run_ensemble`` over the seeds). The configs are tiny
versions of shipped ones (few epochs, small widths) chosen to cover every task family, the
four schedulers, selection on the validation loss, a target scale (``mae_normalized``), the
``ogb`` Evaluator and the padded static-batch step of ``task.cuda_graphs``.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE_DIR = os.path.join(HERE, "reference")


def _gin(**kw) -> Dict[str, Any]:
    return {"name": "gin", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0, **kw}


CASES: List[Dict[str, Any]] = [
    # ---- the Lightning runner
    {"name": "lightning-graph_classification-motifs", "runner": "lightning", "realdata": False,
     "seeds": [0],
     "cfg": {"data": {"name": "motifs", "batch_size": 64}, "model": _gin(),
             "optim": {"name": "adam", "lr": 0.01},
             "scheduler": {"name": "step", "step_size": 1, "gamma": 0.5},
             "trainer": {"max_epochs": 3}}},
    {"name": "lightning-node_classification-ba-shapes", "runner": "lightning",
     "realdata": False, "seeds": [0],
     "cfg": {"data": {"name": "ba-shapes"},
             "model": {"name": "gcn", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0},
             "optim": {"name": "adamw", "lr": 0.01, "weight_decay": 5e-4},
             "scheduler": {"name": "cosine", "warmup_epochs": 1},
             "trainer": {"max_epochs": 4}}},
    {"name": "lightning-node_regression-cycles", "runner": "lightning", "realdata": False,
     "seeds": [0],
     "cfg": {"data": {"name": "cycles", "batch_size": 512}, "model": _gin(),
             "optim": {"name": "adam", "lr": 0.001}, "trainer": {"max_epochs": 2}}},
    {"name": "lightning-graph_multilabel-ogbg-molbace", "runner": "lightning",
     "realdata": True, "seeds": [0],
     "cfg": {"data": {"name": "ogbg-molbace", "batch_size": 128}, "model": _gin(),
             "optim": {"name": "adam", "lr": 0.001},
             "scheduler": {"name": "plateau", "monitor": "loss", "warmup_epochs": 1,
                           "patience": 0, "factor": 0.5},
             "task": {"select_on": "loss"}, "trainer": {"max_epochs": 3}}},
    {"name": "lightning-graph_regression-ogbg-molesol", "runner": "lightning",
     "realdata": True, "seeds": [0],
     "cfg": {"data": {"name": "ogbg-molesol", "batch_size": 64}, "model": _gin(),
             "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
             "trainer": {"max_epochs": 2, "gradient_clip_val": 1.0}}},
    {"name": "lightning-link_prediction-cora-link", "runner": "lightning", "realdata": True,
     "seeds": [0],
     "cfg": {"data": {"name": "cora-link", "batch_size": 1},
             "model": {"name": "gcn", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0},
             "optim": {"name": "adam", "lr": 0.01}, "task": {"embed_dim": 8},
             "trainer": {"max_epochs": 3}}},
    {"name": "lightning-recommendation-lastfm", "runner": "lightning", "realdata": True,
     "seeds": [0],
     "cfg": {"data": {"name": "lastfm", "batch_size": 8192},
             "model": {"name": "lightgcn", "hidden_channels": 16, "num_layers": 2},
             "optim": {"name": "adam", "lr": 0.005}, "trainer": {"max_epochs": 2}}},
    # ---- the vmapped seed-ensemble runner
    {"name": "ensemble-graph_classification-motifs", "runner": "ensemble", "realdata": False,
     "seeds": [0, 1],
     "cfg": {"data": {"name": "motifs", "batch_size": 64}, "model": _gin(),
             "optim": {"name": "adam", "lr": 0.01},
             "scheduler": {"name": "step", "step_size": 1, "gamma": 0.5},
             "trainer": {"max_epochs": 3, "gradient_clip_val": 0.5}}},
    {"name": "ensemble-padded-graph_classification-motifs", "runner": "ensemble",
     "realdata": False, "seeds": [0, 1],
     "cfg": {"data": {"name": "motifs", "batch_size": 64}, "model": _gin(),
             "optim": {"name": "adam", "lr": 0.01},
             "task": {"cuda_graphs": {"capture": False}}, "trainer": {"max_epochs": 2}}},
    {"name": "ensemble-node_classification-ba-shapes", "runner": "ensemble",
     "realdata": False, "seeds": [0, 1],
     "cfg": {"data": {"name": "ba-shapes"},
             "model": {"name": "gcn", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0},
             "optim": {"name": "adam", "lr": 0.01},
             "scheduler": {"name": "cosine", "warmup_epochs": 1},
             "trainer": {"max_epochs": 4}}},
    {"name": "ensemble-node_regression-cycles", "runner": "ensemble", "realdata": False,
     "seeds": [0, 1],
     "cfg": {"data": {"name": "cycles", "batch_size": 512}, "model": _gin(),
             "optim": {"name": "adam", "lr": 0.001}, "trainer": {"max_epochs": 2}}},
    {"name": "ensemble-graph_multilabel-ogbg-molbace", "runner": "ensemble", "realdata": True,
     "seeds": [0, 1],
     "cfg": {"data": {"name": "ogbg-molbace", "batch_size": 128}, "model": _gin(),
             "optim": {"name": "adam", "lr": 0.001},
             "scheduler": {"name": "plateau", "monitor": "loss", "warmup_epochs": 1,
                           "patience": 0, "factor": 0.5},
             "task": {"select_on": "loss"}, "trainer": {"max_epochs": 3}}},
    {"name": "ensemble-graph_regression-ogbg-molesol", "runner": "ensemble", "realdata": True,
     "seeds": [0, 1],
     "cfg": {"data": {"name": "ogbg-molesol", "batch_size": 64}, "model": _gin(),
             "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
             "trainer": {"max_epochs": 2}}},
]

#: the parts of a metrics record that are results (the rest describes the run or its config)
RESULT_KEYS = ("seed", "task", "metric", "best_epoch", "epochs", "max_epochs", "complete",
               "valid", "test", "num_parameters", "history", "target_scale")


def results_of(record: Dict[str, Any]) -> Dict[str, Any]:
    return {k: record[k] for k in RESULT_KEYS if k in record}


def run_case(case: Dict[str, Any], out_dir: str) -> List[Dict[str, Any]]:
    """The metrics records of one case (one per seed), results only."""
    cfg = {"experiment": case["name"], **case["cfg"]}
    if case["runner"] == "lightning":
        from graphlab.train import run_seed
        records = [run_seed(cfg, s, out_dir, quiet=True) for s in case["seeds"]]
    else:
        from graphlab.train.ensemble_run import run_ensemble
        records = run_ensemble(cfg, case["seeds"], out_dir, quiet=True)
    return [results_of(r) for r in records]


def reference_path(case: Dict[str, Any]) -> str:
    return os.path.join(REFERENCE_DIR, f"{case['name']}.json")


def main(argv: List[str]) -> int:
    import tempfile
    os.makedirs(REFERENCE_DIR, exist_ok=True)
    wanted = set(argv)
    for case in CASES:
        if wanted and case["name"] not in wanted:
            continue
        with tempfile.TemporaryDirectory() as out:
            records = run_case(case, out)
        with open(reference_path(case), "w") as f:
            json.dump(records, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"wrote {reference_path(case)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OUTDATED_IGNORE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)  # as tests/conftest.py sets it
    sys.exit(main(sys.argv[1:]))
