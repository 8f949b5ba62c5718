"""The Lightning side of a run: a thin ``LightningModule`` over a model and a task family.

Everything task-specific (loss, evaluation, loaders) is the :class:`graphlab.tasks.Task`'s;
the record of the run (history, best epoch on validation, its test predictions) is the
:class:`graphlab.train.step.RunRecorder`'s, which the seed ensemble shares. This module adds
what Lightning needs: the optimiser and schedule (:mod:`graphlab.optim`), a running training
loss without a host sync per step, gathering of evaluation outputs across ranks, strategies
that own the optimisation steps (:class:`graphlab.distributed.LoopStrategy`) and the state a
checkpoint carries (history, best epoch, RNG streams), so a resumed run continues exactly.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import lightning as L
import torch
from torch import Tensor, nn

from graphlab.optim import build_optimizer, build_schedule
from graphlab.tasks.base import Task
from graphlab.train.step import SPLITS, RunRecorder, concat_sorted, mean_loss, set_rng_state


class GraphTask(L.LightningModule):
    """Trains ``model`` on ``task``; validation and test are both evaluated every epoch (so the
    test metric of the best validation epoch can be reported, as the OGB protocol asks).

    Args:
        model: a module following the model contract (:mod:`graphlab.models.contract`).
        task: the task family instance (:mod:`graphlab.tasks`).
        optim: the ``optim`` section (default: ``{name: adam}``).
        scheduler: the ``scheduler`` section (default: ``{name: none}``).
        max_epochs: the run's epochs (cosine schedules end there).
        select_on: ``metric`` or ``loss`` (default: ``metric``): what picks the reported epoch, on the
            validation split only (:class:`~graphlab.train.step.RunRecorder`).
        strategy: a :class:`graphlab.distributed.Strategy`; one that owns the steps switches
            the module to manual optimisation.
        clip: ``(gradient_clip_val, gradient_clip_algorithm)`` for strategies that own the
            steps (Lightning clips by itself in automatic optimisation).
    """

    def __init__(self, model: nn.Module, task: Task, optim: Optional[dict] = None,
                 scheduler: Optional[dict] = None, max_epochs: int = 1,
                 select_on: str = "metric", strategy=None,
                 clip: Optional[tuple] = None):
        super().__init__()
        self.model, self.task = model, task
        self.recorder = RunRecorder(task, select_on)
        self.optim_cfg = dict(optim or {"name": "adam"})
        self.sched_cfg = dict(scheduler or {"name": "none"})
        self.max_epochs = max_epochs
        self.loop = strategy if getattr(strategy, "owns_steps", False) else None
        self.clip = clip
        if self.loop is not None:
            self.automatic_optimization = False
        self.schedule = None
        self._epoch_loss = [0.0, 0]  # (sum of loss x samples, samples) of the current epoch
        self._pending_loss = None
        self._loss_acc: Optional[Tensor] = None

    # the run's record, as attributes of the module (reports and tests read them)
    @property
    def history(self):
        return self.recorder.history

    @property
    def best(self):
        return self.recorder.best

    @property
    def best_test_pred(self):
        return self.recorder.best_test_pred

    @property
    def train_samples(self) -> int:
        return self.recorder.train_samples

    @property
    def train_time(self) -> float:
        return self.recorder.train_time

    @train_time.setter
    def train_time(self, value: float) -> None:
        self.recorder.train_time = value

    # -- epochs ------------------------------------------------------------------------------
    def on_train_start(self) -> None:
        # Restore the RNG streams after Lightning's own setup so that dropout and negative
        # sampling continue exactly where the checkpoint left them.
        rng = getattr(self, "_resume_rng", None)
        if rng is not None:
            set_rng_state(rng)
            self._resume_rng = None
        if self.loop is not None:
            self.loop.setup(self)

    def on_train_epoch_start(self) -> None:
        trainer = getattr(self, "_trainer", None)  # None when driven without a Trainer
        if self.schedule is not None and trainer is not None:
            for opt in trainer.optimizers:
                self.schedule.epoch_start(opt, self.current_epoch)
        self._epoch_loss = [0.0, 0]
        self._pending_loss = None
        if self._loss_acc is not None:
            self._loss_acc.zero_()

    def on_train_epoch_end(self) -> None:
        self._flush_loss()

    def on_fit_end(self) -> None:
        if self.loop is not None:
            self.loop.on_fit_end(self)

    # -- the running training loss, without a host sync per step on CUDA -------------------
    # Reading the loss back after every forward (float(loss), `if not isfinite(loss)`) makes the
    # CPU wait for the GPU before it can queue the backward pass, so a launch-bound model leaves
    # the GPU idle for that time. On CUDA the loss is summed on the device and a copy of it goes
    # to pinned host memory asynchronously; it is checked one step later (or at epoch end), when
    # the copy is long done, so a non-finite loss still stops training at the step it appeared.
    @staticmethod
    def _raise_non_finite(value: float, epoch: int, step: int) -> None:
        raise FloatingPointError(f"non-finite training loss {value} at epoch {epoch}, step "
                                 f"{step}: check the inputs for NaN features or lower the "
                                 "learning rate")

    def _accumulate_loss(self, loss: Tensor, n: int, batch_idx: int) -> None:
        if loss.device.type != "cuda":
            v = float(loss)
            if not math.isfinite(v):
                self._raise_non_finite(v, self.current_epoch, batch_idx)
            self._epoch_loss[0] += v * n
            return
        self._check_pending_loss()
        acc = self._loss_acc
        if acc is None or acc.device != loss.device:
            self._loss_acc = acc = torch.zeros((), dtype=torch.float64, device=loss.device)
            self._loss_host = torch.empty((), dtype=torch.float32, pin_memory=True)
        acc.add_(loss.double() * n)
        self._loss_host.copy_(loss.float(), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending_loss = (event, self.current_epoch, batch_idx)

    def _check_pending_loss(self) -> None:
        if self._pending_loss is None:
            return
        event, epoch, step = self._pending_loss
        self._pending_loss = None
        event.synchronize()
        v = float(self._loss_host)
        if not math.isfinite(v):
            self._raise_non_finite(v, epoch, step)

    def _flush_loss(self) -> None:
        """Check the last step's loss and move the device sum into ``_epoch_loss``."""
        self._check_pending_loss()
        if self._loss_acc is not None:
            self._epoch_loss[0] += float(self._loss_acc)
            self._loss_acc.zero_()

    # -- steps -------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        loss, n = self.task.train_step(self.model, batch)
        self._accumulate_loss(loss.detach(), n, batch_idx)
        self.recorder.train_samples += n
        self._epoch_loss[1] += n
        self.log("train/loss", loss.detach(), batch_size=max(n, 1), on_step=False, on_epoch=True,
                 sync_dist=True)
        if self.loop is not None:
            self.loop.optimization_step(self, loss, batch_idx)
            return None
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        split = SPLITS[dataloader_idx]
        if self.task.eval_needs_grad:
            with torch.enable_grad():
                out = self.task.eval_step(self.model, batch, split)
        else:
            out = self.task.eval_step(self.model, batch, split)
        self.recorder.collect(dataloader_idx, out)

    def _gather(self, outputs):
        several = self.trainer is not None and self.trainer.world_size > 1
        return concat_sorted(outputs, self.all_gather if several else None)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.recorder.outputs = {}
            return
        # Lightning reduces epoch-level training logs only after this validation; use our own
        # running mean of the epoch that just trained (rank 0's samples under DDP).
        self._flush_loss()
        lr = float(self.trainer.optimizers[0].param_groups[0]["lr"]) \
            if self.trainer.optimizers else math.nan
        row = self.recorder.end_epoch(self.current_epoch, mean_loss(*self._epoch_loss), lr,
                                      gather=self._gather)
        metric = self.task.metric
        self.log(f"val/{metric}", row[f"valid_{metric}"], sync_dist=False, rank_zero_only=False)
        if "valid_loss" in row:
            self.log("val/loss", row["valid_loss"], sync_dist=False, rank_zero_only=False)
        if f"test_{metric}" in row:
            self.log(f"test/{metric}", row[f"test_{metric}"], rank_zero_only=False)
        if self.loop is not None:
            self.loop.on_epoch_end(self)

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self):
        opt = build_optimizer(self.optim_cfg, self.model.parameters())
        self.schedule = build_schedule(self.sched_cfg, opt, self.max_epochs,
                                       self.task.higher_is_better)
        return self.schedule.lightning(opt, self.task.metric)

    def clip_configured_gradients(self, optimizer) -> None:
        """The config's ``trainer.gradient_clip_val`` / ``gradient_clip_algorithm`` (strategies
        that own the steps call this; Lightning does it itself otherwise)."""
        if self.clip is not None and self.clip[0]:
            self.clip_gradients(optimizer, gradient_clip_val=self.clip[0],
                                gradient_clip_algorithm=self.clip[1] or "norm")

    def step_batch_schedules(self) -> None:
        """Step-interval schedule steps under manual optimisation."""
        if self.schedule is not None and self.schedule.scheduler is not None and \
                self.schedule.interval == "step":
            self.schedule.scheduler.step()

    def step_epoch_schedules(self, plateau: bool) -> None:
        """Epoch-interval schedule steps under manual optimisation, at the points where
        Lightning takes them in automatic optimisation: rules that watch a validation value
        (``plateau=True``) after the epoch's evaluation, the others after its last training
        batch, before the evaluation."""
        s = self.schedule
        if s is None or s.scheduler is None or s.interval != "epoch" or \
                (s.monitor is not None) != plateau:
            return
        s.step_epoch(self.recorder.monitored(s.watches_loss) if plateau else None)

    def is_last_batch(self, batch_idx: int) -> bool:
        return batch_idx + 1 >= self.trainer.num_training_batches

    # -- checkpoint state --------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        checkpoint["graphlab"] = self.recorder.state_dict()

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        st = checkpoint.get("graphlab")
        if st is not None:
            self._resume_rng = self.recorder.load_state_dict(st)
