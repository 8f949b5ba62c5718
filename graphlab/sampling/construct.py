r"""Construct a simple directed graph with a given DCM and JDM (directed 2K construction).

Input: integer :math:`\mathrm{DCM}'` and :math:`\mathrm{JDM}'` that pass the realisability
checks of :func:`~graphlab.sampling.rescale.check_realisable`. Output: a simple directed graph
(no self-loops, no parallel edges) whose every node has exactly its target out- and in-degree,
so its DCM, its in- and out-degree distributions and its JDM equal the targets exactly.

The construction, in three vectorised steps and one repair loop:

1. **Nodes.** :math:`\mathrm{DCM}'_{k,l}` nodes get out-degree :math:`k` and in-degree
   :math:`l`; node ids are a seeded random permutation.
2. **Stub dealing.** Within an out-degree class :math:`k` (nodes in a seeded random order),
   the :math:`\sum_l \mathrm{JDM}'_{k,l} = k N'^{out}_k` out-stubs, grouped by target class
   :math:`l`, are dealt round-robin: every node receives exactly :math:`k`, and from each block
   :math:`(k, l)` either :math:`\lfloor J/N \rfloor` or :math:`\lceil J/N \rceil`. In-stubs are
   dealt the same way within in-degree classes.
3. **Pairing.** Within each block :math:`(k, l)` the out-stubs, sorted by node, are paired
   position by position with the in-stubs listed in rounds (round :math:`j` holds the block's
   in-nodes with more than :math:`j` of its stubs, those with the most first, ties in seeded
   random order). Any run of at most :math:`N'^{in}_l` consecutive in-stubs then holds no node
   twice, and a node has at most that many out-stubs in the block, so the near-regular blocks
   of step 2 pair without parallel edges. Every edge of block :math:`(k, l)` joins an
   out-degree-:math:`k` node to an in-degree-:math:`l` node, so degrees and JDM are exact;
   self-loops (a node of DCM class :math:`(k, l)` paired with itself) and, in blocks that
   are not near-regular, parallel edges can remain.
4. **Repair.** Each defective edge :math:`(v, w)` is swapped with a partner :math:`(v', w')`
   into :math:`(v, w'), (v', w)`, where the partner's source has the same out-degree as
   :math:`v` or its target the same in-degree as :math:`w`. Such a swap keeps every node's
   degrees and the JDM; it is accepted only if both new edges are new and not loops, so
   defects only decrease. Partners are tried at random (``max_swap_tries``), then every edge
   of the two pools in turn; a defect no partner fixes redraws steps 2 to 4 (``restarts``).

Guarantees. Steps 1 to 3 meet the degrees, the DCM and the JDM exactly by construction; step 4
keeps them, and the result is checked simple. When the targets are realisable a simple
realisation exists (Tillman et al., KDD 2017, prove the conditions sufficient with a
sequential construction), but the swap repair is not proven to reach one: if every restart
stalls, :func:`construct` builds the graph with NetworkX's ``directed_joint_degree_graph``
(that sequential construction) on the same nodes and records ``fallback=True``. It is
rare: in the measured runs (``configs/sampling/README.md``) it is counted, and it occurs on
small near-complete graphs.

Cost. Steps 1 to 3 are a few sorts of the :math:`M'` stubs, :math:`O(M' \log M')`; the repair
is :math:`O(\text{defects} \times \text{tries})` Python steps, and defects are few: a block's
parallel pairs grow with its density, and most blocks are sparse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from graphlab.sampling.rescale import RescaledTarget


@dataclass(frozen=True)
class Construction:
    """A constructed graph and how it was built.

    Attributes:
        edge_index: ``[2, M']`` int64 edges, sorted by (source, target).
        out_degree, in_degree: ``[N']`` target degrees of the nodes (met exactly).
        defects: self-loops and parallel edges after pairing, before the repair.
        swaps: accepted repair swaps.
        fallback: True when the repair stalled and NetworkX's construction built the graph.
    """

    edge_index: np.ndarray
    out_degree: np.ndarray
    in_degree: np.ndarray
    defects: int
    swaps: int
    fallback: bool


def target_nodes(target: RescaledTarget, rng: np.random.Generator) -> Tuple[np.ndarray,
                                                                               np.ndarray]:
    """``(out_degree, in_degree)`` per node: the DCM's classes under a random node order."""
    out_deg, in_deg = target.degree_sequences()
    perm = rng.permutation(out_deg.size)
    return out_deg[perm], in_deg[perm]


def _deal(node_class: np.ndarray, edge_class: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stub owner per edge: each class's stubs (in the given edge order) dealt round-robin.

    ``node_class[v]`` is node ``v``'s degree; ``edge_class[e]`` the degree the owner of edge
    ``e``'s stub must have, edges of one class contiguous. Nodes of a class are visited in a
    random order.
    """
    order = np.lexsort((rng.random(node_class.size), node_class))   # by class, random inside
    classes, first_node, size = np.unique(node_class[order], return_index=True,
                                          return_counts=True)
    e_cls, first_edge = np.unique(edge_class, return_index=True)
    idx = np.searchsorted(classes, e_cls)
    if np.any(classes[np.minimum(idx, classes.size - 1)] != e_cls):
        raise ValueError("JDM has edges for a degree class with no nodes")
    start = np.repeat(first_edge, np.diff(np.append(first_edge, edge_class.size)))
    cls_idx = np.repeat(idx, np.diff(np.append(first_edge, edge_class.size)))
    pos = np.arange(edge_class.size) - start
    return order[first_node[cls_idx] + pos % size[cls_idx]]


def pair_blocks(target: RescaledTarget, out_deg: np.ndarray, in_deg: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Steps 2 and 3: ``[2, M']`` edges meeting the degrees and the JDM (maybe with defects)."""
    J = target.jdm
    bk, bl, bJ = J.row.astype(np.int64), J.col.astype(np.int64), J.data.astype(np.int64)
    keep = bJ > 0
    bk, bl, bJ = bk[keep], bl[keep], bJ[keep]
    by_out = np.lexsort((bl, bk))                 # blocks ordered by (k, l)
    block_a = np.repeat(by_out, bJ[by_out])       # block of each edge, in (k, l) order
    src = _deal(out_deg, bk[block_a], rng)
    by_in = np.lexsort((bk, bl))                  # blocks ordered by (l, k)
    block_b = np.repeat(by_in, bJ[by_in])
    dst_b = _deal(in_deg, bl[block_b], rng)
    # Circulant pairing inside each block: the out-stubs sorted by node (a node's stubs are
    # consecutive), the in-stubs in rounds (round j holds the in-nodes with more than j stubs
    # in the block, those with the most first, ties in random order). A run of at most
    # |in-class| consecutive in-stubs then has no node twice, so a block whose stub counts
    # per node differ by at most one (what the dealing gives) pairs without parallel edges.
    rank = np.empty(bk.size, dtype=np.int64)
    rank[by_out] = np.arange(bk.size)
    blk = rank[block_b]
    key = rng.random(in_deg.size)
    by_node = np.lexsort((key[dst_b], dst_b, blk))
    occ = np.empty(dst_b.size, dtype=np.int64)          # occurrence index in its block
    run_start = np.r_[True, (blk[by_node][1:] != blk[by_node][:-1])
                      | (dst_b[by_node][1:] != dst_b[by_node][:-1])]
    idx = np.arange(dst_b.size)
    occ[by_node] = idx - np.maximum.accumulate(np.where(run_start, idx, 0))
    mult = np.empty(dst_b.size, dtype=np.int64)         # the node's stubs in the block
    run_id = np.cumsum(run_start) - 1
    mult[by_node] = np.bincount(run_id)[run_id]
    dst = dst_b[np.lexsort((key[dst_b], -mult, occ, blk))]
    src = src[np.lexsort((src, rank[block_a]))]
    return np.stack([src, dst])


def _repair(edges: np.ndarray, out_deg: np.ndarray, in_deg: np.ndarray,
            rng: np.random.Generator, max_tries: int) -> Tuple[int, int, bool]:
    """Step 4 in place: swap defective edges away. Returns (defects, swaps, ok)."""
    n = max(int(out_deg.size), 1)
    src, dst = edges[0], edges[1]
    codes = src * n + dst
    uniq, first, counts = np.unique(codes, return_index=True, return_counts=True)
    dup = np.ones(codes.size, dtype=bool)
    dup[first] = False
    bad = np.flatnonzero(dup | (src == dst))
    if bad.size == 0:
        return 0, 0, True
    count = dict(zip(uniq.tolist(), counts.tolist()))
    # Partner pools: edges by source out-degree (never changes: swaps keep sources) and by
    # target in-degree (a swap between pools of different in-degree moves the two edges).
    e_out = np.argsort(out_deg[src], kind="stable")
    out_cls, out_first, out_size = np.unique(out_deg[src][e_out], return_index=True,
                                             return_counts=True)
    out_slot = {int(c): (int(f), int(s)) for c, f, s in zip(out_cls, out_first, out_size)}
    in_pool = {}
    in_pos = np.empty(codes.size, dtype=np.int64)
    for e in np.argsort(in_deg[dst], kind="stable").tolist():
        pool = in_pool.setdefault(int(in_deg[dst[e]]), [])
        in_pos[e] = len(pool)
        pool.append(e)
    S, D = src.tolist(), dst.tolist()
    e_out_l = e_out.tolist()
    swaps = 0
    draws = iter(rng.random((2 * max_tries + 2) * bad.size).tolist())
    def partners(v: int, w: int):
        """``max_tries`` random partners from the two pools, then both pools in full."""
        f0, size = out_slot[int(out_deg[v])]
        pool = in_pool[int(in_deg[w])]
        for _ in range(max_tries):
            if next(draws) < 0.5:
                yield e_out_l[f0 + int(next(draws) * size)]
            else:
                yield pool[int(next(draws) * len(pool))]
        start = int(next(draws) * size)
        yield from (e_out_l[f0 + (start + i) % size] for i in range(size))
        start = int(next(draws) * len(pool))
        yield from (pool[(start + i) % len(pool)] for i in range(len(pool)))

    for e in bad.tolist():
        v, w = S[e], D[e]
        if v != w and count[v * n + w] == 1:
            continue                           # fixed by an earlier swap
        for e2 in partners(v, w):
            v2, w2 = S[e2], D[e2]
            if e2 == e or v2 == v or w2 == w or v == w2 or v2 == w:
                continue
            if count.get(v * n + w2, 0) or count.get(v2 * n + w, 0):
                continue
            for c in (v * n + w, v2 * n + w2):
                count[c] -= 1
            count[v * n + w2] = count[v2 * n + w] = 1
            D[e], D[e2] = w2, w
            lw, lw2 = int(in_deg[w]), int(in_deg[w2])
            if lw != lw2:                      # e now ends in class lw2, e2 in class lw
                i, i2 = int(in_pos[e]), int(in_pos[e2])
                in_pool[lw][i], in_pool[lw2][i2] = e2, e
                in_pos[e], in_pos[e2] = i2, i
            swaps += 1
            break
        else:
            return int(bad.size), swaps, False
    edges[1] = np.asarray(D, dtype=np.int64)
    return int(bad.size), swaps, True


def construct(target: RescaledTarget, seed: int = 0, max_swap_tries: int = 200,
              restarts: int = 10) -> Construction:
    """Build a simple directed graph with exactly the target's degrees, DCM and JDM.

    Args:
        target: a :class:`~graphlab.sampling.rescale.RescaledTarget` whose report says
            ``realisable``.
        seed: seeds every random choice (node order, dealing, pairing, repair).
        max_swap_tries: repair tries per defective edge before the pairing is redrawn.
        restarts: redrawn pairings (steps 2 to 4 again, same nodes) before falling back.

    Raises:
        ValueError: the target is not realisable (the report says which condition fails).
    """
    if not target.report.realisable:
        raise ValueError(f"target is not realisable: {target.report}")
    rng = np.random.default_rng(seed)
    out_deg, in_deg = target_nodes(target, rng)
    if target.num_edges == 0:
        return Construction(np.zeros((2, 0), np.int64), out_deg, in_deg, 0, 0, False)
    for _ in range(restarts + 1):
        edges = pair_blocks(target, out_deg, in_deg, rng)
        defects, swaps, ok = _repair(edges, out_deg, in_deg, rng, max_swap_tries)
        if ok:
            break
    else:
        edges = construct_networkx(target, out_deg, in_deg, seed)
    order = np.lexsort((edges[1], edges[0]))
    return Construction(edges[:, order], out_deg, in_deg, defects, swaps, not ok)


def construct_networkx(target: RescaledTarget, out_deg: np.ndarray, in_deg: np.ndarray,
                       seed: int = 0) -> np.ndarray:
    """``[2, M']`` edges from NetworkX's ``directed_joint_degree_graph`` (Tillman et al.).

    The nodes keep the given degrees (node ``i`` has ``out_deg[i]``, ``in_deg[i]``); the JDM
    is passed as NetworkX's ``nkk[k][l]`` dictionary.
    """
    import networkx as nx
    J = target.jdm
    nkk: dict = {}
    for k, l, c in zip(J.row.tolist(), J.col.tolist(), J.data.tolist()):
        if c:
            nkk.setdefault(int(k), {})[int(l)] = int(c)
    G = nx.directed_joint_degree_graph(in_deg.tolist(), out_deg.tolist(), nkk, seed=seed)
    e = np.array(list(G.edges()), dtype=np.int64).reshape(-1, 2).T
    return e
