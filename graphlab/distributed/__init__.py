"""Distributed training components as registered strategies on ``torch.distributed``.

See :mod:`graphlab.distributed.base` for the contract (Lightning strategies, DDP communication
hooks, outer loops that own the optimisation steps) and
:mod:`graphlab.distributed.lightning_builtins` for Lightning's own strategies by name.
"""
from graphlab.distributed import lightning_builtins as _lightning_builtins  # noqa: F401
from graphlab.distributed.base import (CommHookStrategy, LightningStrategy, LoopStrategy,
                                       Strategy, resolve)
from graphlab.registry import STRATEGIES, register_strategy

__all__ = ["STRATEGIES", "register_strategy", "Strategy", "LightningStrategy",
           "CommHookStrategy", "LoopStrategy", "resolve"]
