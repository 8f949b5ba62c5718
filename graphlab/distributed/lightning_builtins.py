"""Lightning's built-in strategies, reachable by their Lightning names (``ddp``, ``fsdp``,
``deepspeed_stage_2``, ``single_device``, ... and ``auto``) as :class:`LightningStrategy`
entries of :data:`graphlab.registry.STRATEGIES`. Options (``{name: ddp,
find_unused_parameters: true}``) are the Lightning class's constructor arguments."""
from __future__ import annotations

from functools import partial

from lightning.pytorch.strategies import StrategyRegistry

from graphlab.distributed.base import LightningStrategy
from graphlab.registry import STRATEGIES

STRATEGIES.register("auto", partial(LightningStrategy, "auto"), schema_of=None)
for _name, _data in StrategyRegistry.items():
    STRATEGIES.register(_name, partial(LightningStrategy, _name),
                        schema_of=_data["strategy"], fixed=tuple(_data["init_params"]))
