r"""Positional / structural encodings: one config switch for every model.

Convention for models. A model that takes node positional encodings has three keyword
arguments (they come from the config's ``model:`` section)::

    pe: str = 'none'                 # 'spe' | 'signnet' | 'lap' | 'rwse' | 'rrwp' | 'none'
    pe_dim: int = 16                 # width of the encoding the model receives
    pe_kwargs: dict | None = None    # options of the encoder AND of its pre-transform

and builds ``self.pe = build_pe_encoder(pe, pe_dim, **(pe_kwargs or {}))`` (``None`` for
``'none'``). In ``forward`` it calls ``self.pe(data) -> [N, pe_dim]`` and combines it with the
node embedding, e.g. ``h = add_pe(h, data, self.pe, mode='concat')`` (GraphGPS style: encode
the node features to ``hidden - pe_dim`` and concatenate, see :func:`pe_channels`) or
``mode='add'`` (``pe_dim == hidden``).

The encoder reads attributes that a pre-transform stored on every graph;
:func:`graphlab.transforms.pe.pe_transform` ``(pe, **pe_kwargs)`` returns that transform
(``None`` for ``'none'``), so one
``pe_kwargs`` dict configures both: each function takes the keys its side accepts and ignores
the other side's; a key neither side knows is a ``ValueError`` (with ``pe='none'`` every key
is ignored). Shared keys: ``k`` (number of eigenpairs; spe/signnet/lap) and ``walk_length``
(rwse/rrwp). Whoever builds the dataset (the trainer, or a user) adds
``pe_transform(model.pe, **model.pe_kwargs)`` to its ``pre_transform`` (or ``transform``, to
compute on the fly in the loader).

============  ===========================================  ==================================
``pe``        pre-transform (stores)                       encoder
============  ===========================================  ==================================
``spe``       ``AddLaplacianEigen(k)`` (eigvals, eigvecs,  :class:`~graphlab.nn.SPE`
              eig_mask ``[N, k]``)
``signnet``   same                                         :class:`~graphlab.nn.SignNet`
``lap``       same                                         :class:`~graphlab.nn.LapPE`
``rwse``      ``AddRWSE(walk_length)`` (rwse ``[N, K]``)   :class:`RWSEEncoder` (linear)
``rrwp``      ``AddRRWP(walk_length)`` (rrwp ``[N, K]``,   :class:`RRWPNodeEncoder` (linear on
              rrwp_index ``[2, P]``, rrwp_val ``[P, K]``)  the diagonal; GRIT reads the pairs)
``none``      none                                         none
============  ===========================================  ==================================

Encoders are registered with :func:`graphlab.registry.register_encoding`; a new one needs
an ``nn.Module`` class ``Enc(out_channels, ...)`` with ``forward(data) -> [N, out_channels]``
registered there, and its pre-transform registered in
:data:`graphlab.registry.PE_TRANSFORMS` (:mod:`graphlab.transforms.pe`).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from graphlab.nn.lap_pe import LapPE
from graphlab.nn.signnet import SignNet
from graphlab.nn.spe import SPE
from graphlab.registry import ENCODINGS, PE_TRANSFORMS, register_encoding

#: Default RWSE walk length (GraphGPS ZINC/molecule configs: ``ksteps`` 1..20).
DEFAULT_RWSE_STEPS = 20
#: Default RRWP walk length (GRIT's ZINC config, LiamMa/GRIT ``configs/GRIT/zinc-GRIT-RRWP.yaml``:
#: ``ksteps`` 21).
DEFAULT_RRWP_STEPS = 21


class _LinearNodePE(nn.Module):
    """Linear map of a stored ``[N, K]`` node attribute (optionally BatchNorm'ed first)."""

    def __init__(self, out_channels: int, walk_length: int, attr_name: str, norm: str,
                 transform_name: str):
        super().__init__()
        if walk_length < 1:
            raise ValueError(f"walk_length must be >= 1, got {walk_length}")
        if norm not in ("none", "batch"):
            raise ValueError(f"norm={norm!r} is not one of 'none', 'batch'")
        self.out_channels, self.walk_length, self.attr_name = out_channels, walk_length, attr_name
        self._transform_name = transform_name
        self.norm = nn.BatchNorm1d(walk_length) if norm == "batch" else nn.Identity()
        self.lin = nn.Linear(walk_length, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if isinstance(self.norm, nn.BatchNorm1d):
            self.norm.reset_parameters()
        self.lin.reset_parameters()

    def forward(self, data) -> Tensor:
        x = getattr(data, self.attr_name, None)
        if x is None:
            raise ValueError(f"{type(self).__name__} needs data.{self.attr_name}; add "
                             f"graphlab.transforms.{self._transform_name}(walk_length="
                             f"{self.walk_length}) to the dataset's pre_transform")
        if x.dim() != 2 or x.size(1) != self.walk_length:
            raise ValueError(f"data.{self.attr_name} has shape {tuple(x.shape)}, expected "
                             f"[N, walk_length={self.walk_length}]")
        return self.lin(self.norm(x.to(self.lin.weight.dtype)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.walk_length}, {self.out_channels})"


class RWSEEncoder(_LinearNodePE):
    r"""Random-walk structural encoding (Dwivedi et al., "Graph Neural Networks with Learnable
    Structural and Positional Representations", ICLR 2022, https://arxiv.org/abs/2110.07875):
    :math:`\mathrm{PE}_u = W[M_{uu}, \dots, M^K_{uu}] + b`, read from ``data.rwse``.

    Args:
        out_channels (int): output width.
        walk_length (int): :math:`K` (default: ``20``, GraphGPS molecule configs).
        attr_name (str): attribute read (default: ``'rwse'``).
        norm (str): ``'none'`` or ``'batch'`` (BatchNorm on the raw values first, GraphGPS's
            ``raw_norm_type``) (default: ``'none'``).

    Shapes: ``data.rwse (|V|, K)`` -> ``(|V|, out_channels)``.
    """

    def __init__(self, out_channels: int, walk_length: int = DEFAULT_RWSE_STEPS,
                 attr_name: str = "rwse", norm: str = "none"):
        super().__init__(out_channels, walk_length, attr_name, norm, "AddRWSE")


class RRWPNodeEncoder(_LinearNodePE):
    r"""Node part of GRIT's relative random-walk probabilities (Ma et al., "Graph Inductive
    Biases in Transformers without Message Passing", ICML 2023,
    https://arxiv.org/abs/2305.17589): :math:`\mathrm{PE}_u = W[I_{uu}, M_{uu}, \dots,
    M^{K-1}_{uu}] + b`, read from ``data.rrwp``. The pair part (``rrwp_index``, ``rrwp_val``)
    is consumed by GRIT itself.

    Args:
        out_channels (int): output width.
        walk_length (int): :math:`K` (default: ``21``, GRIT's ZINC config).
        attr_name (str): attribute read (default: ``'rrwp'``).
        norm (str): ``'none'`` or ``'batch'`` (default: ``'none'``).

    Shapes: ``data.rrwp (|V|, K)`` -> ``(|V|, out_channels)``.
    """

    def __init__(self, out_channels: int, walk_length: int = DEFAULT_RRWP_STEPS,
                 attr_name: str = "rrwp", norm: str = "none"):
        super().__init__(out_channels, walk_length, attr_name, norm, "AddRRWP")


def _no_pe(out_channels: int) -> None:
    """``pe: none``: no encoder."""
    return None


register_encoding("spe")(SPE)
register_encoding("signnet")(SignNet)
register_encoding("lap")(LapPE)
register_encoding("rwse")(RWSEEncoder)
register_encoding("rrwp")(RRWPNodeEncoder)
register_encoding("none")(_no_pe)


def _params(fn) -> set:
    sig = inspect.signature(fn)
    return {p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def encoder_and_transform_kwargs(name: str, kwargs: Dict[str, Any]
                                 ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(encoder kwargs, transform kwargs)``; unknown keys are a ``ValueError``."""
    key = str(name).lower()
    enc = ENCODINGS.get(key)
    if key == "none":  # so that switching a config to pe: none needs no other edit
        return {}, {}
    if key not in PE_TRANSFORMS:
        raise ValueError(f"pe={name!r} has no pre-transform registered in "
                         "graphlab.registry.PE_TRANSFORMS")
    enc_keys = _params(enc) - {"out_channels"}
    tf_keys = _params(PE_TRANSFORMS.get(key).__init__) - {"self"}
    unknown = set(kwargs) - enc_keys - tf_keys
    if unknown:
        raise ValueError(f"pe_kwargs for pe={name!r} has unknown keys {sorted(unknown)}; the "
                         f"encoder accepts {sorted(enc_keys)}, the transform {sorted(tf_keys)}")
    return ({k: v for k, v in kwargs.items() if k in enc_keys},
            {k: v for k, v in kwargs.items() if k in tf_keys})


def build_pe_encoder(name: str, out_channels: int, **kwargs: Any) -> Optional[nn.Module]:
    """The learnable encoder registered as ``name``, with ``forward(data) -> [N, out_channels]``
    (``None`` for ``'none'``). ``kwargs`` may also hold the pre-transform's options (ignored
    here), see the module docstring."""
    enc_kwargs, _ = encoder_and_transform_kwargs(name, kwargs)
    if str(name).lower() == "none":
        return None
    if int(out_channels) < 1:
        raise ValueError(f"out_channels (pe_dim) must be >= 1, got {out_channels}")
    return ENCODINGS.get(name)(int(out_channels), **enc_kwargs)


def pe_channels(name: str, pe_dim: int) -> int:
    """Width the encoding adds: ``0`` for ``'none'``, else ``pe_dim``."""
    return 0 if str(name).lower() == "none" else int(pe_dim)


def add_pe(x: Tensor, data, encoder: Optional[nn.Module], mode: str = "concat") -> Tensor:
    """Combines node embeddings ``x [N, H]`` with ``encoder(data) [N, P]``: ``'concat'`` ->
    ``[N, H + P]``, ``'add'`` -> ``[N, H]`` (needs ``P == H``). ``encoder=None`` returns ``x``."""
    if mode not in ("concat", "add"):
        raise ValueError(f"mode={mode!r} is not one of 'concat', 'add'")
    if encoder is None:
        return x
    pe = encoder(data)
    if pe.dim() != 2 or pe.size(0) != x.size(0):
        raise ValueError(f"PE encoder returned {tuple(pe.shape)} for {x.size(0)} nodes")
    pe = pe.to(x.dtype)
    if mode == "add":
        if pe.size(1) != x.size(1):
            raise ValueError(f"mode='add' needs pe_dim == hidden width, got {pe.size(1)} and "
                             f"{x.size(1)}")
        return x + pe
    return torch.cat([x, pe], dim=-1)
