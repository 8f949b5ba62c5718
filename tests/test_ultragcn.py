"""UltraGCN: constraint weights and item-item top-K against dense float64 formulas, the loss
against a direct implementation of the paper's equations, negative sampling, and a LastFM run."""
from __future__ import annotations

import math
import resource

import pytest
import torch

from graphlab.models.ultragcn import UltraGCN
from graphlab.nn.ultragcn import degree_betas, item_neighbours, ultragcn_loss
from graphlab.tasks.ranking import pair_ids, sample_negatives
from graphlab.train.run import run_seed


def _pairs(nu, ni, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.stack([torch.randint(0, nu, (n,), generator=g),
                     torch.randint(0, ni, (n,), generator=g)]).unique(dim=1)
    return p


def _dense(p, nu, ni):
    a = torch.zeros(nu, ni, dtype=torch.float64)
    a[p[0], p[1]] = 1.0
    return a


def _dense_omega(a):
    gm = a.T @ a
    g = gm.sum(1)
    off = g - gm.diagonal()
    om = torch.zeros_like(gm)
    for i in range(gm.size(0)):
        for j in range(gm.size(0)):
            if i != j and gm[i, j] > 0 and off[i] > 0 and off[j] > 0:
                om[i, j] = gm[i, j] / off[i] * math.sqrt(g[i] / off[j])
    return om


def test_betas_equal_the_dense_formula():
    nu, ni = 7, 11
    p = _pairs(nu, ni, 40)
    a = _dense(p, nu, ni)
    du, di = a.sum(1), a.sum(0)
    bu, bi = degree_betas(p, nu, ni)
    for u, i in p.t().tolist():
        want = (1 / du[u]) * math.sqrt((du[u] + 1) / (di[i] + 1))
        assert float(bu[u] * bi[i]) == pytest.approx(float(want), rel=1e-6)


def test_user_without_interactions_gets_beta_zero():
    bu, _ = degree_betas(torch.tensor([[0, 0], [1, 2]]), 3, 4)
    assert bu[1] == 0 and bu[2] == 0 and bu[0] > 0


@pytest.mark.parametrize("block", [1, 3, 100])
def test_blocked_sparse_topk_equals_dense_topk(block):
    nu, ni, k = 9, 13, 4
    p = _pairs(nu, ni, 60, seed=1)
    om = _dense_omega(_dense(p, nu, ni))
    idx, w = item_neighbours(p, nu, ni, k, block=block)
    want = om.topk(k, dim=1).values
    assert torch.allclose(w.double(), want, atol=1e-6)
    picked = om.gather(1, idx)
    assert torch.allclose(picked, w.double(), atol=1e-6)  # the indices carry those weights
    assert not (idx == torch.arange(ni)[:, None])[w > 0].any()  # never the item itself


def test_blocked_topk_stays_sparse_on_91k_items():
    nu, ni = 5000, 91_599
    p = _pairs(nu, ni, 60_000, seed=2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    idx, w = item_neighbours(p, nu, ni, 10, block=8192)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert idx.shape == (ni, 10) and (w >= 0).all()
    assert grown_mb < 1000  # a dense items x items float64 matrix would be 67 GB


def test_bad_k_and_bad_negatives_are_clear_errors():
    p = _pairs(4, 5, 10)
    with pytest.raises(ValueError, match="neighbours K"):
        item_neighbours(p, 4, 5, 5)
    with pytest.raises(ValueError, match="num_neighbours"):
        UltraGCN(9, 1, num_users=4, num_items=5, num_neighbours=5)
    with pytest.raises(ValueError, match="negatives"):
        sample_negatives(torch.tensor([0]), 5, 0, torch.Generator())


def _naive_loss(ue, ie, p, neg, a, k, w, nu_w, lam, gamma):
    du, di = a.sum(1), a.sum(0)
    om = _dense_omega(a)
    top = om.topk(k, dim=1)
    logsig = lambda x: math.log(1 / (1 + math.exp(-x)))  # noqa: E731
    total = 0.0
    for b, (u, i) in enumerate(p.t().tolist()):
        beta = lambda j: (1 / du[u]) * math.sqrt((du[u] + 1) / (di[j] + 1))  # noqa: E731
        total -= (w[0] + w[1] * beta(i)) * logsig(float(ue[u] @ ie[i]))
        negs = neg[b].tolist()
        total -= nu_w / len(negs) * sum((w[2] + w[3] * beta(j)) * logsig(-float(ue[u] @ ie[j]))
                                        for j in negs)
        total -= lam * sum(float(top.values[i, r]) * logsig(float(ue[u] @ ie[top.indices[i, r]]))
                           for r in range(k))
    return total + gamma / 2 * (float((ue ** 2).sum()) + float((ie ** 2).sum()))


def test_loss_equals_the_papers_equations_in_float64():
    nu, ni, k, d = 8, 12, 3, 5
    p = _pairs(nu, ni, 50, seed=3)
    g = torch.Generator().manual_seed(4)
    ue = torch.randn(nu, d, generator=g, dtype=torch.float64)
    ie = torch.randn(ni, d, generator=g, dtype=torch.float64)
    neg = torch.randint(0, ni, (p.size(1), 6), generator=g)
    w, nu_w, lam, gamma = (1e-3, 1.0, 0.5, 2.0), 3.0, 0.7, 1e-2
    bu, bi = degree_betas(p, nu, ni)
    idx, wt = item_neighbours(p, nu, ni, k)
    got = ultragcn_loss(ue, ie, p, neg, bu.double(), bi.double(), idx, wt.double(), w, nu_w,
                        lam, gamma)
    want = _naive_loss(ue, ie, p, neg, _dense(p, nu, ni), k, w, nu_w, lam, gamma)
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_negatives_avoid_training_items_and_repeat_per_seed():
    nu, ni = 20, 30
    p = _pairs(nu, ni, 300, seed=5)
    ids = pair_ids(p, ni).sort().values
    users = p[0]
    draw = lambda s: sample_negatives(users, ni, 50, torch.Generator().manual_seed(s), ids)  # noqa
    neg = draw(0)
    seen = set(map(tuple, p.t().tolist()))
    assert not any((int(u), int(j)) in seen for u, row in zip(users, neg) for j in row)
    assert torch.equal(neg, draw(0)) and not torch.equal(neg, draw(1))
    plain = sample_negatives(users, ni, 50, torch.Generator().manual_seed(0))
    assert plain.shape == (users.numel(), 50) and 0 <= int(plain.min()) and int(plain.max()) < ni


@pytest.mark.realdata
@pytest.mark.parametrize("protocol", ["heldout", "paper"])
def test_ultragcn_lastfm_trains(mirror, data_root, tmp_path, protocol):
    cfg = {"experiment": "ugcn", "data": {"name": "lastfm", "batch_size": 4096},
           "model": {"name": "ultragcn", "hidden_channels": 16, "num_neighbours": 5,
                     "init_std": 0.1},
           "optim": {"name": "adam", "lr": 0.01},
           "task": {"negatives": 8, "protocol": protocol}, "trainer": {"max_epochs": 2}}
    rec = run_seed(cfg, 0, str(tmp_path), quiet=True)
    assert rec["task"] == "recommendation" and 0.0 < rec["test"]["recall@20"] <= 1.0
    if protocol == "paper":
        h = rec["history"][-1]
        assert h["valid_recall@20"] == pytest.approx(h["test_recall@20"])


@pytest.mark.realdata
def test_lightgcn_l2_and_exclusion_options_train(mirror, data_root, tmp_path):
    cfg = {"experiment": "lgcn", "data": {"name": "lastfm", "batch_size": 8192},
           "model": {"name": "lightgcn", "hidden_channels": 16, "num_layers": 2},
           "optim": {"name": "adam", "lr": 0.005},
           "task": {"l2": 1e-4, "exclude_positives": True}, "trainer": {"max_epochs": 1}}
    rec = run_seed(cfg, 0, str(tmp_path), quiet=True)
    assert 0.0 < rec["test"]["recall@20"] <= 1.0
