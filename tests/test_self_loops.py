"""graphlab.nn.self_loops: GCN / GAT self-loops with fixed sizes equal PyG's own loops."""
from __future__ import annotations

import copy

import pytest
import torch
from torch_geometric import EdgeIndex
from torch_geometric.nn import GATConv, GATv2Conv, GCNConv
from torch_geometric.utils import to_torch_csr_tensor

from graphlab.nn.self_loops import gat_self_loops, gcn_self_loops

DT = torch.float64


def graph(seed: int, loops: bool):
    """8 nodes (node 7 isolated), random directed edges without duplicates, optionally with
    self-loops on nodes 1 and 4."""
    g = torch.Generator().manual_seed(seed)
    N = 8
    pairs = sorted({(int(a), int(b)) for a, b in torch.randint(0, 7, (30, 2), generator=g)
                    if a != b})
    if loops:
        pairs += [(1, 1), (4, 4)]
    perm = torch.randperm(len(pairs), generator=g)
    ei = torch.tensor([pairs[int(i)] for i in perm]).t().contiguous()
    x = torch.randn(N, 5, generator=g, dtype=DT)
    w = torch.rand(ei.size(1), generator=g, dtype=DT) + 0.5
    ea = torch.randn(ei.size(1), 3, generator=g, dtype=DT)
    return x, ei, w, ea


def twin(conv):
    """The same convolution (same weights) with PyG's own self-loops switched off."""
    other = copy.deepcopy(conv)
    other.add_self_loops = False
    return other


@pytest.mark.parametrize("loops", [False, True], ids=["no-loops", "with-loops"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_gcn_self_loops_equal_pyg(loops, weighted):
    x, ei, w, _ = graph(0, loops)
    ref = GCNConv(5, 4).to(DT)
    ours = twin(ref)
    w = w if weighted else None
    index, weight = gcn_self_loops(ei, w, x.size(0), dtype=DT)
    assert index.shape == (2, ei.size(1) + x.size(0)) and weight.shape == (index.size(1),)
    torch.testing.assert_close(ours(x, index, weight), ref(x, ei, w), rtol=1e-12, atol=1e-12)
    # gradients too
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ga = torch.autograd.grad(ref(xa, ei, w).square().sum(), [xa, ref.lin.weight])
    gb = torch.autograd.grad(ours(xb, index, weight).square().sum(), [xb, ours.lin.weight])
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("Conv", [GATConv, GATv2Conv], ids=["gat", "gatv2"])
@pytest.mark.parametrize("loops", [False, True], ids=["no-loops", "with-loops"])
@pytest.mark.parametrize("edges", [False, True], ids=["no-edge-attr", "edge-attr"])
def test_gat_self_loops_equal_pyg(Conv, loops, edges):
    torch.manual_seed(0)
    x, ei, _, ea = graph(1, loops)
    ref = Conv(5, 3, heads=2, edge_dim=3 if edges else None).to(DT)
    ours = twin(ref)
    ea = ea if edges else None
    N = x.size(0)
    index, attr = gat_self_loops(ei, ea, N)
    assert index.shape == (2, ei.size(1) + N) and int(index.max()) <= N
    if edges:
        assert attr.shape == (index.size(1), 3)
    x_ext = torch.cat([x, x.new_zeros(1, 5)])
    torch.testing.assert_close(ours(x_ext, index, attr)[:N], ref(x, ei, ea),
                               rtol=1e-12, atol=1e-12)


def test_edge_index_subclass_and_sparse_adjacency():
    x, ei, _, _ = graph(2, loops=False)
    N = x.size(0)
    ref = GCNConv(5, 4).to(DT)
    ours = twin(ref)
    expect = ref(x, ei)
    # EdgeIndex in, plain edge list out
    index, weight = gcn_self_loops(EdgeIndex(ei, sparse_size=(N, N)), None, N, dtype=DT)
    torch.testing.assert_close(ours(x, index, weight), expect, rtol=1e-12, atol=1e-12)
    # a torch.sparse adjacency (PyG's adj_t layout) takes PyG's own loop utility
    adj_t = to_torch_csr_tensor(ei.flip(0), size=(N, N)).to(DT)
    adj_loops, none = gcn_self_loops(adj_t, None, N)
    assert none is None
    torch.testing.assert_close(ours(x, adj_loops), expect, rtol=1e-12, atol=1e-12)
    gat = GATConv(5, 3, heads=2).to(DT)
    gat_ours = twin(gat)
    adj_loops, _ = gat_self_loops(adj_t, None, N)
    torch.testing.assert_close(gat_ours(x, adj_loops), gat(x, ei), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["gcn", "gat"])
def test_models_equal_pyg_loops_and_are_permutation_equivariant(name):
    """The GCN / GATv2 models (node level) give what PyG's convolutions with their own loops
    give, on a graph with self-loops and an isolated node, and permuting nodes permutes the
    output."""
    from torch_geometric.data import Data

    from graphlab.models.basic import GAT, GCN
    torch.manual_seed(0)
    x, ei, _, ea = graph(3, loops=True)
    if name == "gcn":
        model = GCN(5, 4, hidden_channels=8, num_layers=2, dropout=0.0).to(DT).eval()
    else:
        model = GAT(5, 4, hidden_channels=8, num_layers=2, heads=2, dropout=0.0,
                    attn_dropout=0.0, v2=True, edge_dim=3).to(DT).eval()
    data = Data(x=x, edge_index=ei, edge_attr=ea)
    out = model(data)
    ref = copy.deepcopy(model)
    for conv in ref.convs:
        conv.add_self_loops = True
    if name == "gcn":
        h = x
        for i, conv in enumerate(ref.convs):
            h = conv(h, ei)
            if i < len(ref.convs) - 1:
                h = torch.relu(ref.norms[i](h))
        expect = h
    else:
        h = ref.encoder(x, x.size(0))
        for i, conv in enumerate(ref.convs):
            e = ref.edge_encoders[i](ea, ei.size(1))
            step = ref.norms[i](conv(h, ei, e))
            h = torch.relu(step) if i < len(ref.convs) - 1 else step  # residual=False
        expect = ref.head(h)
    torch.testing.assert_close(out, expect, rtol=1e-10, atol=1e-10)
    perm = torch.randperm(x.size(0))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    permuted = Data(x=x[perm], edge_index=inv[ei], edge_attr=ea)
    torch.testing.assert_close(model(permuted), out[perm], rtol=1e-10, atol=1e-10)
