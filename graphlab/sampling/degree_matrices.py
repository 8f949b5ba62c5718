r"""Joint degree matrix (JDM) and degree correlation matrix (DCM) of a directed graph.

For a simple directed graph :math:`G = (V, E)` with out-degrees :math:`d^{out}` and in-degrees
:math:`d^{in}`:

.. math::
    \mathrm{JDM}_{k,l} = \big|\{(u, v) \in E : d^{out}_u = k,\ d^{in}_v = l\}\big|, \qquad
    \mathrm{DCM}_{k,l} = \big|\{v \in V : d^{out}_v = k,\ d^{in}_v = l\}\big|.

The JDM counts edges by the out-degree of their source and the in-degree of their target (the
"joint degree matrix" of directed 2K construction, Tillman et al., KDD 2017); the DCM counts
nodes by their own (out-degree, in-degree) pair. Both are stored sparse, as
``scipy.sparse.coo_array`` of shape ``(max out-degree + 1, max in-degree + 1)`` holding only
non-zero entries: on real graphs they have far fewer entries than the graph has edges.

Their marginals are the degree distributions, and they are consistent:

.. math::
    \sum_l \mathrm{DCM}_{k,l} = N^{out}_k, \quad \sum_k \mathrm{DCM}_{k,l} = N^{in}_l, \quad
    \sum_l \mathrm{JDM}_{k,l} = k\,N^{out}_k, \quad \sum_k \mathrm{JDM}_{k,l} = l\,N^{in}_l,

with :math:`N^{out}_k` (:math:`N^{in}_l`) the number of nodes of out-degree :math:`k`
(in-degree :math:`l`).

Input rule: the matrices are defined for simple directed graphs, so :func:`simple_directed`
drops self-loops and merges parallel edges (an edge :math:`u \to v` counts once however often
it is listed) before anything is counted. Isolated nodes are kept: they are DCM entry
:math:`(0, 0)`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


def simple_directed(edge_index, num_nodes: int) -> np.ndarray:
    """``[2, E']`` int64 array: ``edge_index`` without self-loops and with parallel edges merged.

    Rows are sorted by (source, target). Raises ``ValueError`` for a malformed ``edge_index``.
    """
    ei = np.asarray(edge_index)
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {list(ei.shape)}")
    if ei.size and not np.issubdtype(ei.dtype, np.integer):
        raise ValueError(f"edge_index must hold integer node ids, got dtype {ei.dtype}")
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    ei = ei.astype(np.int64, copy=False)
    if ei.size and (ei.min() < 0 or ei.max() >= num_nodes):
        raise ValueError(f"edge_index has node ids outside [0, {num_nodes}): "
                         f"min {ei.min()}, max {ei.max()}")
    ei = ei[:, ei[0] != ei[1]]
    codes = np.unique(ei[0] * max(num_nodes, 1) + ei[1])
    return np.stack([codes // max(num_nodes, 1), codes % max(num_nodes, 1)])


def _count(rows: np.ndarray, cols: np.ndarray, shape) -> sparse.coo_array:
    m = sparse.coo_array((np.ones(rows.size, dtype=np.int64), (rows, cols)), shape=shape)
    m.sum_duplicates()  # sorted (row, col) entries, each once
    return m


@dataclass(frozen=True)
class DegreeMatrices:
    """JDM and DCM of one simple directed graph, with the per-node degrees they came from.

    Attributes:
        jdm: ``JDM[k, l]``, edges from out-degree-``k`` sources to in-degree-``l`` targets.
        dcm: ``DCM[k, l]``, nodes with out-degree ``k`` and in-degree ``l``.
        out_degree, in_degree: ``[N]`` int64 degrees of the simple graph.
    """

    jdm: sparse.coo_array
    dcm: sparse.coo_array
    out_degree: np.ndarray
    in_degree: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.out_degree.size)

    @property
    def num_edges(self) -> int:
        return int(self.out_degree.sum())

    def out_counts(self) -> np.ndarray:
        """``N^out``: ``out_counts()[k]`` nodes have out-degree ``k``."""
        return np.bincount(self.out_degree, minlength=self.dcm.shape[0])

    def in_counts(self) -> np.ndarray:
        """``N^in``: ``in_counts()[l]`` nodes have in-degree ``l``."""
        return np.bincount(self.in_degree, minlength=self.dcm.shape[1])


def degree_matrices(edge_index, num_nodes: int) -> DegreeMatrices:
    """JDM and DCM of the simple directed graph of ``edge_index`` (see the module's input rule).

    Args:
        edge_index: ``[2, E]`` integer array or tensor, edges ``source -> target``.
        num_nodes: number of nodes ``N`` (nodes without edges count).
    """
    ei = simple_directed(edge_index, num_nodes)
    out_deg = np.bincount(ei[0], minlength=num_nodes).astype(np.int64)
    in_deg = np.bincount(ei[1], minlength=num_nodes).astype(np.int64)
    shape = (int(out_deg.max(initial=0)) + 1, int(in_deg.max(initial=0)) + 1)
    return DegreeMatrices(jdm=_count(out_deg[ei[0]], in_deg[ei[1]], shape),
                          dcm=_count(out_deg, in_deg, shape), out_degree=out_deg,
                          in_degree=in_deg)
