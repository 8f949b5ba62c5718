r"""Subgraph samplers of a directed graph: random node, random edge, random walk, forest fire.

Each draws ``N' = round(ratio * N)`` nodes of the original's simple directed graph
(:func:`~graphlab.sampling.degree_matrices.simple_directed`) and returns the sample's edges
relabelled to ``0..N'-1`` together with the original ids of its nodes. These are the classic
samplers compared by Leskovec & Faloutsos, "Sampling from Large Graphs" (KDD 2006); they are
written here because ``littleballoffur``, the library that collects them, pins
``pandas < 2.0`` (graphlab needs ``pandas >= 2``) and samples undirected graphs.

* **random node**: ``N'`` nodes uniformly without replacement; the induced subgraph.
* **random edge**: edges uniformly without replacement, each kept if its new endpoints still
  fit into ``N'`` nodes, until ``N'`` nodes are covered; the sampled edges only (not the
  induced subgraph). Nodes without edges cannot be reached this way: if the edges cover fewer
  than ``N'`` nodes, the rest are drawn uniformly from the uncovered ones.
* **random walk**: a walk along out-edges from a uniformly random node, returning to its start
  with probability ``restart = 0.15`` each step; at a node without out-edges, or after
  ``100 N'`` steps that found no new node, it starts again from a new uniformly random
  unvisited node; the induced subgraph of the visited nodes.
* **forest fire**: from a uniformly random unburnt node, burn :math:`x \sim
  \mathrm{Geom}(1 - p_f) - 1` (mean :math:`p_f / (1 - p_f)`) unburnt out-neighbours and
  :math:`y \sim \mathrm{Geom}(1 - r_b p_f) - 1` unburnt in-neighbours, chosen uniformly, and
  recurse breadth-first; when the fire dies, restart from a new unburnt node; stop at ``N'``
  nodes; the induced subgraph. :math:`p_f = 0.7` (Leskovec & Faloutsos' best setting) and a
  backward burning ratio :math:`r_b = 0.2`.

All are seeded (``numpy.random.default_rng(seed)``) and deterministic per seed.
"""
from __future__ import annotations

from collections import deque
from typing import Tuple

import numpy as np
from scipy import sparse

RESTART = 0.15
FORWARD_BURN = 0.7
BACKWARD_RATIO = 0.2


def _csr(ei: np.ndarray, n: int) -> sparse.csr_array:
    return sparse.csr_array((np.ones(ei.shape[1], dtype=np.int8), (ei[0], ei[1])), shape=(n, n))


def induced(ei: np.ndarray, n: int, nodes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Edges of the subgraph induced by ``nodes`` (relabelled in the order given), and ``nodes``."""
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[nodes] = np.arange(nodes.size)
    keep = (new_id[ei[0]] >= 0) & (new_id[ei[1]] >= 0)
    return np.stack([new_id[ei[0][keep]], new_id[ei[1][keep]]]), nodes


def random_node(ei: np.ndarray, n: int, n_new: int, rng: np.random.Generator):
    return induced(ei, n, np.sort(rng.choice(n, size=n_new, replace=False)))


def random_edge(ei: np.ndarray, n: int, n_new: int, rng: np.random.Generator):
    order = rng.permutation(ei.shape[1])
    seen = np.zeros(n, dtype=bool)
    nodes, kept = [], []
    for e in order.tolist():
        if len(nodes) == n_new:
            break
        u, v = int(ei[0, e]), int(ei[1, e])
        new = [x for x in (u, v) if not seen[x]]   # no self-loops in a simple graph
        if len(nodes) + len(new) > n_new:
            continue
        for x in new:
            seen[x] = True
            nodes.append(x)
        kept.append(e)
    if len(nodes) < n_new:
        rest = np.flatnonzero(~seen)
        nodes.extend(rng.choice(rest, size=n_new - len(nodes), replace=False).tolist())
    nodes = np.array(nodes, dtype=np.int64)
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[nodes] = np.arange(nodes.size)
    sub = ei[:, np.array(kept, dtype=np.int64)]
    return np.stack([new_id[sub[0]], new_id[sub[1]]]).reshape(2, -1), nodes


def random_walk(ei: np.ndarray, n: int, n_new: int, rng: np.random.Generator):
    A = _csr(ei, n)
    ptr, idx = A.indptr, A.indices
    seen = np.zeros(n, dtype=bool)
    nodes = []

    def fresh() -> int:
        rest = np.flatnonzero(~seen)
        return int(rest[rng.integers(rest.size)])
    start = cur = fresh()
    seen[cur] = True
    nodes.append(cur)
    stale = 0
    while len(nodes) < n_new:
        lo, hi = ptr[cur], ptr[cur + 1]
        if hi == lo or stale > 100 * n_new:
            start = cur = fresh()
            stale = 0
        elif rng.random() < RESTART:
            cur = start
        else:
            cur = int(idx[lo + rng.integers(hi - lo)])
        if not seen[cur]:
            seen[cur] = True
            nodes.append(cur)
            stale = 0
        else:
            stale += 1
    return induced(ei, n, np.array(nodes, dtype=np.int64))


def forest_fire(ei: np.ndarray, n: int, n_new: int, rng: np.random.Generator):
    out_A = _csr(ei, n)
    in_A = _csr(ei[::-1], n)
    burnt = np.zeros(n, dtype=bool)
    nodes = []
    while len(nodes) < n_new:
        rest = np.flatnonzero(~burnt)
        seed_node = int(rest[rng.integers(rest.size)])
        burnt[seed_node] = True
        nodes.append(seed_node)
        queue = deque([seed_node])
        while queue and len(nodes) < n_new:
            u = queue.popleft()
            for A, p in ((out_A, FORWARD_BURN), (in_A, BACKWARD_RATIO * FORWARD_BURN)):
                nb = A.indices[A.indptr[u]:A.indptr[u + 1]]
                nb = nb[~burnt[nb]]
                x = min(int(rng.geometric(1 - p)) - 1, nb.size)
                for v in rng.choice(nb, size=x, replace=False).tolist() if x else ():
                    if len(nodes) == n_new:
                        break
                    burnt[v] = True
                    nodes.append(v)
                    queue.append(v)
    return induced(ei, n, np.array(nodes, dtype=np.int64))


SAMPLERS = {"random_node": random_node, "random_edge": random_edge,
            "random_walk": random_walk, "forest_fire": forest_fire}
