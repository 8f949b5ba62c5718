"""The pre-transform of each positional encoding: what it stores for the encoder to read.

Each encoding name of :data:`graphlab.registry.ENCODINGS` has its pre-transform class
registered in :data:`graphlab.registry.PE_TRANSFORMS`, with the defaults below; the data
pipeline adds ``pe_transform(pe, **pe_kwargs)`` to a dataset's ``pre_transform`` (or
``transform``). See :mod:`graphlab.nn.pe` for the encoders and the shared ``pe_kwargs``.
"""
from __future__ import annotations

from typing import Any

from graphlab.nn.pe import DEFAULT_RRWP_STEPS, DEFAULT_RWSE_STEPS, encoder_and_transform_kwargs
from graphlab.registry import PE_TRANSFORMS, register_pe_transform
from graphlab.transforms.laplacian import AddLaplacianEigen
from graphlab.transforms.rrwp import AddRRWP, AddRWSE

__all__ = ["pe_transform", "DEFAULT_K"]

#: Default number of eigenpairs (chosen: covers most of the spectrum of molecule-sized graphs;
#: the SPE paper's ZINC runs use 37, all eigenpairs of the largest ZINC graph).
DEFAULT_K = 16

for _name in ("spe", "signnet", "lap"):
    register_pe_transform(_name, defaults={"k": DEFAULT_K})(AddLaplacianEigen)
register_pe_transform("rwse", defaults={"walk_length": DEFAULT_RWSE_STEPS})(AddRWSE)
register_pe_transform("rrwp", defaults={"walk_length": DEFAULT_RRWP_STEPS})(AddRRWP)


def pe_transform(name: str, **kwargs: Any):
    """The pre-transform that stores what encoder ``name`` reads (``None`` for ``'none'``).
    ``kwargs`` are the model's ``pe_kwargs``: the transform takes its own keys and ignores the
    encoder's; a key neither knows is a ``ValueError``."""
    _, tf_kwargs = encoder_and_transform_kwargs(name, kwargs)
    key = str(name).lower()
    if key == "none":
        return None
    meta = PE_TRANSFORMS.meta(key)
    return PE_TRANSFORMS.get(key)(**{**meta.get("defaults", {}), **tf_kwargs})

