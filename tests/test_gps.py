"""GPS and the global mixers: references, padding safety, symmetry, edge cases, configs."""
import glob
import os

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from graphlab.models.gps import GPS
from graphlab.nn.mixers import (MultiheadMixer, PerformerMixer, SequenceMixer, build_mixer,
                                graph_ptr, hash_uniform, sort_within_graphs)
from graphlab.registry import MODELS, SEQ_CORES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_CORE = "_test_tiny_core"


class TinyCausalCore(nn.Module):
    """Test-only sequence core obeying the protocol: y_t = tanh(sum_{i<=t} a^{t-i} W x_i)."""

    def __init__(self, d_model: int, decay: float = 0.5):
        super().__init__()
        self.d_model = d_model
        self.lin = nn.Linear(d_model, d_model)
        self.decay = decay

    def forward(self, x, mask=None):
        if mask is not None:
            x = torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype))
        u, h, ys = self.lin(x), None, []
        for t in range(u.size(1)):
            h = u[:, t] if h is None else self.decay * h + u[:, t]
            ys.append(torch.tanh(h))
        y = torch.stack(ys, 1)
        if mask is not None:
            y = torch.where(mask[..., None], y, torch.zeros((), dtype=y.dtype))
        return y


@pytest.fixture
def tiny_core(monkeypatch):
    """Registers the test core in SEQ_CORES for one test (undone afterwards)."""
    SEQ_CORES.names()  # populate first so the entry is not shadowed
    monkeypatch.setitem(SEQ_CORES._items, TEST_CORE, TinyCausalCore)
    return TEST_CORE


def _graph(n, seed, f=5, edge_dim=3, extra_edges=2):
    g = torch.Generator().manual_seed(seed)
    if n > 1:
        ei = torch.randint(0, n, (2, extra_edges * n), generator=g)
        ei = torch.cat([ei, ei.flip(0)], 1)
    else:
        ei = torch.empty(2, 0, dtype=torch.long)
    return Data(x=torch.randn(n, f, generator=g), edge_index=ei,
                edge_attr=torch.randn(ei.size(1), edge_dim, generator=g))


def _graphs():
    gs = [_graph(n, s) for s, n in enumerate([5, 8, 1, 3])]
    gs.append(Data(x=torch.randn(4, 5), edge_index=torch.empty(2, 0, dtype=torch.long),
                   edge_attr=torch.empty(0, 3)))  # no edges
    return gs


def _permute(data, perm):
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    return Data(x=data.x[perm], edge_index=inv[data.edge_index], edge_attr=data.edge_attr)


def _assert_batch_independent(model, graphs, atol=1e-5):
    model.eval()
    with torch.no_grad():
        out = model(Batch.from_data_list(graphs))
        for i, g in enumerate(graphs):
            alone = model(Batch.from_data_list([g]))
            assert torch.allclose(out[i], alone[0], atol=atol), (i, out[i], alone[0])


# ----------------------------------------------------------------------------- mixers
def _dense_mha_reference(mix: MultiheadMixer, x, batch):
    att = mix.attn
    W, b = att.in_proj_weight, att.in_proj_bias
    H, D = mix.heads, mix.channels
    out = torch.empty_like(x)
    for gi in batch.unique():
        idx = (batch == gi).nonzero().view(-1)
        q, k, v = (x[idx] @ W.T + b).chunk(3, dim=-1)
        heads = []
        for h in range(H):
            sl = slice(h * D // H, (h + 1) * D // H)
            a = torch.softmax(q[:, sl] @ k[:, sl].T / (D // H) ** 0.5, dim=-1)
            heads.append(a @ v[:, sl])
        out[idx] = att.out_proj(torch.cat(heads, -1))
    return out


def _performer_reference(mix: PerformerMixer, x, batch):
    """Per-graph loop of the FAVOR+ estimator, without stabilisers (float64)."""
    H, d, m = mix.heads, mix.head_dim, mix.num_features
    out = torch.empty_like(x)
    for gi in batch.unique():
        idx = (batch == gi).nonzero().view(-1)
        q, k, v = mix.qkv(x[idx]).chunk(3, dim=-1)
        heads = []
        for h in range(H):
            sl = slice(h * d, (h + 1) * d)
            W = mix.projection[h].double()

            def phi(u):
                u = u * d ** -0.25
                return torch.exp(u @ W.T - 0.5 * (u * u).sum(-1, keepdim=True)) / m ** 0.5
            kern = phi(q[:, sl]) @ phi(k[:, sl]).T
            heads.append(kern @ v[:, sl] / kern.sum(-1, keepdim=True))
        out[idx] = mix.out(torch.cat(heads, -1))
    return out


def _batch_input(seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = [3, 1, 6, 2]
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return torch.randn(sum(sizes), 8, generator=g, dtype=torch.float64), batch


def test_multihead_matches_dense_reference():
    torch.manual_seed(0)
    x, batch = _batch_input()
    mix = MultiheadMixer(8, heads=2).double().eval()
    assert torch.allclose(mix(x, batch), _dense_mha_reference(mix, x, batch), atol=1e-10)


def test_performer_matches_reference_and_is_padding_exact():
    torch.manual_seed(0)
    x, batch = _batch_input()
    mix = PerformerMixer(8, heads=2, num_features=16).double().eval()
    out = mix(x, batch)
    assert torch.allclose(out, _performer_reference(mix, x, batch), atol=1e-10)
    ptr, _ = graph_ptr(batch)
    for gi in range(4):  # each graph alone: no padding at all
        sl = slice(int(ptr[gi]), int(ptr[gi + 1]))
        assert torch.allclose(out[sl], mix(x[sl]), atol=1e-12)


def test_performer_approximates_softmax_attention():
    torch.manual_seed(0)
    x = torch.randn(12, 8, dtype=torch.float64) * 0.3
    perf = PerformerMixer(8, heads=1, num_features=4096).double().eval()
    q, k, v = perf.qkv(x).chunk(3, dim=-1)
    exact = perf.out(torch.softmax(q @ k.T / 8 ** 0.5, -1) @ v)
    assert (perf(x) - exact).abs().max() < 0.05


def test_performer_large_inputs_stay_finite():
    x = torch.randn(20, 8) * 50
    mix = PerformerMixer(8, heads=2)
    assert torch.isfinite(mix(x, torch.zeros(20, dtype=torch.long))).all()


def test_hash_uniform_and_sort_within_graphs():
    keys = torch.arange(20000)
    u = hash_uniform(3, keys)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean().item() - 0.5) < 0.01
    assert torch.equal(u[5:9], hash_uniform(3, keys[5:9]))  # value depends on its key only
    assert not torch.equal(u, hash_uniform(4, keys))
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    key = torch.tensor([3., 1., 2., 5., 4., 0., 0., 9., 1.])
    perm = sort_within_graphs(key, batch)
    assert perm.tolist() == [1, 2, 0, 4, 3, 5, 6, 8, 7]


def test_sequence_mixer_matches_per_graph_loop(tiny_core):
    """Degree order, index tie-break: the mixer equals the core run on each graph's nodes
    sorted by hand."""
    torch.manual_seed(0)
    graphs = [_graph(n, s) for s, n in enumerate([5, 1, 7])]
    b = Batch.from_data_list(graphs)
    mix = SequenceMixer(6, tiny_core, order="degree", tie_break="index").double().eval()
    x = torch.randn(b.num_nodes, 6, dtype=torch.float64)
    out = mix(x, b.batch, b.edge_index)
    deg = torch.bincount(b.edge_index[1], minlength=b.num_nodes)
    for gi in range(len(graphs)):
        idx = (b.batch == gi).nonzero().view(-1)
        order = sorted(idx.tolist(), key=lambda i: (int(deg[i]), i))
        y = mix.core(x[order].unsqueeze(0))[0]
        assert torch.allclose(out[order], y, atol=1e-12)


def test_sequence_mixer_random_order_training_vs_eval(tiny_core):
    torch.manual_seed(0)
    b = Batch.from_data_list([_graph(9, 1)])
    x = torch.randn(9, 6)
    mix = SequenceMixer(6, tiny_core, order="random", eval_orders=3)
    mix.train()
    assert not torch.allclose(mix(x, b.batch, b.edge_index), mix(x, b.batch, b.edge_index))
    mix.eval()
    assert torch.equal(mix(x, b.batch, b.edge_index), mix(x, b.batch, b.edge_index))


def test_build_mixer_choices(tiny_core):
    assert build_mixer("none", 8) is None
    assert isinstance(build_mixer("multihead", 8), MultiheadMixer)
    assert isinstance(build_mixer("performer", 8), PerformerMixer)
    assert isinstance(build_mixer(tiny_core, 8), SequenceMixer)
    with pytest.raises(ValueError, match="mixer="):
        build_mixer("transformerxl", 8)
    with pytest.raises(ValueError, match="divisible"):
        MultiheadMixer(10, heads=4)
    with pytest.raises(ValueError, match="tie_break"):
        SequenceMixer(8, tiny_core, tie_break="coin")


# ----------------------------------------------------------------------------- GPS model
COMBOS = [("gatedgcn", "multihead"), ("gine", "performer"), ("gcn", "multihead"),
          ("gat", "performer"), ("gin", "none"), ("none", "multihead"),
          ("gatedgcn", "seq"), ("gine", "seq")]


@pytest.mark.parametrize("mpnn,mixer", COMBOS)
def test_gps_batch_independent_and_edge_cases(mpnn, mixer, tiny_core):
    torch.manual_seed(0)
    model = GPS(5, 3, hidden_channels=16, num_layers=2, mpnn=mpnn, mixer=mixer,
                seq_core=tiny_core, eval_orders=2, edge_dim=3)
    model.train()
    out = model(Batch.from_data_list(_graphs()))
    out.sum().backward()
    assert out.shape == (5, 3)
    _assert_batch_independent(model, _graphs())


@pytest.mark.parametrize("mpnn,mixer,tie_break", [("gatedgcn", "multihead", "noise"),
                                                  ("gine", "performer", "noise"),
                                                  ("gatedgcn", "seq", "state")])
def test_gps_permutation_invariance(mpnn, mixer, tie_break, tiny_core):
    torch.manual_seed(0)
    model = GPS(5, 3, hidden_channels=16, num_layers=2, mpnn=mpnn, mixer=mixer,
                seq_core=tiny_core, tie_break=tie_break, edge_dim=3).eval()
    g = _graph(7, 3)
    perm = torch.randperm(7)
    with torch.no_grad():
        assert torch.allclose(model(g), model(_permute(g, perm)), atol=1e-5)


def test_gps_node_level_and_no_edge_features(tiny_core):
    model = GPS(5, 4, hidden_channels=16, num_layers=1, mixer="performer",
                task_level="node").eval()
    g = _graph(6, 0)
    out = model(Data(x=g.x, edge_index=g.edge_index))
    assert out.shape == (6, 4)
    perm = torch.randperm(6)
    out_p = model(Data(x=g.x[perm], edge_index=_permute(g, perm).edge_index))
    assert torch.allclose(out_p, out[perm], atol=1e-5)


def test_gps_gradcheck():
    """float64 gradients through the GPS layers and head (the feature encoder casts to
    float32 by contract, so the check starts after it)."""
    torch.manual_seed(0)
    model = GPS(3, 2, hidden_channels=4, num_layers=1, mixer="performer", heads=2, norm="layer",
                attn_dropout=0.0, num_features=3, edge_dim=2).double().eval()
    g = Batch.from_data_list([_graph(3, 0, f=3, edge_dim=2), _graph(2, 1, f=3, edge_dim=2)])
    h = torch.randn(g.num_nodes, 4, dtype=torch.float64, requires_grad=True)
    e = torch.randn(g.num_edges, 4, dtype=torch.float64, requires_grad=True)

    def fn(h, e):
        for layer in model.layers:
            h, e = layer(h, g.edge_index, e, g.batch)
        return model.finish(h, g), e
    assert torch.autograd.gradcheck(fn, (h, e))


def test_gps_bad_inputs():
    with pytest.raises(ValueError, match="needs an MPNN, a mixer"):
        GPS(5, 2, mpnn="none", mixer="none")
    with pytest.raises(ValueError, match="mpnn"):
        GPS(5, 2, mpnn="sage2")
    with pytest.raises(ValueError, match="pe_dim"):
        GPS(5, 2, hidden_channels=16, pe="rwse", pe_dim=16)
    g = _graph(4, 0)
    g.x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        GPS(5, 2, hidden_channels=16, num_layers=1, edge_dim=3)(g)


def test_gps_registered_and_reset():
    assert MODELS.get("gps") is GPS
    model = GPS(5, 2, hidden_channels=16, num_layers=1)
    w = model.head.out.weight.clone()
    model.reset_parameters()
    assert not torch.equal(w, model.head.out.weight)


def test_gps_with_real_mamba_core():
    if "mamba" not in SEQ_CORES:
        pytest.skip("SEQ_CORES has no 'mamba' yet")
    torch.manual_seed(0)
    model = GPS(5, 3, hidden_channels=16, num_layers=2, mixer="seq", seq_core="mamba",
                seq_core_kwargs={"d_state": 4}, eval_orders=2, edge_dim=3)
    model(Batch.from_data_list(_graphs())).sum().backward()
    _assert_batch_independent(model, _graphs())


@pytest.mark.parametrize("pe,kw", [("rwse", {"walk_length": 6}), ("spe", {"k": 4})])
def test_gps_with_positional_encoding(pe, kw):
    from graphlab.transforms.pe import pe_transform
    torch.manual_seed(0)
    transform = pe_transform(pe, **kw)
    graphs = [transform(g) for g in _graphs()]
    model = GPS(5, 3, hidden_channels=16, num_layers=1, pe=pe, pe_dim=4, pe_kwargs=kw,
                edge_dim=3)
    model(Batch.from_data_list(graphs)).sum().backward()
    _assert_batch_independent(model, graphs)
    g = _graph(7, 3)
    perm = torch.randperm(7)
    with torch.no_grad():  # RWSE and SPE are invariant to node relabelling
        assert torch.allclose(model(transform(g)), model(transform(_permute(g, perm))),
                              atol=1e-5)


def test_configs_build_models():
    import yaml
    files = sorted(glob.glob(os.path.join(ROOT, "configs", "gps", "*.yaml")))
    assert files, "configs/gps/*.yaml missing"
    for path in files:
        with open(path) as fh:
            cfg = yaml.safe_load(fh)
        kw = dict(cfg["model"])
        assert kw.pop("name") == "gps"
        if kw.get("mixer") in ("seq", "mamba") and kw.get("seq_core", "mamba") not in SEQ_CORES:
            continue
        GPS(9, 10, edge_dim=3, node_encoder="linear", **kw)


def test_dense_layout_matches_to_dense_batch():
    """The layout shared by the attention mixers of all layers gives to_dense_batch's slots."""
    from torch_geometric.utils import to_dense_batch
    from graphlab.nn.mixers import dense_layout, from_dense, to_dense
    batch = torch.tensor([0, 0, 0, 1, 3, 3])  # graph 2 is empty
    x = torch.randn(6, 4, dtype=torch.float64)
    lay = dense_layout(x, batch, num_graphs=5)  # and a trailing empty graph
    ref, mask = to_dense_batch(x, batch, batch_size=5)
    assert torch.equal(lay.mask, mask)
    assert torch.equal(to_dense(x, lay), ref)
    assert torch.equal(from_dense(ref, lay), ref[mask])
    assert torch.equal(dense_layout(x, batch).mask, to_dense_batch(x, batch)[1])
    with pytest.raises(ValueError, match="sorted"):
        dense_layout(x, batch.flip(0))


def test_dense_layout_fixed_width_spills_only_the_last_graph():
    """``max_nodes`` fixes the width (static shapes for CUDA graphs): real graphs keep
    to_dense_batch's slots; the last graph's nodes beyond the width (padding of a static batch)
    go to a spare row that to_dense drops and from_dense reads as zeros."""
    from torch_geometric.utils import to_dense_batch
    from graphlab.nn.mixers import dense_layout, from_dense, to_dense
    batch = torch.tensor([0, 0, 0, 1, 3, 3, 4, 4, 4, 4, 4, 4])  # last graph: 6 > width 3
    x = torch.randn(12, 4, dtype=torch.float64)
    lay = dense_layout(x, batch, num_graphs=5, max_nodes=3)
    ref, mask = to_dense_batch(x, batch, batch_size=5, max_num_nodes=3)
    assert lay.mask.shape == (5, 3) and torch.equal(lay.mask, mask)
    assert torch.equal(to_dense(x, lay), ref)
    back = from_dense(ref, lay)
    assert torch.equal(back[:9], x[:9]) and not back[9:].any()
    with pytest.raises(ValueError, match="other than the last"):
        dense_layout(x, batch, num_graphs=5, max_nodes=2)  # graph 0 has 3 nodes


@pytest.mark.parametrize("mixer", ["multihead", "performer"])
def test_attention_with_empty_graphs_stays_finite(mixer):
    """Empty graphs (a static batch's unused slots) leave nothing to attend to; outputs and
    gradients stay finite and the real graphs' outputs are those without the empty ones."""
    from graphlab.nn.mixers import dense_layout
    torch.manual_seed(0)
    m = build_mixer(mixer, 8, heads=2, dropout=0.0).double()
    x = torch.randn(7, 8, dtype=torch.float64, requires_grad=True)
    batch = torch.tensor([0, 0, 0, 2, 2, 2, 2])  # graphs 1 and 3 are empty
    out = m(x, batch, layout=dense_layout(x, batch, num_graphs=4, max_nodes=5))
    out.square().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    ref = m(x.detach(), torch.tensor([0, 0, 0, 1, 1, 1, 1]))
    torch.testing.assert_close(out.detach(), ref)
