"""AddLaplacianEigen: eigenpairs against naive Laplacians, sparse vs dense, padding, warnings."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from torch_geometric.data import Batch, Data, HeteroData
from torch_geometric.utils import erdos_renyi_graph

import graphlab.transforms.laplacian as lap
from graphlab.transforms import AddLaplacianEigen


def naive_laplacian(edges, n, normalization="sym", weights=None):
    """Plain loops: A symmetric (max over directions), no self-loops; Chung's convention."""
    A = np.zeros((n, n))
    for e, (u, v) in enumerate(edges):
        if u != v:
            w = 1.0 if weights is None else float(weights[e])
            A[u, v] = max(A[u, v], w)
            A[v, u] = max(A[v, u], w)
    d = A.sum(1)
    if normalization is None:
        return np.diag(d) - A
    L = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i == j:
                L[i, j] = 1.0 if d[i] > 0 else 0.0
            elif A[i, j] > 0:
                L[i, j] = -A[i, j] / np.sqrt(d[i] * d[j])
    return L


def graph(edges, n, **kw):
    ei = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
    return Data(edge_index=ei, num_nodes=n, **kw)


def cycle_edges(n):
    return [(i, (i + 1) % n) for i in range(n)] + [((i + 1) % n, i) for i in range(n)]


def random_connected_edges(n, avg_degree, seed):
    """A path through all nodes plus about ``n * avg_degree / 2`` random edges, [2, E]."""
    rng = np.random.default_rng(seed)
    extra = rng.integers(0, n, size=(2, int(n * avg_degree / 2)))
    path = np.stack([np.arange(n - 1), np.arange(1, n)])
    return torch.from_numpy(np.concatenate([path, extra], 1))


@pytest.mark.parametrize("normalization", ["sym", None])
def test_small_graph_matches_naive_laplacian(normalization):
    # two components, one isolated node, one duplicated and one one-directional edge, a self-loop
    edges = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 2), (3, 2), (5, 6), (6, 7), (4, 4)]
    n, k = 9, 6
    L = naive_laplacian(edges, n, normalization)
    ref = np.linalg.eigvalsh(L)
    data = AddLaplacianEigen(k, normalization, dtype=torch.float64)(graph(edges, n))
    lam, V = data.eigvals[0].numpy(), data.eigvecs.numpy()
    assert np.allclose(data.eigvals.numpy(), lam[None])  # every row is the graph's spectrum
    assert np.abs(lam - ref[:k]).max() < 1e-12
    assert np.abs(L @ V - V * lam).max() < 1e-12
    assert np.abs(V.T @ V - np.eye(k)).max() < 1e-12
    # zero eigenvalue once per connected component: {0,1,2,3}, {4}, {5,6,7}, {8}
    assert (np.abs(lam) < 1e-12).sum() == 4
    assert data.eig_mask.all()
    # deterministic sign: largest-magnitude entry positive, and no randomness between calls
    assert (V[np.abs(V).argmax(0), np.arange(k)] > 0).all()
    again = AddLaplacianEigen(k, normalization, dtype=torch.float64)(graph(edges, n))
    assert torch.equal(again.eigvecs, data.eigvecs)


def test_weighted_graph():
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]
    w = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.5])
    L = naive_laplacian(edges, 4, "sym", w)
    data = AddLaplacianEigen(4, edge_weight_attr="w", dtype=torch.float64)(graph(edges, 4, w=w))
    assert np.abs(data.eigvals[0].numpy() - np.linalg.eigvalsh(L)).max() < 1e-12


def test_padding_no_edges_and_single_node():
    data = AddLaplacianEigen(5)(graph([], 3))
    assert data.eigvals.shape == data.eigvecs.shape == data.eig_mask.shape == (3, 5)
    assert data.eig_mask[:, :3].all() and not data.eig_mask[:, 3:].any()
    assert torch.all(data.eigvals == 0)
    assert torch.equal(data.eigvecs[:, :3].abs().sum(0), torch.ones(3))
    assert torch.all(data.eigvecs[:, 3:] == 0)
    single = AddLaplacianEigen(2)(graph([], 1))
    assert single.eigvecs.tolist() == [[1.0, 0.0]] and single.eig_mask.tolist() == [[True, False]]
    empty = AddLaplacianEigen(2)(graph([], 0))
    assert empty.eigvecs.shape == (0, 2)


def test_batch_collates_per_node_rows():
    t = AddLaplacianEigen(5)
    gs = [t(graph(cycle_edges(5), 5)), t(graph([(0, 1)], 2)), t(graph(cycle_edges(6), 6))]
    b = Batch.from_data_list(gs)
    assert b.eigvals.shape == b.eigvecs.shape == b.eig_mask.shape == (13, 5)
    assert torch.equal(b.eigvecs[5:7], gs[1].eigvecs)
    assert b.eig_mask[5:7].sum() == 4 and t.num_split == 0


def test_split_eigenspace_warns_once():
    # cycle C_8 (sym): 0, then pairs 1 - cos(2 pi j / 8); k=2 splits the first pair
    t = AddLaplacianEigen(2)
    with pytest.warns(UserWarning, match="splits an eigenspace"):
        t(graph(cycle_edges(8), 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t(graph(cycle_edges(8), 8))  # counted, not warned again
        AddLaplacianEigen(3)(graph(cycle_edges(8), 8))  # k=3 keeps the pair whole
    assert t.num_split == 2


def test_bad_input():
    with pytest.raises(ValueError, match="k must"):
        AddLaplacianEigen(0)
    with pytest.raises(ValueError, match="normalization"):
        AddLaplacianEigen(3, "rw")
    g = graph([(0, 1)], 2, w=torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="edge_weight"):
        AddLaplacianEigen(2, edge_weight_attr="w")(g)
    with pytest.raises(ValueError, match="edge_weight_attr"):
        AddLaplacianEigen(2, edge_weight_attr="missing")(graph([(0, 1)], 2))
    with pytest.raises(ValueError, match="edge_index"):
        AddLaplacianEigen(2)(graph([(0, 5)], 2))
    with pytest.raises(ValueError, match="homogeneous"):
        AddLaplacianEigen(2)(HeteroData())


def _big_disconnected_graph():
    """~2000 nodes: two random connected components (1200 and 785 nodes), a 10-node path and
    5 isolated nodes, with node ids shuffled."""
    a, b = random_connected_edges(1200, 4, 1), random_connected_edges(785, 3, 2) + 1200
    path = torch.stack([torch.arange(1985, 1994), torch.arange(1986, 1995)])
    n = 1995 + 5
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    return perm[torch.cat([a, b, path], 1)], n


def test_sparse_matches_dense_at_2000_nodes(monkeypatch):
    ei, n = _big_disconnected_graph()
    k = 12
    L = lap.laplacian_matrix(ei, n, "sym")
    # whole-graph dense LAPACK reference (no component split), only the k + 1 smallest pairs
    lam_ref, V_ref = scipy.linalg.eigh(L.toarray(), subset_by_index=[0, k])
    assert lam_ref[k] - lam_ref[k - 1] > 1e-4 and (np.abs(lam_ref) < 1e-10).sum() == 8
    calls = []
    sparse = lap._sparse_eigh
    monkeypatch.setattr(lap, "_sparse_eigh", lambda L, m: calls.append(L.shape[0]) or sparse(L, m))
    data = AddLaplacianEigen(k, dense_max_nodes=100, dtype=torch.float64)(Data(edge_index=ei,
                                                                               num_nodes=n))
    assert sorted(calls) == [785, 1200]  # both large components went through ARPACK
    lam, V = data.eigvals[0].numpy(), data.eigvecs.numpy()
    assert np.abs(lam - lam_ref[:k]).max() < 1e-8
    assert np.max(scipy.linalg.subspace_angles(V, V_ref[:, :k])) < 1e-6
    assert np.abs(L @ V - V * lam).max() < 1e-8


def test_shift_invert_fallback(monkeypatch):
    # force plain Lanczos to give up at once, so shift-invert must produce the answer
    monkeypatch.setattr(lap, "SA_MAXITER", 1)
    n = 300
    ei = random_connected_edges(n, 3, 3)
    L = lap.laplacian_matrix(ei, n, None)
    lam_ref = np.linalg.eigvalsh(L.toarray())[:6]
    lam, V = lap.laplacian_eigen(ei, n, 6, None, dense_max_nodes=10)
    assert np.abs(lam - lam_ref).max() < 1e-8
    assert np.abs(L @ V - V * lam).max() < 1e-8


def test_matches_erdos_renyi_dense_path():
    # the automatic choice (dense under DENSE_MAX_NODES) on an ordinary graph
    ei = erdos_renyi_graph(40, 0.1)
    L = lap.laplacian_matrix(ei, 40, "sym")
    lam, _ = lap.laplacian_eigen(ei, 40, 40)
    assert np.abs(lam - np.linalg.eigvalsh(L.toarray())).max() < 1e-12
