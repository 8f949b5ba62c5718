"""Triton kernels for CSR message passing (the fast path).

Every kernel works in CSR space (rows = target nodes, see :mod:`graphlab.kernels.csr`),
reads its inputs in their own dtype (float32 / bfloat16 / float16 / float64) and accumulates in
float32 (float64 stays float64). Node features are ``(N, F)`` row-major; ``F = H * C`` where a
per-edge tensor has ``H`` heads, feature ``f`` belonging to head ``f // C``.

* ``spmm``: one program per (row chunk, feature block): rows are cut into chunks of at most
  ``CHUNK`` edges (see :func:`schedule`), so power-law hubs do not serialise on one program; each
  program gathers ``BLOCK_E`` source rows at a time; sum / mean / max (max also writes the winning
  CSR edge); chunks of split rows write float32 partials that a second kernel combines in order
  (deterministic, no atomics).
* ``sddmm``: row-wise, one program per (row chunk, head): ``a[i]`` stays hot while ``b[j]``
  streams. The same kernel gives the attention logit gradient
  ``alpha * (<dout_i, v_j> - <dout_i, out_i>)`` without an ``E x F`` tensor.
* ``segment_softmax`` (+ backward): one program per (row, head), online max/sum then a write pass.
* ``attention``: one program per (row chunk, head): online softmax over the logits fused with the
  weighted sum of the source rows, so the ``E x F`` weighted messages never exist; it writes the
  row's log-sum-exp for the backward pass (split rows merge their partial max / sum / vector).
  GAT mode computes the logits ``leaky_relu(a_src[j] + a_dst[i])`` inside the same kernel.
* ``gat_attention_bwd``: the GAT-mode backward in one pass over the transposed CSR (one program
  per (source chunk, head)): value and ``a_src`` gradients as per-source sums, ``a_dst``
  gradient by atomic adds.
* ``spmm_bwd_xw``: both gradients of a weighted sum SpMM in one pass over the transposed CSR;
  the ``g[i]`` tile loaded for the feature gradient also gives the edge-weight gradient
  ``<g[i], x[j]>`` (instead of a transposed SpMM plus a separate row-wise SDDMM).

Under ``TRITON_INTERPRET=1`` (CPU tests) or ``GRAPHLAB_TRITON_AUTOTUNE=0`` each autotuner gets a
single config.
"""
from __future__ import annotations

import os
import weakref
from typing import Optional

import torch
import triton
import triton.language as tl

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
# GRAPHLAB_TRITON_AUTOTUNE=0 keeps only each kernel's first config (fast start, e.g. GPU tests).
AUTOTUNE = os.environ.get("GRAPHLAB_TRITON_AUTOTUNE", "1") != "0"


def _configs(cfgs):
    return cfgs if AUTOTUNE and not INTERPRET else cfgs[:1]


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


# ------------------------------------------------------------------------------ row chunking
# Rows longer than CHUNK edges are cut into chunks of CHUNK edges, one program each, so a
# power-law hub does not serialise on one program; partial results of split rows are combined
# by a second small kernel (deterministic, no atomics). The schedule is built once per rowptr
# tensor (cached on its identity and version).
CHUNK = int(os.environ.get("GRAPHLAB_SPMM_CHUNK", "256"))
_SCHED: dict = {}


def schedule(rowptr: torch.Tensor, chunk: Optional[int] = None):
    """``(chunk_row, chunk_start, slot, split_rows, split_ptr, n_slots)`` for ``rowptr``.

    ``chunk_row[k]`` / ``chunk_start[k]``: row and first edge of chunk ``k`` (empty rows get one
    empty chunk); ``slot[k]``: row of the partial-result buffer for chunks of split rows, -1 for
    rows done in one chunk; ``split_rows`` / ``split_ptr``: the split rows and their slot ranges.
    """
    chunk = CHUNK if chunk is None else chunk
    key = (id(rowptr), chunk)
    hit = _SCHED.get(key)
    if hit is not None and hit[0]() is rowptr and hit[1] == rowptr._version:
        return hit[2]
    n = rowptr.numel() - 1
    ptr = rowptr.long()
    deg = ptr[1:] - ptr[:-1]
    nchunk = ((deg + chunk - 1) // chunk).clamp(min=1)
    rows = torch.arange(n, device=rowptr.device)
    chunk_row = torch.repeat_interleave(rows, nchunk)
    first = torch.cumsum(nchunk, 0) - nchunk
    j = torch.arange(chunk_row.numel(), device=rowptr.device) - first[chunk_row]
    chunk_start = ptr[chunk_row] + j * chunk
    is_split = nchunk[chunk_row] > 1
    slot = torch.where(is_split, torch.cumsum(is_split.long(), 0) - 1, -1)
    split_rows = rows[nchunk > 1]
    split_ptr = torch.cat([nchunk.new_zeros(1), torch.cumsum(nchunk[nchunk > 1], 0)])
    it = rowptr.dtype
    # n_slots is kept as a Python int so that later calls never wait on the device
    sched = (chunk_row.to(it), chunk_start.to(it), slot.to(it), split_rows.to(it),
             split_ptr.to(it), int(split_ptr[-1]))
    try:
        ref = weakref.ref(rowptr, lambda _r, k=key: _SCHED.pop(k, None))
        _SCHED[key] = (ref, rowptr._version, sched)
    except TypeError:  # pragma: no cover
        pass
    return sched


def max_row_length(rowptr: torch.Tensor) -> int:
    """Longest row of ``rowptr`` (cached with the schedule; one host sync per graph)."""
    key = (id(rowptr), "max")
    hit = _SCHED.get(key)
    if hit is not None and hit[0]() is rowptr and hit[1] == rowptr._version:
        return hit[2]
    n = rowptr.numel() - 1
    val = int((rowptr[1:] - rowptr[:-1]).max()) if n > 0 else 0
    try:
        _SCHED[key] = (weakref.ref(rowptr, lambda _r, k=key: _SCHED.pop(k, None)),
                       rowptr._version, val)
    except TypeError:  # pragma: no cover
        pass
    return val


# ----------------------------------------------------------------------------------------- SpMM
@triton.autotune(
    configs=_configs([
        triton.Config({"BLOCK_E": 16, "BLOCK_F": 128}, num_warps=4),
        triton.Config({"BLOCK_E": 32, "BLOCK_F": 128}, num_warps=4),
        triton.Config({"BLOCK_E": 8, "BLOCK_F": 128}, num_warps=2),
        triton.Config({"BLOCK_E": 32, "BLOCK_F": 128}, num_warps=8),
        triton.Config({"BLOCK_E": 16, "BLOCK_F": 64}, num_warps=2),
        triton.Config({"BLOCK_E": 32, "BLOCK_F": 64}, num_warps=4),
        triton.Config({"BLOCK_E": 16, "BLOCK_F": 32}, num_warps=1),
    ]),
    key=["F", "HEADS", "HAS_W", "REDUCE"],
)
@triton.jit
def _spmm_kernel(rowptr, chunk_row, chunk_start, slot, col, w, x, out, arg, part, part_arg,
                 F, C, CHUNK_E,
                 HEADS: tl.constexpr, HAS_W: tl.constexpr, REDUCE: tl.constexpr,
                 ACC64: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr):
    k = tl.program_id(0)
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    fmask = offs_f < F
    r = tl.load(chunk_row + k)
    start = tl.load(chunk_start + k)
    row_start = tl.load(rowptr + r)
    row_end = tl.load(rowptr + r + 1)
    end = tl.minimum(start + CHUNK_E, row_end)
    sl = tl.load(slot + k)
    acc_t = tl.float64 if ACC64 else tl.float32
    if REDUCE == 2:
        acc = tl.full([BLOCK_F], float("-inf"), acc_t)
        best = tl.full([BLOCK_F], -1, tl.int64)
    else:
        acc = tl.zeros([BLOCK_F], acc_t)
    for e0 in range(start, end, BLOCK_E):
        offs_e = e0 + tl.arange(0, BLOCK_E)
        emask = offs_e < end
        c = tl.load(col + offs_e, mask=emask, other=0).to(tl.int64)
        m2 = emask[:, None] & fmask[None, :]
        v = tl.load(x + c[:, None] * F + offs_f[None, :], mask=m2, other=0.0).to(acc_t)
        if HAS_W:
            if HEADS == 1:
                wv = tl.load(w + offs_e, mask=emask, other=0.0).to(acc_t)
                v = v * wv[:, None]
            else:
                wv = tl.load(w + offs_e[:, None] * HEADS + (offs_f // C)[None, :], mask=m2, other=0.0)
                v = v * wv.to(acc_t)
        if REDUCE == 2:
            v = tl.where(m2, v, float("-inf"))
            bmax = tl.max(v, axis=0)
            barg = tl.argmax(v, axis=0)
            upd = bmax > acc
            best = tl.where(upd, (e0 + barg).to(tl.int64), best)
            acc = tl.where(upd, bmax, acc)
        else:
            acc += tl.sum(v, axis=0)
    slv = tl.zeros([BLOCK_F], tl.int32) + sl
    whole = fmask & (slv < 0)
    partial = fmask & (slv >= 0)
    part_off = tl.maximum(slv, 0).to(tl.int64) * F + offs_f
    if REDUCE == 2:
        tl.store(part + part_off, acc, mask=partial)
        tl.store(part_arg + part_off, best, mask=partial)
        acc = tl.where(best >= 0, acc, 0.0)
        tl.store(arg + r.to(tl.int64) * F + offs_f, best, mask=whole)
    else:
        tl.store(part + part_off, acc, mask=partial)
        if REDUCE == 1:
            acc = acc / tl.maximum(row_end - row_start, 1).to(acc_t)
    tl.store(out + r.to(tl.int64) * F + offs_f, acc.to(out.dtype.element_ty), mask=whole)


@triton.jit
def _spmm_combine_kernel(rowptr, split_rows, split_ptr, part, part_arg, out, arg, F,
                         REDUCE: tl.constexpr, ACC64: tl.constexpr, BLOCK_F: tl.constexpr):
    s = tl.program_id(0)
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    fmask = offs_f < F
    r = tl.load(split_rows + s).to(tl.int64)
    p0 = tl.load(split_ptr + s).to(tl.int64)
    p1 = tl.load(split_ptr + s + 1).to(tl.int64)
    acc_t = tl.float64 if ACC64 else tl.float32
    if REDUCE == 2:
        acc = tl.full([BLOCK_F], float("-inf"), acc_t)
        best = tl.full([BLOCK_F], -1, tl.int64)
    else:
        acc = tl.zeros([BLOCK_F], acc_t)
    for p in range(p0, p1):
        v = tl.load(part + p * F + offs_f, mask=fmask, other=0.0)
        if REDUCE == 2:
            a = tl.load(part_arg + p * F + offs_f, mask=fmask, other=-1)
            upd = (v > acc) & (a >= 0)
            best = tl.where(upd, a, best)
            acc = tl.where(upd, v, acc)
        else:
            acc += v
    if REDUCE == 2:
        acc = tl.where(best >= 0, acc, 0.0)
        tl.store(arg + r * F + offs_f, best, mask=fmask)
    if REDUCE == 1:
        deg = tl.load(rowptr + r + 1) - tl.load(rowptr + r)
        acc = acc / tl.maximum(deg, 1).to(acc_t)
    tl.store(out + r * F + offs_f, acc.to(out.dtype.element_ty), mask=fmask)


REDUCE_CODE = {"sum": 0, "mean": 1, "max": 2}


def spmm(rowptr, col, weight, x, reduce: str):
    """``out[i] = reduce_{e in row i} w_e * x[col_e]``; x ``(N_src, F)``, weight None/(E,)/(E, H).

    Returns ``(out (N_dst, F), arg)`` where ``arg`` is the winning CSR edge per (row, feature)
    for ``reduce='max'`` (-1 for empty rows) and an empty tensor otherwise.
    """
    n_dst = rowptr.numel() - 1
    F = x.size(1)
    heads = 1 if weight is None or weight.dim() == 1 else weight.size(1)
    out = x.new_empty(n_dst, F)
    is_max = reduce == "max"
    arg = torch.empty(n_dst if is_max else 0, F if is_max else 0, dtype=torch.long, device=x.device)
    if n_dst == 0 or F == 0:
        return out, arg
    chunk_row, chunk_start, slot, split_rows, split_ptr, n_slots = schedule(rowptr)
    acc = _acc_dtype(x.dtype)
    part = torch.empty(max(n_slots, 1), F, dtype=acc, device=x.device)
    part_arg = torch.empty(max(n_slots, 1) if is_max else 0, F, dtype=torch.long, device=x.device)
    block_f = min(triton.next_power_of_2(F), 128)
    grid = lambda meta: (chunk_row.numel(), triton.cdiv(F, meta["BLOCK_F"]))  # noqa: E731
    _spmm_kernel[grid](rowptr, chunk_row, chunk_start, slot, col,
                       weight if weight is not None else x, x, out, arg if is_max else out,
                       part, part_arg if is_max else part, F, F // heads, CHUNK,
                       HEADS=heads, HAS_W=weight is not None, REDUCE=REDUCE_CODE[reduce],
                       ACC64=x.dtype == torch.float64)
    if split_rows.numel():
        _spmm_combine_kernel[(split_rows.numel(), triton.cdiv(F, block_f))](
            rowptr, split_rows, split_ptr, part, part_arg if is_max else part, out,
            arg if is_max else out, F, REDUCE=REDUCE_CODE[reduce],
            ACC64=x.dtype == torch.float64, BLOCK_F=block_f)
    return out, arg


# ---------------------------------------------------------------------------------------- SDDMM
@triton.autotune(
    configs=_configs([
        triton.Config({"BLOCK_E": 16}, num_warps=4),
        triton.Config({"BLOCK_E": 32}, num_warps=4),
        triton.Config({"BLOCK_E": 16}, num_warps=2),
    ]),
    key=["C", "HEADS", "BLOCK_C", "ATTN"],
)
@triton.jit
def _sddmm_rows_kernel(rowptr, chunk_row, chunk_start, col, a, b, out, logit, lse, delta,
                       C, CHUNK_E, HEADS: tl.constexpr, ATTN: tl.constexpr, ACC64: tl.constexpr,
                       BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr):
    """Row-wise SDDMM: one program per (row chunk, head) keeps ``a[row]`` hot and streams
    ``b[col]``. With ``ATTN`` it writes the attention logit gradient
    ``exp(logit - lse_i) * (<a_i, b_j> - delta_i)`` instead of the dot product."""
    k = tl.program_id(0)
    h = tl.program_id(1)
    r = tl.load(chunk_row + k).to(tl.int64)
    start = tl.load(chunk_start + k)
    end = tl.minimum(start + CHUNK_E, tl.load(rowptr + r + 1))
    acc_t = tl.float64 if ACC64 else tl.float32
    if ATTN:
        ls = tl.load(lse + r * HEADS + h).to(acc_t)
        dl = tl.load(delta + r * HEADS + h).to(acc_t)
    for e0 in range(start, end, BLOCK_E):
        offs_e = e0 + tl.arange(0, BLOCK_E)
        emask = offs_e < end
        c = tl.load(col + offs_e, mask=emask, other=0).to(tl.int64)
        dot = tl.zeros([BLOCK_E], acc_t)
        for c0 in range(0, C, BLOCK_C):
            offs_c = c0 + tl.arange(0, BLOCK_C)
            cmask = offs_c < C
            av = tl.load(a + r * (HEADS * C) + h * C + offs_c, mask=cmask, other=0.0).to(acc_t)
            bv = tl.load(b + c[:, None] * (HEADS * C) + h * C + offs_c[None, :],
                         mask=emask[:, None] & cmask[None, :], other=0.0).to(acc_t)
            dot += tl.sum(bv * av[None, :], axis=1)
        oe = offs_e.to(tl.int64) * HEADS + h
        if ATTN:
            lg = tl.load(logit + oe, mask=emask, other=float("-inf")).to(acc_t)
            alpha = tl.where(lg > float("-inf"), tl.exp(lg - ls), 0.0)
            dot = alpha * (dot - dl)
        tl.store(out + oe, dot.to(out.dtype.element_ty), mask=emask)


def _sddmm_rows(rowptr, col, a, b, heads: int, out, attn=None):
    E = col.numel()
    C = a.size(1) // heads
    if E == 0 or heads == 0:
        return out
    if C == 0 and attn is None:
        return out.zero_()
    chunk_row, chunk_start = schedule(rowptr)[:2]
    block_c = min(max(triton.next_power_of_2(C), 1), 256)
    logit, lse, delta = attn if attn is not None else (out, out, out)
    _sddmm_rows_kernel[(chunk_row.numel(), heads)](
        rowptr, chunk_row, chunk_start, col, a, b, out, logit, lse, delta, C, CHUNK,
        HEADS=heads, ATTN=attn is not None, ACC64=a.dtype == torch.float64, BLOCK_C=block_c)
    return out


def sddmm(rowptr, col, a, b, heads: int):
    """``out[e, h] = <a[row_e, h, :], b[col_e, h, :]>`` (CSR order); a ``(N_dst, H*C)``,
    b ``(N_src, H*C)``."""
    return _sddmm_rows(rowptr, col, a, b, heads, a.new_empty(col.numel(), heads))


# ------------------------------------------------------------------------------ segment softmax
@triton.jit
def _segment_softmax_fwd_kernel(rowptr, src, out, HEADS: tl.constexpr, ACC64: tl.constexpr,
                                BLOCK_E: tl.constexpr):
    r = tl.program_id(0)
    h = tl.program_id(1)
    start = tl.load(rowptr + r)
    end = tl.load(rowptr + r + 1)
    acc_t = tl.float64 if ACC64 else tl.float32
    m = tl.full([BLOCK_E], float("-inf"), acc_t)
    s = tl.zeros([BLOCK_E], acc_t)
    for e0 in range(start, end, BLOCK_E):
        offs_e = e0 + tl.arange(0, BLOCK_E)
        v = tl.load(src + offs_e.to(tl.int64) * HEADS + h, mask=offs_e < end,
                    other=float("-inf")).to(acc_t)
        m_new = tl.maximum(m, v)
        live = m_new > float("-inf")
        s = tl.where(live, s * tl.exp(m - m_new) + tl.exp(v - m_new), 0.0)
        m = m_new
    mx = tl.max(m, axis=0)
    tot = tl.sum(tl.where(m > float("-inf"), s * tl.exp(m - mx), 0.0), axis=0)
    for e0 in range(start, end, BLOCK_E):
        offs_e = e0 + tl.arange(0, BLOCK_E)
        emask = offs_e < end
        ptr = src + offs_e.to(tl.int64) * HEADS + h
        v = tl.load(ptr, mask=emask, other=float("-inf")).to(acc_t)
        y = tl.where(v > float("-inf"), tl.exp(v - mx) / tot, 0.0)
        tl.store(out + offs_e.to(tl.int64) * HEADS + h, y.to(out.dtype.element_ty), mask=emask)


@triton.jit
def _segment_softmax_bwd_kernel(rowptr, y, dy, dx, HEADS: tl.constexpr, ACC64: tl.constexpr,
                                BLOCK_E: tl.constexpr):
    r = tl.program_id(0)
    h = tl.program_id(1)
    start = tl.load(rowptr + r)
    end = tl.load(rowptr + r + 1)
    acc_t = tl.float64 if ACC64 else tl.float32
    dot = tl.zeros([BLOCK_E], acc_t)
    for e0 in range(start, end, BLOCK_E):
        offs = (e0 + tl.arange(0, BLOCK_E)).to(tl.int64)
        emask = offs < end
        yv = tl.load(y + offs * HEADS + h, mask=emask, other=0.0).to(acc_t)
        gv = tl.load(dy + offs * HEADS + h, mask=emask, other=0.0).to(acc_t)
        dot += yv * gv
    d = tl.sum(dot, axis=0)
    for e0 in range(start, end, BLOCK_E):
        offs = (e0 + tl.arange(0, BLOCK_E)).to(tl.int64)
        emask = offs < end
        yv = tl.load(y + offs * HEADS + h, mask=emask, other=0.0).to(acc_t)
        gv = tl.load(dy + offs * HEADS + h, mask=emask, other=0.0).to(acc_t)
        tl.store(dx + offs * HEADS + h, (yv * (gv - d)).to(dx.dtype.element_ty), mask=emask)


_SOFTMAX_BLOCK = 32


def segment_softmax(rowptr, src):
    """Softmax of ``src (E, H)`` (CSR order) over each row's edges."""
    out = torch.empty_like(src)
    n = rowptr.numel() - 1
    if n == 0 or src.numel() == 0:
        return out
    _segment_softmax_fwd_kernel[(n, src.size(1))](rowptr, src, out, HEADS=src.size(1),
                                                  ACC64=src.dtype == torch.float64,
                                                  BLOCK_E=_SOFTMAX_BLOCK)
    return out


def segment_softmax_bwd(rowptr, y, dy):
    dx = torch.empty_like(y)
    n = rowptr.numel() - 1
    if n == 0 or y.numel() == 0:
        return dx
    _segment_softmax_bwd_kernel[(n, y.size(1))](rowptr, y, dy, dx, HEADS=y.size(1),
                                                ACC64=y.dtype == torch.float64,
                                                BLOCK_E=_SOFTMAX_BLOCK)
    return dx


# ------------------------------------------------------------------------ fused sparse attention
@triton.autotune(
    configs=_configs([
        triton.Config({"BLOCK_E": 16}, num_warps=2),
        triton.Config({"BLOCK_E": 32}, num_warps=4),
        triton.Config({"BLOCK_E": 16}, num_warps=4),
    ]),
    key=["C", "HEADS", "BLOCK_C", "GAT"],
)
@triton.jit
def _attention_fwd_kernel(rowptr, chunk_row, chunk_start, slot, col, logit, v, out, lse,
                          pm, ps, pacc, a_src, a_dst, C, CHUNK_E, HEADS: tl.constexpr,
                          GAT: tl.constexpr, SLOPE: tl.constexpr,
                          ACC64: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr):
    """With ``GAT`` the logits are not read but computed from the per-node terms,
    ``leaky_relu(a_src[col_e, h] + a_dst[row, h], SLOPE)``, so no ``E x H`` tensor is read."""
    k = tl.program_id(0)
    h = tl.program_id(1)
    r = tl.load(chunk_row + k).to(tl.int64)
    start = tl.load(chunk_start + k)
    end = tl.minimum(start + CHUNK_E, tl.load(rowptr + r + 1))
    sl = tl.load(slot + k)
    acc_t = tl.float64 if ACC64 else tl.float32
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    m = tl.full([BLOCK_E], float("-inf"), acc_t)  # per-lane running max, merged at the end
    s = tl.zeros([BLOCK_E], acc_t)
    acc = tl.zeros([BLOCK_E, BLOCK_C], acc_t)
    if GAT:
        ad = tl.load(a_dst + r * HEADS + h).to(acc_t)
    for e0 in range(start, end, BLOCK_E):
        offs_e = e0 + tl.arange(0, BLOCK_E)
        emask = offs_e < end
        c = tl.load(col + offs_e, mask=emask, other=0).to(tl.int64)
        if GAT:
            z = tl.load(a_src + c * HEADS + h, mask=emask, other=0.0).to(acc_t) + ad
            l = tl.where(emask, tl.where(z > 0, z, z * SLOPE), float("-inf"))
        else:
            l = tl.load(logit + offs_e.to(tl.int64) * HEADS + h, mask=emask,
                        other=float("-inf")).to(acc_t)
        vals = tl.load(v + c[:, None] * (HEADS * C) + h * C + offs_c[None, :],
                       mask=emask[:, None] & cmask[None, :], other=0.0).to(acc_t)
        m_new = tl.maximum(m, l)
        live = m_new > float("-inf")
        scale = tl.where(live, tl.exp(m - m_new), 0.0)
        p = tl.where(live, tl.exp(l - m_new), 0.0)
        s = s * scale + p
        acc = acc * scale[:, None] + p[:, None] * vals
        m = m_new
    mx = tl.max(m, axis=0)
    f = tl.where(m > float("-inf"), tl.exp(m - mx), 0.0)
    tot = tl.sum(s * f, axis=0)
    res = tl.sum(acc * f[:, None], axis=0)
    slv = tl.zeros([BLOCK_C], tl.int32) + sl
    whole = cmask & (slv < 0)
    partial = cmask & (slv >= 0)
    so = tl.maximum(slv, 0).to(tl.int64) * HEADS + h  # (slot, head) of a split row's chunk
    tl.store(pacc + so * C + offs_c, res, mask=partial)
    tl.store(pm + so, tl.zeros([BLOCK_C], acc_t) + mx, mask=partial & (offs_c == 0))
    tl.store(ps + so, tl.zeros([BLOCK_C], acc_t) + tot, mask=partial & (offs_c == 0))
    nz = tot > 0
    res = tl.where(nz, res / tl.where(nz, tot, 1.0), 0.0)
    tl.store(out + r * (HEADS * C) + h * C + offs_c, res.to(out.dtype.element_ty), mask=whole)
    lrow = tl.zeros([BLOCK_C], acc_t) + tl.where(nz, mx + tl.log(tl.where(nz, tot, 1.0)), 0.0)
    tl.store(lse + r * HEADS + h + offs_c * 0, lrow.to(lse.dtype.element_ty),
             mask=whole & (offs_c == 0))


@triton.jit
def _attention_combine_kernel(split_rows, split_ptr, pm, ps, pacc, out, lse, C,
                              HEADS: tl.constexpr, ACC64: tl.constexpr, BLOCK_C: tl.constexpr):
    i = tl.program_id(0)
    h = tl.program_id(1)
    r = tl.load(split_rows + i).to(tl.int64)
    p0 = tl.load(split_ptr + i).to(tl.int64)
    p1 = tl.load(split_ptr + i + 1).to(tl.int64)
    acc_t = tl.float64 if ACC64 else tl.float32
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    mx = tl.full([BLOCK_C], float("-inf"), acc_t)
    for p in range(p0, p1):
        mx = tl.maximum(mx, tl.load(pm + p * HEADS + h + offs_c * 0))
    tot = tl.zeros([BLOCK_C], acc_t)
    res = tl.zeros([BLOCK_C], acc_t)
    for p in range(p0, p1):
        m = tl.load(pm + p * HEADS + h + offs_c * 0)
        f = tl.where(m > float("-inf"), tl.exp(m - mx), 0.0)
        tot += f * tl.load(ps + p * HEADS + h + offs_c * 0)
        res += f * tl.load(pacc + (p * HEADS + h) * C + offs_c, mask=cmask, other=0.0)
    nz = tot > 0
    res = tl.where(nz, res / tl.where(nz, tot, 1.0), 0.0)
    tl.store(out + r * (HEADS * C) + h * C + offs_c, res.to(out.dtype.element_ty), mask=cmask)
    lrow = tl.where(nz, mx + tl.log(tl.where(nz, tot, 1.0)), 0.0)
    tl.store(lse + r * HEADS + h + offs_c * 0, lrow.to(lse.dtype.element_ty),
             mask=offs_c == 0)


def attention_fwd(rowptr, col, logit, value, heads: int, gat=None):
    """Fused ``out[i,h] = sum_e softmax_i(logit)[e,h] * value[col_e, h]`` and row log-sum-exp.

    ``gat=(a_src, a_dst, negative_slope)`` computes the logits in the kernel,
    ``logit[e, h] = leaky_relu(a_src[col_e, h] + a_dst[row_e, h])`` (``logit`` is then unused).
    """
    n_dst = rowptr.numel() - 1
    C = value.size(1) // heads
    out = value.new_empty(n_dst, heads * C)
    acc = _acc_dtype(value.dtype)
    lse = torch.empty(n_dst, heads, dtype=acc, device=value.device)
    if n_dst == 0 or heads == 0:
        return out, lse
    if C == 0:
        out.zero_()
    chunk_row, chunk_start, slot, split_rows, split_ptr, n_slots = schedule(rowptr)
    n_slots = max(n_slots, 1)
    pm = torch.empty(n_slots, heads, dtype=acc, device=value.device)
    ps = torch.empty(n_slots, heads, dtype=acc, device=value.device)
    pacc = torch.empty(n_slots, heads, max(C, 1), dtype=acc, device=value.device)
    block_c = max(triton.next_power_of_2(C), 1)
    a_src, a_dst, slope = gat if gat is not None else (value, value, 0.0)
    _attention_fwd_kernel[(chunk_row.numel(), heads)](
        rowptr, chunk_row, chunk_start, slot, col, logit if logit is not None else value, value,
        out, lse, pm, ps, pacc, a_src, a_dst, C, CHUNK, HEADS=heads, GAT=gat is not None,
        SLOPE=float(slope), ACC64=value.dtype == torch.float64, BLOCK_C=block_c)
    if split_rows.numel():
        _attention_combine_kernel[(split_rows.numel(), heads)](
            split_rows, split_ptr, pm, ps, pacc, out, lse, C, HEADS=heads,
            ACC64=value.dtype == torch.float64, BLOCK_C=block_c)
    return out, lse


def attention_bwd_logit(rowptr, col, logit, lse, dout, value, delta, heads: int):
    """``dlogit[e, h] = alpha[e, h] * (<dout_i, v_j> - delta_i)`` without an ``E x F`` tensor."""
    return _sddmm_rows(rowptr, col, dout, value, heads, torch.empty_like(logit),
                       attn=(logit, lse, delta))


# ----------------------------------------------------------------- GAT-mode attention backward
@triton.autotune(
    configs=_configs([
        triton.Config({"BLOCK_E": 16}, num_warps=2),
        triton.Config({"BLOCK_E": 32}, num_warps=4),
        triton.Config({"BLOCK_E": 16}, num_warps=4),
    ]),
    key=["C", "HEADS", "BLOCK_C"],
    reset_to_zero=["ga_dst"],  # atomically accumulated: zeroed between autotuning runs
)
@triton.jit
def _gat_bwd_kernel(colptr, chunk_row, chunk_start, slot, row_t, a_src, a_dst, lse, delta, g, v,
                    gv, ga_src, ga_dst, pgv, pga, C, CHUNK_E, HEADS: tl.constexpr,
                    SLOPE: tl.constexpr, ACC64: tl.constexpr, BLOCK_E: tl.constexpr,
                    BLOCK_C: tl.constexpr):
    """Whole GAT-mode backward in one pass over the transposed CSR: one program per
    (source chunk, head) keeps ``v[j]`` and ``a_src[j]`` in registers and streams ``g[i]`` of
    the targets ``i`` that ``j`` sends to. Per edge it recomputes
    ``alpha = exp(leaky_relu(a_src[j] + a_dst[i]) - lse[i])`` and from the same ``g[i]`` tile
    both ``gv[j] += alpha * g[i]`` and ``dz = alpha * (<g[i], v[j]> - delta[i]) * lrelu'(z)``;
    ``ga_src[j] = sum dz`` stays in registers, ``ga_dst[i] += dz`` is an atomic add (float32 /
    float64 buffer, zero-initialised)."""
    k = tl.program_id(0)
    h = tl.program_id(1)
    j = tl.load(chunk_row + k).to(tl.int64)
    start = tl.load(chunk_start + k)
    end = tl.minimum(start + CHUNK_E, tl.load(colptr + j + 1))
    sl = tl.load(slot + k)
    acc_t = tl.float64 if ACC64 else tl.float32
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    xj = tl.load(v + j * (HEADS * C) + h * C + offs_c, mask=cmask, other=0.0).to(acc_t)
    asj = tl.load(a_src + j * HEADS + h).to(acc_t)
    acc = tl.zeros([BLOCK_E, BLOCK_C], acc_t)
    gs = tl.zeros([BLOCK_E], acc_t)
    for e0 in range(start, end, BLOCK_E):
        offs_e = e0 + tl.arange(0, BLOCK_E)
        emask = offs_e < end
        i = tl.load(row_t + offs_e, mask=emask, other=0).to(tl.int64)
        ad = tl.load(a_dst + i * HEADS + h, mask=emask, other=0.0).to(acc_t)
        ls = tl.load(lse + i * HEADS + h, mask=emask, other=0.0).to(acc_t)
        dl = tl.load(delta + i * HEADS + h, mask=emask, other=0.0).to(acc_t)
        gi = tl.load(g + i[:, None] * (HEADS * C) + h * C + offs_c[None, :],
                     mask=emask[:, None] & cmask[None, :], other=0.0).to(acc_t)
        z = asj + ad
        pos = z > 0
        alpha = tl.where(emask, tl.exp(tl.where(pos, z, z * SLOPE) - ls), 0.0)
        acc += alpha[:, None] * gi
        dot = tl.sum(gi * xj[None, :], axis=1)
        dz = alpha * (dot - dl)
        dz = tl.where(emask, tl.where(pos, dz, dz * SLOPE), 0.0)
        gs += dz
        tl.atomic_add(ga_dst + i * HEADS + h, dz, mask=emask, sem="relaxed")
    res = tl.sum(acc, axis=0)
    gsum = tl.sum(gs, axis=0)
    slv = tl.zeros([BLOCK_C], tl.int32) + sl
    whole = cmask & (slv < 0)
    partial = cmask & (slv >= 0)
    so = tl.maximum(slv, 0).to(tl.int64)
    tl.store(pgv + so * (HEADS * C) + h * C + offs_c, res, mask=partial)
    tl.store(gv + j * (HEADS * C) + h * C + offs_c, res.to(gv.dtype.element_ty), mask=whole)
    first = offs_c == 0
    gvec = tl.zeros([BLOCK_C], acc_t) + gsum
    tl.store(pga + so * HEADS + h, gvec, mask=(slv >= 0) & first)
    tl.store(ga_src + j * HEADS + h + offs_c * 0, gvec.to(ga_src.dtype.element_ty),
             mask=(slv < 0) & first)


def gat_attention_bwd(colptr, row_t, a_src, a_dst, value, lse, g, delta, heads: int,
                      negative_slope: float):
    """Gradients ``(g_value, g_a_src, g_a_dst)`` of the GAT-mode attention (see
    :func:`_gat_bwd_kernel`); ``g_a_dst`` is accumulated with atomics (float32 / float64), so its
    last bits may vary between runs when a target has several incoming edges."""
    n_src = colptr.numel() - 1
    n_dst = a_dst.size(0)
    F = value.size(1)
    C = F // max(heads, 1)
    acc = _acc_dtype(value.dtype)
    gv = torch.empty_like(value)
    ga_src = torch.empty(n_src, heads, dtype=value.dtype, device=value.device)
    ga_dst = torch.zeros(n_dst, heads, dtype=acc, device=value.device)
    if n_src == 0 or heads == 0:
        return gv, ga_src, ga_dst.to(value.dtype)
    chunk_row, chunk_start, slot, split_rows, split_ptr, n_slots = schedule(colptr)
    n_slots = max(n_slots, 1)
    pgv = torch.empty(n_slots, F, dtype=acc, device=value.device)
    pga = torch.empty(n_slots, heads, dtype=acc, device=value.device)
    block_c = max(triton.next_power_of_2(C), 1)
    acc64 = value.dtype == torch.float64
    _gat_bwd_kernel[(chunk_row.numel(), heads)](
        colptr, chunk_row, chunk_start, slot, row_t, a_src, a_dst, lse, delta, g, value,
        gv, ga_src, ga_dst, pgv, pga, C, CHUNK, HEADS=heads, SLOPE=float(negative_slope),
        ACC64=acc64, BLOCK_C=block_c)
    if split_rows.numel():
        for part, out, width in ((pgv, gv, F), (pga, ga_src, heads)):
            if width == 0:
                continue
            _spmm_combine_kernel[(split_rows.numel(), triton.cdiv(width, 128))](
                colptr, split_rows, split_ptr, part, part, out, out, width, REDUCE=0,
                ACC64=acc64, BLOCK_F=min(triton.next_power_of_2(width), 128))
    return gv, ga_src, ga_dst.to(value.dtype)


# ------------------------------------------------------- fused SpMM backward (features + weights)
@triton.autotune(
    configs=_configs([
        triton.Config({"BLOCK_E": 16}, num_warps=4),
        triton.Config({"BLOCK_E": 32}, num_warps=4),
        triton.Config({"BLOCK_E": 16}, num_warps=2),
        triton.Config({"BLOCK_E": 32}, num_warps=8),
        triton.Config({"BLOCK_E": 8}, num_warps=2),
    ]),
    key=["C", "HEADS", "BLOCK_C"],
)
@triton.jit
def _spmm_bwd_xw_kernel(colptr, chunk_row, chunk_start, slot, row_t, perm_t, w, g, x, gx, gw,
                        pgx, C, CHUNK_E, HEADS: tl.constexpr, ACC64: tl.constexpr,
                        BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr):
    """Both gradients of ``out = A_w @ x`` in one pass over the transposed CSR: one program per
    (source chunk, head) keeps ``x[j]`` in registers and streams ``g[i]`` for the targets ``i``
    of ``j``'s out-edges; the same ``g[i]`` tile gives ``gx[j] += w_e * g[i]`` and the edge-weight
    gradient ``gw[e] = <g[i], x[j]>``, written straight to the edge's CSR slot ``perm_t[p]``."""
    k = tl.program_id(0)
    h = tl.program_id(1)
    j = tl.load(chunk_row + k).to(tl.int64)
    start = tl.load(chunk_start + k)
    end = tl.minimum(start + CHUNK_E, tl.load(colptr + j + 1))
    sl = tl.load(slot + k)
    acc_t = tl.float64 if ACC64 else tl.float32
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    xj = tl.load(x + j * (HEADS * C) + h * C + offs_c, mask=cmask, other=0.0).to(acc_t)
    acc = tl.zeros([BLOCK_E, BLOCK_C], acc_t)
    for e0 in range(start, end, BLOCK_E):
        offs_e = e0 + tl.arange(0, BLOCK_E)
        emask = offs_e < end
        i = tl.load(row_t + offs_e, mask=emask, other=0).to(tl.int64)
        e = tl.load(perm_t + offs_e, mask=emask, other=0).to(tl.int64)
        we = tl.load(w + e * HEADS + h, mask=emask, other=0.0).to(acc_t)
        gi = tl.load(g + i[:, None] * (HEADS * C) + h * C + offs_c[None, :],
                     mask=emask[:, None] & cmask[None, :], other=0.0).to(acc_t)
        acc += we[:, None] * gi
        dot = tl.sum(gi * xj[None, :], axis=1)
        tl.store(gw + e * HEADS + h, dot.to(gw.dtype.element_ty), mask=emask)
    res = tl.sum(acc, axis=0)
    slv = tl.zeros([BLOCK_C], tl.int32) + sl
    so = tl.maximum(slv, 0).to(tl.int64)
    tl.store(pgx + so * (HEADS * C) + h * C + offs_c, res, mask=cmask & (slv >= 0))
    tl.store(gx + j * (HEADS * C) + h * C + offs_c, res.to(gx.dtype.element_ty),
             mask=cmask & (slv < 0))


FUSED_BWD_MAX_C = 256  # wider heads keep the two-kernel backward (accumulator tile too large)


def spmm_bwd_xw(colptr, row_t, perm_t, weight, g, x, heads: int):
    """``(gx, gw)`` of ``out[i] = sum_e w_e * x[col_e]``: ``gx = A_w^T g`` and
    ``gw[e, h] = <g[row_e, h], x[col_e, h]>`` (CSR order, ``(E, heads)``), from one kernel."""
    n_src = colptr.numel() - 1
    F = x.size(1)
    C = F // max(heads, 1)
    acc = _acc_dtype(x.dtype)
    gx = torch.empty_like(x)
    gw = x.new_empty(perm_t.numel(), heads)
    if n_src == 0 or F == 0:
        return gx.zero_(), gw.zero_()
    chunk_row, chunk_start, slot, split_rows, split_ptr, n_slots = schedule(colptr)
    pgx = torch.empty(max(n_slots, 1), F, dtype=acc, device=x.device)
    acc64 = x.dtype == torch.float64
    _spmm_bwd_xw_kernel[(chunk_row.numel(), heads)](
        colptr, chunk_row, chunk_start, slot, row_t, perm_t, weight, g, x, gx, gw, pgx, C, CHUNK,
        HEADS=heads, ACC64=acc64, BLOCK_C=max(triton.next_power_of_2(C), 1))
    if split_rows.numel():
        block_f = min(triton.next_power_of_2(F), 128)
        _spmm_combine_kernel[(split_rows.numel(), triton.cdiv(F, block_f))](
            colptr, split_rows, split_ptr, pgx, pgx, gx, gx, F, REDUCE=0, ACC64=acc64,
            BLOCK_F=block_f)
    return gx, gw
