"""The model contract: what the trainer asks of every registered model, written down once.

A model is a ``torch.nn.Module`` registered with :func:`graphlab.register_model` whose

* constructor takes ``in_channels`` and ``out_channels`` (required), the other arguments the
  task injects from the dataset where it uses them (``task_level``: ``'graph'`` or
  ``'node'``; ``node_encoder`` / ``edge_encoder``: input kinds of
  :mod:`graphlab.nn.encoders`; ``edge_dim``; ``num_users`` / ``num_items`` for
  recommendation; ``metadata`` / ``target`` for heterographs:
  :data:`graphlab.schema.INJECTED_MODEL_ARGS`), and hyperparameters as keyword
  arguments with defaults (the config schema: type hints, ``Annotated`` value constraints);
* ``forward(data)`` takes a PyG ``Data`` / ``Batch`` and returns a tensor:
  ``[num_graphs, out_channels]`` for ``task_level='graph'``, ``[num_nodes, out_channels]`` for
  ``'node'`` (embeddings ``[num_nodes, out_channels]`` for link prediction and
  recommendation);
* ``reset_parameters()`` re-initialises every parameter;
* optionally a class attribute ``task_levels`` (default: ``('graph', 'node')``) naming the
  levels it supports (pooling models: ``('graph',)``), any other raising a ``ValueError``;
* optionally ``training_loss(batch, out, loss) -> Tensor``: a model-owned loss
  (:mod:`graphlab.tasks.base`).

:func:`check_model_class` checks a class against the signature side of this;
``tests/test_model_contract.py`` runs it, and a forward pass, over the whole registry.
"""
from __future__ import annotations

from typing import List, Protocol, runtime_checkable

from torch import Tensor

from graphlab.schema import INJECTED_MODEL_ARGS, signature_schema

__all__ = ["GraphModel", "check_model_class", "REQUIRED_ARGS"]

REQUIRED_ARGS = ("in_channels", "out_channels")


@runtime_checkable
class GraphModel(Protocol):
    """The structural type of a graphlab model (see the module docstring)."""

    def forward(self, data) -> Tensor: ...

    def reset_parameters(self) -> None: ...


def check_model_class(cls) -> List[str]:
    """What ``cls`` violates of the contract's signature side (empty: nothing)."""
    problems = []
    schema = signature_schema(cls)
    for name in REQUIRED_ARGS:
        if name not in schema:
            problems.append(f"constructor lacks '{name}'")
    for name, p in schema.items():
        if p.required and name not in REQUIRED_ARGS:
            problems.append(f"hyperparameter '{name}' has no default")
        if name in INJECTED_MODEL_ARGS and name not in REQUIRED_ARGS and p.required:
            problems.append(f"injected argument '{name}' has no default")
    for method in ("forward", "reset_parameters"):
        if not callable(getattr(cls, method, None)):
            problems.append(f"no {method}()")
    return problems
