"""DHT, the dual-hypergraph layers, HyperDrop / HyperCluster, EHGNN and the pooling baselines."""
from __future__ import annotations

import glob
import math

import pytest
import torch
from torch_geometric.data import Batch, Data

from graphlab.models.ehgnn import EHGNN, EdgeAutoencoder
from graphlab.models.pool_gnn import PoolGNN
from graphlab.nn import DualHypergraphConv, EdgeGCNConv, HyperCluster, HyperDrop
from graphlab.nn.dual_naive import (dense_dual_conv, edge_gcn_loop, hypercluster_loop,
                                    topk_per_graph_loop)
from graphlab.nn.hyperdrop import keep_counts, topk_per_graph
from graphlab.transforms import DualHypergraph, DualHypergraphData

DHT = DualHypergraph()


def random_graph(n: int, m: int, seed: int, F: int | None = 3, D: int | None = 2,
                 loops: bool = True) -> Data:
    """Random multigraph: repeated edges, self-loops (unless ``loops=False``), isolated nodes."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, max(n, 1), (2, m), generator=g) if n else torch.zeros(2, 0, dtype=torch.long)
    if m >= 2:
        ei[:, 1] = ei[:, 0]  # a multi-edge
    if loops and m >= 3:
        ei[1, 2] = ei[0, 2]  # a self-loop
    d = Data(edge_index=ei, num_nodes=n, y=torch.tensor([seed % 2]))
    if F is not None:
        d.x = torch.randn(n, F, generator=g, dtype=torch.float64)
    if D is not None:
        d.edge_attr = torch.randn(m, D, generator=g, dtype=torch.float64)
    return d


GRAPHS = [random_graph(6, 9, 1), random_graph(4, 0, 2), random_graph(3, 1, 3),
          random_graph(7, 12, 4), random_graph(5, 5, 5)]


def assert_same(a, b) -> None:
    assert sorted(a.keys()) == sorted(b.keys())
    for k in a.keys():
        va, vb = a[k], b[k]
        if isinstance(va, torch.Tensor):
            assert va.dtype == torch.as_tensor(vb).dtype and torch.equal(va, vb), k
        else:
            assert int(va) == int(vb), k
    assert a.num_nodes == b.num_nodes


# --------------------------------------------------------------------------- DHT
@pytest.mark.parametrize("F,D", [(3, 2), (None, 2), (3, None), (None, None)])
def test_dht_of_dht_is_identity(F, D):
    for seed in range(12):
        g = random_graph(1 + seed % 7, 3 * seed % 11, seed, F, D)
        dual = DHT(g)
        assert isinstance(dual, DualHypergraphData)
        assert dual.num_nodes == g.num_edges and dual.num_hyperedges == g.num_nodes
        if D is not None:
            assert torch.equal(dual.x, g.edge_attr)
        if F is not None:
            assert torch.equal(dual.hyperedge_attr, g.x)
        assert_same(DHT(dual), g)


def test_dht_incidence_rules():
    # 0 -> 1, a parallel 0 -> 1, a self-loop 2 -> 2; node 3 is isolated
    g = Data(edge_index=torch.tensor([[0, 0, 2], [1, 1, 2]]), num_nodes=4)
    dual = DHT(g)
    assert dual.hyperedge_index.tolist() == [[0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 2, 2]]
    assert dual.num_hyperedges == 4 and dual.num_nodes == 3
    M = torch.zeros(4, 3)
    M.index_put_((dual.hyperedge_index[1], dual.hyperedge_index[0]), torch.ones(6), accumulate=True)
    assert M.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 2], [0, 0, 0]]  # a loop counts twice


def test_dht_batch_offsets_and_round_trip():
    batch = Batch.from_data_list(GRAPHS)
    dual = DHT(batch)
    assert dual.num_graphs == len(GRAPHS)
    collated = Batch.from_data_list([DHT(g) for g in GRAPHS])  # PyG's own collation
    for k in collated.keys():
        assert torch.equal(torch.as_tensor(collated[k]), torch.as_tensor(dual[k])), k
    for g, d in zip(GRAPHS, dual.to_data_list()):
        assert_same(DHT(d), g)
    back = DHT(dual)
    for k in batch.keys():
        assert torch.equal(torch.as_tensor(batch[k]), torch.as_tensor(back[k])), k
    for g, d in zip(GRAPHS, back.to_data_list()):
        assert_same(d, g)


def test_dht_errors():
    with pytest.raises(ValueError, match="graph"):
        DHT(Data(x=torch.zeros(2, 1)))
    bad = DualHypergraphData(hyperedge_index=torch.tensor([[0, 0, 0], [0, 1, 2]]), num_nodes=1,
                             num_hyperedges=3)
    with pytest.raises(ValueError, match="not the dual of a graph"):
        DHT(bad)
    with pytest.raises(ValueError, match="outside"):
        DHT(Data(edge_index=torch.tensor([[0], [5]]), num_nodes=2))


# --------------------------------------------------------------------------- layers
@pytest.mark.parametrize("self_loops", [True, False])
def test_dual_conv_matches_dense_reference(self_loops):
    conv = DualHypergraphConv(2, 4, self_loops=self_loops).double()
    for g in GRAPHS:
        out = conv(g.edge_attr, g.edge_index, g.num_nodes)
        ref = dense_dual_conv(conv, g.edge_attr, g.edge_index, g.num_nodes)
        assert out.shape == (g.num_edges, 4)
        torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)


def test_dual_conv_gradients():
    conv = DualHypergraphConv(2, 3).double()
    g = GRAPHS[0]
    e = g.edge_attr.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: conv(t, g.edge_index, g.num_nodes), (e,))


def permute_edges(g: Data, perm: torch.Tensor) -> Data:
    out = g.clone()
    out.edge_index, out.edge_attr = g.edge_index[:, perm], g.edge_attr[perm]
    return out


def test_edge_layers_are_edge_permutation_equivariant():
    torch.manual_seed(0)
    g = GRAPHS[3]
    perm = torch.randperm(g.num_edges)
    gp = permute_edges(g, perm)
    conv = DualHypergraphConv(2, 4).double()
    torch.testing.assert_close(conv(gp.edge_attr, gp.edge_index, g.num_nodes),
                               conv(g.edge_attr, g.edge_index, g.num_nodes)[perm])
    drop = HyperDrop(2, ratio=0.6).double()
    zero = torch.zeros(g.num_edges, dtype=torch.long)
    a = drop(g.edge_attr, g.edge_index, zero, g.num_nodes)
    b = drop(gp.edge_attr, gp.edge_index, zero, g.num_nodes)
    torch.testing.assert_close(b.score, a.score[perm])
    assert sorted(perm[b.perm].tolist()) == a.perm.tolist()  # the same edges survive
    pool = HyperCluster(4, 3, heads=2).double()
    e = torch.randn(g.num_edges, 4, dtype=torch.float64)
    ca = pool(e, g.edge_index, zero, g.num_nodes)
    cb = pool(e[perm], gp.edge_index, zero, g.num_nodes)
    torch.testing.assert_close(cb.clusters, ca.clusters)
    torch.testing.assert_close(cb.assignment, ca.assignment[..., perm])


def test_edge_gcn_conv_matches_loop_reference_and_gradients():
    torch.manual_seed(1)
    conv = EdgeGCNConv(4).double()
    torch.nn.init.normal_(conv.root)
    g = GRAPHS[0]
    x, e = torch.randn(g.num_nodes, 4, dtype=torch.float64), torch.randn(g.num_edges, 4,
                                                                       dtype=torch.float64)
    w = torch.rand(g.num_edges, dtype=torch.float64)
    for weight in (None, w):
        torch.testing.assert_close(conv(x, g.edge_index, e, weight),
                                   edge_gcn_loop(conv, x, g.edge_index, e, weight))
    xr = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: conv(t, g.edge_index, e, w), (xr,))


# --------------------------------------------------------------------------- HyperDrop
def test_keep_counts_exact_ceiling():
    counts = torch.tensor([0, 1, 2, 5, 10, 11, 100])
    for r in (0.1, 0.65, 0.7, 0.8, 0.9, 1.0):
        want = [math.ceil(__import__("fractions").Fraction(str(r)) * int(c)) for c in counts]
        assert keep_counts(counts, r).tolist() == want
    assert keep_counts(torch.tensor([10]), 0.7).item() == 7  # 0.7 * 10 = 7.000000000000001


def test_topk_per_graph_matches_loop_with_ties():
    g = torch.Generator().manual_seed(3)
    batch = torch.tensor([0] * 7 + [1] * 1 + [3] * 10)  # graph 2 has no edges
    score = torch.randint(0, 4, (batch.numel(),), generator=g).double()  # many ties
    for r in (0.3, 0.5, 0.8, 1.0):
        assert topk_per_graph(score, r, batch, 4).tolist() == \
            topk_per_graph_loop(score, r, batch, 4).tolist()
    with pytest.raises(ValueError, match="ratio"):
        topk_per_graph(score, 0.0, batch, 4)


@pytest.mark.parametrize("ratio", [0.65, 0.8, 1.0])
def test_hyperdrop_keeps_nodes_and_ceil_ratio_edges(ratio):
    batch = Batch.from_data_list(GRAPHS)
    drop = HyperDrop(2, ratio=ratio).double()
    edge_batch = batch.batch[batch.edge_index[0]]
    out = drop(batch.edge_attr, batch.edge_index, edge_batch, batch.num_nodes, batch.num_graphs)
    kept = torch.bincount(edge_batch[out.perm], minlength=batch.num_graphs)
    want = [math.ceil(__import__("fractions").Fraction(str(ratio)) * g.num_edges) for g in GRAPHS]
    assert kept.tolist() == want  # 0 edges -> 0 kept, 1 edge -> 1 kept
    assert torch.equal(out.edge_index, batch.edge_index[:, out.perm])
    assert bool((out.edge_weight >= 0).all() and (out.edge_weight <= 1).all())
    assert torch.equal(out.perm, torch.sort(out.perm).values)
    # the scorer learns through the kept weights
    out.edge_weight.sum().backward()
    assert drop.score_conv.lin.weight.grad.abs().sum() > 0


def test_ehgnn_keeps_every_node():
    model = EHGNN(3, 2, hidden_channels=8, edge_dim=2).double().eval()
    seen = []
    model.drops[0].register_forward_hook(lambda m, i, o: seen.append((i[1].size(1), o)))
    batch = Batch.from_data_list(GRAPHS)
    model(batch)
    m_in, out = seen[0]
    assert m_in == batch.num_edges and out.edge_index.max() < batch.num_nodes


# --------------------------------------------------------------------------- HyperCluster
@pytest.mark.parametrize("keys,heads,ln", [("hypergraph", 1, False), ("hypergraph", 2, True),
                                           ("gcn", 1, False)])
def test_hypercluster_matches_loop(keys, heads, ln):
    torch.manual_seed(2)
    pool = HyperCluster(4, 3, heads=heads, layer_norm=ln, keys=keys).double()
    batch = Batch.from_data_list(GRAPHS)
    if keys == "hypergraph":
        x, member_batch = torch.randn(batch.num_edges, 4, dtype=torch.float64), \
            batch.batch[batch.edge_index[0]]
    else:
        x, member_batch = torch.randn(batch.num_nodes, 4, dtype=torch.float64), batch.batch
    out = pool(x, batch.edge_index, member_batch, batch.num_nodes, batch.num_graphs)
    ref, assigns = hypercluster_loop(pool, x, batch.edge_index, member_batch, batch.num_graphs,
                                     batch.num_nodes)
    torch.testing.assert_close(out.clusters, ref)
    for g, A in enumerate(assigns):
        m = A.size(-1)
        torch.testing.assert_close(out.assignment[g, :, :, :m], A)
        if m:
            torch.testing.assert_close(A.sum(1), torch.ones(heads, m, dtype=torch.float64))
    unpooled = HyperCluster.unpool(out.clusters, out.assignment, out.mask)
    assert unpooled.shape == x.shape


# --------------------------------------------------------------------------- models
def float_graphs():
    return [random_graph(n, m, s, F=3, D=2, loops=False) for n, m, s in
            [(6, 10, 11), (4, 0, 12), (3, 1, 13), (8, 14, 14)]]


MODELS = [lambda: EHGNN(3, 2, hidden_channels=16, edge_dim=2, ratio=0.65),
          lambda: EHGNN(3, 2, hidden_channels=16, edge_dim=2, node_conv="edge_gcn"),
          lambda: PoolGNN(3, 2, hidden_channels=16, pool="topk"),
          lambda: PoolGNN(3, 2, hidden_channels=16, pool="sag"),
          lambda: PoolGNN(3, 2, hidden_channels=16, pool="none")]


@pytest.mark.parametrize("make", MODELS)
def test_batching_independence(make):
    torch.manual_seed(0)
    model = make().double().eval()
    graphs = float_graphs()
    together = model(Batch.from_data_list(graphs))
    alone = torch.cat([model(Batch.from_data_list([g])) for g in graphs])
    assert together.shape == (len(graphs), 2)
    torch.testing.assert_close(together, alone, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("pool", ["hypercluster", "node_cluster", "none"])
def test_autoencoder_batching_independence(pool):
    torch.manual_seed(0)
    model = EdgeAutoencoder(4, edge_dim=2, num_clusters=3, hidden_channels=8, pool=pool)
    model = model.double().eval()
    graphs = float_graphs()
    together = model(Batch.from_data_list(graphs))
    alone = torch.cat([model(Batch.from_data_list([g])) for g in graphs])
    assert together.shape == (sum(g.num_edges for g in graphs), 4)
    torch.testing.assert_close(together, alone, atol=1e-10, rtol=1e-10)


def test_ehgnn_readout_is_edge_permutation_invariant():
    torch.manual_seed(0)
    model = EHGNN(3, 2, hidden_channels=16, edge_dim=2).double().eval()
    g = float_graphs()[3]
    perm = torch.randperm(g.num_edges)
    torch.testing.assert_close(model(permute_edges(g, perm)), model(g))


def test_model_argument_errors():
    with pytest.raises(ValueError, match="node_conv"):
        EHGNN(3, 2, node_conv="gat")
    with pytest.raises(ValueError, match="ratio"):
        EHGNN(3, 2, ratio=1.5)
    with pytest.raises(ValueError, match="pool"):
        PoolGNN(3, 2, pool="diff")
    with pytest.raises(ValueError, match="num_clusters"):
        HyperCluster(4, 0)


def test_configs_validate():
    from graphlab.train.config import load_config, validate
    paths = sorted(glob.glob("configs/ehgnn/*.yaml") + glob.glob("configs/pool_gnn/*.yaml") +
                   glob.glob("configs/gin/*-ehgnn-budget.yaml"))
    assert len(paths) == 32
    for path in paths:
        validate(load_config(path))


def test_results_rows_match_committed_summaries():
    """Every row of configs/ehgnn/README.md's results table is the committed summary's number."""
    import json
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "configs", "ehgnn", "README.md")).read()
    section = text.split("## Results", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    header = next(line for line in lines if line.startswith("| experiment |"))
    cols = [c.strip() for c in header.strip().strip("|").split("|")]
    rows = [dict(zip(cols, [c.strip() for c in line.strip().strip("|").split("|")]))
            for line in lines[lines.index(header) + 1:] if line.startswith("| `")]
    assert len(rows) >= 30
    for row in rows:
        exp, config = row["experiment"].strip("`"), row["config"].strip("`")
        assert os.path.exists(os.path.join(root, config)), config
        assert config in row["command"], exp
        res = os.path.join(root, "scripts", "results", exp)
        summary = json.load(open(os.path.join(res, "summary.json")))
        assert glob.glob(os.path.join(res, "*.log")), f"no log committed for {exp}"
        m = re.match(r"([0-9.]+) ± ([0-9.]+)", row["result"])
        stats = summary["metrics"][f"test_{row['metric']}"]
        assert (f"{stats['mean']:.4f}", f"{stats['std']:.4f}") == m.groups(), exp
        assert int(row["seeds"]) == stats["n"], exp
        assert row["hardware"] == summary["hardware"], exp


@pytest.mark.realdata
def test_ehgnn_folds_on_real_mutag(mirror):
    """The reference's fold rule on the real files: test = fold f, valid = fold f - 1, train =
    the rest (152 / 18 / 18 graphs on MUTAG), made for exactly these labels."""
    import hashlib
    import json
    import os.path as osp

    import numpy as np

    import graphlab.data as gd
    ds = gd.load("mutag-ehgnn")
    assert ds.num_node_features == 7 and ds.num_edge_features == 4
    folds = json.load(open(osp.join(osp.dirname(gd.__file__), "folds", "MUTAG-ehgnn.json")))
    y = np.ascontiguousarray(ds.y.numpy(), dtype=np.int64)
    assert hashlib.sha256(y.tobytes()).hexdigest() == folds["labels_sha256"]
    for f in (0, 3):
        split = gd.get_split("mutag-ehgnn", ds, fold=f)
        assert [len(split[k]) for k in ("train", "valid", "test")] == [152, 18, 18]
        assert split["valid"].tolist() == folds["folds"][f - 1]["test"]
