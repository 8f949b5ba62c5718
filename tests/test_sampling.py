"""graphlab.sampling: JDM/DCM against loops and hand counts, exact construction, baselines, CLI."""
from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
import scipy.stats
import torch
from torch_geometric.data import Data

from graphlab.sampling import (DirectedSample, check_realisable, construct, degree_matrices,
                               is_digraphic, rescale, sample_directed, simple_directed)
from graphlab.sampling.baselines import SAMPLERS
from graphlab.sampling.construct import construct_networkx, target_nodes
from graphlab.sampling.metrics import (average_clustering, degree_ks, matrix_deviation,
                                       reciprocity)
from graphlab.sampling.sample import METHODS


def random_digraph(n: int, p: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.random((n, n)) < p
    np.fill_diagonal(A, False)
    return np.array(np.nonzero(A), dtype=np.int64).reshape(2, -1)


def dense(m, shape=None):
    shape = shape or m.shape
    out = np.zeros(shape, dtype=np.float64)
    np.add.at(out, (m.row, m.col), m.data)
    return out


def naive_matrices(ei: np.ndarray, n: int):
    """JDM and DCM by plain loops over the simple graph (the reference)."""
    edges = sorted({(int(u), int(v)) for u, v in ei.T if u != v})
    out = [0] * n
    inn = [0] * n
    for u, v in edges:
        out[u] += 1
        inn[v] += 1
    K, L = max(out, default=0) + 1, max(inn, default=0) + 1
    jdm = np.zeros((K, L))
    dcm = np.zeros((K, L))
    for u, v in edges:
        jdm[out[u], inn[v]] += 1
    for v in range(n):
        dcm[out[v], inn[v]] += 1
    return jdm, dcm


def same_matrix(a, b) -> bool:
    K, L = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])
    return np.array_equal(dense(a, (K, L)), dense(b, (K, L)))


# ------------------------------------------------------------------------ degree matrices
def test_hand_computed_jdm_dcm_with_self_loop_duplicate_and_isolated_node():
    # 0->1 (twice), 0->2, 1->2, 2->0, 3->0, self-loop 1->1; node 4 isolated.
    ei = np.array([[0, 0, 0, 1, 2, 3, 1], [1, 1, 2, 2, 0, 0, 1]])
    M = degree_matrices(ei, 5)
    assert M.out_degree.tolist() == [2, 1, 1, 1, 0]
    assert M.in_degree.tolist() == [2, 1, 2, 0, 0]
    jdm = np.zeros((3, 3))
    jdm[2, 1], jdm[2, 2], jdm[1, 2] = 1, 1, 3      # by out(source), in(target)
    dcm = np.zeros((3, 3))
    dcm[2, 2] = dcm[1, 1] = dcm[1, 2] = dcm[1, 0] = dcm[0, 0] = 1
    assert np.array_equal(dense(M.jdm), jdm)
    assert np.array_equal(dense(M.dcm), dcm)
    assert M.jdm.nnz == 3 and M.dcm.nnz == 5     # only non-zero entries are stored


@pytest.mark.parametrize("seed", range(5))
def test_degree_matrices_match_loops_and_margins(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    ei = rng.integers(0, n, size=(2, int(rng.integers(0, 4 * n))))   # loops and duplicates
    M = degree_matrices(ei, n)
    jdm, dcm = naive_matrices(ei, n)
    assert np.array_equal(dense(M.jdm, jdm.shape), jdm)
    assert np.array_equal(dense(M.dcm, dcm.shape), dcm)
    K, L = dcm.shape
    assert np.array_equal(jdm.sum(1), np.arange(K) * dcm.sum(1))
    assert np.array_equal(jdm.sum(0), np.arange(L) * dcm.sum(0))


def test_bad_edge_index_is_a_clear_error():
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        degree_matrices(np.zeros((3, 4), dtype=np.int64), 5)
    with pytest.raises(ValueError, match="outside"):
        degree_matrices(np.array([[0], [7]]), 5)
    with pytest.raises(ValueError, match="integer"):
        degree_matrices(np.array([[0.0], [1.0]]), 5)


# -------------------------------------------------------------------- realisability tests
def _brute_digraphic(a, b) -> bool:
    n = len(a)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    for chosen in itertools.product((0, 1), repeat=len(pairs)):
        out, inn = [0] * n, [0] * n
        for (i, j), c in zip(pairs, chosen):
            out[i] += c
            inn[j] += c
        if out == list(a) and inn == list(b):
            return True
    return False


def test_fulkerson_chen_anstee_matches_brute_force():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(400):
        n = int(rng.integers(1, 4))
        a, b = rng.integers(0, n, size=n), rng.integers(0, n, size=n)
        if a.sum() != b.sum():
            assert not is_digraphic(a, b)
            continue
        assert is_digraphic(a, b) == _brute_digraphic(a, b), (a, b)
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("seed", range(4))
def test_realisability_report_agrees_with_networkx(seed):
    ei = random_digraph(14, 0.3, seed)
    for ratio in (0.5, 1.0, 1.5):
        T = rescale(degree_matrices(ei, 14), ratio)
        out_deg, in_deg = T.degree_sequences()
        J = T.jdm
        nkk = {}
        for k, l, c in zip(J.row.tolist(), J.col.tolist(), J.data.tolist()):
            nkk.setdefault(k, {})[l] = c
        assert T.report.realisable
        assert nx.is_valid_directed_joint_degree(in_deg.tolist(), out_deg.tolist(), nkk)

def test_realisability_report_flags_each_broken_condition():
    # two nodes (1, 1) and (1, 1): the JDM entry (1, 1) = 2 is the 2-cycle, realisable
    from scipy import sparse
    dcm = sparse.coo_array(([2], ([1], [1])), shape=(2, 2))
    ok = check_realisable(dcm, sparse.coo_array(([2], ([1], [1])), shape=(2, 2)))
    assert ok.realisable
    margins = check_realisable(dcm, sparse.coo_array(([3], ([1], [1])), shape=(2, 2)))
    assert not margins.jdm_margins and not margins.realisable
    frac = check_realisable(dcm, sparse.coo_array(([1.5, 0.5], ([1, 1], [1, 0])), shape=(2, 2)))
    assert not frac.integral
    # a single node of out- and in-degree 1 could only have a self-loop
    loop = check_realisable(sparse.coo_array(([1], ([1], [1])), shape=(2, 2)),
                            sparse.coo_array(([1], ([1], [1])), shape=(2, 2)))
    assert loop.jdm_margins and not loop.within_bounds


# ------------------------------------------------------------------------------ rescaling
@pytest.mark.parametrize("seed", range(6))
def test_ratio_one_reproduces_the_matrices_exactly(seed):
    n = 5 + 4 * seed
    ei = random_digraph(n, 0.15 + 0.1 * seed, seed)
    M = degree_matrices(ei, n)
    T = rescale(M, 1.0)
    assert T.num_nodes == n and T.report.realisable and T.report.rounds == 1
    assert same_matrix(T.dcm, M.dcm) and same_matrix(T.jdm, M.jdm)


def test_rescale_errors_are_clear():
    M = degree_matrices(random_digraph(10, 0.3, 0), 10)
    with pytest.raises(ValueError, match="rounds to 0 nodes"):
        rescale(M, 0.01)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive finite"):
            rescale(M, bad)


def test_targets_keep_degree_distributions_close():
    ei = random_digraph(200, 0.05, 3)
    M = degree_matrices(ei, 200)
    for ratio in (0.2, 0.5, 2.0):
        T = rescale(M, ratio)
        out_deg, in_deg = T.degree_sequences()
        assert T.report.realisable
        assert out_deg.sum() == in_deg.sum() == T.num_edges
        assert degree_ks(out_deg, M.out_degree) <= 1.5 / T.num_nodes + 0.02
        assert degree_ks(in_deg, M.in_degree) <= 1.5 / T.num_nodes + 0.02


# ---------------------------------------------------------------------------- construction
def _check_exact(T, edges):
    """The sample is simple and meets the target's degrees, DCM and JDM exactly."""
    n = T.num_nodes
    assert (edges[0] != edges[1]).all()
    assert np.unique(edges[0] * n + edges[1]).size == edges.shape[1]
    S = degree_matrices(edges, n)
    out_t, in_t = T.degree_sequences()
    assert np.array_equal(np.sort(S.out_degree), np.sort(out_t))
    assert np.array_equal(np.sort(S.in_degree), np.sort(in_t))
    assert same_matrix(S.dcm, T.dcm) and same_matrix(S.jdm, T.jdm)


@pytest.mark.parametrize("n,p,ratio", [(30, 0.1, 0.5), (30, 0.4, 1.0), (60, 0.05, 0.3),
                                       (12, 0.7, 1.0), (40, 0.2, 2.0), (25, 0.3, 0.8)])
def test_construction_meets_targets_exactly(n, p, ratio):
    T = rescale(degree_matrices(random_digraph(n, p, n), n), ratio)
    for seed in range(3):
        c = construct(T, seed=seed)
        _check_exact(T, c.edge_index)
        assert not c.fallback


def test_networkx_oracle_builds_the_same_targets():
    T = rescale(degree_matrices(random_digraph(50, 0.1, 7), 50), 0.6)
    out_deg, in_deg = target_nodes(T, np.random.default_rng(0))
    _check_exact(T, construct_networkx(T, out_deg, in_deg, seed=0))


def test_construction_is_deterministic_per_seed():
    T = rescale(degree_matrices(random_digraph(80, 0.08, 1), 80), 0.5)
    a, b, c = (construct(T, seed=s).edge_index for s in (3, 3, 4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


# -------------------------------------------------------------------------------- the API
def _data(n=40, p=0.1, seed=0):
    return Data(edge_index=torch.from_numpy(random_digraph(n, p, seed)), num_nodes=n)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_a_simple_sample_deterministically(method):
    data = _data()
    a = sample_directed(data, 0.5, method, seed=5)
    b = sample_directed(data, 0.5, method, seed=5)
    assert a.num_nodes == 20 and torch.equal(a.edge_index, b.edge_index)
    ei = a.edge_index.numpy()
    assert ei.min(initial=0) >= 0 and ei.max(initial=0) < 20
    assert np.array_equal(simple_directed(ei, 20), ei)           # simple, sorted
    if method in SAMPLERS:
        assert a.n_id.unique().numel() == 20
        orig = {tuple(e) for e in data.edge_index.t().tolist()}
        mapped = {(int(a.n_id[u]), int(a.n_id[v])) for u, v in ei.T}
        assert mapped <= orig                                    # a subgraph of the input


def test_induced_baselines_keep_every_edge_among_their_nodes():
    data = _data(60, 0.1, 2)
    orig = {tuple(e) for e in data.edge_index.t().tolist()}
    for method in ("random_node", "random_walk", "forest_fire"):
        s = sample_directed(data, 0.4, method, seed=1)
        ids = s.n_id.tolist()
        induced = {(i, j) for i, u in enumerate(ids) for j, v in enumerate(ids) if (u, v) in orig}
        assert induced == {tuple(e) for e in s.edge_index.t().tolist()}


def test_jdm_sample_degree_distribution_equals_target():
    data = _data(100, 0.06, 4)
    M = degree_matrices(data.edge_index.numpy(), 100)
    T = rescale(M, 0.4)
    s = sample_directed(data, 0.4, "jdm", seed=2)
    _check_exact(T, s.edge_index.numpy())


def test_transform_and_edge_index_input():
    from torch_geometric import EdgeIndex
    data = _data()
    t = DirectedSample(0.5, "jdm", seed=1)
    s = t(data)
    edge_index = EdgeIndex(data.edge_index, sparse_size=(40, 40))
    s2 = sample_directed(Data(edge_index=edge_index, num_nodes=40), 0.5, "jdm", seed=1)
    assert torch.equal(s.edge_index, s2.edge_index)
    assert "ratio=0.5" in repr(t)


def test_small_and_degenerate_graphs_give_clear_results():
    one = Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=1)
    for method in METHODS:
        s = sample_directed(one, 1.0, method)
        assert s.num_nodes == 1 and s.edge_index.shape == (2, 0)
    # only isolated nodes: every sample is isolated nodes
    empty = Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=10)
    s = sample_directed(empty, 0.5, "jdm")
    assert s.num_nodes == 5 and s.edge_index.shape == (2, 0)
    # a graph with isolated nodes keeps a proportional share of them
    ei = random_digraph(30, 0.2, 0)
    ei = np.where(ei >= 20, ei - 10, ei)            # nodes 20..29 become isolated
    data = Data(edge_index=torch.from_numpy(ei), num_nodes=30)
    T = rescale(degree_matrices(ei, 30), 1.0)
    assert dense(T.dcm)[0, 0] == 10
    s = sample_directed(data, 1.0, "jdm")
    assert ((np.bincount(s.edge_index.flatten().numpy(), minlength=30)) == 0).sum() == 10
    with pytest.raises(ValueError, match="rounds to 0"):
        sample_directed(one, 0.2, "jdm")
    with pytest.raises(ValueError, match="expected one of"):
        sample_directed(data, 0.5, "snowball")
    with pytest.raises(ValueError, match="at most 1"):
        sample_directed(data, 1.5, "random_node")
    with pytest.raises(ValueError, match="edge_index"):
        sample_directed(Data(num_nodes=3), 0.5)


# -------------------------------------------------------------------------------- metrics
def test_metrics_match_networkx_and_scipy():
    ei = random_digraph(40, 0.12, 9)
    G = nx.DiGraph()
    G.add_nodes_from(range(40))
    G.add_edges_from(ei.T.tolist())
    assert average_clustering(ei, 40) == pytest.approx(nx.average_clustering(G.to_undirected()),
                                                       abs=1e-12)
    assert reciprocity(ei, 40) == pytest.approx(nx.reciprocity(G), abs=1e-12)
    a, b = np.random.default_rng(0).integers(0, 9, size=(2, 50))
    assert degree_ks(a, b[:37]) == pytest.approx(scipy.stats.ks_2samp(a, b[:37]).statistic)
    M = degree_matrices(ei, 40)
    assert matrix_deviation(M.jdm, M.jdm) == 0.0
    scaled = M.jdm.copy()
    scaled.data = scaled.data * 3.0
    assert matrix_deviation(M.jdm, scaled) == pytest.approx(0.0)   # normalised


# ------------------------------------------------------------------------------------ CLI
def test_cli_sample_and_compare(tmp_path, capsys):
    from graphlab.train.cli import main
    path = tmp_path / "g.txt"
    ei = random_digraph(60, 0.08, 0)
    np.savetxt(path, ei.T, fmt="%d", delimiter="\t", header="FromNodeId\tToNodeId")
    out = tmp_path / "s.pt"
    assert main(["sample", str(path), "--ratio", "0.5", "--out", str(out)]) == 0
    s = torch.load(out, weights_only=False)
    assert s.num_nodes == 30
    plot = tmp_path / "p.png"
    assert main(["sample", str(path), "--ratio", "0.5", "--compare", "--seeds", "2",
                 "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert all(f"| {m} |" in text for m in METHODS) and plot.stat().st_size > 0
    assert main(["sample", str(path), "--method", "nope", "--out", str(out)]) == 2


# ------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_email_eu_core_sample_keeps_degrees_and_beats_subgraphs(mirror):
    import graphlab.data as gd
    from graphlab.sampling.compare import compare, summarise
    d = gd.load("email-Eu-core")[0]
    ei, n = d.edge_index.numpy(), d.num_nodes
    assert (n, simple_directed(ei, n).shape[1]) == (1005, 24929)   # 642 self-loops dropped
    T = rescale(degree_matrices(ei, n), 0.2)
    assert T.report.realisable and T.num_nodes == 201
    s = sample_directed(d, 0.2, "jdm", seed=0)
    _check_exact(T, s.edge_index.numpy())
    rows = {r["method"]: r for r in summarise(compare(ei, n, 0.2, [0]))}
    assert rows["jdm"]["ks_out"] <= 0.05 and rows["jdm"]["ks_in"] <= 0.05
    assert rows["jdm"]["jdm_dev"] == pytest.approx(rows["nx2k"]["jdm_dev"])   # same target
    for m in SAMPLERS:
        assert rows["jdm"]["jdm_dev"] < rows[m]["jdm_dev"]
        assert rows["jdm"]["dcm_dev"] < rows[m]["dcm_dev"]
