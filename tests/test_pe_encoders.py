"""SignNet, LapPE, the RWSE/RRWP node encoders and the PE plumbing of graphlab.nn.pe."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from graphlab.nn import LapPE, SignNet, SPE
from graphlab.nn.pe import (RRWPNodeEncoder, RWSEEncoder, add_pe, build_pe_encoder,
                            pe_channels)
from graphlab.transforms.pe import pe_transform
from graphlab.registry import ENCODINGS
from graphlab.transforms import AddLaplacianEigen

# inputs are permuted/flipped directly here, so a split eigenspace does not matter
pytestmark = [pytest.mark.filterwarnings("ignore:.*splits an eigenspace"),
              pytest.mark.usefixtures("float64")]


def path_plus(n, seed):
    """A path with a few random chords (undirected)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.cat([torch.arange(n - 1), torch.randint(0, n, (n // 2,), generator=g)])
    dst = torch.cat([torch.arange(1, n), torch.randint(0, n, (n // 2,), generator=g)])
    ei = torch.stack([src, dst])
    return torch.cat([ei, ei.flip(0)], 1)


def eig(ei, n, k):
    return AddLaplacianEigen(k, dtype=torch.float64)(Data(edge_index=ei, num_nodes=n))


def signnet(k=4, **kw):
    torch.manual_seed(0)
    return SignNet(3, k, hidden_channels=8, num_layers=2, **kw).double().eval()


@pytest.mark.parametrize("use_eigvals", [True, False])
def test_signnet_sign_invariance(use_eigvals):
    model = signnet(use_eigvals=use_eigvals)
    data = eig(path_plus(7, 1), 7, 4)
    flipped = data.clone()
    flipped.eigvecs = data.eigvecs * torch.tensor([-1.0, 1, -1, -1])
    assert (model(data) - model(flipped)).abs().max() < 1e-12


def test_signnet_matches_loop_reference():
    model = signnet()
    data = eig(path_plus(6, 2), 6, 4)
    n = 6
    A = torch.zeros(n, n)
    for s, d in data.edge_index.t().tolist():
        A[d, s] += 1

    def phi(x):  # x [n, 2]: one eigenvector and its eigenvalue
        for li, conv in enumerate(model.phi.convs):
            x = conv.mlp((1 + conv.eps) * x + A @ x)
            if li < len(model.phi.convs) - 1:
                x = torch.relu(x)
        return x

    cols = []
    for j in range(4):
        v, lam = data.eigvecs[:, j:j + 1], data.eigvals[:, j:j + 1]
        cols.append(phi(torch.cat([v, lam], 1)) + phi(torch.cat([-v, lam], 1)))
    ref = model.rho(torch.cat(cols, 1))
    assert (model(data) - ref).abs().max() < 1e-12


@pytest.mark.parametrize("make", ["signnet", "lap", "spe"])
def test_permutation_equivariance_and_batching(make):
    torch.manual_seed(0)
    model = {"signnet": lambda: signnet(5), "lap": lambda: LapPE(3, 5, use_eigvals=True),
             "spe": lambda: SPE(3, num_phis=3, rho_hidden_channels=8, rho_layers=2)}[make]()
    model = model.double().eval()
    n, k = 8, 5
    ei = path_plus(n, 3)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(4))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    data = eig(ei, n, k)
    # permute the stored inputs (not a recomputation), so this also covers LapPE
    pdata = Data(edge_index=inv[ei], num_nodes=n, eigvals=data.eigvals[perm],
                 eigvecs=data.eigvecs[perm], eig_mask=data.eig_mask[perm])
    out = model(data)
    assert (model(pdata) - out[perm]).abs().max() < 1e-10
    others = [eig(path_plus(3, 5), 3, k), eig(torch.empty(2, 0, dtype=torch.long), 2, k)]
    b = Batch.from_data_list([others[0], data, others[1]])
    assert (model(b)[3:11] - out).abs().max() < 1e-12


def test_lappe_sign_flip_only_in_training():
    model = LapPE(4, 3)
    data = eig(path_plus(6, 6), 6, 3)
    model.eval()
    assert torch.equal(model(data), model(data))
    model.train()
    torch.manual_seed(1)
    outs = {tuple(model(data).flatten().round(decimals=8).tolist()) for _ in range(8)}
    assert len(outs) > 1
    # padding columns are ignored whatever the random signs
    small = eig(torch.tensor([[0, 1], [1, 0]]), 2, 3)
    assert torch.all(small.eigvecs[:, 2] == 0)


def test_signnet_lappe_bad_input():
    data = eig(path_plus(5, 7), 5, 3)
    with pytest.raises(ValueError, match="k=4"):
        signnet(4)(data)
    with pytest.raises(ValueError, match="k=4"):
        LapPE(3, 4)(data)
    with pytest.raises(ValueError, match="AddLaplacianEigen"):
        signnet(3)(Data(edge_index=data.edge_index, num_nodes=5))


def test_gradcheck_signnet():
    model = signnet(3)
    data = eig(path_plus(4, 8), 4, 3)
    V = data.eigvecs.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda v: model.encode(data.eigvals, v, data.edge_index, data.eig_mask), (V,))


def test_linear_node_encoders():
    data = Data(edge_index=path_plus(5, 9), num_nodes=5, rwse=torch.rand(5, 4),
                rrwp=torch.rand(5, 6))
    enc = RWSEEncoder(3, walk_length=4)
    assert torch.allclose(enc(data), enc.lin(data.rwse))
    assert RRWPNodeEncoder(3, walk_length=6)(data).shape == (5, 3)
    with pytest.raises(ValueError, match="AddRWSE"):
        RWSEEncoder(3, 4)(Data(num_nodes=5))
    with pytest.raises(ValueError, match="walk_length=5"):
        RWSEEncoder(3, 5)(data)


def test_registry_and_plumbing():
    assert {"spe", "signnet", "lap", "rwse", "rrwp", "none"} <= set(ENCODINGS.names())
    assert build_pe_encoder("none", 8) is None and pe_transform("none") is None
    assert build_pe_encoder("none", 8, k=4) is None  # leftover pe_kwargs are ignored
    assert pe_channels("none", 8) == 0 and pe_channels("spe", 8) == 8
    # one pe_kwargs dict configures both sides; each side takes its own keys
    kw = dict(k=4, normalization=None, rho_layers=2, rho_hidden_channels=8, num_phis=3)
    t = pe_transform("spe", **kw)
    assert isinstance(t, AddLaplacianEigen) and t.k == 4 and t.normalization is None
    enc = build_pe_encoder("SPE", 6, **kw)
    assert isinstance(enc, SPE) and enc.out_channels == 6
    with pytest.raises(ValueError, match="unknown keys"):
        build_pe_encoder("lap", 6, walk_length=3)
    with pytest.raises(KeyError, match="did you mean"):
        build_pe_encoder("sppe", 6)
    graphs = [Data(edge_index=path_plus(n, n), num_nodes=n) for n in (4, 7)]
    for name, kw in [("spe", kw), ("signnet", dict(k=4)), ("lap", dict(k=4)),
                     ("rwse", dict(walk_length=3)), ("rrwp", dict(walk_length=3))]:
        tf = pe_transform(name, **kw)
        b = Batch.from_data_list([tf(g.clone()) for g in graphs])
        enc = build_pe_encoder(name, 6, **kw).double()
        x = torch.zeros(11, 10)
        assert add_pe(x, b, enc).shape == (11, 16)
        assert add_pe(torch.zeros(11, 6), b, enc, mode="add").shape == (11, 6)
    assert torch.equal(add_pe(x, b, None), x)
    with pytest.raises(ValueError, match="mode='add'"):
        add_pe(x, b, enc, mode="add")
