"""Obviously-correct references (plain loops over nodes), used by the tests and the benchmark.

They take the original ``edge_index`` (``edge_index[0]`` = source ``j``, ``edge_index[1]`` =
target ``i``) and edge tensors in edge order, and are meant for float64 on small graphs.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def _heads_view(x: Tensor, heads: int) -> Tensor:
    return x.reshape(x.size(0), heads, -1)


def spmm_ref(edge_index: Tensor, x: Tensor, edge_weight: Optional[Tensor] = None,
             reduce: str = "sum", num_dst: Optional[int] = None) -> Tensor:
    """``out[i] = reduce_{(j, i) in E} w_ji * x[j]`` (empty rows give 0)."""
    src, dst = edge_index
    n = num_dst if num_dst is not None else x.size(0)
    heads = 1 if edge_weight is None or edge_weight.dim() == 1 else edge_weight.size(1)
    xs = _heads_view(x, heads)
    rows = []
    for i in range(n):
        es = (dst == i).nonzero().view(-1)
        if es.numel() == 0:
            rows.append(xs.new_zeros(xs.shape[1:]))
            continue
        msg = xs[src[es]]
        if edge_weight is not None:
            w = edge_weight[es]
            msg = msg * (w[:, None, None] if w.dim() == 1 else w[:, :, None])
        rows.append({"sum": msg.sum(0), "mean": msg.mean(0), "max": msg.max(0).values}[reduce])
    out = torch.stack(rows) if rows else xs.new_zeros(0, *xs.shape[1:])
    return out.reshape(n, *x.shape[1:])


def sddmm_ref(edge_index: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``out[e] = <a[i_e], b[j_e]>`` over the last dimension (``a`` on targets, ``b`` on sources)."""
    src, dst = edge_index
    return torch.stack([(a[dst[e]] * b[src[e]]).sum(-1) for e in range(src.numel())]) \
        if src.numel() else a.new_zeros(0, *a.shape[1:-1])


def segment_softmax_ref(edge_index: Tensor, src: Tensor, num_dst: int) -> Tensor:
    """Softmax of ``src`` over the incoming edges of every target node."""
    dst = edge_index[1]
    out = torch.zeros_like(src)
    for i in range(num_dst):
        es = (dst == i).nonzero().view(-1)
        if es.numel():
            out[es] = torch.softmax(src[es], dim=0)
    return out


def sparse_attention_ref(edge_index: Tensor, logits: Tensor, value: Tensor,
                         num_dst: Optional[int] = None) -> Tensor:
    """``out[i, h] = sum_j softmax_j(logits[(j,i), h]) * value[j, h]`` (value ``(N, H, C)``)."""
    n = num_dst if num_dst is not None else value.size(0)
    alpha = segment_softmax_ref(edge_index, logits, n)
    return spmm_ref(edge_index, value.reshape(value.size(0), -1), alpha, "sum", n).reshape(
        n, *value.shape[1:])


def gat_attention_ref(edge_index: Tensor, x: Tensor, a_src: Tensor, a_dst: Tensor,
                      negative_slope: float = 0.2) -> Tensor:
    """GAT aggregation with the scores ``leaky_relu(a_src[j] + a_dst[i])`` built per edge."""
    src, dst = edge_index
    logits = torch.nn.functional.leaky_relu(a_src[src] + a_dst[dst], negative_slope)
    return sparse_attention_ref(edge_index, logits, x, a_dst.size(0))
