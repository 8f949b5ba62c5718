"""Recommendation ranking: the user–item graph, BPR training pairs and full-ranking metrics.

Protocol (LightGCN / NGCF): every user is ranked against all items, items the user interacted
with in training (and, for the test split, in validation) are excluded, and Recall@K / NDCG@K
are averaged over users with at least one held-out item.
"""
from __future__ import annotations

import math
from typing import Dict

import torch
from torch import Tensor
from torch_geometric.data import Data


def bipartite_graph(train: Tensor, num_users: int, num_items: int) -> Data:
    """Undirected homogeneous graph: users ``0..U-1``, items ``U..U+I-1``."""
    u, i = train[0], train[1] + num_users
    return Data(edge_index=torch.stack([torch.cat([u, i]), torch.cat([i, u])]),
                num_nodes=num_users + num_items)


def _pair_ids(pairs: Tensor, num_items: int) -> Tensor:
    return pairs[0] * num_items + pairs[1]


def rank_metrics(emb: Tensor, num_users: int, num_items: int, heldout: Tensor,
                 exclude: Tensor, k: int = 20, chunk: int = 1024) -> Dict[str, float]:
    """Recall@k and NDCG@k of dot-product scores over all items.

    Args:
        emb: ``(U + I, d)`` user then item embeddings.
        heldout: ``(2, P)`` (user, item) pairs to retrieve.
        exclude: ``(2, Q)`` (user, item) pairs never recommended (training interactions).
    """
    users, items = emb[:num_users], emb[num_users:]
    held_ids = _pair_ids(heldout, num_items).sort().values
    excl_ids = _pair_ids(exclude, num_items).sort().values
    held_count = torch.bincount(heldout[0], minlength=num_users)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    recall_sum, ndcg_sum, n_users = 0.0, 0.0, 0
    for start in range(0, num_users, chunk):
        rows = torch.arange(start, min(start + chunk, num_users))
        scores = users[rows] @ items.T
        base = rows[:, None] * num_items
        ids = base + torch.arange(num_items)[None, :]
        pos = torch.searchsorted(excl_ids, ids.flatten()).clamp(max=max(excl_ids.numel() - 1, 0))
        if excl_ids.numel():
            hit = (excl_ids[pos] == ids.flatten()).view_as(scores)
            scores = scores.masked_fill(hit, -math.inf)
        top = scores.topk(min(k, num_items), dim=1).indices
        top_ids = (base + top).flatten()
        pos = torch.searchsorted(held_ids, top_ids).clamp(max=max(held_ids.numel() - 1, 0))
        rel = (held_ids[pos] == top_ids).view_as(top).double() if held_ids.numel() else \
            torch.zeros_like(top, dtype=torch.float64)
        cnt = held_count[rows].double()
        valid = cnt > 0
        if not valid.any():
            continue
        recall_sum += float((rel.sum(1)[valid] / cnt[valid]).sum())
        dcg = (rel * discount[: rel.size(1)]).sum(1)
        ideal = torch.cumsum(discount, 0)[(cnt.clamp(max=k) - 1).clamp(min=0).long()]
        ndcg_sum += float((dcg[valid] / ideal[valid]).sum())
        n_users += int(valid.sum())
    return {f"recall@{k}": recall_sum / max(n_users, 1), f"ndcg@{k}": ndcg_sum / max(n_users, 1)}


def bpr_loss(emb: Tensor, pairs: Tensor, num_users: int, num_items: int,
             generator: torch.Generator | None = None) -> Tensor:
    """Bayesian personalised ranking with one uniformly sampled negative item per pair."""
    neg = torch.randint(0, num_items, (pairs.size(1),), generator=generator).to(pairs.device)
    u = emb[pairs[0]]
    pos = (u * emb[num_users + pairs[1]]).sum(-1)
    negs = (u * emb[num_users + neg]).sum(-1)
    return torch.nn.functional.softplus(negs - pos).mean()
