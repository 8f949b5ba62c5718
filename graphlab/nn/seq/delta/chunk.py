r"""Chunked (WY / UT-transform) form of the gated delta rule, and the fla dispatch.

Inside a chunk of :math:`T` steps with cumulative log-decay :math:`G_t = \sum_{s \le t} g_s`
(:math:`\gamma_t = e^{G_t}`) and entering state :math:`S_0`, write
:math:`S_t = \gamma_t S_0 + \sum_{i \le t} \tfrac{\gamma_t}{\gamma_i} k_i u_i^\top` with
pseudo-values :math:`u_t = \beta_t(v_t - \alpha_t S_{t-1}^\top k_t)`. Substituting gives the unit
lower-triangular system :math:`(I + A)U = \mathrm{diag}(\beta)V - \mathrm{diag}(\beta\gamma)KS_0`,
:math:`A_{ti} = \beta_t \tfrac{\gamma_t}{\gamma_i} k_t^\top k_i` (:math:`i < t`), so with
:math:`\mathcal T = (I + A)^{-1}` (one triangular solve per chunk, all chunks at once),

.. math::
    U = \underbrace{\mathcal T\,\mathrm{diag}(\beta)V}_{\tilde U}
        - \underbrace{\mathcal T\,\mathrm{diag}(\beta\gamma)K}_{W}\,S_0,\quad
    O = \mathrm{diag}(\gamma)QS_0 + (M \odot QK^\top)\,U,\quad
    S_T = \gamma_T S_0 + (\tfrac{\gamma_T}{\gamma} \odot K)^\top U,

with :math:`M_{ti} = \gamma_t/\gamma_i` for :math:`i \le t`. Only the short pass of states over
chunks is sequential (:math:`L/T` iterations). Nothing here assumes :math:`\beta < 1`, so
:math:`\beta \in (0, 2)` (negative eigenvalues) is exact. DeltaProduct runs the same recurrence on
:math:`L \cdot n_h` pseudo-tokens (gate on the first of each group, read-out after the last).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor


def chunk_delta_rule(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor] = None,
                     h0: Optional[Tensor] = None, chunk_size: int = 64) -> Tuple[Tensor, Tensor]:
    """Chunked gated delta rule (pure PyTorch, any device).

    Args:
        q, k (Tensor): ``[B, L, H, K]`` (``k`` L2-normalised by the caller; ``q`` already scaled).
        v (Tensor): ``[B, L, H, V]``.
        beta (Tensor): ``[B, L, H]``, any positive value (``(0, 2)`` for negative eigenvalues).
        g (Tensor, optional): log-decay ``[B, L, H]`` (``<= 0``); ``None`` means no gate.
        h0 (Tensor, optional): initial state ``[B, H, K, V]``.
        chunk_size (int): :math:`T`. (default ``64``)

    Returns:
        ``(o [B, L, H, V], S_L [B, H, K, V])``.
    """
    Bsz, L, H, K = k.shape
    Vd = v.size(-1)
    T = min(chunk_size, L)
    n = math.ceil(L / T)
    pad = n * T - L
    if g is None:
        g = beta.new_zeros(beta.shape)

    def blocks(x: Tensor) -> Tensor:  # [B, L, H, ...] -> [B, H, n, T, ...] (zero padded)
        if pad:
            x = torch.cat([x, x.new_zeros(Bsz, pad, *x.shape[2:])], 1)
        x = x.reshape(Bsz, n, T, *x.shape[2:])
        return x.permute(0, 3, 1, 2, *range(4, x.dim())) if x.dim() > 4 else x.permute(0, 3, 1, 2)

    q, k, v, beta, g = blocks(q), blocks(k), blocks(v), blocks(beta), blocks(g)
    G = g.cumsum(-1)                                                     # [B, H, n, T]
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    diff = (G.unsqueeze(-1) - G.unsqueeze(-2)).masked_fill(~causal, float("-inf"))
    decay = torch.exp(diff)                                              # gamma_t / gamma_i, i <= t
    kb = k * beta.unsqueeze(-1)
    A = (kb @ k.transpose(-1, -2)) * decay.tril(-1)
    eye = torch.eye(T, dtype=q.dtype, device=q.device)
    Tm = torch.linalg.solve_triangular(eye + A, eye.expand_as(A), upper=False, unitriangular=True)
    W = Tm @ (kb * torch.exp(G).unsqueeze(-1))                           # [B, H, n, T, K]
    U0 = Tm @ (v * beta.unsqueeze(-1))                                   # [B, H, n, T, V]
    attn = (q @ k.transpose(-1, -2)) * decay
    qg = q * torch.exp(G).unsqueeze(-1)
    k_end = k * torch.exp(G[..., -1:] - G).unsqueeze(-1)
    g_end = torch.exp(G[..., -1])                                        # [B, H, n]
    S = q.new_zeros(Bsz, H, K, Vd) if h0 is None else h0.to(q.dtype)
    outs = []
    for c in range(n):
        u = U0[:, :, c] - W[:, :, c] @ S
        outs.append(qg[:, :, c] @ S + attn[:, :, c] @ u)
        S = g_end[:, :, c, None, None] * S + k_end[:, :, c].transpose(-1, -2) @ u
    o = torch.stack(outs, 2).reshape(Bsz, H, n * T, Vd)[:, :, :L]
    return o.transpose(1, 2), S


def _to_pseudo_tokens(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor]):
    """DeltaProduct -> delta rule on ``L * n_h`` pseudo-tokens (q at the last, g at the first)."""
    Bsz, L, n_h, H, K = k.shape
    qp = q.new_zeros(Bsz, L, n_h, H, K)
    qp[:, :, -1] = q
    gp = None
    if g is not None:
        gp = g.new_zeros(Bsz, L, n_h, H)
        gp[:, :, 0] = g
        gp = gp.reshape(Bsz, L * n_h, H)
    flat = lambda x: x.reshape(Bsz, L * n_h, *x.shape[3:])  # noqa: E731
    return flat(qp), flat(k), flat(v), flat(beta), gp


def chunk_delta_product(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor] = None,
                        h0: Optional[Tensor] = None, chunk_size: int = 64) -> Tuple[Tensor, Tensor]:
    """Chunked DeltaProduct: ``q [B, L, H, K]``, ``k [B, L, n_h, H, K]``, ``v [B, L, n_h, H, V]``,
    ``beta [B, L, n_h, H]``, ``g [B, L, H]`` -> ``(o [B, L, H, V], S_L)``."""
    n_h = k.size(2)
    qp, kp, vp, bp, gp = _to_pseudo_tokens(q, k, v, beta, g)
    o, S = chunk_delta_rule(qp, kp, vp, bp, gp, h0, chunk_size)
    return o[:, n_h - 1::n_h], S


def _fla_ops():
    try:
        from fla.ops.delta_rule import chunk_delta_rule as fla_chunk, fused_recurrent_delta_rule as fla_rec
        from fla.ops.gated_delta_rule import (chunk_gated_delta_rule as fla_gchunk,
                                              fused_recurrent_gated_delta_rule as fla_grec)
        from fla.ops.gated_delta_product import chunk_gated_delta_product as fla_gdp
    except Exception:  # not installed, or no usable Triton / GPU
        return None
    return dict(chunk=fla_chunk, rec=fla_rec, gchunk=fla_gchunk, grec=fla_grec, gdp=fla_gdp)


def _use_fla(x: Tensor) -> bool:
    return x.is_cuda and x.dtype in (torch.float32, torch.float16, torch.bfloat16)


def delta_rule(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor] = None,
               chunk_size: int = 64, use_fla: bool = True) -> Tensor:
    """Gated delta rule output ``[B, L, H, V]``: fla on CUDA when importable (``fused_recurrent_*`` in
    fp32, ``chunk_*`` in half precision), else :func:`chunk_delta_rule`."""
    ops = _fla_ops() if (use_fla and _use_fla(q)) else None
    if ops is None:
        return chunk_delta_rule(q, k, v, beta, g, chunk_size=chunk_size)[0]
    fp32 = q.dtype == torch.float32
    if g is None:
        fn = ops["rec"] if fp32 else ops["chunk"]
        return fn(q, k, v, beta, scale=1.0)[0]
    fn = ops["grec"] if fp32 else ops["gchunk"]
    return fn(q, k, v, g, beta, scale=1.0)[0]


def delta_product(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor] = None,
                  chunk_size: int = 64, use_fla: bool = True) -> Tensor:
    """DeltaProduct output ``[B, L, H, V]`` (shapes as :func:`chunk_delta_product`): fla's
    ``chunk_gated_delta_product`` on CUDA in half precision, fla's fp32 fused recurrence on the
    pseudo-tokens in fp32, else :func:`chunk_delta_product`."""
    n_h = k.size(2)
    if n_h == 1:
        return delta_rule(q, k[:, :, 0], v[:, :, 0], beta[:, :, 0], g, chunk_size, use_fla)
    ops = _fla_ops() if (use_fla and _use_fla(q)) else None
    if ops is None:
        return chunk_delta_product(q, k, v, beta, g, chunk_size=chunk_size)[0]
    Bsz, L = q.shape[:2]
    if q.dtype == torch.float32:
        qp, kp, vp, bp, gp = _to_pseudo_tokens(q, k, v, beta, g)
        if gp is None:
            gp = bp.new_zeros(bp.shape)
        return ops["grec"](qp, kp, vp, gp, bp, scale=1.0)[0][:, n_h - 1::n_h]
    gg = g if g is not None else beta.new_zeros(Bsz, L, beta.size(-1))
    kp = k.reshape(Bsz, L * n_h, *k.shape[3:])
    vp = v.reshape(Bsz, L * n_h, *v.shape[3:])
    bp = beta.reshape(Bsz, L * n_h, beta.size(-1))
    return ops["gdp"](q, kp, vp, gg, bp, num_householder=n_h, scale=1.0)[0]
