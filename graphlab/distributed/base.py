"""The strategy contract: how optimisation steps are taken and combined across workers.

``trainer.strategy`` names a strategy registered in :data:`graphlab.registry.STRATEGIES`, as a
string or as ``{name: ..., **options}`` (the options are the strategy class's keyword
parameters, validated like a model's). One contract covers three kinds:

* :class:`LightningStrategy`: a Lightning ``Strategy`` (a built-in by name, ``ddp``,
  ``fsdp``, ... all registered here, or a subclass defined in code). Lightning runs the steps.
* :class:`CommHookStrategy`: DDP with a communication hook that combines the workers'
  gradient buckets (robust aggregation, compression): ``hook(state, bucket) -> Future``, as
  :meth:`torch.nn.parallel.DistributedDataParallel.register_comm_hook` takes it, on every
  device type (Lightning registers hooks on CUDA only).
* :class:`LoopStrategy`: an outer loop that owns the optimisation steps (local SGD with
  periodic averaging, gossip, block coordinate descent): the module switches to manual
  optimisation and calls :meth:`LoopStrategy.optimization_step` after each training loss,
  :meth:`LoopStrategy.on_epoch_end` after each evaluated epoch and
  :meth:`LoopStrategy.on_fit_end` once training stops.

A new strategy is a subclass of one of these in a new file, registered with
``@register_strategy("name")``. The vmapped seed ensemble takes none of them (one device).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Union

import torch

__all__ = ["Strategy", "LightningStrategy", "CommHookStrategy", "LoopStrategy"]


class Strategy:
    """Base class: what the trainer asks of a strategy."""

    #: True when the strategy takes the optimisation steps itself (manual optimisation)
    owns_steps: bool = False

    def lightning_strategy(self) -> Union[str, Any]:
        """What ``lightning.Trainer(strategy=...)`` gets."""
        return "auto"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LightningStrategy(Strategy):
    """A Lightning strategy: a registered built-in's name (``'ddp'``, ``'fsdp'``, ...) with
    optional constructor arguments, or a ``lightning.pytorch.strategies.Strategy`` instance."""

    def __init__(self, strategy: Union[str, Any] = "auto", **kwargs: Any):
        self.strategy, self.kwargs = strategy, kwargs

    def lightning_strategy(self):
        if not isinstance(self.strategy, str) or not self.kwargs:
            return self.strategy
        from lightning.pytorch.strategies import StrategyRegistry
        data = StrategyRegistry[self.strategy]
        return data["strategy"](**{**data["init_params"], **self.kwargs})

    def __repr__(self) -> str:
        return f"LightningStrategy({self.strategy!r})"


class CommHookStrategy(Strategy):
    """Data-parallel training whose gradient all-reduce is replaced by :meth:`hook`.

    Subclasses implement ``hook(state, bucket) -> torch.futures.Future[Tensor]`` (see
    ``torch.distributed.algorithms.ddp_comm_hooks``) and may override :meth:`state`.

    Args:
        ddp_kwargs: further ``DDPStrategy`` arguments (``process_group_backend``, ...).
    """

    def __init__(self, ddp_kwargs: Optional[Dict[str, Any]] = None):
        self.ddp_kwargs = dict(ddp_kwargs or {})

    def hook(self, state: Any, bucket: "torch.distributed.GradBucket"):  # pragma: no cover
        raise NotImplementedError

    def state(self) -> Any:
        """The ``state`` the hook receives (default: ``None``, the default process group)."""
        return None

    def lightning_strategy(self):
        from lightning.pytorch.strategies import DDPStrategy
        outer = self

        class _HookedDDP(DDPStrategy):
            def _register_ddp_hooks(self) -> None:
                self.model.register_comm_hook(outer.state(), outer.hook)

        return _HookedDDP(**self.ddp_kwargs)


class LoopStrategy(Strategy):
    """An outer loop that takes the optimisation steps.

    The default :meth:`optimization_step` is one plain step (zero the gradients, backward,
    the config's gradient clipping, optimiser step, the schedule's steps where Lightning's
    automatic optimisation takes them), so a subclass overrides only what it changes; plateau
    schedules step in :meth:`on_epoch_end`, after the epoch's evaluation.
    """

    owns_steps = True

    def lightning_strategy(self):
        return "auto"

    def setup(self, module) -> None:
        """Called once when training starts (``module``: the Lightning module)."""

    def optimization_step(self, module, loss: torch.Tensor, batch_idx: int) -> None:
        opt = module.optimizers()
        opt.zero_grad()
        module.manual_backward(loss)
        module.clip_configured_gradients(opt)
        opt.step()
        module.step_batch_schedules()
        if module.is_last_batch(batch_idx):
            module.step_epoch_schedules(plateau=False)

    def on_epoch_end(self, module) -> None:
        """After the epoch's evaluation: step the schedules that watch it."""
        module.step_epoch_schedules(plateau=True)

    def on_fit_end(self, module) -> None:
        """After the last epoch (e.g. a final merge of the workers' models)."""


def resolve(spec: Union[None, str, Dict[str, Any], Strategy]) -> Strategy:
    """A :class:`Strategy` from ``trainer.strategy`` (a name, ``{name, **options}`` or an
    instance)."""
    from graphlab.registry import STRATEGIES
    if isinstance(spec, Strategy):
        return spec
    if spec is None:
        return STRATEGIES.get("auto")()
    if isinstance(spec, str):
        return STRATEGIES.get(spec)()
    if not isinstance(spec, dict):  # a Lightning Strategy instance built in code
        return LightningStrategy(spec)
    kwargs = dict(spec)
    return STRATEGIES.get(kwargs.pop("name"))(**kwargs)

