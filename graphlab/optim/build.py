"""Optimizers and schedules from config sections, through the registries that validation
reads (one table, validated and executed)."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping

import torch

from graphlab.optim.schedulers import Schedule, ScheduleContext
from graphlab.registry import OPTIMIZERS, SCHEDULERS
from graphlab.schema import Param, signature_schema

__all__ = ["build_optimizer", "build_schedule", "optimizer_schema", "scheduler_schema"]


def optimizer_schema(name: str) -> Dict[str, Param]:
    """The ``optim`` section's keys for optimizer ``name`` (its constructor, less ``params``)."""
    return signature_schema(OPTIMIZERS.get(name), skip=("params",),
                            constraints=OPTIMIZERS.meta(name).get("constraints"))


def scheduler_schema(name: str) -> Dict[str, Param]:
    """The ``scheduler`` section's keys for schedule ``name`` (its factory's options)."""
    return signature_schema(SCHEDULERS.get(name), skip=("optimizer", "context"))


def build_optimizer(cfg: Mapping[str, Any], params: Iterable[torch.Tensor]
                    ) -> torch.optim.Optimizer:
    """``{name: adam, lr: 1e-3, ...}`` -> ``torch.optim.Adam(params, lr=1e-3, ...)``."""
    kwargs = dict(cfg)
    return OPTIMIZERS.get(kwargs.pop("name", "adam"))(params, **kwargs)


def build_schedule(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer, max_epochs: int,
                   higher_is_better: bool) -> Schedule:
    """``{name: cosine, warmup_epochs: 5}`` -> the :class:`Schedule` of that factory."""
    kwargs = dict(cfg or {})
    ctx = ScheduleContext(max_epochs=int(max_epochs), higher_is_better=higher_is_better,
                          base_lr=float(optimizer.param_groups[0]["lr"]))
    return SCHEDULERS.get(kwargs.pop("name", "none"))(optimizer, ctx, **kwargs)
