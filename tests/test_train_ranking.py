"""Recommendation ranking: full-ranking Recall/NDCG against a plain-loop reference; LastFM run."""
from __future__ import annotations

import math

import pytest
import torch

from graphlab.tasks.ranking import bipartite_graph, rank_metrics
from graphlab.train.run import run_seed


def _naive(emb, nu, ni, held, excl, k):
    recs, ndcgs = [], []
    for u in range(nu):
        gt = {int(i) for uu, i in held.t().tolist() if uu == u}
        if not gt:
            continue
        seen = {int(i) for uu, i in excl.t().tolist() if uu == u}
        scores = [(float(emb[u] @ emb[nu + i]), i) for i in range(ni) if i not in seen]
        top = [i for _, i in sorted(scores, key=lambda t: -t[0])[:k]]
        hits = [1.0 if i in gt else 0.0 for i in top]
        recs.append(sum(hits) / len(gt))
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(gt), k)))
        ndcgs.append(dcg / idcg)
    return sum(recs) / len(recs), sum(ndcgs) / len(ndcgs)


def test_rank_metrics_match_loop_reference():
    g = torch.Generator().manual_seed(0)
    nu, ni, d = 13, 29, 4
    emb = torch.randn(nu + ni, d, generator=g, dtype=torch.float64)
    pairs = torch.stack([torch.randint(0, nu, (120,), generator=g),
                         torch.randint(0, ni, (120,), generator=g)]).unique(dim=1)
    excl, held = pairs[:, ::2], pairs[:, 1::2]
    got = rank_metrics(emb, nu, ni, held, excl, k=5, chunk=4)
    rec, ndcg = _naive(emb, nu, ni, held, excl, 5)
    assert got["recall@5"] == pytest.approx(rec, abs=1e-12)
    assert got["ndcg@5"] == pytest.approx(ndcg, abs=1e-12)


def test_bipartite_graph_offsets_items():
    g = bipartite_graph(torch.tensor([[0, 1], [2, 0]]), num_users=2, num_items=3)
    assert g.num_nodes == 5 and g.edge_index.tolist() == [[0, 1, 4, 2], [4, 2, 0, 1]]


@pytest.mark.realdata
def test_lightgcn_lastfm_trains(mirror, data_root, tmp_path):
    cfg = {"experiment": "rec", "data": {"name": "lastfm", "batch_size": 4096},
           "model": {"name": "lightgcn", "hidden_channels": 16, "num_layers": 2},
           "optim": {"name": "adam", "lr": 0.01}, "trainer": {"max_epochs": 2}}
    rec = run_seed(cfg, 0, str(tmp_path), quiet=True)
    assert rec["task"] == "recommendation" and rec["metric"] == "recall@20"
    assert 0.0 < rec["test"]["recall@20"] <= 1.0
    assert "test_ndcg@20" in rec["history"][0]


@pytest.mark.realdata
def test_link_prediction_on_cora_stand_in(mirror, data_root, tmp_path):
    cfg = {"experiment": "lp", "data": {"name": "cora-link", "batch_size": 1},
           "model": {"name": "gcn", "hidden_channels": 32}, "optim": {"lr": 0.01},
           "task": {"embed_dim": 16}, "trainer": {"max_epochs": 20}}
    rec = run_seed(cfg, 0, str(tmp_path), quiet=True)
    assert rec["task"] == "link_prediction" and rec["test"]["rocauc"] > 0.75
