"""Step-by-step references for the diagonal SSM cores (plain loops, use float64 in tests).

Each function is the obviously-correct twin of a fast path: :func:`selective_scan_naive` of
:class:`~graphlab.nn.seq.Mamba`'s chunked scan, :func:`lti_diagonal_naive` of the S4D kernel /
FFT convolution and of S5's parallel scan.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def selective_transition(delta: Tensor, A: Tensor, allow_neg_eigval: bool) -> Tensor:
    r""":math:`\bar A = \exp(\Delta A) \in (0, 1)`, or :math:`2\exp(\Delta A) - 1 \in (-1, 1)`."""
    a = torch.exp(delta.unsqueeze(-1) * A)
    return 2.0 * a - 1.0 if allow_neg_eigval else a


def selective_scan_naive(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor,
                         z: Optional[Tensor] = None, allow_neg_eigval: bool = False,
                         h0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    r"""Mamba's selective scan, one step at a time.

    .. math::
        h_t = \bar A_t \odot h_{t-1} + \Delta_t B_t u_t, \qquad
        y_t = C_t h_t + D u_t \; (\odot\, \mathrm{SiLU}(z_t)).

    Shapes: ``u, delta, z [B, L, E]``, ``A [E, N]``, ``B, C [B, L, N]``, ``D [E]``,
    ``h0 [B, E, N]``; returns ``(y [B, L, E], h_L [B, E, N])``.
    """
    Bsz, L, E = u.shape
    h = u.new_zeros(Bsz, E, A.size(-1)) if h0 is None else h0
    ys = []
    for t in range(L):
        a = selective_transition(delta[:, t], A, allow_neg_eigval)
        h = a * h + (delta[:, t] * u[:, t]).unsqueeze(-1) * B[:, t].unsqueeze(1)
        y = (h * C[:, t].unsqueeze(1)).sum(-1) + D * u[:, t]
        if z is not None:
            y = y * F.silu(z[:, t])
        ys.append(y)
    return torch.stack(ys, 1), h


def lti_diagonal_naive(u: Tensor, lam_bar: Tensor, B_bar: Tensor, C: Tensor, D: Tensor,
                       scale: float = 1.0, h0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    r"""A discrete diagonal LTI system, one step at a time (complex state).

    .. math::
        x_t = \bar\Lambda x_{t-1} + \bar B u_t, \qquad y_t = s\,\mathrm{Re}(C x_t) + D u_t.

    Shapes: ``u [B, L, H]``, ``lam_bar [P]``, ``B_bar [P, H]``, ``C [H, P]``, ``D [H]``,
    ``h0 [B, P]``; ``scale`` :math:`s` is 2 when only one of each conjugate pair is kept.
    S4D is the block-diagonal case (one SISO system per channel), see :func:`s4d_naive`.
    """
    Bsz, L, H = u.shape
    x = torch.zeros(Bsz, lam_bar.size(0), dtype=lam_bar.dtype, device=u.device) if h0 is None else h0
    ys = []
    for t in range(L):
        x = lam_bar * x + u[:, t].to(B_bar.dtype) @ B_bar.T
        ys.append(scale * (x @ C.T).real + D * u[:, t])
    return torch.stack(ys, 1), x


def s4d_naive(u: Tensor, lam_bar: Tensor, CB: Tensor, D: Tensor, scale: float = 2.0,
              h0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    r"""Per-channel S4D recurrence: ``u [B, L, H]``, ``lam_bar, CB [H, M]`` (``C \bar B`` folded).

    .. math:: x_t = \bar\lambda \odot x_{t-1} + u_t, \quad y_t = s\,\mathrm{Re}(\textstyle\sum_m (C\bar B)_m x_{t,m}) + D u_t.
    """
    Bsz, L, H = u.shape
    x = torch.zeros(Bsz, *lam_bar.shape, dtype=lam_bar.dtype, device=u.device) if h0 is None else h0
    ys = []
    for t in range(L):
        x = lam_bar * x + u[:, t].unsqueeze(-1)
        ys.append(scale * (x * CB).sum(-1).real + D * u[:, t])
    return torch.stack(ys, 1), x
