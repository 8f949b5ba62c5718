"""Vectorised seed ensembles: the seeds of one small model trained as a single module.

For small models (a few hundred thousand parameters) a GPU step is bound by kernel launches, not
arithmetic, so ``K`` seeds cost little more than one when their parameters are stacked along a
new leading dimension and the model is mapped over it with :func:`torch.func.vmap`
(:func:`torch.func.stack_module_state` + :func:`torch.func.functional_call`).

Member ``k`` starts from exactly the weights that a separate run with ``seeds[k]`` builds (the
trainer seeds with ``lightning.seed_everything(seed)`` before building the model), and its
gradients are those of its own loss (the ensemble loss is the *sum* of the members' losses), so
with an element-wise optimizer (SGD, Adam, AdamW) each member follows its separate run within
float tolerance, provided that

* every member sees the same batches (one data order for the ensemble: the separate runs to
  compare with must use that order too), and
* the model is deterministic given its input (no dropout, or dropout 0): vmap draws random
  numbers differently from a plain run. ``randomness='different'`` allows stochastic layers,
  with independent draws per member that are not those of the separate runs.

Global operations across parameters (gradient clipping by total norm, LR schedulers reading a
shared metric) must be applied per member by the caller.

>>> ens = SeedEnsemble.from_seeds(lambda: GIN(9, 2, dropout=0.0), seeds=range(10))
>>> opt = torch.optim.Adam(ens.parameters(), lr=1e-3)
>>> out = ens(batch)                       # [10, num_graphs, 2]
>>> losses = member_losses(F.cross_entropy, out, batch.y)   # [10]
>>> losses.sum().backward(); opt.step()
>>> model_3 = ens.member(3)                 # a plain module with seed 3's weights
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["SeedEnsemble", "member_losses", "seed_everything"]


def seed_everything(seed: int) -> None:
    """The trainer's seeding before it builds a model (``graphlab.train.run.run_seed``)."""
    import lightning as L
    L.seed_everything(seed, workers=True, verbose=False)


def _safe(name: str) -> str:
    return name.replace(".", "__")


class SeedEnsemble(torch.nn.Module):
    r"""``K`` copies of one architecture with stacked parameters, evaluated with ``vmap``.

    Args:
        models (sequence of torch.nn.Module): the members; same class, parameter names and
            shapes (e.g. one constructor called under ``K`` seeds).
        seeds (sequence of int, optional): the seed of each member, kept for reports.
        randomness (str): ``vmap``'s handling of random operations inside the model:
            ``'error'`` (default: refuse them, so members equal separate runs), ``'different'``
            (independent draws per member) or ``'same'`` (one draw shared by all members).

    The inputs of :meth:`forward` are shared by all members (the same batch); outputs gain a
    leading member dimension. ``train()`` / ``eval()`` switch every member.

    Shapes:
        ``forward(*inputs)`` -> ``(K, *model_output_shape)``.
    """

    def __init__(self, models: Sequence[torch.nn.Module], seeds: Optional[Sequence[int]] = None,
                 randomness: str = "error"):
        super().__init__()
        models = list(models)
        if len(models) < 1:
            raise ValueError("'models': need at least one member")
        if randomness not in ("error", "different", "same"):
            raise ValueError(f"'randomness' must be 'error', 'different' or 'same', got "
                             f"{randomness!r}")
        first = dict(models[0].named_parameters())
        for k, m in enumerate(models[1:], 1):
            if type(m) is not type(models[0]) or \
                    {n: p.shape for n, p in m.named_parameters()} != \
                    {n: p.shape for n, p in first.items()}:
                raise ValueError(f"'models': member {k} does not have member 0's architecture")
        if seeds is not None and len(list(seeds)) != len(models):
            raise ValueError(f"'seeds': {len(list(seeds))} seeds for {len(models)} models")
        self.seeds: Optional[List[int]] = None if seeds is None else [int(s) for s in seeds]
        self.randomness = randomness
        params, buffers = stack_module_state(models)
        self._param_names = list(params)
        self._buffer_names = list(buffers)
        self.stacked = torch.nn.ParameterDict(
            {_safe(n): torch.nn.Parameter(p.detach().clone()) for n, p in params.items()})
        for n, b in buffers.items():
            self.register_buffer("stacked_buffer__" + _safe(n), b.detach().clone())
        # The skeleton whose code runs; kept outside the module tree (its weights live above).
        base = copy.deepcopy(models[0]).to("meta")
        self._base = [base]
        self.train(models[0].training)

    @classmethod
    def from_seeds(cls, make_model: Callable[[], torch.nn.Module], seeds: Iterable[int],
                   seed_fn: Callable[[int], None] = seed_everything,
                   randomness: str = "error") -> "SeedEnsemble":
        """Build member ``k`` with ``seed_fn(seeds[k]); make_model()``: the initial weights of
        separate runs seeded the trainer's way."""
        seeds = [int(s) for s in seeds]
        models = []
        for s in seeds:
            seed_fn(s)
            models.append(make_model())
        return cls(models, seeds=seeds, randomness=randomness)

    @property
    def num_members(self) -> int:
        return next(iter(self.stacked.values())).size(0)

    def train(self, mode: bool = True) -> "SeedEnsemble":
        super().train(mode)
        self._base[0].train(mode)
        return self

    def _state(self):
        params = {n: self.stacked[_safe(n)] for n in self._param_names}
        buffers = {n: getattr(self, "stacked_buffer__" + _safe(n)) for n in self._buffer_names}
        return params, buffers

    def forward(self, *args, **kwargs):
        base = self._base[0]

        def one(p: Dict[str, Tensor], b: Dict[str, Tensor]):
            return functional_call(base, (p, b), args, kwargs)

        params, buffers = self._state()
        try:
            return vmap(one, in_dims=(0, 0), randomness=self.randomness)(params, buffers)
        except RuntimeError as e:
            if "randomness" in str(e) and self.randomness == "error":
                raise ValueError("the model draws random numbers (dropout?) and 'randomness' is "
                                 "'error': set dropout to 0 for members that equal separate "
                                 "runs, or pass randomness='different'") from e
            raise

    @torch.no_grad()
    def member(self, k: int) -> torch.nn.Module:
        """Member ``k`` as a plain module (a copy), e.g. for per-seed checkpoints."""
        if not 0 <= k < self.num_members:
            raise ValueError(f"'k': member {k} of {self.num_members}")
        params, buffers = self._state()
        module = copy.deepcopy(self._base[0]).to_empty(device=next(iter(params.values())).device)
        for n, t in params.items():
            module.get_parameter(n).copy_(t[k])
        for n, t in buffers.items():
            module.get_buffer(n).copy_(t[k])
        return module.train(self.training)


def member_losses(loss_fn: Callable[[Tensor, Tensor], Tensor], outputs: Tensor,
                  target: Tensor) -> Tensor:
    """``[K]``: ``loss_fn(outputs[k], target)`` per member (target shared). Back-propagate their
    sum: member ``k``'s gradient is then that of its own loss, as in a separate run."""
    return torch.stack([loss_fn(outputs[k], target) for k in range(outputs.size(0))])
