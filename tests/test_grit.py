"""GRITLayer against a loop-by-loop float64 reference, the dense twin, symmetries, gradients, configs."""
import glob
import inspect
import os

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch_geometric.data import Batch, Data

from graphlab.models import GRIT
from graphlab.models.grit import grit_pairs
from graphlab.nn import GRITLayer
from graphlab.transforms import AddRRWP

F64 = torch.float64
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- naive reference
def _bn(t, bn, training):
    if training:
        mean, var = t.mean(0), t.var(0, unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    return (t - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias


def naive_grit_layer(layer, x, pairs, deg, training):
    """pairs: list of (query i, key j, e_ij). Plain per-pair loops, written from the equations."""
    C, H, d = layer.channels, layer.heads, layer.head_dim
    Wq, bq = layer.lin_q.weight, layer.lin_q.bias
    Wk, Wv = layer.lin_k.weight, layer.lin_v.weight
    We, be = layer.lin_e.weight, layer.lin_e.bias
    N = x.size(0)
    x_hat = torch.zeros(N, C, dtype=x.dtype)
    e_hat_all = []
    for i in range(N):
        keys = [(j, e) for (q, j, e) in pairs if q == i]
        logits, values = [], []
        for j, e in keys:
            qk = (Wq @ x[i] + bq + Wk @ x[j]).view(H, d)
            ee = (We @ e + be).view(2, H, d)
            s = qk * ee[0]
            rho = torch.sqrt(torch.relu(s)) - torch.sqrt(torch.relu(-s))
            e_hat = torch.relu(rho + ee[1])                                  # [H, d]
            logits.append(torch.clamp((e_hat * layer.att).sum(-1), -layer.clamp, layer.clamp))
            v = (Wv @ x[j]).view(H, d)
            values.append(torch.stack([v[h] + e_hat[h] @ layer.lin_ev[h] for h in range(H)]))
        if keys:
            alpha = torch.softmax(torch.stack(logits), dim=0)               # over keys j
            x_hat[i] = (alpha.unsqueeze(-1) * torch.stack(values)).sum(0).reshape(C)
    for (q, j, e) in pairs:  # the pair update, in the given order
        qk = (Wq @ x[q] + bq + Wk @ x[j]).view(H, d)
        ee = (We @ e + be).view(2, H, d)
        s = qk * ee[0]
        e_hat_all.append(torch.relu(torch.sqrt(torch.relu(s)) - torch.sqrt(torch.relu(-s))
                                    + ee[1]).reshape(C))
    th = layer.deg_coef
    h = x_hat * th[:, 0] + torch.log(1 + deg).unsqueeze(-1) * x_hat * th[:, 1]
    h = _bn(x + h @ layer.out_x.weight.t() + layer.out_x.bias, layer.norm_x1, training)
    f = torch.relu(h @ layer.ffn1.weight.t() + layer.ffn1.bias) @ layer.ffn2.weight.t() \
        + layer.ffn2.bias
    x_out = _bn(h + f, layer.norm_x2, training)
    E = torch.stack([e for (_, _, e) in pairs])
    o = torch.stack(e_hat_all) @ layer.out_e.weight.t() + layer.out_e.bias
    return x_out, _bn(E + o, layer.norm_e, training)


def _random_pairs(gen, C):
    """Graph A = nodes 0..3 with all 16 pairs, graph B = nodes 4..6 with a few pairs; node 7 has
    none (attends to nothing)."""
    qk = [(i, j) for i in range(4) for j in range(4)] + [(4, 4), (5, 5), (6, 6), (4, 5), (5, 6),
                                                        (6, 4), (4, 6)]
    return [(i, j, torch.randn(C, dtype=F64, generator=gen)) for i, j in qk]


@pytest.mark.parametrize("training", [False, True])
def test_layer_matches_naive_reference(training):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    C, N = 8, 8
    layer = GRITLayer(C, heads=2).double()
    for bn in (layer.norm_x1, layer.norm_x2, layer.norm_e):  # non-trivial running statistics
        bn.running_mean.normal_(generator=gen)
        bn.running_var.uniform_(0.5, 2.0, generator=gen)
        bn.weight.data.normal_(generator=gen)
        bn.bias.data.normal_(generator=gen)
    x = torch.randn(N, C, dtype=F64, generator=gen)
    deg = torch.randint(0, 4, (N,), generator=gen).to(F64)
    pairs = _random_pairs(gen, C)
    pair_index = torch.tensor([[j for _, j, _ in pairs], [i for i, _, _ in pairs]])
    pair_attr = torch.stack([e for _, _, e in pairs])
    layer.train(training)
    x_out, e_out = layer(x, pair_index, pair_attr, deg)
    x_ref, e_ref = naive_grit_layer(layer, x, pairs, deg, training)
    assert (x_out - x_ref).abs().max() < 1e-6 and (e_out - e_ref).abs().max() < 1e-6
    torch.testing.assert_close(x_out, x_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(e_out, e_ref, rtol=0, atol=1e-10)


def test_layer_gradcheck():
    torch.manual_seed(1)
    layer = GRITLayer(4, heads=2).double().train()
    x = torch.randn(4, 4, dtype=F64, requires_grad=True)
    qk = torch.tensor([[i, j] for i in range(3) for j in range(3)] + [[3, 3]]).t()
    e = torch.randn(qk.size(1), 4, dtype=F64, requires_grad=True)
    deg = torch.tensor([2.0, 1.0, 1.0, 0.0], dtype=F64)
    fn = lambda x_, e_: layer(x_, qk.flip(0), e_, deg)
    assert torch.autograd.gradcheck(fn, (x, e), eps=1e-6, atol=1e-5, fast_mode=True)


def test_signed_sqrt_gradient_finite_at_zero():
    from graphlab.nn.grit_layer import signed_sqrt
    s = torch.tensor([0.0, 4.0, -9.0, 1e-14], dtype=F64, requires_grad=True)
    out = signed_sqrt(s)
    out.sum().backward()
    torch.testing.assert_close(out[:3], torch.tensor([0.0, 2.0, -3.0], dtype=F64))
    assert torch.isfinite(s.grad).all()
    torch.testing.assert_close(s.grad[1:3], torch.tensor([0.25, 1 / 6], dtype=F64))
    t = torch.tensor([0.3, -2.0, 5e-3], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(signed_sqrt, (t,))


# ----------------------------------------------------------------------------- model
def mol(n, edges, gen, k=4, n_types=5, e_types=3):
    ei = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
    ei = torch.cat([ei, ei.flip(0)], 1)
    ea = torch.randint(0, e_types, (ei.size(1) // 2, 1), generator=gen).repeat(2, 1)
    data = Data(x=torch.randint(0, n_types, (n, 1), generator=gen), edge_index=ei, edge_attr=ea,
                num_nodes=n)
    return AddRRWP(k, dtype=F64)(data)


def graphs(gen):
    return [mol(5, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (1, 3)], gen),
            mol(1, [], gen),                                     # single node
            mol(3, [], gen),                                     # no edges
            mol(6, [(0, 1), (1, 2), (2, 3), (4, 5)], gen)]       # two components


def model(full=True, seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(hidden_channels=8, heads=2, num_layers=2, walk_length=4, attn_dropout=0.0,
                full_attention=full, node_encoder="embedding", edge_dim=3,
                edge_encoder="embedding")
    args.update(kw)
    return GRIT(5, 3, **args).double()


def _bn_stats(m):
    gen = torch.Generator().manual_seed(3)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.normal_(generator=gen)
            mod.running_var.uniform_(0.5, 2.0, generator=gen)


@pytest.mark.parametrize("full", [True, False])
def test_grit_pairs_full_and_khop(full):
    gen = torch.Generator().manual_seed(0)
    gs = graphs(gen)
    b = Batch.from_data_list(gs)
    C = 2
    r_attr = torch.randn(b.rrwp_index.size(1), C, dtype=F64, generator=gen)
    e_attr = torch.randn(b.edge_index.size(1), C, dtype=F64, generator=gen)
    idx, attr = grit_pairs(b.batch, b.num_graphs, b.rrwp_index, r_attr, b.edge_index, e_attr,
                           full=full)
    N = b.num_nodes
    dense = torch.zeros(N, N, C, dtype=F64)   # [query, key]
    present = torch.zeros(N, N, dtype=torch.bool)
    for p in range(b.rrwp_index.size(1)):
        i, j = b.rrwp_index[:, p].tolist()
        dense[i, j] += r_attr[p]
        present[i, j] = True
    for p in range(b.edge_index.size(1)):
        j, i = b.edge_index[:, p].tolist()
        dense[i, j] += e_attr[p]
        present[i, j] = True
    if full:
        present = b.batch.view(-1, 1) == b.batch.view(1, -1)
        assert idx.size(1) == sum(g.num_nodes ** 2 for g in gs)
    keys, queries = idx
    assert idx.size(1) == int(present.sum())
    assert len(set(zip(queries.tolist(), keys.tolist()))) == idx.size(1)   # no duplicates
    assert present[queries, keys].all()
    torch.testing.assert_close(attr, dense[queries, keys])


@pytest.mark.parametrize("full", [True, False])
def test_sparse_equals_dense_twin(full):
    b = Batch.from_data_list(graphs(torch.Generator().manual_seed(0)))
    m = model(full)
    _bn_stats(m)
    for training in (False, True):
        m.train(training)
        torch.testing.assert_close(m(b), m.forward_dense(b), rtol=0, atol=1e-10)


@pytest.mark.parametrize("full", [True, False])
def test_permutation_invariance(full):
    gen = torch.Generator().manual_seed(1)
    g = graphs(gen)[0]
    perm = torch.randperm(g.num_nodes, generator=gen)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(g.num_nodes)
    h = Data(x=g.x[perm], edge_index=inv[g.edge_index], edge_attr=g.edge_attr,
             num_nodes=g.num_nodes)
    h = AddRRWP(4, dtype=F64)(h)
    m = model(full).eval()
    _bn_stats(m)
    torch.testing.assert_close(m(g), m(h), rtol=0, atol=1e-10)
    m_node = model(full, task_level="node").eval()
    torch.testing.assert_close(m_node(g)[perm], m_node(h), rtol=0, atol=1e-10)


def test_transpose_rrwp_reads_p_ji():
    g = graphs(torch.Generator().manual_seed(4))[0]
    flipped = g.clone()
    flipped.rrwp_index = g.rrwp_index.flip(0)
    a, b = model(transpose_rrwp=True).eval(), model().eval()
    torch.testing.assert_close(a(g), b(flipped), rtol=0, atol=1e-12)
    assert not torch.allclose(b(g), b(flipped))   # the direction matters (deg 2 vs 3 nodes)


def test_batching_independence():
    gs = graphs(torch.Generator().manual_seed(2))
    m = model().eval()
    _bn_stats(m)
    batched = m(Batch.from_data_list(gs))
    alone = torch.cat([m(Batch.from_data_list([g])) for g in gs])
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-10)


def test_finite_gradients_single_node_and_no_edges():
    gs = graphs(torch.Generator().manual_seed(3))
    for full in (True, False):
        m = model(full).train()
        b = Batch.from_data_list([gs[1], gs[2]])      # a single-node graph + an edgeless graph
        m(b).pow(2).sum().backward()
        grads = [p.grad for p in m.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(gr).all() for gr in grads)
        m.eval()
        assert torch.isfinite(m(gs[1])).all()         # one node alone, eval mode


def test_errors():
    m = model()
    g = graphs(torch.Generator().manual_seed(0))[0]
    with pytest.raises(ValueError, match="AddRRWP"):
        m(Data(x=g.x, edge_index=g.edge_index, edge_attr=g.edge_attr))
    with pytest.raises(ValueError, match="walk_length"):
        model(walk_length=5)(g)
    with pytest.raises(ValueError, match="divisible"):
        GRITLayer(6, heads=4)
    with pytest.raises(ValueError, match="deg"):
        GRITLayer(4, heads=2)(torch.randn(2, 4), torch.zeros(2, 1, dtype=torch.long),
                              torch.randn(1, 4))
    bad = GRIT(2, 1, hidden_channels=8, heads=2, walk_length=4)
    nan = Data(x=torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]),
               edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
    with pytest.raises(ValueError, match="NaN"):
        bad(AddRRWP(4)(nan))


# ----------------------------------------------------------------------------- configs
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "grit", "*.yaml")))


# LiamMa/GRIT configs/GRIT/{peptides-func,zinc}-GRIT-RRWP.yaml: the settings behind the published
# Peptides-func AP 0.6988 and ZINC MAE 0.059 (dotted keys of graphlab's config)
PUBLISHED = {
    "peptides-func.yaml": {"data.batch_size": 16, "data.pe.walk_length": 17,
                           "model.hidden_channels": 96, "model.num_layers": 4, "model.heads": 4,
                           "model.attn_dropout": 0.5, "optim.lr": 3e-4, "optim.weight_decay": 0.0,
                           "scheduler.warmup_epochs": 10, "trainer.max_epochs": 200},
    "zinc.yaml": {"data.batch_size": 32, "data.pe.walk_length": 21, "model.hidden_channels": 64,
                  "model.num_layers": 10, "model.heads": 8, "model.attn_dropout": 0.2,
                  "optim.lr": 1e-3, "optim.weight_decay": 1e-5, "scheduler.warmup_epochs": 50,
                  "trainer.max_epochs": 2000},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_configs_keep_the_published_setups(name):
    """A config that claims the authors' setup keeps it: an edit to one of these values makes the
    config's comments (and its page) wrong, so it must be deliberate."""
    with open(os.path.join(ROOT, "configs", "grit", name)) as f:
        cfg = yaml.safe_load(f)

    def get(dotted):
        node = cfg
        for key in dotted.split("."):
            node = node[key]
        return node
    assert {k: get(k) for k in PUBLISHED[name]} == PUBLISHED[name]
    assert cfg["model"]["full_attention"] and cfg["data"]["pe"]["on_the_fly"]


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_builds_and_trains_a_step(path):
    """Model section builds GRIT; one AdamW step on a small synthetic batch of the dataset's shape."""
    import lightning
    with open(path) as f:
        cfg = yaml.safe_load(f)
    assert cfg["model"]["name"] == "grit"
    assert cfg["scheduler"]["name"] in ("none", "cosine", "plateau", "step")
    trainer_keys = inspect.signature(lightning.Trainer.__init__).parameters
    assert set(cfg["trainer"]) <= set(trainer_keys)
    pe = cfg["data"]["pe"]
    kw = {k: v for k, v in cfg["model"].items() if k != "name"}
    assert pe["name"] == "rrwp" and pe["walk_length"] == kw["walk_length"]
    name = cfg["data"]["name"].lower()
    gen = torch.Generator().manual_seed(0)
    if "zinc" in name:   # ZINC: one atom type and one bond type per node/edge
        enc = dict(node_encoder="embedding", edge_encoder="embedding", edge_dim=4)
        n_in, n_out, n_types, e_types, loss = 28, 1, 28, 4, F.l1_loss
    else:                # OGB / LRGB molecules: 9 atom and 3 bond feature columns
        enc = dict(node_encoder="atom", edge_encoder="bond", edge_dim=3)
        n_in, n_out, n_types, e_types = 9, (10 if "peptides" in name else 1), 2, 2
        loss = F.binary_cross_entropy_with_logits
    kw.update(hidden_channels=16, num_layers=2)      # keep the CI step small
    torch.manual_seed(0)
    m = GRIT(n_in, n_out, **enc, **kw)
    T = AddRRWP(pe["walk_length"])
    gs = []
    for n in (7, 9):
        ei = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
        ei = torch.cat([ei, ei.flip(0), torch.tensor([[0], [n - 1]])], 1)   # a chain + one ring
        cols = 1 if "zinc" in name else 9
        x = torch.randint(0, n_types, (n, cols), generator=gen).squeeze(-1)
        ea = torch.randint(0, e_types, (ei.size(1), 1 if "zinc" in name else 3), generator=gen)
        gs.append(T(Data(x=x, edge_index=ei, edge_attr=ea.squeeze(-1) if "zinc" in name else ea,
                         y=torch.rand(1, n_out, generator=gen).round(), num_nodes=n)))
    b = Batch.from_data_list(gs)
    opt = torch.optim.AdamW(m.parameters(), lr=cfg["optim"]["lr"],
                            weight_decay=cfg["optim"].get("weight_decay", 0.0))
    before = [p.detach().clone() for p in m.parameters()]
    m.train()
    out = loss(m(b), b.y)
    out.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), cfg["trainer"]["gradient_clip_val"])
    opt.step()
    assert torch.isfinite(out)
    assert any(not torch.equal(a, p) for a, p in zip(before, m.parameters()))
