"""SPE: dense float64 reference, sign/basis invariance, equivariance, batching, stability."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch_geometric.data import Batch, Data

from graphlab.nn import SPE, LapPE
from graphlab.transforms import AddLaplacianEigen

pytestmark = pytest.mark.usefixtures("float64")


def small_spe(**kw):
    torch.manual_seed(0)
    args = dict(num_phis=4, phi_hidden_channels=8, phi_layers=2, rho_hidden_channels=8,
                rho_layers=2)
    args.update(kw)
    return SPE(5, **args).double().eval()


def with_eigen(edge_index, n, k):
    return AddLaplacianEigen(k, dtype=torch.float64)(Data(edge_index=edge_index, num_nodes=n))


def random_graph(n, p, seed, k=None):
    """Undirected G(n, p); with ``k``, the first seed from ``seed`` on whose k smallest
    eigenpairs do not split an eigenspace (so basis invariance can hold)."""
    while True:
        g = torch.Generator().manual_seed(seed)
        A = (torch.rand(n, n, generator=g) < p).triu(1)
        ei = A.nonzero().t()
        ei = torch.cat([ei, ei.flip(0)], 1)
        if k is None or k >= n:
            return ei
        t = AddLaplacianEigen(k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t(Data(edge_index=ei, num_nodes=n))
        if t.num_split == 0:
            return ei
        seed += 1000


def cycle(n):
    i = torch.arange(n)
    ei = torch.stack([i, (i + 1) % n])
    return torch.cat([ei, ei.flip(0)], 1)


def naive_spe(model: SPE, data: Data) -> torch.Tensor:
    """One graph, plain loops: W_l = sum_j phi_l(lambda_j) v_j v_j^T, then per column a GIN with
    a dense adjacency, then the sum over columns."""
    n, k = data.eigvecs.shape
    lam, V, mask = data.eigvals[0], data.eigvecs, data.eig_mask[0]
    m = model.num_phis
    W = torch.zeros(n, n, m)
    for ell in range(m):
        for j in range(k):
            if not mask[j]:
                continue
            x = lam[j].reshape(1, 1)
            for i, (w, b) in enumerate(zip(model.phi.weights, model.phi.biases)):
                x = x @ w[ell] + b[ell]
                if i < len(model.phi.weights) - 1:
                    x = torch.relu(x)
            W[:, :, ell] += x.squeeze() * torch.outer(V[:, j], V[:, j])
    A = torch.zeros(n, n)
    for src, dst in data.edge_index.t().tolist():
        A[dst, src] += 1
    total = 0
    for c in range(n):
        h = W[:, c, :]
        for li, conv in enumerate(model.rho.convs):
            h = conv.mlp((1 + conv.eps) * h + A @ h)
            if li < len(model.rho.convs) - 1:
                h = torch.relu(h)
        total = total + h
    return model.lin_out(total)


def test_matches_dense_float64_reference():
    model = small_spe()
    graphs = [with_eigen(random_graph(7, 0.4, 1, 5), 7, 5), with_eigen(cycle(5), 5, 5),
              with_eigen(torch.empty(2, 0, dtype=torch.long), 2, 5)]  # padded, no edges
    out = model(Batch.from_data_list(graphs))
    ref = torch.cat([naive_spe(model, g) for g in graphs])
    assert (out - ref).abs().max() < 1e-12


def test_sign_invariance():
    model = small_spe()
    data = with_eigen(random_graph(9, 0.4, 2, 6), 9, 6)
    flipped = data.clone()
    flipped.eigvecs = data.eigvecs * torch.tensor([1, -1, -1, 1, -1, 1.0])
    assert (model(data) - model(flipped)).abs().max() < 1e-12


def test_basis_invariance_in_repeated_eigenspace():
    # C_8 (sym): 0, then pairs 1 - cos(2 pi j/8); k = 5 keeps two full pairs
    model = small_spe()
    data = with_eigen(cycle(8), 8, 5)
    lam = data.eigvals[0]
    assert abs(lam[1] - lam[2]) < 1e-12 and abs(lam[3] - lam[4]) < 1e-12
    rotated = data.clone()
    g = torch.Generator().manual_seed(3)
    for a, b in ((1, 2), (3, 4)):
        Q, _ = torch.linalg.qr(torch.randn(2, 2, generator=g))
        rotated.eigvecs[:, [a, b]] = data.eigvecs[:, [a, b]] @ Q
    other = with_eigen(random_graph(6, 0.5, 4, 5), 6, 5)
    out = model(Batch.from_data_list([data, other]))
    out_rot = model(Batch.from_data_list([rotated, other]))
    assert (out - out_rot).abs().max() < 1e-10
    # plain LapPE is not basis invariant: the same rotation changes it
    lap = LapPE(5, 5).double().eval()
    assert (lap(data) - lap(rotated)).abs().max() > 1e-3


def test_permutation_equivariance():
    model = small_spe()
    n, k = 9, 5
    ei = random_graph(n, 0.4, 5, k)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(6))  # new i = old perm[i]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    out = model(with_eigen(ei, n, k))
    out_perm = model(with_eigen(inv[ei], n, k))
    assert (out_perm - out[perm]).abs().max() < 1e-10


def test_batching_independence():
    model = small_spe()
    graphs = [with_eigen(random_graph(n, 0.4, s, 6), n, 6) for n, s in ((4, 7), (10, 8), (6, 9))]
    graphs.append(with_eigen(torch.empty(2, 0, dtype=torch.long), 1, 6))  # single node
    out = model(Batch.from_data_list(graphs))
    alone = torch.cat([model(g) for g in graphs])
    assert (out - alone).abs().max() < 1e-12


def test_rho_reads_off_diagonal_entries():
    model = small_spe()
    data = with_eigen(random_graph(6, 0.5, 10, 4), 6, 4)
    W, node_mask = model.pairwise(data.eigvals, data.eigvecs, None, data.eig_mask)
    base = model.readout(W, node_mask, data.edge_index)
    W2 = W.clone()
    W2[0, 1, 4, :] += 0.1  # one off-diagonal entry (i=1, j=4), all channels
    assert (model.readout(W2, node_mask, data.edge_index) - base).abs().max() > 1e-6
    W3 = W.clone()
    W3[0, 2, 5, 0] += 0.1  # one channel of another off-diagonal entry
    assert (model.readout(W3, node_mask, data.edge_index) - base).abs().max() > 1e-6


def test_padding_equals_exact_k():
    model = small_spe()
    ei = random_graph(4, 0.7, 11)
    assert (model(with_eigen(ei, 4, 8)) - model(with_eigen(ei, 4, 4))).abs().max() < 1e-12


def test_gradcheck():
    model = small_spe(rho_layers=1, num_phis=2)
    data = with_eigen(random_graph(4, 0.7, 12, 3), 4, 3)
    lam = data.eigvals.clone().requires_grad_()
    V = data.eigvecs.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda l, v: model.encode(l, v, data.edge_index, None, data.eig_mask), (lam, V))


def test_size_limits_and_bad_input():
    data = with_eigen(random_graph(6, 0.5, 13, 3), 6, 3)
    with pytest.raises(ValueError, match="max_nodes"):
        small_spe(max_nodes=5)(data)
    with pytest.raises(ValueError, match="max_pair_elements"):
        small_spe(max_pair_elements=100)(data)
    bad = data.clone()
    bad.eigvecs[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        small_spe()(bad)
    with pytest.raises(ValueError, match="AddLaplacianEigen"):
        small_spe()(Data(edge_index=data.edge_index, num_nodes=6))
    with pytest.raises(ValueError, match=r"\[N, k\]"):
        small_spe().encode(data.eigvals[:, :2], data.eigvecs, data.edge_index)


def test_isolated_nodes_and_float32():
    ei = torch.tensor([[0, 1], [1, 0]])
    data = AddLaplacianEigen(4)(Data(edge_index=ei, num_nodes=5))  # 3 isolated nodes, float32
    torch.manual_seed(0)
    model = SPE(3, num_phis=4, rho_hidden_channels=8, rho_layers=2).float()
    out = model(data)
    assert out.shape == (5, 3) and out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def _spectral_pair(delta, eps):
    """``(L, L + E)`` with eigenvalues (0, .3, .3 + delta, .9, 1.3, ...) and a fixed E,
    ||E||_F = eps, both decomposed (k = 4, sign fixed)."""
    n, k = 8, 4
    g = torch.Generator().manual_seed(14)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g))
    lam = torch.tensor([0.0, 0.3, 0.3 + delta, 0.9, 1.3, 1.5, 1.7, 1.9])
    L = Q @ torch.diag(lam) @ Q.T
    E = torch.randn(n, n, generator=g)
    E = (E + E.T) / 2
    E = E / E.norm() * eps
    out = []
    for M in (L, L + E):
        w, V = torch.linalg.eigh(M)
        w, V = w[:k], V[:, :k]
        V = V * torch.sign(V.gather(0, V.abs().argmax(0, keepdim=True)))
        out.append((w.expand(n, k).contiguous(), V))
    return out


def test_stability_spe_vs_lappe():
    """SPE is Lipschitz in L: ||SPE(L+E) - SPE(L)|| / ||E|| stays within 10x over
    ||E|| = 1e-6..1e-2 and eigengaps delta = 1e-1..1e-4 inside the k eigenpairs; the same ratio
    for plain LapPE grows >= 100x as delta shrinks from 1e-1 to 1e-4 (||E|| = 1e-6)."""
    spe = small_spe()
    lap = LapPE(5, 4).double().eval()
    path = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7]])
    path = torch.cat([path, path.flip(0)], 1)

    def ratio(f, delta, eps):
        (l0, v0), (l1, v1) = _spectral_pair(delta, eps)
        return ((f(l1, v1) - f(l0, v0)).norm() / eps).item()

    f_spe = lambda lam, V: spe.encode(lam, V, path)  # noqa: E731
    f_lap = lambda lam, V: lap.encode(lam, V)  # noqa: E731
    r_spe = [ratio(f_spe, d, e) for d in (1e-1, 1e-4) for e in (1e-6, 1e-4, 1e-2)]
    assert max(r_spe) / min(r_spe) <= 10, r_spe
    r_lap = [ratio(f_lap, d, 1e-6) for d in (1e-1, 1e-4)]
    assert r_lap[1] / r_lap[0] >= 100, r_lap
