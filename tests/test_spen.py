"""Equivariant basis layers and SPEN: span of the basis, naive references, symmetries."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import erdos_renyi_graph, k_hop_subgraph, to_undirected

from graphlab.models.spen import SPEN, ego_net_layout, ego_net_slots
from graphlab.nn.equivariant import (NUM_BASIS, EquivariantLinear, SetLayout,
                                     equivariant_basis_dense, equivariant_linear_dense)
from graphlab.registry import MODELS

DT = torch.float64
PAIRS = sorted(NUM_BASIS)


# ---------------------------------------------------------------- basis spans the null space
def _perm_matrix(perm, order):
    n = len(perm)
    P = torch.zeros(n, n, dtype=DT)
    P[perm, torch.arange(n)] = 1.0            # (P x)_perm[i] = x_i
    return P if order == 1 else torch.kron(P, P)


def _basis_matrices(n, k, l):
    """Each basis map as a (n^l x n^k) matrix, from its action on unit tensors."""
    dim_in = n ** k
    cols = []
    for idx in range(dim_in):
        e = torch.zeros(dim_in, dtype=DT)
        e[idx] = 1.0
        x = e.view(*([n] * k), 1)
        cols.append(torch.stack([m.reshape(-1) for m in equivariant_basis_dense(x, k, l, "sum")]))
    return torch.stack(cols, dim=-1)          # [num_basis, n^l, n^k]


@pytest.mark.parametrize("k,l", PAIRS)
def test_basis_spans_equivariant_null_space(k, l):
    n = 5
    gens = [[1, 0, 2, 3, 4], [1, 2, 3, 4, 0]]    # a transposition and a 5-cycle generate S_5
    rows = []
    for g in gens:
        Pin, Pout = _perm_matrix(torch.tensor(g), k), _perm_matrix(torch.tensor(g), l)
        # vec(L Pin - Pout L) = (Pin^T kron I - I kron Pout) vec(L), column-major vec.
        rows.append(torch.kron(Pin.T.contiguous(), torch.eye(n ** l, dtype=DT))
                    - torch.kron(torch.eye(n ** k, dtype=DT), Pout))
    A = torch.cat(rows)
    sv = torch.linalg.svdvals(A)
    null_dim = int((sv < 1e-9).sum()) + (A.size(1) - sv.numel())
    assert null_dim == NUM_BASIS[(k, l)]
    B = _basis_matrices(n, k, l)
    vecs = B.transpose(1, 2).reshape(B.size(0), -1)          # column-major vec of each map
    assert torch.linalg.matrix_rank(vecs).item() == NUM_BASIS[(k, l)]   # independent
    assert (A @ vecs.T).abs().max() < 1e-12                   # each one is equivariant
    # independent + inside a space of that dimension => the basis spans it.


@pytest.mark.parametrize("order,count", [(1, 1), (2, 2)])
def test_bias_spans_equivariant_constants(order, count):
    n = 5
    gens = [[1, 0, 2, 3, 4], [1, 2, 3, 4, 0]]
    A = torch.cat([_perm_matrix(torch.tensor(g), order) - torch.eye(n ** order, dtype=DT)
                   for g in gens])
    sv = torch.linalg.svdvals(A)
    assert int((sv < 1e-9).sum()) == count


# ---------------------------------------------------------------- fast layer == naive
def _sets(x, layout, order):
    for s in range(layout.num_sets):
        n = int(layout.sizes[s])
        if order == 1:
            yield x[layout.slot_ptr[s]:layout.slot_ptr[s + 1]]
        else:
            yield x[layout.pair_ptr[s]:layout.pair_ptr[s + 1]].view(n, n, x.size(-1))


@pytest.mark.parametrize("k,l", PAIRS)
@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_equivariant_linear_matches_dense(k, l, reduce):
    torch.manual_seed(0)
    layout = SetLayout(torch.tensor([3, 0, 1, 4, 2]))
    layer = EquivariantLinear(k, l, 3, 2, reduce=reduce).to(DT)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(layout.num_pairs if k == 2 else layout.num_slots, 3, dtype=DT)
    out = layer(x, layout)
    for xs, os_ in zip(_sets(x, layout, k), _sets(out, layout, l)):
        ref = equivariant_linear_dense(xs, layer)
        torch.testing.assert_close(os_.reshape(ref.shape), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,l", PAIRS)
def test_equivariant_linear_is_equivariant_and_gradchecks(k, l):
    torch.manual_seed(1)
    n = 4
    layer = EquivariantLinear(k, l, 2, 2).to(DT)
    torch.nn.init.normal_(layer.bias)
    layout = SetLayout(torch.tensor([n]))
    x = torch.randn(n ** k, 2, dtype=DT)
    perm = torch.randperm(n)

    def permute(t, order):
        t = t.view(*([n] * order), -1)
        t = t[perm] if order == 1 else t[perm][:, perm]
        return t.reshape(-1, t.size(-1))

    torch.testing.assert_close(layer(permute(x, k), layout), permute(layer(x, layout), l))
    xg = torch.randn(n ** k, 2, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer(t, layout), (xg,))


def test_equivariant_linear_bad_input():
    with pytest.raises(ValueError, match="in_order"):
        EquivariantLinear(3, 1, 2, 2)
    with pytest.raises(ValueError, match="reduce"):
        EquivariantLinear(2, 2, 2, 2, reduce="max")
    layer = EquivariantLinear(2, 1, 2, 2)
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(5, 2), SetLayout(torch.tensor([2])))


# ---------------------------------------------------------------- ego-nets
def _graph(n, p, seed, directed=False):
    torch.manual_seed(seed)
    return erdos_renyi_graph(n, p, directed=directed)


@pytest.mark.parametrize("hops", [0, 1, 2])
@pytest.mark.parametrize("directed", [False, True])
def test_ego_nets_match_k_hop_subgraph(hops, directed):
    n = 9
    ei = _graph(n, 0.25, hops + 3 * directed, directed)
    keys = ego_net_slots(ei, n, hops)
    und = to_undirected(ei, num_nodes=n)
    want = []
    for c in range(n):
        subset, _, _, _ = k_hop_subgraph(c, hops, und, num_nodes=n)
        want += [c * n + int(v) for v in subset.sort().values]
    assert keys.tolist() == want
    layout, slot_node, pair, eid = ego_net_layout(ei, n, hops)
    # Every edge with both ends in an ego-net appears exactly once at (centre, src, dst).
    expected = set()
    for c in range(n):
        members = set(slot_node[layout.slot_ptr[c]:layout.slot_ptr[c + 1]].tolist())
        for e, (a, b) in enumerate(ei.t().tolist()):
            if a in members and b in members:
                expected.add((c, a, b, e))
    got = {(int(layout.pair_set[p]), int(slot_node[layout.pair_row[p]]),
            int(slot_node[layout.pair_col[p]]), int(e)) for p, e in zip(pair, eid)}
    assert got == expected and len(got) == pair.numel()


# ---------------------------------------------------------------- SPEN vs a loop reference
def _spen_reference(model: SPEN, data: Data) -> torch.Tensor:
    """Per-node loop with k_hop_subgraph and dense tensors (float64)."""
    N = data.num_nodes
    x = model.encoder.enc(data.x.to(DT))
    und = to_undirected(data.edge_index, num_nodes=N)
    subsets = [k_hop_subgraph(c, model.num_hops, und, num_nodes=N)[0].sort().values
               for c in range(N)]
    e_enc = model.edge_encoder.enc(data.edge_attr.to(DT)) if model.use_edges else None
    H = model.hidden_channels
    tensors = []
    for c, sub in enumerate(subsets):
        n = sub.numel()
        pos = {int(v): i for i, v in enumerate(sub)}
        C = H + int(model.mark_center) + 1 + (H if model.use_edges else 0)
        X = torch.zeros(n, n, C, dtype=DT)
        for i, v in enumerate(sub.tolist()):
            X[i, i, :H] = x[v]
            if model.mark_center:
                X[i, i, H] = float(v == c)
        off = H + int(model.mark_center)
        for e, (a, b) in enumerate(data.edge_index.t().tolist()):
            if a in pos and b in pos:
                X[pos[a], pos[b], off] += 1.0
                if model.use_edges:
                    X[pos[a], pos[b], off + 1:] += e_enc[e]
        tensors.append(X)
    cur = 2
    last = len(model.layers) - 1
    for li, (layer, o) in enumerate(zip(model.layers, model.orders)):
        outs = [equivariant_linear_dense(T, layer) for T in tensors]
        cur = o
        if li == last and model.subgraph_readout:
            red = (lambda T: T.mean(0)) if model.reduce == "mean" else (lambda T: T.sum(0))
            outs = [red(T) for T in outs]
        elif li < last and model.cross_subgraph == "replace":
            outs = _replace_reference(outs, subsets, cur, N, H)
        tensors = [torch.relu(model.norms[li](o_.reshape(-1, H)).reshape(o_.shape)) for o_ in outs]
        if li < last and model.cross_subgraph in ("mean", "sum"):
            acc = torch.zeros(N, H, dtype=DT)
            cnt = torch.zeros(N, dtype=DT)
            for sub, T in zip(subsets, tensors):
                rows = T if cur == 1 else torch.diagonal(T, dim1=0, dim2=1).T
                acc.index_add_(0, sub, rows)
                cnt.index_add_(0, sub, torch.ones(sub.numel(), dtype=DT))
            shared = acc / cnt.unsqueeze(-1) if model.cross_subgraph == "mean" else acc
            new = []
            for sub, T in zip(subsets, tensors):
                if cur == 1:
                    new.append(T + shared[sub])
                else:
                    new.append(T + torch.diag_embed(shared[sub].T).permute(1, 2, 0))
            tensors = new
    if model.subgraph_readout:                 # one invariant vector per ego-net (= per centre)
        return model.head(torch.stack(tensors).sum(0, keepdim=True))
    acc = torch.zeros(N, H, dtype=DT)
    cnt = torch.zeros(N, dtype=DT)
    for sub, T in zip(subsets, tensors):
        acc.index_add_(0, sub, T)
        cnt.index_add_(0, sub, torch.ones(sub.numel(), dtype=DT))
    node = acc / cnt.unsqueeze(-1) if model.node_pool == "mean" else acc
    return model.head(node.sum(0, keepdim=True))


def _replace_reference(outs, subsets, order, N, H):
    """Authors' sharing (LPEGN subnodes_to_nodes / subgraphs_to_graph): each node (order 1) or
    node pair (order 2) takes the mean of its entries over every ego-net that holds it."""
    acc = torch.zeros(*([N] * order), H, dtype=DT)
    cnt = torch.zeros(*([N] * order), dtype=DT)
    for sub, T in zip(subsets, outs):
        idx = (sub,) if order == 1 else (sub[:, None], sub[None, :])
        acc[idx] += T
        cnt[idx] += 1.0
    mean = acc / cnt.clamp(min=1).unsqueeze(-1)
    return [mean[sub] if order == 1 else mean[sub[:, None], sub[None, :]] for sub in subsets]


def _data(n, p, seed, edge_dim=None):
    torch.manual_seed(seed)
    ei = erdos_renyi_graph(n, p)
    d = Data(x=torch.randn(n, 3, dtype=DT), edge_index=ei, num_nodes=n)
    if edge_dim:
        d.edge_attr = torch.randn(ei.size(1), edge_dim, dtype=DT)
    return d


def _model(**kw):
    torch.manual_seed(0)
    m = SPEN(3, 2, hidden_channels=6, **kw).to(DT).eval()
    for norm in m.norms:                     # non-trivial eval statistics
        if isinstance(norm, torch.nn.BatchNorm1d):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    return m


@pytest.mark.parametrize("kw", [
    dict(num_hops=1, orders=[2, 2, 1]),
    dict(num_hops=2, orders=[1, 2, 1], edge_dim=2, mark_center=True, cross_subgraph="sum",
         node_pool="sum", reduce="sum"),
    dict(num_hops=1, orders=[2, 1, 1], cross_subgraph="none", norm="none"),
    # Authors'-code variants (LPEGN): pairwise mean sharing, order-0 read-out per ego-net.
    dict(num_hops=1, orders=[2, 2, 1], edge_dim=2, cross_subgraph="replace"),
    dict(num_hops=2, orders=[2, 1, 1], cross_subgraph="replace", subgraph_readout=True),
    dict(num_hops=1, orders=[1, 1], cross_subgraph="mean", subgraph_readout=True, reduce="sum"),
])
def test_spen_matches_loop_reference(kw):
    model = _model(**kw)
    data = _data(7, 0.35, 3, kw.get("edge_dim"))
    torch.testing.assert_close(model(data), _spen_reference(model, data), rtol=1e-10, atol=1e-10)


def _relabelled(d: Data) -> Data:
    """``d`` with its nodes in a random order (edges and edge features follow)."""
    n = d.num_nodes
    perm = torch.randperm(n)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    return Data(x=d.x[perm], edge_index=inv[d.edge_index], edge_attr=d.edge_attr, num_nodes=n)


def test_spen_permutation_invariance_and_batching():
    model = _model(num_hops=2, orders=[2, 2, 1], edge_dim=2)
    d = _data(8, 0.3, 5, 2)
    out = model(d)
    torch.testing.assert_close(model(_relabelled(d)), out, rtol=1e-12, atol=1e-12)
    empty = Data(x=torch.randn(3, 3, dtype=DT), edge_index=torch.zeros(2, 0, dtype=torch.long),
                 edge_attr=torch.zeros(0, 2, dtype=DT), num_nodes=3)
    batch = Batch.from_data_list([_data(5, 0.5, 1, 2), d, empty, _data(1, 0.5, 2, 2)])
    res = model(batch)
    assert res.shape == (4, 2) and torch.isfinite(res).all()
    torch.testing.assert_close(res[1:2], out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(res[2:3], model(empty), rtol=1e-12, atol=1e-12)


def test_spen_authors_variant_invariance_and_batching():
    model = _model(num_hops=1, orders=[2, 2, 1], edge_dim=2, cross_subgraph="replace",
                   subgraph_readout=True, pool="mean")
    d = _data(8, 0.3, 6, 2)
    out = model(d)
    torch.testing.assert_close(model(_relabelled(d)), out, rtol=1e-12, atol=1e-12)
    batch = Batch.from_data_list([_data(5, 0.5, 1, 2), d, _data(1, 0.5, 2, 2)])
    torch.testing.assert_close(model(batch)[1:2], out, rtol=1e-12, atol=1e-12)
    node = SPEN(3, 2, hidden_channels=3, orders=[2, 1], task_level="node", norm="none",
                cross_subgraph="replace", subgraph_readout=True).to(DT)
    dn = _data(5, 0.5, 7)
    perm = torch.randperm(5)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(5)
    torch.testing.assert_close(node(Data(x=dn.x[perm], edge_index=inv[dn.edge_index], num_nodes=5)),
                               node(dn)[perm])
    assert torch.autograd.gradcheck(
        lambda x: node(Data(x=x, edge_index=dn.edge_index, num_nodes=5)),
        (dn.x.clone().requires_grad_(),))


def test_spen_node_level_equivariance_and_gradcheck():
    torch.manual_seed(0)
    model = SPEN(3, 2, hidden_channels=3, orders=[2, 1], task_level="node", norm="none").to(DT)
    d = _data(5, 0.5, 7)
    perm = torch.randperm(5)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(5)
    dp = Data(x=d.x[perm], edge_index=inv[d.edge_index], num_nodes=5)
    torch.testing.assert_close(model(dp), model(d)[perm])

    def f(x):
        return model(Data(x=x, edge_index=d.edge_index, num_nodes=5))

    assert torch.autograd.gradcheck(f, (d.x.clone().requires_grad_(),))


def test_spen_registered_and_bad_config():
    assert MODELS.get("spen") is SPEN
    with pytest.raises(ValueError, match="orders"):
        SPEN(3, 2, orders=[2, 2])
    with pytest.raises(ValueError, match="num_hops"):
        SPEN(3, 2, num_hops=-1)
    with pytest.raises(ValueError, match="cross_subgraph"):
        SPEN(3, 2, cross_subgraph="max")
    with pytest.raises(ValueError, match="NaN"):
        SPEN(3, 2)(Data(x=torch.full((2, 3), float("nan")),
                        edge_index=torch.tensor([[0], [1]]), num_nodes=2))


def test_spen_memory_is_local():
    """Ego-net tensors hold sum_c n_c^2 entries, far fewer than n^2 on a sparse graph."""
    n = 200
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    layout, *_ = ego_net_layout(to_undirected(ring), n, 2)
    assert layout.num_pairs == n * 25 and layout.num_pairs < n * n / 4
