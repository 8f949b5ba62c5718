r"""Step-by-step delta-rule recurrences (plain loops; the twins of :mod:`.chunk`).

State :math:`S \in \mathbb{R}^{K \times V}` per head (fla's layout, the transpose of
:math:`S_t = S_{t-1}(I - \beta_t k_t k_t^\top) + \beta_t v_t k_t^\top` in the papers):

.. math::
    S_t = \alpha_t S_{t-1} + \beta_t k_t\,(v_t - \alpha_t S_{t-1}^\top k_t)^\top,\qquad o_t = S_t^\top q_t,

with :math:`\alpha_t = e^{g_t}` (1 without a gate). DeltaProduct applies :math:`n_h` such
Householder updates per token (the gate once, before the first) and reads out after the last.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor


def delta_rule_naive(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor] = None,
                     h0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """``q, k [B, L, H, K]``, ``v [B, L, H, V]``, ``beta, g [B, L, H]`` -> ``(o [B, L, H, V], S [B, H, K, V])``."""
    k5, v5, b5 = k.unsqueeze(2), v.unsqueeze(2), beta.unsqueeze(2)
    return delta_product_naive(q, k5, v5, b5, g, h0)


def delta_product_naive(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Optional[Tensor] = None,
                        h0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """``q [B, L, H, K]``, ``k [B, L, n_h, H, K]``, ``v [B, L, n_h, H, V]``, ``beta [B, L, n_h, H]``,
    ``g [B, L, H]`` -> ``(o [B, L, H, V], S [B, H, K, V])``."""
    Bsz, L, n_h, H, K = k.shape
    S = q.new_zeros(Bsz, H, K, v.size(-1)) if h0 is None else h0
    out = []
    for t in range(L):
        if g is not None:
            S = S * torch.exp(g[:, t])[..., None, None]
        for j in range(n_h):
            kt, vt, bt = k[:, t, j], v[:, t, j], beta[:, t, j]
            err = vt - torch.einsum("bhkv,bhk->bhv", S, kt)
            S = S + bt[..., None, None] * kt.unsqueeze(-1) * err.unsqueeze(-2)
        out.append(torch.einsum("bhkv,bhk->bhv", S, q[:, t]))
    return torch.stack(out, 1), S
