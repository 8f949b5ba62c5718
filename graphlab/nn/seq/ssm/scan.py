r"""Chunked parallel scan for diagonal linear recurrences :math:`h_t = a_t \odot h_{t-1} + b_t`.

Two levels of Hillis-Steele doubling: inside chunks of ``chunk_size`` steps, then across the
chunk carries. Products of the :math:`a_t` are formed explicitly (never through ``cumsum`` of
``log a``), so negative and complex :math:`a_t` are exact. The traced op count is
:math:`O(\log_2 T + \log_2 (L/T))`, i.e. grows logarithmically with the length.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor


def _doubling_scan(a: Tensor, b: Tensor, dim: int):
    """Inclusive scan of the affine maps ``h -> a h + b`` along ``dim`` (zero initial state).

    Returns ``(A, H)`` with ``A_t = a_t a_{t-1} ... a_0`` and ``H_t`` the state after step ``t``.
    """
    n = a.size(dim)
    k = 1
    while k < n:
        a_cur, b_cur = a.narrow(dim, k, n - k), b.narrow(dim, k, n - k)
        a_prev, b_prev = a.narrow(dim, 0, n - k), b.narrow(dim, 0, n - k)
        b = torch.cat([b.narrow(dim, 0, k), a_cur * b_prev + b_cur], dim)
        a = torch.cat([a.narrow(dim, 0, k), a_cur * a_prev], dim)
        k *= 2
    return a, b


def linear_scan(a: Tensor, b: Tensor, h0: Optional[Tensor] = None, chunk_size: int = 64) -> Tensor:
    """All states of :math:`h_t = a_t h_{t-1} + b_t` along dim 1.

    Args:
        a (Tensor): transitions ``[B, L, ...]`` (broadcastable to ``b``; real or complex, any sign).
        b (Tensor): inputs ``[B, L, ...]``.
        h0 (Tensor, optional): initial state ``[B, ...]`` (zeros if ``None``).
        chunk_size (int): inner chunk length. (default: ``64``)

    Returns:
        Tensor: ``h [B, L, ...]``.
    """
    a = a.expand_as(b) if a.shape != b.shape else a
    a = a.to(b.dtype) if a.dtype != b.dtype else a
    Bsz, L = b.shape[:2]
    rest = b.shape[2:]
    T = min(chunk_size, L)
    n = math.ceil(L / T)
    pad = n * T - L
    if pad:
        a = torch.cat([a, a.new_ones((Bsz, pad, *rest))], 1)
        b = torch.cat([b, b.new_zeros((Bsz, pad, *rest))], 1)
    a = a.reshape(Bsz, n, T, *rest)
    b = b.reshape(Bsz, n, T, *rest)
    A, H = _doubling_scan(a, b, 2)                       # within chunks
    Ac, Hc = _doubling_scan(A[:, :, -1], H[:, :, -1], 1)  # across chunk ends
    if h0 is not None:
        Hc = Hc + Ac * h0.unsqueeze(1)
        first = h0.unsqueeze(1).to(Hc.dtype)
    else:
        first = torch.zeros_like(Hc[:, :1])
    carry = torch.cat([first, Hc[:, :-1]], 1)           # state entering each chunk
    h = H + A * carry.unsqueeze(2)
    return h.reshape(Bsz, n * T, *rest)[:, :L]
