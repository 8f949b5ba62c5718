"""What both runners share about one run: the per-epoch record, best-epoch selection on
validation, the best epoch's test predictions and the state a checkpoint carries.

The Lightning module (:class:`graphlab.train.task.GraphTask`) keeps one :class:`RunRecorder`;
the seed ensemble keeps one per member. Both feed it the task's evaluation outputs
(:meth:`graphlab.tasks.Task.eval_step`) and close each epoch with :meth:`RunRecorder.end_epoch`,
so the history rows, the selection rule and the records are the same code for both.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from graphlab.errors import ConfigError
from graphlab.tasks.base import Task

__all__ = ["RunRecorder", "SPLITS", "SELECT_ON", "concat_sorted", "rng_state", "set_rng_state"]

#: the evaluated splits, in the order of the evaluation loaders
SPLITS = ("valid", "test")
#: what ``task.select_on`` may pick the reported epoch by (validation split only)
SELECT_ON = ("metric", "loss")


def rng_state() -> Dict[str, Any]:
    """RNG streams as tensors and plain Python values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                      float(gauss)],
            "python": random.getstate()}


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])


def concat_sorted(outputs: Sequence[tuple], all_gather: Optional[Callable] = None):
    """``(index, prediction, target)`` batches -> one tuple sorted by index, on the CPU.

    With ``all_gather`` (several ranks) the ranks' tensors are gathered first; the distributed
    sampler pads ranks to equal counts, so the duplicates it adds are dropped by index."""
    idx, pred, y = (torch.cat(t) for t in zip(*outputs))
    if all_gather is not None:
        idx, pred, y = (all_gather(t).flatten(0, 1) for t in (idx, pred, y))
    order = torch.argsort(idx, stable=True)
    idx, pred, y = idx[order], pred[order], y[order]
    if all_gather is not None:
        keep = torch.ones_like(idx, dtype=torch.bool)
        keep[1:] = idx[1:] != idx[:-1]
        idx, pred, y = idx[keep], pred[keep], y[keep]
    return idx.cpu(), pred.float().cpu(), y.cpu()


class RunRecorder:
    """History, best epoch and best test predictions of one run.

    Args:
        task: the run's task family (its evaluation turns outputs into history entries).
        select_on: ``metric`` (default: ``metric``): the best epoch has the best validation metric in the
            metric's direction; ``loss``: the lowest validation loss (``valid_loss``).
    """

    def __init__(self, task: Task, select_on: str = "metric"):
        if select_on not in SELECT_ON:
            raise ConfigError(f"'task.select_on' must be one of {', '.join(SELECT_ON)}, got "
                              f"{select_on!r}")
        if select_on == "loss" and not task.records_loss:
            raise ConfigError(f"'task.select_on: loss' needs a validation loss; task "
                              f"{task.name or type(task).__name__} records none")
        self.task, self.select_on = task, select_on
        self.history: List[Dict[str, float]] = []
        self.best: Optional[Dict[str, Any]] = None
        self.best_test_pred: Optional[Dict[str, Tensor]] = None
        self.train_samples = 0
        self.train_time = 0.0
        self.outputs: Dict[int, List[Any]] = {}

    def collect(self, split_index: int, output: Any) -> None:
        """Keep one evaluation batch's output (``None``: nothing to keep)."""
        if output is None:
            return
        if isinstance(output, tuple):
            output = tuple(t.detach() for t in output)
        self.outputs.setdefault(split_index, []).append(output)

    def end_epoch(self, epoch: int, train_loss: float, lr: float,
                  gather: Callable[[Sequence[tuple]], tuple] = concat_sorted) -> Dict[str, float]:
        """Evaluate the collected outputs, append the epoch's row and update the best epoch."""
        row: Dict[str, float] = {"epoch": int(epoch)}
        preds = {}
        for i, split in enumerate(SPLITS):
            if i not in self.outputs:
                continue
            entries, pred = self.task.evaluate(split, self.outputs[i], gather)
            row.update(entries)
            if pred is not None:
                preds[split] = pred
        self.outputs = {}
        row["train_loss"] = train_loss
        row["lr"] = lr
        self.history.append(row)
        if self._better(row):
            self.best = dict(row)
            if "test" in preds:
                idx, pred, y = preds["test"]
                self.best_test_pred = {"index": idx, "y_pred": pred, "y_true": y}
        return row

    def _better(self, row: Dict[str, float]) -> bool:
        if self.best is None:
            return True
        if self.select_on == "loss":
            return row["valid_loss"] < self.best["valid_loss"]
        key = f"valid_{self.task.metric}"
        return row[key] > self.best[key] if self.task.higher_is_better else \
            row[key] < self.best[key]

    def monitored(self, watch_loss: bool) -> float:
        """The last epoch's validation value a plateau schedule watches."""
        return self.history[-1]["valid_loss" if watch_loss else f"valid_{self.task.metric}"]

    # -- checkpoint state --------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {"history": self.history, "best": self.best, "best_test_pred": self.best_test_pred,
                "rng": rng_state(), "train_samples": self.train_samples,
                "train_time": self.train_time}

    def load_state_dict(self, st: Dict[str, Any]) -> Dict[str, Any]:
        """Restores the record; returns the RNG state for the caller to set when it resumes."""
        self.history, self.best = st["history"], st["best"]
        self.best_test_pred = st["best_test_pred"]
        self.train_samples, self.train_time = st["train_samples"], st["train_time"]
        return st["rng"]


def mean_loss(total: float, samples: int) -> float:
    return total / samples if samples else math.nan
