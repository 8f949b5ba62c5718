"""GMN: random walks, subgraph tokens against naive loops, batching and relabelling symmetry."""
import glob
import os

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from graphlab.models.gmn import (GMN, SubgraphTokenMixer, build_csr, random_walk,
                                 sample_subgraph_tokens)
from graphlab.registry import MODELS, SEQ_CORES

# shared test helpers (the protocol-only test core and graph builders live in test_gps.py)
from test_gps import (ROOT, _assert_batch_independent, _graph, _graphs, _permute,  # noqa: F401
                      tiny_core)


def _toy_graph():
    # directed, with a multi-edge 0->1 (twice), an isolated node 4 and a sink 3
    ei = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2],
                       [1, 1, 2, 0, 2, 0, 1, 3]])
    return ei, 5


def test_random_walk_transitions_match_graph():
    scipy_stats = pytest.importorskip("scipy.stats")
    ei, n = _toy_graph()
    rowptr, col, _ = build_csr(ei, n)
    W = 4000
    for u in range(n):
        start = torch.full((W,), u)
        walks = random_walk(rowptr, col, start, 1, 7, torch.arange(W))
        nbrs = ei[1, ei[0] == u]
        if nbrs.numel() == 0:
            assert (walks[:, 1] == u).all()  # no out-edge: the walker stays
            continue
        targets = nbrs.unique()
        observed = torch.stack([(walks[:, 1] == t).sum() for t in targets]).double()
        assert observed.sum() == W  # only out-neighbours are reached
        expected = torch.stack([(nbrs == t).sum() for t in targets]).double() / nbrs.numel() * W
        if targets.numel() > 1:
            assert scipy_stats.chisquare(observed.numpy(), expected.numpy()).pvalue > 1e-3


def test_random_walk_steps_are_edges_and_batch_independent():
    g1, g2 = _graph(6, 0), _graph(5, 1)
    b = Batch.from_data_list([g1, g2])
    from graphlab.nn.mixers import graph_ptr
    rowptr, col, _ = build_csr(b.edge_index, b.num_nodes)
    local = graph_ptr(b.batch)[1]
    walks = random_walk(rowptr, col, torch.arange(b.num_nodes), 6, 3, local)
    edges = set(map(tuple, b.edge_index.T.tolist()))
    for t in range(6):
        assert all((int(a), int(c)) in edges for a, c in zip(walks[:, t], walks[:, t + 1]))
    rp2, col2, _ = build_csr(g2.edge_index, g2.num_nodes)
    alone = random_walk(rp2, col2, torch.arange(5), 6, 3, torch.arange(5))
    assert torch.equal(walks[6:] - 6, alone)


def _naive_tokens(edge_index, batch, n, m, M, s, seed):
    """Per-token loops: node sets of the walks and the induced (multi-)edges."""
    from graphlab.nn.mixers import graph_ptr
    rowptr, col, _ = build_csr(edge_index, n)
    local = graph_ptr(batch)[1]
    nodes, edges = {}, set()
    for v in range(n):
        for mh in range(1, m + 1):
            for r in range(s):
                tok = (v * m + mh - 1) * s + r
                visited = {v}
                for j in range(M):
                    keys = [torch.tensor([int(local[v])]), torch.tensor([mh]), torch.tensor([r]),
                            torch.tensor([j])]
                    w = random_walk(rowptr, col, torch.tensor([v]), m, seed, *keys)[0]
                    visited |= set(w[:mh + 1].tolist())
                nodes[tok] = visited
                for k in range(edge_index.size(1)):
                    a, c = int(edge_index[0, k]), int(edge_index[1, k])
                    if a in visited and c in visited:
                        edges.add((tok, a, c, k))
    return nodes, edges


def test_subgraph_tokens_match_naive_loops():
    graphs = [_graph(5, 0, extra_edges=1), _graph(1, 1), _graph(4, 2, extra_edges=1)]
    b = Batch.from_data_list(graphs)
    m, M, s = 3, 2, 2
    tok = sample_subgraph_tokens(b.edge_index, b.batch, b.num_nodes, m, M, s, 11)
    nodes, edges = _naive_tokens(b.edge_index, b.batch, b.num_nodes, m, M, s, 11)
    got = {}
    for t, u in zip(tok.pair_token.tolist(), tok.pair_node.tolist()):
        got.setdefault(t, set()).add(u)
    assert got == nodes and tok.num_tokens == len(nodes)
    got_edges = {(int(tok.pair_token[a]), int(tok.pair_node[a]), int(tok.pair_node[c]), int(k))
                 for (a, c), k in zip(tok.edge_index.T.tolist(), tok.edge_id.tolist())}
    assert got_edges == edges
    assert (tok.pair_token[tok.edge_index[0]] == tok.pair_token[tok.edge_index[1]]).all()


class _RecordingCore(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.d_model = d_model
        self.seen = []

    def forward(self, x, mask=None):
        self.seen.append(x.detach().clone())
        return x


def test_token_sequence_order_widest_first_node_last(tiny_core, monkeypatch):
    """token_encoder='mean': each token is the mean state of its nodes; the sequence runs
    from the longest walks to the node itself."""
    monkeypatch.setitem(SEQ_CORES._items, "_recording", _RecordingCore)
    g = _graph(6, 4)
    b = Batch.from_data_list([g])
    mix = SubgraphTokenMixer(4, None, "none", "mean", "_recording", None, False, 1, 0.0, "none")
    x = torch.randn(6, 4, dtype=torch.float64)
    tok = sample_subgraph_tokens(b.edge_index, b.batch, 6, 2, 3, 2, 5)
    out = mix(x, b.batch, b.edge_index, tokens=[tok])
    seq = mix.core.seen[0]                                  # [N, m*s + 1, D]
    assert seq.shape == (6, 5, 4) and torch.equal(out, x) and torch.equal(seq[:, -1], x)
    sets = {}
    for t, u in zip(tok.pair_token.tolist(), tok.pair_node.tolist()):
        sets.setdefault(t, []).append(u)
    for v in range(6):
        for pos, (mh, r) in enumerate([(2, 0), (2, 1), (1, 0), (1, 1)]):
            ids = sets[(v * 2 + mh - 1) * 2 + r]
            assert torch.allclose(seq[v, pos], x[ids].mean(0))


@pytest.mark.parametrize("kw", [dict(m=0), dict(m=0, tie_break="state"),
                                dict(m=2, num_samples=2), dict(m=1, token_encoder="mean"),
                                dict(m=2, mpnn="gine", num_walks=3)])
def test_gmn_batch_independent_and_edge_cases(kw, tiny_core):
    torch.manual_seed(0)
    model = GMN(5, 3, hidden_channels=16, num_layers=2, seq_core=tiny_core, eval_orders=2,
                edge_dim=3, **kw)
    model.train()
    out = model(Batch.from_data_list(_graphs()))
    out.sum().backward()
    assert out.shape == (5, 3) and torch.isfinite(out).all()
    _assert_batch_independent(model, _graphs())


def test_gmn_permutation_invariance_canonical_order(tiny_core):
    torch.manual_seed(0)
    model = GMN(5, 3, hidden_channels=16, num_layers=2, m=0, tie_break="state",
                seq_core=tiny_core, edge_dim=3).eval()
    g = _graph(8, 2)
    with torch.no_grad():
        for _ in range(2):
            perm = torch.randperm(8)
            assert torch.allclose(model(g), model(_permute(g, perm)), atol=1e-5)


def test_gmn_training_resamples_and_eval_is_deterministic(tiny_core):
    torch.manual_seed(0)
    model = GMN(5, 3, hidden_channels=16, num_layers=1, m=2, seq_core=tiny_core, edge_dim=3,
                norm="layer")
    b = Batch.from_data_list(_graphs())
    model.train()
    assert not torch.allclose(model(b), model(b))
    model.eval()
    assert torch.equal(model(b), model(b))


def test_gmn_node_level(tiny_core):
    model = GMN(5, 4, hidden_channels=8, num_layers=1, m=2, mpnn="gcn", seq_core=tiny_core,
                task_level="node", norm="none").eval()
    g = _graph(6, 0)
    out = model(Data(x=g.x, edge_index=g.edge_index))
    assert out.shape == (6, 4) and torch.isfinite(out).all()


def test_gmn_gradcheck(tiny_core):
    torch.manual_seed(0)
    model = GMN(3, 2, hidden_channels=4, num_layers=1, m=1, num_walks=1, seq_core=tiny_core,
                norm="layer", edge_dim=2).double().eval()
    g = Batch.from_data_list([_graph(3, 0, f=3, edge_dim=2), _graph(2, 1, f=3, edge_dim=2)])
    tokens = model.tokenize(g, g.num_nodes, g.batch)[:1]
    h = torch.randn(g.num_nodes, 4, dtype=torch.float64, requires_grad=True)
    e = torch.randn(g.num_edges, 4, dtype=torch.float64, requires_grad=True)

    def fn(h, e):
        h, e = model.layers[0](h, g.edge_index, e, g.batch, tokens=tokens, edge_features=e)
        return model.finish(h, g), e
    assert torch.autograd.gradcheck(fn, (h, e))


def test_gmn_bad_inputs(tiny_core):
    with pytest.raises(ValueError, match="m must be"):
        GMN(5, 2, m=-1, seq_core=tiny_core)
    with pytest.raises(ValueError, match="token_encoder='mpnn' needs an mpnn"):
        GMN(5, 2, m=1, mpnn="none", seq_core=tiny_core)
    with pytest.raises(ValueError, match="token_encoder"):
        GMN(5, 2, m=1, token_encoder="gru", seq_core=tiny_core)
    g = _graph(4, 0)
    g.x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        GMN(5, 2, hidden_channels=8, num_layers=1, seq_core=tiny_core, edge_dim=3)(g)
    with pytest.raises(ValueError, match="edge_index"):
        build_csr(torch.zeros(3, 2, dtype=torch.long), 3)


def test_gmn_registered():
    assert MODELS.get("gmn") is GMN


@pytest.mark.parametrize("m", [0, 2])
def test_gmn_with_real_mamba_core(m):
    if "mamba" not in SEQ_CORES:
        pytest.skip("SEQ_CORES has no 'mamba' yet")
    torch.manual_seed(0)
    model = GMN(5, 3, hidden_channels=16, num_layers=2, m=m, seq_core="mamba",
                seq_core_kwargs={"d_state": 4}, eval_orders=2, edge_dim=3)
    model(Batch.from_data_list(_graphs())).sum().backward()
    _assert_batch_independent(model, _graphs())


def test_configs_build_models():
    import yaml
    files = sorted(glob.glob(os.path.join(ROOT, "configs", "gmn", "*.yaml")))
    assert len(files) >= 2, "configs/gmn/*.yaml missing"
    for path in files:
        with open(path) as fh:
            cfg = yaml.safe_load(fh)
        kw = dict(cfg["model"])
        assert kw.pop("name") == "gmn"
        if kw.get("seq_core", "mamba") not in SEQ_CORES:
            continue
        GMN(9, 10, edge_dim=3, **kw)
