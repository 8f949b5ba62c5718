"""What a run writes and reports: atomic files, run facts, the metrics record, summaries.

One record format for every runner (``metrics.json``): results (``valid``, ``test``,
``best_epoch``, ``history``, ...) and the facts of the run (:data:`RUN_FIELDS`: wall time,
hardware, memory, throughput, commit, versions), plus ``ensemble`` for seed-ensemble members.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
from typing import Any, Dict, List, Optional

import torch

from graphlab.tasks import metrics as M

__all__ = ["RUN_FIELDS", "atomic_write_bytes", "atomic_write_json", "atomic_torch_save",
           "git_sha", "hardware", "versions", "peak_memory_mb", "count_parameters",
           "run_name", "build_record", "summarize_seeds", "format_summary"]

#: fields of metrics.json that describe the run rather than its results (they vary run to run)
RUN_FIELDS = ("wall_time_s", "hardware", "peak_memory_mb", "throughput", "git_sha", "versions",
              "resumed", "ensemble")


def atomic_write_bytes(path: str, payload: bytes) -> None:
    """Write to a temporary file and rename it: a reader or a kill never sees half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_torch_save(obj: Any, path: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def git_sha() -> Optional[str]:
    """The commit that ran (``$GRAPHLAB_GIT_SHA`` where the checkout has no ``.git``)."""
    if os.environ.get("GRAPHLAB_GIT_SHA"):
        return os.environ["GRAPHLAB_GIT_SHA"]
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def versions() -> Dict[str, str]:
    import lightning
    import torch_geometric

    import graphlab
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "torch_geometric": torch_geometric.__version__, "lightning": lightning.__version__}
    try:
        import ogb
        out["ogb"] = ogb.__version__
    except ImportError:
        pass
    out["graphlab"] = graphlab.__version__
    return out


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run_name(seed: int, fold: Optional[int] = None) -> str:
    """``seed<k>``, or ``fold<f>-seed<k>`` for cross-validation runs."""
    return f"seed{seed}" if fold is None else f"fold{fold}-seed{seed}"


def _parts(best: Dict[str, Any], split: str, metric: str) -> Dict[str, float]:
    """Per-target parts of the metric at the best epoch (``mae_normalized_t0`` ...)."""
    pre = f"{split}_{metric}_"
    return {k[len(split) + 1:]: v for k, v in best.items() if k.startswith(pre)}


def build_record(*, recorder, task, cfg: dict, experiment: str, seed: int,
                 fold: Optional[int], max_epochs: int, num_parameters: int, wall_time_s: float,
                 resumed: bool, facts: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The metrics record of one run (or ensemble member) from its
    :class:`~graphlab.train.step.RunRecorder`."""
    if recorder.best is None:
        raise RuntimeError("training finished without a validation epoch; check trainer settings")
    metric, best = task.metric, recorder.best
    facts = facts if facts is not None else run_facts()
    record = {
        "experiment": experiment, "seed": seed, "fold": fold,
        "dataset": cfg["data"]["name"], "model": cfg["model"]["name"], "task": task.name,
        "metric": metric, "best_epoch": best["epoch"], "epochs": len(recorder.history),
        "max_epochs": max_epochs, "complete": len(recorder.history) >= max_epochs,
        "valid": {metric: best[f"valid_{metric}"], **_parts(best, "valid", metric)},
        "test": {metric: best.get(f"test_{metric}"), **_parts(best, "test", metric)},
        "num_parameters": num_parameters, "history": recorder.history, "config": cfg,
        "wall_time_s": wall_time_s,
        "throughput": {"train_samples_per_s":
                       recorder.train_samples / max(recorder.train_time, 1e-9)},
        "resumed": resumed, **facts,
    }
    std = getattr(task, "target_std", None)
    if std is not None:
        record["target_scale"] = std.tolist()
    return record


def run_facts() -> Dict[str, Any]:
    """Hardware, peak memory, commit and versions, read once per process end."""
    return {"hardware": hardware(), "peak_memory_mb": peak_memory_mb(), "git_sha": git_sha(),
            "versions": versions()}


def summarize_seeds(records: List[Dict[str, Any]]) -> Dict[str, Any]:
    vals: Dict[str, list] = {}
    for r in records:
        for split in ("valid", "test"):
            for k, v in r[split].items():
                if v is not None:
                    vals.setdefault(f"{split}_{k}", []).append(v)
    return {"experiment": records[0]["experiment"], "seeds": [r["seed"] for r in records],
            "folds": [r.get("fold") for r in records],
            "num_parameters": records[0]["num_parameters"], "metrics": M.summarize(vals),
            "hardware": records[0]["hardware"], "git_sha": records[0]["git_sha"],
            "wall_time_s": sum(r["wall_time_s"] for r in records)}


def format_summary(summary: Dict[str, Any]) -> str:
    lines = ["| experiment | seeds | params | metric | mean ± std |", "|---|---|---|---|---|"]
    for k, v in summary["metrics"].items():
        lines.append(f"| {summary['experiment']} | {v['n']} | {summary['num_parameters']:,} | {k} | "
                     f"{v['mean']:.4f} ± {v['std']:.4f} |")
    return "\n".join(lines)
