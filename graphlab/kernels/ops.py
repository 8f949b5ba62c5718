"""torch custom ops (``graphlab::*``) with autograd and fake-tensor rules, all in CSR space.

Each op picks its implementation at run time through :mod:`graphlab.kernels.dispatch`, so a
compiled graph holds one opaque node per op (no graph break) and the same graph runs the Triton,
cuSPARSE or torch path. Ops whose names end in ``_fwd`` / ``_bwd`` are the raw building blocks
used by the backward formulas; they have no autograd rule (double backward is not supported
and raises instead of returning a wrong gradient).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from graphlab.kernels import torch_ops as tops
from graphlab.kernels.dispatch import forced_backend, pick, problem_key, triton_available

try:
    from graphlab.kernels import triton_kernels as tk
except ImportError:  # pragma: no cover - triton is an optional extra
    tk = None


def _triton_ok(t: Tensor) -> bool:
    return tk is not None and triton_available(t.device)


def _heads(weight: Optional[Tensor]) -> int:
    return 1 if weight is None or weight.dim() == 1 else weight.size(1)


def _empty_arg(x: Tensor) -> Tensor:
    return torch.empty(0, 0, dtype=torch.long, device=x.device)


# ------------------------------------------------------------------------------------ SpMM
def _spmm_impl(rowptr, col, row, weight, x, reduce):
    cands = {}
    if _triton_ok(x):
        cands["triton"] = lambda: tk.spmm(rowptr, col, weight, x, reduce)
    max_row = (lambda: tk.max_row_length(rowptr)) if tk is not None else None
    if tops.cusparse_ok(weight, x, reduce, forced=forced_backend() == "cusparse", max_row=max_row):
        cands["cusparse"] = lambda: tops.spmm_cusparse(rowptr, col, weight, x, reduce)
    cands["torch"] = lambda: tops.spmm(rowptr, col, row, weight, x, reduce)
    # the longest row (cached per graph) separates power-law from uniform degrees
    skew = max_row().bit_length() if max_row is not None and x.is_cuda else 0
    key = problem_key(x.dtype, x.size(1), col.numel(), rowptr.numel() - 1, reduce,
                      _heads(weight), weight is not None, skew)
    return cands[pick("spmm", x.device, key, cands)]()


def _spmm_fake(rowptr, x, reduce):
    n = rowptr.size(0) - 1
    out = x.new_empty(n, x.size(1))
    arg = x.new_empty((n, x.size(1)) if reduce == "max" else (0, 0), dtype=torch.long)
    return out, arg


@torch.library.custom_op("graphlab::spmm_fwd", mutates_args=())
def spmm_fwd(rowptr: Tensor, col: Tensor, row: Tensor, weight: Optional[Tensor], x: Tensor,
             reduce: str) -> Tuple[Tensor, Tensor]:
    """Raw CSR SpMM (no autograd): ``(out, argmax or empty)``."""
    return _spmm_impl(rowptr, col, row, weight, x, reduce)


@spmm_fwd.register_fake
def _(rowptr, col, row, weight, x, reduce):
    return _spmm_fake(rowptr, x, reduce)


@torch.library.custom_op("graphlab::spmm", mutates_args=())
def spmm_op(rowptr: Tensor, col: Tensor, row: Tensor, colptr: Tensor, row_t: Tensor,
            col_t: Tensor, perm_t: Tensor, weight: Optional[Tensor], x: Tensor,
            reduce: str) -> Tuple[Tensor, Tensor]:
    """CSR SpMM with autograd (backward through the transposed CSR)."""
    return _spmm_impl(rowptr, col, row, weight, x, reduce)


@spmm_op.register_fake
def _(rowptr, col, row, colptr, row_t, col_t, perm_t, weight, x, reduce):
    return _spmm_fake(rowptr, x, reduce)


def _spmm_setup(ctx, inputs, output):
    rowptr, col, row, colptr, row_t, col_t, perm_t, weight, x, reduce = inputs
    ctx.reduce = reduce
    ctx.save_for_backward(rowptr, col, row, colptr, row_t, col_t, perm_t, weight, x, output[1])


def _spmm_backward(ctx, g_out, g_arg):
    rowptr, col, row, colptr, row_t, col_t, perm_t, weight, x, arg = ctx.saved_tensors
    need_w, need_x = ctx.needs_input_grad[7], ctx.needs_input_grad[8]
    heads = _heads(weight)
    F = x.size(1)
    gx = gw = None
    if ctx.reduce == "max" and col.numel() == 0:
        gx = torch.zeros_like(x) if need_x else None
        gw = torch.zeros_like(weight) if need_w else None
    elif ctx.reduce == "max":
        valid = arg >= 0
        e = arg.clamp(min=0)
        src = col.long()[e]
        g = torch.where(valid, g_out, torch.zeros_like(g_out))
        if need_x:
            gm = g
            if weight is not None and heads == 1:
                gm = g * weight.reshape(-1).to(g.dtype)[e]
            elif weight is not None:
                gm = g * tops._expand_weight(weight, F).to(g.dtype).gather(0, e)
            gx = torch.zeros_like(x).scatter_add_(0, src, gm)
        if need_w:
            contrib = g * x.gather(0, src)
            if heads == 1:
                gw = torch.zeros_like(weight).index_add_(0, e.reshape(-1), contrib.reshape(-1)
                                                         .to(weight.dtype))
            else:
                C = F // heads
                hidx = (torch.arange(F, device=x.device) // C)[None, :].expand_as(e)
                flat = (e * heads + hidx).reshape(-1)
                gw = torch.zeros_like(weight).reshape(-1).index_add_(
                    0, flat, contrib.reshape(-1).to(weight.dtype)).view_as(weight)
    if ctx.reduce == "max":
        return None, None, None, None, None, None, None, gw, gx, None
    g = g_out.contiguous()
    if ctx.reduce == "mean":
        deg = (rowptr[1:] - rowptr[:-1]).clamp(min=1).to(g.dtype)
        g = g / deg[:, None]
    if need_x and need_w:
        gx, gw = spmm_bwd_xw(rowptr, col, row, colptr, row_t, col_t, perm_t, weight, g, x,
                             heads)
    elif need_x:
        w_t = weight[perm_t.long()].contiguous() if weight is not None else None
        gx = spmm_fwd(colptr, row_t, col_t, w_t, g, "sum")[0]
    elif need_w:
        gw = sddmm_fwd(rowptr, row, col, g, x, heads)
    if need_w:
        gw = (gw.view(-1) if weight.dim() == 1 else gw).to(weight.dtype)
    return None, None, None, None, None, None, None, gw, gx, None


spmm_op.register_autograd(_spmm_backward, setup_context=_spmm_setup)


@torch.library.custom_op("graphlab::spmm_bwd_xw", mutates_args=())
def spmm_bwd_xw(rowptr: Tensor, col: Tensor, row: Tensor, colptr: Tensor, row_t: Tensor,
                col_t: Tensor, perm_t: Tensor, weight: Tensor, g: Tensor, x: Tensor,
                heads: int) -> Tuple[Tensor, Tensor]:
    """Both gradients of a weighted sum SpMM (no autograd): ``(gx, gw (E, heads), CSR order)``.

    Paths: ``triton`` is one fused pass over the transposed CSR (heads of at most
    ``FUSED_BWD_MAX_C`` features); ``torch`` is the two separate ops, a transposed
    :func:`spmm_fwd` and a row-wise :func:`sddmm_fwd`, each dispatched on its own.
    """
    def separate():
        w_t = weight[perm_t.long()].contiguous()
        gx = spmm_fwd(colptr, row_t, col_t, w_t, g, "sum")[0]
        return gx, sddmm_fwd(rowptr, row, col, g, x, heads)

    cands = {}
    if _triton_ok(x) and x.size(1) // max(heads, 1) <= tk.FUSED_BWD_MAX_C:
        cands["triton"] = lambda: tk.spmm_bwd_xw(colptr, row_t, perm_t, weight, g, x, heads)
    cands["torch"] = separate
    key = problem_key(x.dtype, x.size(1), col.numel(), rowptr.numel() - 1, heads)
    return cands[pick("spmm_bwd_xw", x.device, key, cands)]()


@spmm_bwd_xw.register_fake
def _(rowptr, col, row, colptr, row_t, col_t, perm_t, weight, g, x, heads):
    return torch.empty_like(x), x.new_empty(col.size(0), heads)


# ----------------------------------------------------------------------------------- SDDMM
@torch.library.custom_op("graphlab::sddmm_fwd", mutates_args=())
def sddmm_fwd(rowptr: Tensor, row: Tensor, col: Tensor, a: Tensor, b: Tensor,
              heads: int) -> Tensor:
    """Raw SDDMM (no autograd): ``out[e, h] = <a[row_e, h], b[col_e, h]>``."""
    cands = {}
    if _triton_ok(a):
        cands["triton"] = lambda: tk.sddmm(rowptr, col, a, b, heads)
    cands["torch"] = lambda: tops.sddmm(row, col, a, b, heads)
    key = problem_key(a.dtype, a.size(1), row.numel(), a.size(0), heads)
    return cands[pick("sddmm", a.device, key, cands)]()


@sddmm_fwd.register_fake
def _(rowptr, row, col, a, b, heads):
    return a.new_empty(row.size(0), heads)


@torch.library.custom_op("graphlab::sddmm", mutates_args=())
def sddmm_op(rowptr: Tensor, row: Tensor, col: Tensor, colptr: Tensor, row_t: Tensor,
             col_t: Tensor, perm_t: Tensor, a: Tensor, b: Tensor, heads: int) -> Tensor:
    """SDDMM with autograd (CSR order edges)."""
    return sddmm_fwd(rowptr, row, col, a, b, heads).clone()


@sddmm_op.register_fake
def _(rowptr, row, col, colptr, row_t, col_t, perm_t, a, b, heads):
    return a.new_empty(row.size(0), heads)


def _sddmm_setup(ctx, inputs, output):
    rowptr, row, col, colptr, row_t, col_t, perm_t, a, b, heads = inputs
    ctx.save_for_backward(rowptr, row, col, colptr, row_t, col_t, perm_t, a, b)


def _sddmm_backward(ctx, g):
    rowptr, row, col, colptr, row_t, col_t, perm_t, a, b = ctx.saved_tensors
    g = g.contiguous()
    ga = gb = None
    if ctx.needs_input_grad[7]:
        ga = spmm_fwd(rowptr, col, row, g, b, "sum")[0]
    if ctx.needs_input_grad[8]:
        gb = spmm_fwd(colptr, row_t, col_t, g[perm_t.long()].contiguous(), a, "sum")[0]
    return None, None, None, None, None, None, None, ga, gb, None


sddmm_op.register_autograd(_sddmm_backward, setup_context=_sddmm_setup)


# --------------------------------------------------------------------------- segment softmax
@torch.library.custom_op("graphlab::segment_softmax_bwd", mutates_args=())
def segment_softmax_bwd(rowptr: Tensor, row: Tensor, y: Tensor, dy: Tensor) -> Tensor:
    cands = {}
    if _triton_ok(y):
        cands["triton"] = lambda: tk.segment_softmax_bwd(rowptr, y, dy)
    cands["torch"] = lambda: tops.segment_softmax_bwd(rowptr, row, y, dy)
    key = problem_key(y.dtype, y.size(1), y.size(0), rowptr.numel() - 1)
    return cands[pick("segment_softmax_bwd", y.device, key, cands)]()


@segment_softmax_bwd.register_fake
def _(rowptr, row, y, dy):
    return torch.empty_like(y)


@torch.library.custom_op("graphlab::segment_softmax", mutates_args=())
def segment_softmax_op(rowptr: Tensor, row: Tensor, src: Tensor) -> Tensor:
    """Softmax of ``src (E, H)`` (CSR order) over every target node's incoming edges."""
    cands = {}
    if _triton_ok(src):
        cands["triton"] = lambda: tk.segment_softmax(rowptr, src)
    cands["torch"] = lambda: tops.segment_softmax(rowptr, row, src)
    key = problem_key(src.dtype, src.size(1), src.size(0), rowptr.numel() - 1)
    return cands[pick("segment_softmax", src.device, key, cands)]()


@segment_softmax_op.register_fake
def _(rowptr, row, src):
    return torch.empty_like(src)


def _softmax_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0], inputs[1], output)


def _softmax_backward(ctx, g):
    rowptr, row, y = ctx.saved_tensors
    return None, None, segment_softmax_bwd(rowptr, row, y, g.contiguous())


segment_softmax_op.register_autograd(_softmax_backward, setup_context=_softmax_setup)


# ---------------------------------------------------------------------- fused sparse attention
def _lse_dtype(value: Tensor) -> torch.dtype:
    return torch.float64 if value.dtype == torch.float64 else torch.float32


@torch.library.custom_op("graphlab::attention_bwd_logit", mutates_args=())
def attention_bwd_logit(rowptr: Tensor, row: Tensor, col: Tensor, logit: Tensor, lse: Tensor,
                        dout: Tensor, value: Tensor, delta: Tensor, heads: int) -> Tensor:
    cands = {}
    if _triton_ok(value):
        cands["triton"] = lambda: tk.attention_bwd_logit(rowptr, col, logit, lse, dout, value,
                                                         delta, heads)
    cands["torch"] = lambda: tops.attention_bwd_logit(row, col, logit, lse, dout, value, delta,
                                                      heads)
    key = problem_key(value.dtype, value.size(1), row.numel(), lse.size(0), heads)
    return cands[pick("attention_bwd_logit", value.device, key, cands)]()


@attention_bwd_logit.register_fake
def _(rowptr, row, col, logit, lse, dout, value, delta, heads):
    return torch.empty_like(logit)


@torch.library.custom_op("graphlab::sparse_attention", mutates_args=())
def sparse_attention_op(rowptr: Tensor, col: Tensor, row: Tensor, colptr: Tensor, row_t: Tensor,
                        col_t: Tensor, perm_t: Tensor, logit: Tensor, value: Tensor,
                        heads: int) -> Tuple[Tensor, Tensor]:
    """Fused ``softmax(logit) @ value`` per target node and head; returns ``(out, lse)``."""
    cands = {}
    if _triton_ok(value):
        cands["triton"] = lambda: tk.attention_fwd(rowptr, col, logit, value, heads)
    cands["torch"] = lambda: tops.attention_fwd(rowptr, col, row, logit, value, heads)
    key = problem_key(value.dtype, value.size(1), col.numel(), rowptr.numel() - 1, heads)
    return cands[pick("sparse_attention", value.device, key, cands)]()


@sparse_attention_op.register_fake
def _(rowptr, col, row, colptr, row_t, col_t, perm_t, logit, value, heads):
    n = rowptr.size(0) - 1
    return value.new_empty(n, value.size(1)), value.new_empty(n, heads, dtype=_lse_dtype(value))


def _attention_setup(ctx, inputs, output):
    rowptr, col, row, colptr, row_t, col_t, perm_t, logit, value, heads = inputs
    ctx.heads = heads
    ctx.save_for_backward(rowptr, row, col, colptr, row_t, col_t, perm_t, logit, value,
                          output[0], output[1])


def _attention_backward(ctx, g_out, g_lse):
    rowptr, row, col, colptr, row_t, col_t, perm_t, logit, value, out, lse = ctx.saved_tensors
    heads = ctx.heads
    g = g_out.contiguous()
    n = out.size(0)
    glogit = gvalue = None
    if ctx.needs_input_grad[7]:
        delta = (g.to(lse.dtype) * out.to(lse.dtype)).view(n, heads, -1).sum(-1)
        glogit = attention_bwd_logit(rowptr, row, col, logit, lse, g, value, delta, heads)
    if ctx.needs_input_grad[8]:
        pt = perm_t.long()
        alpha_t = torch.exp(logit[pt].to(lse.dtype) - lse[row_t.long()]).to(value.dtype)
        gvalue = spmm_fwd(colptr, row_t, col_t, alpha_t.contiguous(), g, "sum")[0]
    return None, None, None, None, None, None, None, glogit, gvalue, None


sparse_attention_op.register_autograd(_attention_backward, setup_context=_attention_setup)


# ------------------------------------------------------------- GAT-mode fused sparse attention
@torch.library.custom_op("graphlab::gat_attention_bwd", mutates_args=())
def gat_attention_bwd(rowptr: Tensor, col: Tensor, row: Tensor, colptr: Tensor, row_t: Tensor,
                      col_t: Tensor, perm_t: Tensor, a_src: Tensor, a_dst: Tensor, value: Tensor,
                      lse: Tensor, g: Tensor, delta: Tensor, heads: int,
                      negative_slope: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Raw GAT-mode backward (no autograd): ``(g_value, g_a_src, g_a_dst)``."""
    cands = {}
    if _triton_ok(value):
        cands["triton"] = lambda: tk.gat_attention_bwd(colptr, row_t, a_src, a_dst, value, lse,
                                                       g, delta, heads, negative_slope)
    cands["torch"] = lambda: tops.gat_attention_bwd(rowptr, col, row, colptr, row_t, col_t,
                                                    perm_t, a_src, a_dst, value, lse, g, delta,
                                                    heads, negative_slope)
    key = problem_key(value.dtype, value.size(1), col.numel(), rowptr.numel() - 1, heads)
    return cands[pick("gat_attention_bwd", value.device, key, cands)]()


@gat_attention_bwd.register_fake
def _(rowptr, col, row, colptr, row_t, col_t, perm_t, a_src, a_dst, value, lse, g, delta, heads,
      negative_slope):
    return torch.empty_like(value), torch.empty_like(a_src), torch.empty_like(a_dst)


@torch.library.custom_op("graphlab::gat_attention", mutates_args=())
def gat_attention_op(rowptr: Tensor, col: Tensor, row: Tensor, colptr: Tensor, row_t: Tensor,
                     col_t: Tensor, perm_t: Tensor, a_src: Tensor, a_dst: Tensor, value: Tensor,
                     heads: int, negative_slope: float) -> Tuple[Tensor, Tensor]:
    """Fused GAT aggregation with the scores ``leaky_relu(a_src[j] + a_dst[i])`` computed per
    edge inside the kernel; returns ``(out, lse)``."""
    cands = {}
    if _triton_ok(value):
        cands["triton"] = lambda: tk.attention_fwd(rowptr, col, None, value, heads,
                                                   gat=(a_src, a_dst, negative_slope))
    cands["torch"] = lambda: tops.gat_attention_fwd(rowptr, col, row, a_src, a_dst, value, heads,
                                                    negative_slope)
    key = problem_key(value.dtype, value.size(1), col.numel(), rowptr.numel() - 1, heads)
    return cands[pick("gat_attention", value.device, key, cands)]()


@gat_attention_op.register_fake
def _(rowptr, col, row, colptr, row_t, col_t, perm_t, a_src, a_dst, value, heads, negative_slope):
    n = rowptr.size(0) - 1
    return value.new_empty(n, value.size(1)), value.new_empty(n, heads, dtype=_lse_dtype(value))


def _gat_setup(ctx, inputs, output):
    rowptr, col, row, colptr, row_t, col_t, perm_t, a_src, a_dst, value, heads, slope = inputs
    ctx.heads, ctx.slope = heads, slope
    ctx.save_for_backward(rowptr, col, row, colptr, row_t, col_t, perm_t, a_src, a_dst, value,
                          output[0], output[1])


def _gat_backward(ctx, g_out, g_lse):
    rowptr, col, row, colptr, row_t, col_t, perm_t, a_src, a_dst, value, out, lse = \
        ctx.saved_tensors
    heads = ctx.heads
    g = g_out.contiguous()
    n = out.size(0)
    delta = (g.to(lse.dtype) * out.to(lse.dtype)).view(n, heads, -1).sum(-1)
    gv, ga_src, ga_dst = gat_attention_bwd(rowptr, col, row, colptr, row_t, col_t, perm_t, a_src,
                                           a_dst, value, lse, g, delta, heads, ctx.slope)
    need = ctx.needs_input_grad
    return (None, None, None, None, None, None, None, ga_src if need[7] else None,
            ga_dst if need[8] else None, gv if need[9] else None, None, None)


gat_attention_op.register_autograd(_gat_backward, setup_context=_gat_setup)
