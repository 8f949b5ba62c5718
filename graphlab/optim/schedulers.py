r"""Learning-rate schedules, registered in :data:`graphlab.registry.SCHEDULERS`.

A schedule is a factory ``f(optimizer, context, **options) -> Schedule``; its keyword
parameters are the ``scheduler`` section's schema. ``context`` carries what a schedule may
depend on besides its options: the run's ``max_epochs``, whether the metric is higher-better
and the optimizer's base rate. A new schedule is one decorated factory in a new file::

    @register_scheduler("exponential")
    def exponential(optimizer, context, gamma: Annotated[float, Range(gt=0)] = 0.95):
        return Schedule(torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma))

Both runners drive a :class:`Schedule` the same way: :meth:`Schedule.epoch_start` before each
training epoch (a hand-set warm-up), ``scheduler.step()`` after every batch (``interval:
step``) or epoch, with the watched validation value for ``ReduceLROnPlateau``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Dict, Optional

import torch

from graphlab.registry import register_scheduler
from graphlab.schema import Choice, Range

__all__ = ["Schedule", "ScheduleContext", "MONITORS"]

#: what the plateau rule may watch on the validation split: the task's metric or its loss
MONITORS = ("metric", "loss")


@dataclass(frozen=True)
class ScheduleContext:
    max_epochs: int
    higher_is_better: bool
    base_lr: float


@dataclass
class Schedule:
    """A built schedule: the torch scheduler (``None``: constant rate), when it steps, what it
    watches (``'metric'`` / ``'loss'`` for plateau rules) and a linear warm-up set by hand
    before each of the first ``warmup_epochs`` epochs (``lr * (e + 1) / W``)."""

    scheduler: Optional[Any] = None
    interval: str = "epoch"
    monitor: Optional[str] = None
    warmup_epochs: int = 0
    base_lr: float = 0.0

    def epoch_start(self, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        """Before epoch ``epoch``: the warm-up rate (overwriting a decay the plateau rule made
        during the ramp, as reference code that sets the rate by hand does)."""
        if self.warmup_epochs and epoch < self.warmup_epochs:
            lr = self.base_lr * (epoch + 1) / self.warmup_epochs
            for g in optimizer.param_groups:
                g["lr"] = lr

    @property
    def watches_loss(self) -> bool:
        return self.monitor == "loss"

    def step_epoch(self, value: Optional[float] = None) -> None:
        """One epoch-interval step; ``value`` is what a plateau rule watches."""
        if self.scheduler is None or self.interval != "epoch":
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(value)
        else:
            self.scheduler.step()

    def lightning(self, optimizer, metric: str):
        """What ``LightningModule.configure_optimizers`` returns for this schedule."""
        if self.scheduler is None:
            return optimizer
        spec: Dict[str, Any] = {"scheduler": self.scheduler, "interval": self.interval}
        if self.monitor is not None:
            spec["monitor"] = "val/loss" if self.watches_loss else f"val/{metric}"
        return {"optimizer": optimizer, "lr_scheduler": spec}


@register_scheduler("none")
def constant(optimizer, context: ScheduleContext) -> Schedule:
    """A constant rate."""
    return Schedule(base_lr=context.base_lr)


@register_scheduler("cosine")
def cosine(optimizer, context: ScheduleContext,
           warmup_epochs: Annotated[int, Range(ge=0)] = 0,
           min_lr: Annotated[float, Range(ge=0)] = 0.0) -> Schedule:
    r"""Linear warm-up over ``warmup_epochs`` (epoch :math:`e` at :math:`\frac{e+1}{W+1}` of
    the rate), then a half cosine from the base rate to ``min_lr`` at ``max_epochs``."""
    base, total = context.base_lr, max(context.max_epochs, 1)

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        t = (epoch - warmup_epochs) / max(1, total - warmup_epochs)
        return (min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * t))) / base
    return Schedule(torch.optim.lr_scheduler.LambdaLR(optimizer, factor), base_lr=base)


@register_scheduler("plateau")
def plateau(optimizer, context: ScheduleContext,
            factor: Annotated[float, Range(gt=0, lt=1)] = 0.5,
            patience: Annotated[int, Range(ge=0)] = 10,
            min_lr: Annotated[float, Range(ge=0)] = 0.0,
            monitor: Annotated[str, Choice(*MONITORS)] = "metric",
            warmup_epochs: Annotated[int, Range(ge=0)] = 0) -> Schedule:
    """``ReduceLROnPlateau`` on the validation ``metric`` (in its direction) or ``loss``,
    after an optional linear warm-up of ``warmup_epochs``."""
    mode = "min" if monitor == "loss" or not context.higher_is_better else "max"
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=factor,
                                                       patience=patience, min_lr=min_lr)
    return Schedule(sched, monitor=monitor, warmup_epochs=warmup_epochs,
                    base_lr=context.base_lr)


@register_scheduler("step")
def step(optimizer, context: ScheduleContext,
         step_size: Annotated[int, Range(ge=1)] = 50,
         gamma: Annotated[float, Range(gt=0)] = 0.5) -> Schedule:
    """The rate times ``gamma`` every ``step_size`` epochs."""
    return Schedule(torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size,
                                                    gamma=gamma), base_lr=context.base_lr)
