"""Public sparse message-passing functions (edge order in, edge order out).

Every function takes ``edge_index_or_csr``: a ``(2, E)`` edge index (``edge_index[0]`` =
source ``j``, ``edge_index[1]`` = target ``i``; a PyG ``EdgeIndex`` works too) or a
:class:`~graphlab.kernels.CSR` from :func:`~graphlab.kernels.to_csr`. Per-edge tensors
(``edge_weight``, ``src``, ``logits`` and the output of :func:`sddmm`) are in the order of
that edge index. The sorted CSR and its transpose are built once per edge-index tensor and cached.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from graphlab.kernels import ops
from graphlab.kernels.csr import CSR, to_csr

NumNodes = Optional[Union[int, Tuple[int, int]]]
REDUCES = ("sum", "mean", "max")


def _csr(edge_index_or_csr, num_nodes: NumNodes, num_src_default: Optional[int]) -> CSR:
    if num_nodes is None and num_src_default is not None and not isinstance(edge_index_or_csr, CSR):
        num_nodes = num_src_default
    return to_csr(edge_index_or_csr, num_nodes)


class _Permute(torch.autograd.Function):
    """``t[perm]`` for a permutation, with the gather ``g[inv]`` as backward (the generic
    indexing backward is a sort-based scatter on CUDA)."""

    @staticmethod
    def forward(ctx, t: Tensor, perm: Tensor, inv: Tensor) -> Tensor:
        ctx.save_for_backward(inv)
        return t[perm]

    @staticmethod
    def backward(ctx, g: Tensor):
        (inv,) = ctx.saved_tensors
        return g[inv], None, None


def _permute(t: Tensor, perm: Tensor, inv: Tensor) -> Tensor:
    return _Permute.apply(t, perm, inv)


def _flat(t: Tensor) -> Tensor:
    """``(N, *)`` -> contiguous ``(N, prod(*))`` (also for N = 0)."""
    return t.reshape(t.size(0), math.prod(t.shape[1:])).contiguous()


def _check_float(name: str, t: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a Tensor, got {type(t)}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")


def _check_edge_tensor(name: str, t: Tensor, csr: CSR) -> None:
    _check_float(name, t)
    if t.dim() not in (1, 2) or t.size(0) != csr.num_edges:
        raise ValueError(f"{name} must have shape (E,) or (E, H) with E={csr.num_edges}, "
                         f"got {tuple(t.shape)}")


def spmm(edge_index_or_csr, x: Tensor, edge_weight: Optional[Tensor] = None, reduce: str = "sum",
         num_nodes: NumNodes = None) -> Tensor:
    r"""Sparse-dense product / neighbourhood reduction.

    .. math::
        \mathbf{out}_i = \bigoplus_{j \in \mathcal{N}(i)} w_{ji}\, \mathbf{x}_j,
        \qquad \bigoplus \in \{\textstyle\sum, \mathrm{mean}, \max\}

    Empty rows (isolated targets) give zeros. With ``edge_weight`` of shape ``(E, H)`` the
    features are split into ``H`` heads (``x`` of shape ``(N, H, C)`` or ``(N, H*C)``) and head
    ``h`` of every message is scaled by ``w[:, h]``.

    Args:
        edge_index_or_csr: ``(2, E)`` edge index or a :class:`CSR`.
        x: source features ``(N_src, *)``.
        edge_weight: optional ``(E,)`` or ``(E, H)`` weights (edge order); differentiable.
        reduce: ``'sum'`` (alias ``'add'``), ``'mean'`` or ``'max'``. Max keeps the winning edge
            per output entry, and its gradient flows to that edge only.
        num_nodes: number of nodes, or ``(num_src, num_dst)``; defaults to ``x.size(0)``.

    Shapes:
        ``x (N_src, *)``, ``edge_weight (E,) | (E, H)`` -> ``(N_dst, *)``.
    """
    reduce = "sum" if reduce == "add" else reduce
    if reduce not in REDUCES:
        raise ValueError(f"reduce must be one of {REDUCES}, got {reduce!r}")
    _check_float("x", x)
    if x.dim() < 2:
        raise ValueError(f"x must have shape (N, F) or (N, H, C), got {tuple(x.shape)}")
    csr = _csr(edge_index_or_csr, num_nodes, x.size(0))
    if x.size(0) != csr.num_src:
        raise ValueError(f"x has {x.size(0)} rows but the graph has {csr.num_src} source nodes")
    x2 = _flat(x)
    w = None
    if edge_weight is not None:
        _check_edge_tensor("edge_weight", edge_weight, csr)
        if edge_weight.dim() == 2 and x2.size(1) % edge_weight.size(1) != 0:
            raise ValueError(f"edge_weight has {edge_weight.size(1)} heads, which do not divide "
                             f"the {x2.size(1)} features of x")
        w = _permute(edge_weight, csr.perm, csr.inv_perm).to(x.dtype).contiguous()
    out, _ = ops.spmm_op(csr.rowptr, csr.col, csr.row, csr.colptr, csr.row_t, csr.col_t,
                         csr.perm_t, w, x2, reduce)
    return out.view(csr.num_dst, *x.shape[1:])


def sddmm(edge_index_or_csr, a: Tensor, b: Tensor, num_nodes: NumNodes = None) -> Tensor:
    r"""Sampled dense-dense product: one dot product per edge.

    .. math::
        \mathrm{out}_{(j,i)} = \langle \mathbf{a}_i, \mathbf{b}_j \rangle

    Args:
        edge_index_or_csr: ``(2, E)`` edge index or a :class:`CSR`.
        a: target-side features ``(N_dst, C)`` or ``(N_dst, H, C)`` (e.g. queries).
        b: source-side features of the same trailing shape (e.g. keys).
        num_nodes: defaults to ``(b.size(0), a.size(0))``.

    Shapes:
        ``(N_dst, C)`` / ``(N_src, C)`` -> ``(E,)``; ``(N, H, C)`` inputs -> ``(E, H)``.
    """
    _check_float("a", a)
    _check_float("b", b)
    if a.dim() not in (2, 3) or a.shape[1:] != b.shape[1:] or a.dtype != b.dtype:
        raise ValueError(f"a and b must both be (N, C) or (N, H, C) with equal trailing shape and "
                         f"dtype, got {tuple(a.shape)} {a.dtype} and {tuple(b.shape)} {b.dtype}")
    if num_nodes is None and not isinstance(edge_index_or_csr, CSR):
        num_nodes = (b.size(0), a.size(0))
    csr = to_csr(edge_index_or_csr, num_nodes)
    if a.size(0) != csr.num_dst or b.size(0) != csr.num_src:
        raise ValueError(f"a/b have {a.size(0)}/{b.size(0)} rows, the graph has "
                         f"{csr.num_dst} targets / {csr.num_src} sources")
    heads = a.size(1) if a.dim() == 3 else 1
    out = ops.sddmm_op(csr.rowptr, csr.row, csr.col, csr.colptr, csr.row_t, csr.col_t,
                       csr.perm_t, _flat(a),
                       _flat(b), heads)
    out = _permute(out, csr.inv_perm, csr.perm)
    return out if a.dim() == 3 else out.view(-1)


def segment_softmax(edge_index_or_csr, src: Tensor, num_nodes: NumNodes = None) -> Tensor:
    r"""Softmax of per-edge scores over every target node's incoming edges.

    .. math::
        \alpha_{(j,i)} = \frac{\exp s_{(j,i)}}{\sum_{k \in \mathcal{N}(i)} \exp s_{(k,i)}}

    Same result as ``torch_geometric.utils.softmax(src, edge_index[1])``.

    Args:
        edge_index_or_csr: ``(2, E)`` edge index or a :class:`CSR`.
        src: scores ``(E,)`` or ``(E, H)``, edge order.
        num_nodes: number of nodes (or ``(num_src, num_dst)``); defaults to
            ``edge_index.max() + 1`` (give it under ``torch.compile``).

    Shapes:
        ``(E,) | (E, H)`` -> same.
    """
    csr = to_csr(edge_index_or_csr, num_nodes)
    _check_edge_tensor("src", src, csr)
    s2 = _permute(_flat(src), csr.perm, csr.inv_perm).contiguous()
    out = _permute(ops.segment_softmax_op(csr.rowptr, csr.row, s2), csr.inv_perm, csr.perm)
    return out.view_as(src)


def sparse_attention(edge_index_or_csr, logits: Tensor, value: Tensor,
                     num_nodes: NumNodes = None) -> Tensor:
    r"""Fused multi-head sparse attention (GAT / graph-transformer aggregation).

    .. math::
        \mathbf{out}_{i,h} = \sum_{j \in \mathcal{N}(i)}
        \mathrm{softmax}_{j}\big(s_{(j,i),h}\big)\, \mathbf{v}_{j,h}

    Scores go through an online softmax and straight into the weighted sum, so neither the
    ``E x H x C`` weighted messages nor the attention matrix is stored; the backward pass
    recomputes the coefficients from the per-row log-sum-exp. Compute the scores with cheap
    ``E x H`` ops, e.g. transformer: ``sddmm(edge_index, q, k) / sqrt(C)``; for GAT scores
    ``leaky_relu(a_src[j] + a_dst[i])`` use :func:`gat_attention`, which builds them inside the
    kernel.

    Args:
        edge_index_or_csr: ``(2, E)`` edge index or a :class:`CSR`.
        logits: scores ``(E,)`` or ``(E, H)``, edge order; differentiable.
        value: source values ``(N_src, C)`` (one head) or ``(N_src, H, C)``; differentiable.
        num_nodes: defaults to ``value.size(0)``.

    Shapes:
        ``logits (E, H)``, ``value (N_src, H, C)`` -> ``(N_dst, H, C)``
        (``(E,)``, ``(N_src, C)`` -> ``(N_dst, C)``).
    """
    _check_float("value", value)
    csr = _csr(edge_index_or_csr, num_nodes, value.size(0))
    _check_edge_tensor("logits", logits, csr)
    heads = 1 if logits.dim() == 1 else logits.size(1)
    if value.dim() not in (2, 3) or (value.dim() == 3 and value.size(1) != heads) or \
            (value.dim() == 2 and heads != 1):
        raise ValueError(f"value must be (N, C) for (E,) logits or (N, H, C) for (E, H) logits, "
                         f"got value {tuple(value.shape)} and logits {tuple(logits.shape)}")
    if value.size(0) != csr.num_src:
        raise ValueError(f"value has {value.size(0)} rows but the graph has {csr.num_src} sources")
    lg = _permute(logits.reshape(logits.size(0), heads), csr.perm, csr.inv_perm)
    lg = lg.to(value.dtype).contiguous()
    out, _ = ops.sparse_attention_op(csr.rowptr, csr.col, csr.row, csr.colptr, csr.row_t,
                                     csr.col_t, csr.perm_t, lg,
                                     _flat(value), heads)
    return out.view(csr.num_dst, *value.shape[1:])


def gat_attention(edge_index_or_csr, x: Tensor, a_src: Tensor, a_dst: Tensor,
                  negative_slope: float = 0.2, num_nodes: NumNodes = None) -> Tensor:
    r"""GAT mode of :func:`sparse_attention`: the scores are computed inside the kernel.

    .. math::
        e_{(j,i),h} = \mathrm{LeakyReLU}\big(a^{\mathrm{src}}_{j,h} + a^{\mathrm{dst}}_{i,h}\big),
        \qquad
        \mathbf{out}_{i,h} = \sum_{j \in \mathcal{N}(i)} \mathrm{softmax}_j(e_{(j,i),h})\,
        \mathbf{x}_{j,h}

    (Veličković et al., "Graph Attention Networks", https://arxiv.org/abs/1710.10903; with
    ``a_src = (x * att_src).sum(-1)`` and ``a_dst = (x * att_dst).sum(-1)`` this is the
    aggregation of PyG's ``GATConv``.) The forward reads only the per-node terms and never
    builds an ``E x H`` tensor. Triton path: the backward is one pass over the cached transposed
    CSR (one program per source node and head), which recomputes the coefficients from the
    per-row log-sum-exp and gives the gradients of ``x`` and ``a_src`` as per-source sums and of
    ``a_dst`` by atomic adds (float32 accumulation; its last bits can differ between runs).
    Nodes without incoming edges get zeros; self-loops and duplicate edges count as edges.

    Args:
        edge_index_or_csr: ``(2, E)`` edge index or a :class:`CSR`.
        x: projected source features ``(N_src, H, C)`` (or ``(N_src, C)`` for one head).
        a_src: source score terms ``(N_src, H)`` (``(N_src,)`` for one head).
        a_dst: target score terms ``(N_dst, H)`` (``(N_dst,)`` for one head).
        negative_slope: slope of the leaky ReLU for negative scores.
        num_nodes: defaults to ``(x.size(0), a_dst.size(0))``.

    Shapes:
        ``x (N_src, H, C)``, ``a_src (N_src, H)``, ``a_dst (N_dst, H)`` -> ``(N_dst, H, C)``
        (``(N_src, C)``, ``(N_src,)``, ``(N_dst,)`` -> ``(N_dst, C)``).
    """
    for name, t in (("x", x), ("a_src", a_src), ("a_dst", a_dst)):
        _check_float(name, t)
    if x.dim() not in (2, 3):
        raise ValueError(f"x must be (N, H, C) or (N, C), got {tuple(x.shape)}")
    heads = x.size(1) if x.dim() == 3 else 1
    want = a_src.dim() == x.dim() - 1 and a_dst.dim() == x.dim() - 1 and \
        (x.dim() == 2 or (a_src.size(1) == heads and a_dst.size(1) == heads))
    if not want or a_src.size(0) != x.size(0):
        raise ValueError(f"a_src / a_dst must be (N_src, H) / (N_dst, H) for x (N_src, H, C) "
                         f"(or (N,) for x (N, C)), got a_src {tuple(a_src.shape)}, "
                         f"a_dst {tuple(a_dst.shape)}, x {tuple(x.shape)}")
    if not isinstance(negative_slope, (int, float)) or negative_slope != negative_slope:
        raise ValueError(f"negative_slope must be a number, got {negative_slope!r}")
    if num_nodes is None and not isinstance(edge_index_or_csr, CSR):
        num_nodes = (x.size(0), a_dst.size(0))
    csr = to_csr(edge_index_or_csr, num_nodes)
    if x.size(0) != csr.num_src or a_dst.size(0) != csr.num_dst:
        raise ValueError(f"x / a_dst have {x.size(0)} / {a_dst.size(0)} rows, the graph has "
                         f"{csr.num_src} sources / {csr.num_dst} targets")
    dt = x.dtype
    out, _ = ops.gat_attention_op(csr.rowptr, csr.col, csr.row, csr.colptr, csr.row_t,
                                  csr.col_t, csr.perm_t,
                                  a_src.reshape(-1, heads).to(dt).contiguous(),
                                  a_dst.reshape(-1, heads).to(dt).contiguous(), _flat(x), heads,
                                  float(negative_slope))
    return out.view(csr.num_dst, *x.shape[1:])
