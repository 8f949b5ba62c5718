"""AddRRWP / AddRWSE against dense matrix powers written with plain loops (float64)."""
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader
from torch_geometric.transforms import AddRandomWalkPE

from graphlab.transforms import AddRRWP, AddRWSE

F64 = torch.float64


def naive_powers(edge_index, n, k, weight=None):
    """[I, M, ..., M^{k-1}] with M = D^-1 A built entry by entry, stacked as [n, n, k]."""
    A = torch.zeros(n, n, dtype=F64)
    for e in range(edge_index.size(1)):
        u, v = int(edge_index[0, e]), int(edge_index[1, e])
        A[u, v] += 1.0 if weight is None else float(weight[e])
    M = torch.zeros(n, n, dtype=F64)
    for u in range(n):
        d = A[u].sum()
        if d > 0:
            M[u] = A[u] / d
    return torch.stack([torch.linalg.matrix_power(M, p) for p in range(k)], dim=-1)


def ei(pairs, undirected=True):
    if not pairs:
        return torch.empty(2, 0, dtype=torch.long)
    t = torch.tensor(pairs, dtype=torch.long).t()
    return torch.cat([t, t.flip(0)], 1) if undirected else t


GRAPHS = {
    "path": (5, ei([(0, 1), (1, 2), (2, 3), (3, 4)])),
    "cycle_with_isolated": (6, ei([(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)])),   # node 5 isolated
    "two_components": (7, ei([(0, 1), (1, 2), (3, 4), (4, 5), (5, 6), (6, 3), (3, 5)])),
    "no_edges": (3, ei([])),
    "single_node": (1, ei([])),
    "directed_selfloop_multi": (4, ei([(0, 1), (1, 2), (2, 0), (2, 2), (0, 1), (3, 0)],
                                      undirected=False)),
}


def check_rrwp(data, n, k, weight=None):
    P = naive_powers(data.edge_index, n, k, weight)
    assert data.rrwp.shape == (n, k)
    torch.testing.assert_close(data.rrwp, torch.diagonal(P).t(), rtol=0, atol=1e-12)
    reach = P.abs().sum(-1) > 0
    expected = reach.nonzero().t()
    assert torch.equal(data.rrwp_index, expected)          # sorted (row, col), self pairs included
    assert (data.rrwp_index[0] == data.rrwp_index[1]).sum() == n
    torch.testing.assert_close(data.rrwp_val, P[expected[0], expected[1]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("k", [1, 3, 6])
def test_rrwp_equals_dense_powers(name, k):
    n, edge_index = GRAPHS[name]
    data = AddRRWP(k, dtype=F64)(Data(edge_index=edge_index, num_nodes=n))
    check_rrwp(data, n, k)


def test_rrwp_pairs_are_k_minus_1_hops():
    n, edge_index = GRAPHS["path"]
    data = AddRRWP(3, dtype=F64)(Data(edge_index=edge_index, num_nodes=n))
    hops = (data.rrwp_index[0] - data.rrwp_index[1]).abs()
    assert hops.max() == 2 and data.rrwp_index.size(1) == 5 + 2 * 4 + 2 * 3
    iso = AddRRWP(4, dtype=F64)(Data(edge_index=GRAPHS["cycle_with_isolated"][1], num_nodes=6))
    assert torch.equal(iso.rrwp[5], torch.tensor([1.0, 0, 0, 0], dtype=F64))
    assert ((iso.rrwp_index == 5).any(0)).sum() == 1     # isolated node: only its self pair


def test_rrwp_weighted_and_attr_name():
    n, edge_index = GRAPHS["two_components"]
    w = torch.rand(edge_index.size(1), dtype=F64) + 0.1
    data = AddRRWP(4, attr_name="pe", weight_attr="w", dtype=F64)(
        Data(edge_index=edge_index, num_nodes=n, w=w))
    P = naive_powers(edge_index, n, 4, w)
    torch.testing.assert_close(data.pe_val, P[data.pe_index[0], data.pe_index[1]])
    torch.testing.assert_close(data.pe, torch.diagonal(P).t())


def test_rrwp_permutation_equivariant_and_float32_default():
    n, edge_index = GRAPHS["two_components"]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    a = AddRRWP(5)(Data(edge_index=edge_index, num_nodes=n))
    b = AddRRWP(5)(Data(edge_index=inv[edge_index], num_nodes=n))   # node u -> inv[u]
    assert a.rrwp_val.dtype == torch.float32
    torch.testing.assert_close(b.rrwp[inv], a.rrwp)

    def dense(d):
        out = torch.zeros(n, n, 5)
        out[d.rrwp_index[0], d.rrwp_index[1]] = d.rrwp_val
        return out
    torch.testing.assert_close(dense(b)[inv][:, inv], dense(a))


def test_rrwp_batches_with_offsets_and_on_the_fly_loader():
    from torch_geometric.datasets import FakeDataset
    ds = FakeDataset(num_graphs=6, avg_num_nodes=8, avg_degree=2, num_channels=3,
                     transform=AddRRWP(4))
    batch = next(iter(DataLoader(ds, batch_size=3)))
    singles = [ds[i] for i in range(3)]
    off = torch.tensor([0] + [g.num_nodes for g in singles[:-1]]).cumsum(0)
    expected = torch.cat([g.rrwp_index + o for g, o in zip(singles, off)], 1)
    assert torch.equal(batch.rrwp_index, expected)
    assert batch.rrwp.shape == (batch.num_nodes, 4)
    assert "rrwp" not in ds._data  # computed per access, never stored with the dataset


def test_rwse_equals_diagonal_and_pyg():
    for name, (n, edge_index) in GRAPHS.items():
        data = AddRWSE(5, dtype=F64)(Data(edge_index=edge_index, num_nodes=n))
        P = naive_powers(edge_index, n, 6)
        torch.testing.assert_close(data.rwse, torch.diagonal(P).t()[:, 1:], rtol=0, atol=1e-12)
    n, edge_index = GRAPHS["cycle_with_isolated"]
    ours = AddRWSE(6)(Data(edge_index=edge_index, num_nodes=n)).rwse
    pyg = AddRandomWalkPE(6)(Data(edge_index=edge_index, num_nodes=n)).random_walk_pe
    torch.testing.assert_close(ours, pyg)


def test_errors():
    with pytest.raises(ValueError, match="walk_length"):
        AddRRWP(0)
    with pytest.raises(ValueError, match="walk_length"):
        AddRWSE(0)
    big = Data(edge_index=ei([(0, 1)]), num_nodes=11)
    with pytest.raises(ValueError, match="max_nodes"):
        AddRRWP(3, max_nodes=10)(big)
    with pytest.raises(ValueError, match="max_nodes"):
        AddRWSE(3, max_nodes=10)(big)
    with pytest.raises(ValueError, match="non-negative"):
        AddRRWP(3, weight_attr="w")(Data(edge_index=ei([(0, 1)]), num_nodes=2,
                                         w=torch.tensor([1.0, -1.0])))
