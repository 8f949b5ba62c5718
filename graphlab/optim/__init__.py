"""Optimizers and learning-rate schedules as registered training components.

:data:`graphlab.registry.OPTIMIZERS` holds every ``torch.optim`` optimizer by its lower-case
name (:mod:`graphlab.optim.torch_optimizers`) and graphlab's own;
:data:`graphlab.registry.SCHEDULERS` the schedules (:mod:`graphlab.optim.schedulers`). A new
optimizer is a ``torch.optim.Optimizer`` subclass registered with
``@register_optimizer("name")`` (``ensemble_exact=True`` where the seed ensemble may use it).
"""
from graphlab.optim import torch_optimizers as _torch_optimizers  # noqa: F401
from graphlab.optim.mfac import MFAC
from graphlab.optim.build import (build_optimizer, build_schedule, optimizer_schema,
                                  scheduler_schema)
from graphlab.optim.schedulers import MONITORS, Schedule, ScheduleContext
from graphlab.registry import OPTIMIZERS, SCHEDULERS, register_optimizer, register_scheduler

__all__ = ["MFAC", "OPTIMIZERS", "SCHEDULERS", "register_optimizer", "register_scheduler",
           "build_optimizer", "build_schedule", "optimizer_schema", "scheduler_schema",
           "Schedule", "ScheduleContext", "MONITORS"]
