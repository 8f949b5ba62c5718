r"""How close a sample is to the original: degree KS, JDM/DCM deviation, clustering, reciprocity.

* :func:`degree_ks`: the Kolmogorov-Smirnov distance :math:`\max_d |F_a(d) - F_b(d)|` between
  the empirical distributions of two integer degree sequences (their normalised CDFs).
* :func:`matrix_deviation`: the normalised L1 (total variation) distance
  :math:`\tfrac12 \sum_{k,l} |A_{k,l}/\sum A - B_{k,l}/\sum B|` between two JDMs (or DCMs),
  in :math:`[0, 1]`. Against the linearly rescaled target it is the same as against the
  original, because rescaling does not change the normalised matrix.
* :func:`average_clustering`: the mean local clustering coefficient of the undirected simple
  graph underneath (NetworkX's ``average_clustering`` of ``G.to_undirected()``: nodes of
  degree below 2 count as 0).
* :func:`reciprocity`: the fraction of edges :math:`u \to v` whose reverse :math:`v \to u`
  is an edge too (NetworkX's ``reciprocity``).

All take the simple directed graph of ``edge_index`` (:func:`simple_directed`).
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from graphlab.sampling.degree_matrices import simple_directed


def degree_ks(a: np.ndarray, b: np.ndarray) -> float:
    """KS distance between the empirical distributions of integer sequences ``a`` and ``b``."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.size == 0 or b.size == 0:
        raise ValueError("degree_ks needs two non-empty degree sequences")
    size = int(max(a.max(), b.max())) + 1
    fa = np.cumsum(np.bincount(a, minlength=size)) / a.size
    fb = np.cumsum(np.bincount(b, minlength=size)) / b.size
    return float(np.abs(fa - fb).max())


def matrix_deviation(a: sparse.coo_array, b: sparse.coo_array) -> float:
    """Total variation between the normalised sparse matrices ``a`` and ``b`` (0 = identical)."""
    sa, sb = float(a.sum()), float(b.sum())
    if sa == 0 or sb == 0:
        return 0.0 if sa == sb else 1.0
    K, L = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])
    A = sparse.csr_array((a.data / sa, (a.row, a.col)), shape=(K, L))
    B = sparse.csr_array((b.data / sb, (b.row, b.col)), shape=(K, L))
    return float(0.5 * abs(A - B).sum())


def _undirected(edge_index, num_nodes: int) -> sparse.csr_array:
    ei = simple_directed(edge_index, num_nodes)
    A = sparse.csr_array((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(num_nodes, num_nodes))
    A = ((A + A.T) > 0).astype(np.float64)
    return sparse.csr_array(A)


def average_clustering(edge_index, num_nodes: int) -> float:
    """Mean local clustering coefficient of the underlying undirected simple graph."""
    if num_nodes == 0:
        raise ValueError("average_clustering of a graph with no nodes is undefined")
    A = _undirected(edge_index, num_nodes)
    deg = np.asarray(A.sum(axis=1)).ravel()
    tri = np.asarray((A @ A).multiply(A).sum(axis=1)).ravel() / 2   # triangles at each node
    pairs = deg * (deg - 1) / 2
    c = np.divide(tri, pairs, out=np.zeros(num_nodes), where=pairs > 0)
    return float(c.mean())


def reciprocity(edge_index, num_nodes: int) -> float:
    """Fraction of edges whose reverse is an edge; NaN for a graph without edges."""
    ei = simple_directed(edge_index, num_nodes)
    if ei.shape[1] == 0:
        return float("nan")
    n = max(num_nodes, 1)
    fwd = ei[0] * n + ei[1]
    rev = ei[1] * n + ei[0]
    return float(np.isin(rev, fwd).mean())
