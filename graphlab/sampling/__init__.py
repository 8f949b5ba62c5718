"""graphlab.sampling: directed graph samples that keep degree structure.

``sample_directed(data, ratio, method='jdm', seed=0)`` (also the transform ``DirectedSample``)
builds a sample from the linearly rescaled joint degree matrix (JDM) and degree correlation
matrix (DCM) of a directed graph, or draws one of the baseline subgraphs. Modules:
``degree_matrices`` (JDM, DCM), ``rescale`` (rescaling and realisability repair),
``construct`` (directed 2K construction), ``baselines`` (random node / edge / walk, forest
fire), ``metrics`` (KS, JDM/DCM deviation, clustering, reciprocity), ``compare`` (all methods
side by side), ``sample`` (the API), ``cli`` (``graphlab sample``). Method page:
``configs/sampling/README.md``.

The PyG-facing names (``sample_directed``, ``DirectedSample``, ``METHODS``) load on first use,
so ``graphlab --help`` does not import PyG.
"""
from importlib import import_module

from graphlab.sampling.construct import Construction, construct
from graphlab.sampling.degree_matrices import DegreeMatrices, degree_matrices, simple_directed
from graphlab.sampling.rescale import (Realisability, RescaledTarget, check_realisable,
                                       is_digraphic, rescale)

_LAZY = ("sample_directed", "DirectedSample", "METHODS")

__all__ = ["sample_directed", "DirectedSample", "METHODS", "DegreeMatrices", "degree_matrices",
           "simple_directed", "rescale", "RescaledTarget", "Realisability", "check_realisable",
           "is_digraphic", "construct", "Construction"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'graphlab.sampling' has no attribute {name!r}")
    return getattr(import_module("graphlab.sampling.sample"), name)
