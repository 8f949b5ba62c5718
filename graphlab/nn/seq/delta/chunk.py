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

import functools
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
        chunk_size (int): :math:`T`. (default: ``64``)

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
    # mixed inputs (bf16 q/k/v/beta with an fp32 log-gate, as fla's layers keep it) run in the
    # promoted dtype; the output comes back in q's dtype
    out_dtype = q.dtype
    dt = q.dtype
    for t in (k, v, beta, g) + (() if h0 is None else (h0,)):
        dt = torch.promote_types(dt, t.dtype)
    q, k, v, beta, g = (t.to(dt) for t in (q, k, v, beta, g))

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
    # the triangular solve has no half-precision kernel: solve in fp32 (bf16 / autocast inputs)
    solve_dtype = torch.float64 if A.dtype == torch.float64 else torch.float32
    eye = torch.eye(T, dtype=solve_dtype, device=q.device)
    Tm = torch.linalg.solve_triangular(eye + A.to(solve_dtype), eye.expand(A.shape), upper=False,
                                       unitriangular=True).to(A.dtype)
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
    return o.transpose(1, 2).to(out_dtype), S


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


# --- fla dispatch -----------------------------------------------------------------------------
# Checked against fla 0.6.0 (``fla-core``), whose ops take ``[B, T, H, ...]`` inputs (``head_first``
# is gone), return ``(o, final_state)``, default ``scale`` to ``K ** -0.5`` (we pass ``1.0``: ``q`` is
# pre-scaled), take the gate ``g`` as a per-step log-decay and ``beta`` as is (post-sigmoid; with
# ``use_beta_sigmoid_in_kernel=False`` any positive value, so ``(0, 2)`` works, as in fla's own
# DeltaNet/GatedDeltaProduct layers). Constraints honoured here:
#   * ``chunk_delta_rule`` / ``chunk_gated_delta_product`` assert ``q.dtype != float32``; the chunk
#     kernels assert head dims ``<= 256``, and their half-precision backward even ones;
#   * ``fused_recurrent_gated_delta_rule(q, k, v, g, gk, gv, beta, ...)``: ``beta`` is the 7th
#     parameter, so everything after ``v`` is passed by keyword; its backward raises
#     ``NotImplementedError``, so it is used only when no gradient is needed;
#   * ``chunk_gated_delta_product`` wants ``k, v [B, T * n_h, H, .]`` and ``beta [B, T * n_h, H]``
#     ordered ``(t n)``, ``g [B, T, H]`` (or ``None``), and ``num_householder``.
_FLA_MAX_HEAD_DIM = 256


@functools.lru_cache(maxsize=1)
def _fla_ops():
    """fla's delta-rule ops, or ``None`` when fla is not importable."""
    try:
        from fla.ops.delta_rule import chunk_delta_rule as fla_chunk, fused_recurrent_delta_rule as fla_rec
        from fla.ops.gated_delta_rule import (chunk_gated_delta_rule as fla_gchunk,
                                              fused_recurrent_gated_delta_rule as fla_grec)
        from fla.ops.gated_delta_product import chunk_gated_delta_product as fla_gdp
    except Exception:  # not installed, or no usable Triton
        return None
    return {"chunk_delta_rule": fla_chunk, "fused_recurrent_delta_rule": fla_rec,
            "chunk_gated_delta_rule": fla_gchunk, "fused_recurrent_gated_delta_rule": fla_grec,
            "chunk_gated_delta_product": fla_gdp}


def _fla_device(x: Tensor) -> bool:
    """Whether ``x`` lives where fla's Triton kernels run (CUDA; a test hook on CPU)."""
    return x.is_cuda


def _fla_dtype(*tensors: Optional[Tensor]) -> Optional[torch.dtype]:
    """The dtype fla runs in: half precision if any input is (autocast mixes bf16 and fp32),
    float32 if all are, ``None`` (no fla) otherwise."""
    dtypes = {t.dtype for t in tensors if t is not None}
    for half in (torch.bfloat16, torch.float16):
        if half in dtypes:
            return half
    return torch.float32 if dtypes == {torch.float32} else None


def fla_backend(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor] = None,
                num_householder: int = 1, use_fla: bool = True) -> str:
    """Name of the kernel :func:`delta_rule` / :func:`delta_product` run for these inputs:
    ``"torch"`` (:func:`chunk_delta_rule`) or the fla function.

    fla is used on CUDA when importable and the head dims are even and ``<= 256``: in half
    precision its ``chunk_*`` kernels; in float32 its fused recurrences (fp32 state, step by step),
    except that the gated one has no backward, so a gated float32 call that needs gradients stays
    on the torch path.
    """
    if not (use_fla and _fla_device(q)):
        return "torch"
    dtype = _fla_dtype(q, k, v, beta)
    Kd, Vd = k.size(-1), v.size(-1)
    if dtype is None or max(Kd, Vd) > _FLA_MAX_HEAD_DIM or Kd % 2 or Vd % 2 or _fla_ops() is None:
        return "torch"
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (q, k, v, beta, g))
    if dtype != torch.float32:
        if g is not None and needs_grad and _fla_gated_bwd_broken(q.device):
            return "torch"
        if num_householder > 1:
            return "chunk_gated_delta_product"
        return "chunk_delta_rule" if g is None else "chunk_gated_delta_rule"
    if g is None:
        return "fused_recurrent_delta_rule"
    return "torch" if needs_grad else "fused_recurrent_gated_delta_rule"


@functools.lru_cache(maxsize=None)
def _fla_gated_bwd_broken(device: torch.device) -> bool:
    """fla 0.6 refuses the *gated* chunk backward on Hopper (sm_90) with Triton in
    [3.4.0, 3.7.1) (wrong results, fla issue #640) unless tilelang is installed: such calls stay
    on the torch path. Seen on an H200 with Triton 3.6.0 (2026-11-28)."""
    if device.type != "cuda" or torch.cuda.get_device_capability(device)[0] != 9:
        return False
    try:
        import triton
        from packaging.version import Version
        bad = Version("3.4.0") <= Version(triton.__version__.split("+")[0]) < Version("3.7.1")
    except Exception:  # noqa: BLE001 - no triton / unparsable version: let fla decide
        return False
    if not bad:
        return False
    try:
        import tilelang  # noqa: F401
        return False
    except ImportError:
        return True


def _run_fla(backend: str, q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor]) -> Tensor:
    """Calls fla's ``backend`` on DeltaProduct-shaped inputs (``k [B, L, n_h, H, K]``, ...)."""
    fn = _fla_ops()[backend]
    dtype = _fla_dtype(q, k, v, beta)
    q, k, v, beta = (t.to(dtype) for t in (q, k, v, beta))
    g = None if g is None else g.float()          # fla's layers keep the log-gate in fp32
    Bsz, L, n_h = k.shape[:3]
    if backend == "chunk_gated_delta_product":
        flat = lambda x: x.reshape(Bsz, L * n_h, *x.shape[3:])  # noqa: E731  (t n) order, as fla
        return fn(q, flat(k), flat(v), g=g, beta=flat(beta), num_householder=n_h, scale=1.0)[0]
    if n_h == 1:
        qp, kp, vp, bp, gp = q, k[:, :, 0], v[:, :, 0], beta[:, :, 0], g
    else:  # fp32 recurrences on the L * n_h pseudo-tokens, read out after each group
        qp, kp, vp, bp, gp = _to_pseudo_tokens(q, k, v, beta, g)
    if backend == "chunk_delta_rule" or backend == "fused_recurrent_delta_rule":
        o = fn(qp, kp, vp, beta=bp, scale=1.0)[0]
    elif backend == "chunk_gated_delta_rule" or backend == "fused_recurrent_gated_delta_rule":
        o = fn(qp, kp, vp, g=gp, beta=bp, scale=1.0)[0]
    else:  # pragma: no cover - fla_backend returns only the names above
        raise ValueError(f"unknown fla backend {backend!r}")
    return o if n_h == 1 else o[:, n_h - 1::n_h]


def delta_rule(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor] = None,
               chunk_size: int = 64, use_fla: bool = True) -> Tensor:
    """Gated delta rule output ``[B, L, H, V]`` (shapes as :func:`chunk_delta_rule`): fla on CUDA
    when importable (see :func:`fla_backend`), else :func:`chunk_delta_rule`."""
    backend = fla_backend(q, k, v, beta, g, 1, use_fla)
    if backend == "torch":
        return chunk_delta_rule(q, k, v, beta, g, chunk_size=chunk_size)[0]
    return _run_fla(backend, q, k.unsqueeze(2), v.unsqueeze(2), beta.unsqueeze(2), g)


def delta_product(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor] = None,
                  chunk_size: int = 64, use_fla: bool = True) -> Tensor:
    """DeltaProduct output ``[B, L, H, V]`` (shapes as :func:`chunk_delta_product`): fla on CUDA
    when importable (``chunk_gated_delta_product`` in half precision, fp32 fused recurrences on the
    pseudo-tokens in float32; see :func:`fla_backend`), else :func:`chunk_delta_product`."""
    n_h = k.size(2)
    if n_h == 1:
        return delta_rule(q, k[:, :, 0], v[:, :, 0], beta[:, :, 0], g, chunk_size, use_fla)
    backend = fla_backend(q, k, v, beta, g, n_h, use_fla)
    if backend == "torch":
        return chunk_delta_product(q, k, v, beta, g, chunk_size=chunk_size)[0]
    return _run_fla(backend, q, k, v, beta, g)
