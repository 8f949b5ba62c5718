"""Recommendation ranking: the user–item graph, BPR training pairs and full-ranking metrics.

Protocol (LightGCN / NGCF): every user is ranked against all items, items the user interacted
with in training (and, for the test split, in validation) are excluded, and Recall@K / NDCG@K
are averaged over users with at least one held-out item.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data


def bipartite_graph(train: Tensor, num_users: int, num_items: int) -> Data:
    """Undirected homogeneous graph: users ``0..U-1``, items ``U..U+I-1``."""
    u, i = train[0], train[1] + num_users
    return Data(edge_index=torch.stack([torch.cat([u, i]), torch.cat([i, u])]),
                num_nodes=num_users + num_items)


def pair_ids(pairs: Tensor, num_items: int) -> Tensor:
    """``user * num_items + item``: one sortable id per (user, item) pair."""
    return pairs[0] * num_items + pairs[1]


def rank_metrics(emb: Tensor, num_users: int, num_items: int, heldout: Tensor,
                 exclude: Tensor, k: int = 20, chunk: int = 1024) -> Dict[str, float]:
    """Recall@k and NDCG@k of dot-product scores over all items, computed on ``emb``'s device.

    Args:
        emb: ``(U + I, d)`` user then item embeddings.
        heldout: ``(2, P)`` (user, item) pairs to retrieve.
        exclude: ``(2, Q)`` (user, item) pairs never recommended (training interactions).
    """
    dev = emb.device
    heldout, exclude = heldout.to(dev), exclude.to(dev)
    users, items = emb[:num_users], emb[num_users:]
    held_ids = pair_ids(heldout, num_items).sort().values
    excl_ids = pair_ids(exclude, num_items).sort().values
    held_count = torch.bincount(heldout[0], minlength=num_users)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=dev))
    item_range = torch.arange(num_items, device=dev)
    recall_sum = torch.zeros((), dtype=torch.float64, device=dev)
    ndcg_sum = torch.zeros((), dtype=torch.float64, device=dev)
    for start in range(0, num_users, chunk):
        rows = torch.arange(start, min(start + chunk, num_users), device=dev)
        scores = users[rows] @ items.T
        base = rows[:, None] * num_items
        if excl_ids.numel():
            scores = scores.masked_fill(contains(excl_ids, base + item_range[None, :]),
                                        -math.inf)
        top = scores.topk(min(k, num_items), dim=1).indices
        rel = contains(held_ids, base + top).double() if held_ids.numel() else \
            torch.zeros_like(top, dtype=torch.float64)
        cnt = held_count[rows].double()
        valid = cnt > 0
        recall_sum += (rel.sum(1)[valid] / cnt[valid]).sum()
        dcg = (rel * discount[: rel.size(1)]).sum(1)
        ideal = torch.cumsum(discount, 0)[(cnt.clamp(max=k) - 1).clamp(min=0).long()]
        ndcg_sum += (dcg[valid] / ideal[valid]).sum()
    n_users = max(int((held_count > 0).sum()), 1)
    return {f"recall@{k}": float(recall_sum) / n_users, f"ndcg@{k}": float(ndcg_sum) / n_users}


def contains(sorted_ids: Tensor, ids: Tensor) -> Tensor:
    """Boolean mask of ``ids`` (any shape) found in the sorted 1-D ``sorted_ids``."""
    if not sorted_ids.numel():
        return torch.zeros_like(ids, dtype=torch.bool)
    pos = torch.searchsorted(sorted_ids, ids.flatten()).clamp(max=sorted_ids.numel() - 1)
    return (sorted_ids[pos] == ids.flatten()).view_as(ids)


def sample_negatives(users: Tensor, num_items: int, num: int, generator: torch.Generator,
                     exclude_ids: Optional[Tensor] = None, max_rounds: int = 100) -> Tensor:
    """``(B, num)`` uniformly drawn item ids for the ``B`` users, on ``users``' device.

    Without ``exclude_ids`` the draw is uniform with replacement over all items (UltraGCN's
    ``sampling_sift_pos = False``). With ``exclude_ids`` (the sorted :func:`pair_ids` of the
    training pairs) every draw that hits one of the user's items is redrawn, all at once, until
    none is left (LightGCN's sampler): the result is uniform over the user's non-items. Users
    who interacted with every item must be rejected by the caller.
    """
    if num < 1:
        raise ValueError(f"the number of negatives per pair must be >= 1, got {num}")
    dev = users.device
    neg = torch.randint(0, num_items, (users.numel(), num), device=dev, generator=generator)
    if exclude_ids is None:
        return neg
    base = users.view(-1, 1) * num_items
    for _ in range(max_rounds):
        hit = contains(exclude_ids, base + neg)
        if not hit.any():
            return neg
        neg[hit] = torch.randint(0, num_items, (int(hit.sum()),), device=dev,
                                 generator=generator)
    raise ValueError(f"negative sampling did not find non-interacted items in {max_rounds} "
                     f"rounds: some users interacted with almost every item")


def bpr_loss(emb: Tensor, pairs: Tensor, negatives: Tensor, num_users: int,
             l2: float = 0.0, base: Optional[Tensor] = None) -> Tensor:
    r"""Bayesian personalised ranking, averaged over pairs and their sampled negatives, plus
    LightGCN's L2 term on the batch's layer-0 embeddings:

    .. math::
        \frac{1}{B}\sum_{(u,i)}\frac{1}{n}\sum_{j}\mathrm{softplus}(s_{uj} - s_{ui})
        + \lambda\,\frac{1}{2B}\left(\|E^{(0)}_u\|^2 + \|E^{(0)}_i\|^2 + \|E^{(0)}_j\|^2\right)

    Args:
        emb: ``(U + I, d)`` final embeddings; ``base``: the ``(U + I, d)`` layer-0 table
            (needed when ``l2 > 0``).
        pairs: ``(2, B)`` training (user, item) pairs; ``negatives``: ``(B, n)`` item ids.
    """
    u = emb[pairs[0]]
    pos = (u * emb[num_users + pairs[1]]).sum(-1)
    negs = (u.unsqueeze(1) * emb[num_users + negatives]).sum(-1)
    loss = torch.nn.functional.softplus(negs - pos.unsqueeze(1)).mean()
    if l2 > 0:
        if base is None:
            raise ValueError("bpr_loss with l2 > 0 needs the layer-0 embeddings (base)")
        reg = base[pairs[0]].square().sum() + base[num_users + pairs[1]].square().sum() + \
            base[num_users + negatives].square().sum() / negatives.size(1)
        loss = loss + l2 * reg / (2 * pairs.size(1))
    return loss
