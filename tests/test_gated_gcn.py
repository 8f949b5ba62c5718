"""GatedGCNConv against a float64 loop over nodes and edges, plus symmetry and edge cases."""
import pytest
import torch

from graphlab.nn.gated_gcn import GatedGCNConv


def _reference(conv: GatedGCNConv, x, edge_index, edge_attr):
    """Per-node loop of Bresson & Laurent's update with edge gates (float64)."""
    A, B, D, E = conv.lin_A, conv.lin_B, conv.lin_D, conv.lin_E
    n = x.size(0)
    out = torch.zeros(n, conv.out_channels, dtype=x.dtype)
    e_out = torch.zeros(edge_index.size(1), conv.out_channels, dtype=x.dtype)
    for i in range(n):
        num = torch.zeros(conv.out_channels, dtype=x.dtype)
        den = torch.zeros(conv.out_channels, dtype=x.dtype)
        for k in range(edge_index.size(1)):
            j, tgt = int(edge_index[0, k]), int(edge_index[1, k])
            if tgt != i:
                continue
            e_hat = D(x[i]) + E(x[j])
            if edge_attr is not None:
                e_hat = e_hat + conv.lin_C(edge_attr[k])
            e_out[k] = e_hat
            sigma = torch.sigmoid(e_hat)
            num += sigma * B(x[j])
            den += sigma
        out[i] = A(x[i]) + num / (den + conv.eps)
    return out, e_out


def _graph(n=6, e=14, edge_dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n - 1, (2, e), generator=g)   # node n-1 stays isolated
    ei = torch.cat([ei, torch.tensor([[0, 0], [1, 1]])], 1)  # a multi-edge
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    ea = torch.randn(ei.size(1), edge_dim, generator=g, dtype=torch.float64)
    return x, ei, ea


@pytest.mark.parametrize("edge_dim", [3, None])
def test_matches_loop_reference(edge_dim):
    torch.manual_seed(0)
    x, ei, ea = _graph(edge_dim=edge_dim or 3)
    ea = ea if edge_dim else None
    conv = GatedGCNConv(4, 5, edge_dim=edge_dim).double()
    out, e_out = conv(x, ei, ea, return_edge_attr=True)
    ref, e_ref = _reference(conv, x, ei, ea)
    assert torch.allclose(out, ref, atol=1e-12)
    assert torch.allclose(e_out, e_ref, atol=1e-12)
    assert torch.allclose(out[-1], conv.lin_A(x[-1]), atol=1e-12)  # isolated node


def test_no_edges_and_single_node():
    conv = GatedGCNConv(4, 5, edge_dim=2).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    empty = torch.empty(2, 0, dtype=torch.long)
    out, e = conv(x, empty, torch.empty(0, 2, dtype=torch.float64), return_edge_attr=True)
    assert torch.allclose(out, conv.lin_A(x)) and e.shape == (0, 5)
    assert conv(x[:1], empty, torch.empty(0, 2, dtype=torch.float64)).shape == (1, 5)


def test_permutation_equivariance():
    torch.manual_seed(1)
    x, ei, ea = _graph()
    conv = GatedGCNConv(4, 5, edge_dim=3).double()
    perm = torch.randperm(x.size(0))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    out, e = conv(x, ei, ea, return_edge_attr=True)
    out_p, e_p = conv(x[perm], inv[ei], ea, return_edge_attr=True)
    assert torch.allclose(out_p, out[perm], atol=1e-12) and torch.allclose(e_p, e, atol=1e-12)


def test_gradcheck():
    torch.manual_seed(2)
    x, ei, ea = _graph(n=4, e=6)
    conv = GatedGCNConv(4, 3, edge_dim=3).double()
    x.requires_grad_(True)
    ea.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: conv(a, ei, b, return_edge_attr=True), (x, ea))


def test_edge_index_type():
    from torch_geometric import EdgeIndex
    torch.manual_seed(3)
    x, ei, ea = _graph()
    conv = GatedGCNConv(4, 5, edge_dim=3).double()
    out = conv(x, EdgeIndex(ei, sparse_size=(x.size(0), x.size(0))), ea)
    assert torch.allclose(out, conv(x, ei, ea), atol=1e-12)


def test_bad_input_errors():
    conv = GatedGCNConv(4, 5)
    x = torch.randn(3, 4)
    ei = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, ei, torch.randn(2, 3))
    with pytest.raises(ValueError, match="x must have shape"):
        conv(torch.randn(3, 2), ei)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, ei[0])
    with pytest.raises(ValueError, match="edge_attr"):
        GatedGCNConv(4, 5, edge_dim=2)(x, ei)


def test_reset_parameters_and_repr():
    conv = GatedGCNConv(4, 5, edge_dim=2)
    before = conv.lin_C.weight.clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.lin_C.weight)
    assert "GatedGCNConv(4, 5, edge_dim=2)" == repr(conv)


@pytest.mark.slow
def test_torch_compile_matches_eager():
    """torch.compile traces the layer (about a minute on 2 CPU cores, hence slow)."""
    torch.manual_seed(4)
    conv = GatedGCNConv(8, 8, edge_dim=3)
    x, ei, ea = torch.randn(10, 8), torch.randint(0, 10, (2, 30)), torch.randn(30, 3)
    assert torch.allclose(torch.compile(conv)(x, ei, ea), conv(x, ei, ea), atol=1e-6)
