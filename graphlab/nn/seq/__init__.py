"""Sequence cores: ``forward(x [B, L, D], mask [B, L] | None) -> [B, L, D]`` (causal, right-padded)."""
from typing import Any

from graphlab.nn.seq.base import SequenceCore, reverse_within_length
from graphlab.nn.seq.bidirectional import Bidirectional
from graphlab.nn.seq.mamba import Mamba
from graphlab.nn.seq.s4d import S4D, S4PTD
from graphlab.nn.seq.s5 import S5, S5PTD
from graphlab.nn.seq.deltaproduct import DeltaProduct
from graphlab.nn.seq.deltanet import DeltaNet


def build_seq_core(name: str, d_model: int, bidirectional: bool = False, merge: str = "add",
                   **kwargs: Any):
    """Builds the core registered as ``name`` (``graphlab.registry.SEQ_CORES``) with ``kwargs``;
    with ``bidirectional=True``, two independent cores wrapped in :class:`Bidirectional`."""
    from graphlab.registry import SEQ_CORES
    cls = SEQ_CORES.get(name)
    if not bidirectional:
        return cls(d_model, **kwargs)
    return Bidirectional(cls(d_model, **kwargs), cls(d_model, **kwargs), merge=merge)


__all__ = [
    "SequenceCore", "Bidirectional", "build_seq_core", "reverse_within_length",
    "Mamba", "S4D", "S4PTD", "S5", "S5PTD", "DeltaNet", "DeltaProduct",
]
