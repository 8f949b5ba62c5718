r"""UltraGCN's constraint weights and loss (Mao et al., "UltraGCN: Ultra Simplification of
Graph Convolutional Networks for Recommendation", CIKM 2021, https://arxiv.org/abs/2110.15114;
reference code xue-pai/UltraGCN).

UltraGCN skips message passing: the limit of infinitely many LightGCN layers is imposed as a
constraint on free embeddings, folded into per-pair weights of a binary cross-entropy.

**User-item weights.** With training degrees :math:`d_u, d_i` of the interaction matrix
:math:`A \in \{0,1\}^{U \times I}`,

.. math::
    \beta_{u,i} = \frac{1}{d_u}\sqrt{\frac{d_u + 1}{d_i + 1}}
    = \underbrace{\frac{\sqrt{d_u + 1}}{d_u}}_{\beta^U_u}\;
      \underbrace{\frac{1}{\sqrt{d_i + 1}}}_{\beta^I_i}.

**Item-item weights.** Over the co-occurrence graph :math:`G = A^\top A` with
:math:`g_i = \sum_k G_{ik}`,

.. math::
    \omega_{i,j} = \frac{G_{ij}}{g_i - G_{ii}}\sqrt{\frac{g_i}{g_j - G_{jj}}}, \qquad j \ne i,

and every item keeps its K largest :math:`\omega_{i,j}` (:math:`S(i)`).

**Loss** over a batch of training pairs :math:`(u, i)` with sampled negatives :math:`N_u`:

.. math::
    \mathcal{L} = \sum_{(u,i)} \Big[(w_1 + w_2\beta_{u,i})\,\mathrm{softplus}(-e_u^\top e_i)
      + \frac{\nu}{|N_u|}\sum_{j \in N_u}(w_3 + w_4\beta_{u,j})\,\mathrm{softplus}(e_u^\top e_j)
      + \lambda \sum_{j \in S(i)} \omega_{i,j}\,\mathrm{softplus}(-e_u^\top e_j)\Big]
      + \frac{\gamma}{2}\|\theta\|^2

(:math:`\mathrm{softplus}(-x) = -\log\sigma(x)`; :math:`\nu` is the reference's
``negative_weight``).

Cost. :func:`item_neighbours` forms :math:`G` one block of items at a time as a sparse product
:math:`A_{:,b}^\top A` and keeps each row's top K by a sort of its non-zeros: memory is the
block's non-zeros, never an items-by-items dense matrix (Amazon-Book: 91,599 items).

Choices (documented because the equation leaves them open):

* The sums are sums over the batch, as in the reference code (Adam's step does not depend on
  the scale, but :math:`\gamma` weighs the L2 term against it).
* :math:`S(i)` excludes :math:`i` itself (the paper's :math:`j \ne i`). Items with fewer than K
  co-occurring items are padded with themselves at weight 0 (no loss, no gradient).
* A user without training interactions has :math:`\beta^U_u = 0` (it appears in no training
  pair); :math:`\omega_{i,j} = 0` where :math:`g_i = G_{ii}` (an item whose users have no other
  item).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["degree_betas", "item_neighbours", "ultragcn_loss"]


def _degrees(train: Tensor, num_users: int, num_items: int) -> Tuple[Tensor, Tensor]:
    return (torch.bincount(train[0], minlength=num_users).double(),
            torch.bincount(train[1], minlength=num_items).double())


def _check(train: Tensor, num_users: int, num_items: int) -> None:
    if train.dim() != 2 or train.size(0) != 2:
        raise ValueError(f"expected (2, P) (user, item) training pairs, got {tuple(train.shape)}")
    if train.numel() and (int(train[0].max()) >= num_users or int(train[1].max()) >= num_items
                          or int(train.min()) < 0):
        raise ValueError(f"training pairs index outside {num_users} users x {num_items} items")


def degree_betas(train: Tensor, num_users: int, num_items: int) -> Tuple[Tensor, Tensor]:
    r"""``(beta_user (U,), beta_item (I,))`` with :math:`\beta_{u,i} = \beta^U_u\beta^I_i`
    (float32, on ``train``'s device). ``train``: ``(2, P)`` unique (user, item) pairs."""
    _check(train, num_users, num_items)
    d_u, d_i = _degrees(train, num_users, num_items)
    beta_u = torch.where(d_u > 0, (d_u + 1).sqrt() / d_u.clamp(min=1), torch.zeros_like(d_u))
    return beta_u.float(), (1.0 / (d_i + 1).sqrt()).float()


def item_neighbours(train: Tensor, num_users: int, num_items: int, k: int,
                    block: int = 4096) -> Tuple[Tensor, Tensor]:
    r"""The K item-item neighbours of every item: ``(index (I, K) long, weight (I, K) float32)``
    with weights :math:`\omega_{i,j}`, largest first (see the module docstring).

    Args:
        train: ``(2, P)`` unique (user, item) training pairs.
        k: neighbours per item, ``1 <= k < num_items``.
        block: items whose rows of :math:`G` are formed at once (bounds memory).
    """
    _check(train, num_users, num_items)
    if not 1 <= k < num_items:
        raise ValueError(f"the number of item-item neighbours K must be in [1, {num_items - 1}] "
                         f"(the other items), got {k}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    dev = train.device
    u, i = train[0], train[1]
    d_u, d_i = _degrees(train, num_users, num_items)
    g = torch.zeros(num_items, dtype=torch.float64, device=dev).index_add_(0, i, d_u[u])
    off = g - d_i  # g_i - G_ii (A is binary: G_ii = d_i)
    a = torch.sparse_coo_tensor(train, torch.ones(train.size(1), dtype=torch.float64,
                                                  device=dev), (num_users, num_items)).coalesce()
    index = torch.arange(num_items, device=dev).view(-1, 1).repeat(1, k)
    weight = torch.zeros(num_items, k, dtype=torch.float64, device=dev)
    for start in range(0, num_items, block):
        stop = min(start + block, num_items)
        sel = (i >= start) & (i < stop)
        at = torch.sparse_coo_tensor(torch.stack([i[sel] - start, u[sel]]),
                                     torch.ones(int(sel.sum()), dtype=torch.float64, device=dev),
                                     (stop - start, num_users))
        gb = torch.sparse.mm(at, a).coalesce()
        (r, c), v = gb.indices(), gb.values()
        row = r + start
        keep = (c != row) & (v > 0)
        r, c, v, row = r[keep], c[keep], v[keep], row[keep]
        ok = (off[row] > 0) & (off[c] > 0)
        w = torch.where(ok, v / off[row].clamp(min=1e-300) *
                        (g[row] / off[c].clamp(min=1e-300)).sqrt(), torch.zeros_like(v))
        # per row, largest first: sort by weight, then stably by row
        order = w.argsort(descending=True, stable=True)
        order = order[r[order].argsort(stable=True)]
        r, c, w = r[order], c[order], w[order]
        counts = torch.bincount(r, minlength=stop - start)
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(r.numel(), device=dev) - first[r]
        top = rank < k
        index[start + r[top], rank[top]] = c[top]
        weight[start + r[top], rank[top]] = w[top]
    return index, weight.float()


def ultragcn_loss(user_emb: Tensor, item_emb: Tensor, pairs: Tensor, negatives: Tensor,
                  beta_user: Tensor, beta_item: Tensor, nbr_index: Tensor, nbr_weight: Tensor,
                  w: Tuple[float, float, float, float], negative_weight: float,
                  lambda_: float, gamma: float) -> Tensor:
    r"""UltraGCN's loss of one batch (module docstring).

    Shapes:
        user_emb ``(U, d)``, item_emb ``(I, d)``, pairs ``(2, B)``, negatives ``(B, n)``,
        beta_user ``(U,)``, beta_item ``(I,)``, nbr_index / nbr_weight ``(I, K)``; a scalar.
    """
    users, items = pairs[0], pairs[1]
    eu = user_emb[users]
    pos = (eu * item_emb[items]).sum(-1)
    neg = torch.einsum("bd,bnd->bn", eu, item_emb[negatives])
    bu = beta_user[users]
    w_pos = w[0] + w[1] * bu * beta_item[items]
    w_neg = w[2] + w[3] * bu.unsqueeze(1) * beta_item[negatives]
    loss_l = (w_pos * F.softplus(-pos)).sum() + \
        negative_weight * (w_neg * F.softplus(neg)).mean(1).sum()
    nbr = nbr_index[items]
    sim = torch.einsum("bd,bkd->bk", eu, item_emb[nbr])
    loss_i = (nbr_weight[items] * F.softplus(-sim)).sum()
    norm = 0.5 * (user_emb.square().sum() + item_emb.square().sum())
    return loss_l + gamma * norm + lambda_ * loss_i
