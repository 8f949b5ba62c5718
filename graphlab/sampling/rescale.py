r"""Linear rescaling of the JDM and DCM to a target size, and their integrality repair.

Given the degree matrices of a directed graph with :math:`N` nodes and :math:`M` edges and a
ratio :math:`r > 0`, the target graph has :math:`N' = \mathrm{round}(rN)` nodes and, entry by
entry, the linearly rescaled matrices

.. math::
    \widetilde{\mathrm{DCM}} = \tfrac{N'}{N}\,\mathrm{DCM}, \qquad
    \widetilde{\mathrm{JDM}} = \tfrac{M'}{M}\,\mathrm{JDM},

where :math:`M' = \sum_k k\,N'^{out}_k` is the edge count the integer out-degree distribution
fixes. Rescaled entries are fractional, so they are repaired into integer matrices
:math:`\mathrm{DCM}', \mathrm{JDM}'` that a simple directed graph can have. The conditions for
that are the directed 2K realisability conditions (Tillman, Markopoulou, Butts & Gjoka,
"Construction of Directed 2K Graphs", KDD 2017): integer entries, and

.. math::
    \sum_l \mathrm{JDM}'_{k,l} = k\,N'^{out}_k, \qquad
    \sum_k \mathrm{JDM}'_{k,l} = l\,N'^{in}_l, \qquad
    \mathrm{JDM}'_{k,l} + \mathrm{DCM}'_{k,l} \le N'^{out}_k N'^{in}_l,

with :math:`N'^{out}_k = \sum_l \mathrm{DCM}'_{k,l}` and :math:`N'^{in}_l = \sum_k
\mathrm{DCM}'_{k,l}` (the bound counts the node pairs between the two classes that are not a
node paired with itself). When they hold, a simple directed graph with exactly these in- and
out-degree distributions, JDM and DCM exists; :func:`rescale` checks and reports each one.

The repair runs in three steps, each solved exactly with HiGHS (``scipy.optimize``):

1. **Degree distributions.** Integers :math:`N'^{out}, N'^{in}` summing to :math:`N'`, with
   equal stub totals :math:`\sum_k k N'^{out}_k = \sum_l l N'^{in}_l`. The number of
   degree-0 nodes on each side is chosen first: :math:`c` nodes without out-edges cap every
   in-degree at :math:`N' - c` (an in-neighbour has an out-edge), and that cap (and
   :math:`N' - 1`) decides which original degrees a sample can keep. A linear programme over
   the cumulative counts then finds the smallest KS distance :math:`t^*` (in nodes) to the
   original distributions, a second one the counts nearest the proportional
   :math:`\tfrac{N'}{N} N_k` in stub-weighted L1, :math:`\sum_k (k + 1)|N'_k - \tfrac{N'}{N}
   N_k|`, within KS :math:`t^* + \tfrac12`, and a dynamic programme rounds the cumulative
   counts to integers with equal stub totals inside the same KS bound. A degree sequence
   that then has no simple realisation (Fulkerson-Chen-Anstee, :func:`is_digraphic`) loses
   its highest degree relative to its cap, and step 1 reruns.
2. **DCM.** The integer matrix with margins :math:`N'^{out}, N'^{in}` nearest to
   :math:`\widetilde{\mathrm{DCM}}` in L1.
3. **JDM.** The integer matrix with margins :math:`k N'^{out}_k, l N'^{in}_l` and the bound
   above nearest to :math:`\widetilde{\mathrm{JDM}}` in L1.

Steps 2 and 3 are transportation problems: their constraint matrices are totally unimodular,
so the simplex vertex is integral (checked). They are solved on the original's non-zero
entries; where that has no solution, on those entries plus their images under moving a
degree class the target lacks to the nearest class it has ("widened"); and last on every pair
of the target's classes ("full"). If step 3 has no solution at all, the degree that breaks it
is banned and all steps rerun. The report says which support and how many rounds were used.

What is guaranteed. Steps 2 and 3 meet their margins exactly, so when the report says
``realisable`` the sample built from the target (:mod:`graphlab.sampling.construct`) has
exactly the target's in- and out-degree distributions, DCM and JDM. The target's degree
distributions are within KS :math:`(t^* + \tfrac12)/N'` of the original's; :math:`t^*` is 0
at ratio 1 (the target is then the original's matrices, exactly) and otherwise at least the
mass of degrees an :math:`N'`-node graph cannot hold.

Choices. The paper this follows ("Constructing and Sampling Directed Graphs with Linearly
Rescaled Degree Matrices") was read as its abstract only: it rescales the JDM and DCM
linearly, proves the in- and out-degree distributions preserved and bounds the JDM and DCM
deviations. Its full text was not reachable, so every step after the linear rescaling is
this module's own: the KS-first degree targets, the choice of degree-0 counts against the
caps, the stub-weighted L1 tie-break, L1-nearest integer matrices by linear programming, the
widening of the support, the banning of degrees that cannot be realised. The realisability
conditions are those of Tillman et al. (KDD 2017), as NetworkX's
``is_valid_directed_joint_degree`` checks them.

Shapes:
    **input:** :class:`~graphlab.sampling.degree_matrices.DegreeMatrices` of a graph with
    :math:`N` nodes; **output:** :class:`RescaledTarget` with :math:`N'` nodes, sparse
    ``(K_out, K_in)`` matrices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

import numpy as np
from scipy import optimize, sparse

from graphlab.sampling.degree_matrices import DegreeMatrices

MAX_REPAIR_ROUNDS = 50


@dataclass(frozen=True)
class Realisability:
    """What :func:`rescale` checked. ``realisable`` is True when every condition holds.

    Attributes:
        integral: every DCM'/JDM' entry is a non-negative integer.
        dcm_margins: DCM' row sums are :math:`N'^{out}`, column sums :math:`N'^{in}`.
        jdm_margins: JDM' row sums are :math:`k N'^{out}_k`, column sums :math:`l N'^{in}_l`.
        within_bounds: :math:`\\mathrm{JDM}'_{k,l} + \\mathrm{DCM}'_{k,l} \\le
            N'^{out}_k N'^{in}_l` for every entry.
        dcm_support, jdm_support: the cells the repair could use: ``'original'`` (the
            original's non-zero entries), ``'widened'`` (also their images under moving an
            empty degree class to its nearest non-empty one) or ``'full'`` (every pair).
        dropped_out, dropped_in: degrees of the original that no target node has (rounded to
            zero nodes, or impossible with ``N'`` nodes).
        rounds: times the three repair steps ran.
    """

    integral: bool
    dcm_margins: bool
    jdm_margins: bool
    within_bounds: bool
    dcm_support: str
    jdm_support: str
    dropped_out: Tuple[int, ...]
    dropped_in: Tuple[int, ...]
    rounds: int

    @property
    def realisable(self) -> bool:
        return self.integral and self.dcm_margins and self.jdm_margins and self.within_bounds

    def __str__(self) -> str:
        def cut(d):
            return f"{len(d)} ({min(d)}..{max(d)})" if d else "none"
        return (f"realisable={self.realisable} (integral={self.integral}, "
                f"DCM margins={self.dcm_margins}, JDM margins={self.jdm_margins}, "
                f"JDM+DCM<=N_out*N_in={self.within_bounds}); support DCM={self.dcm_support}, "
                f"JDM={self.jdm_support}; dropped out-degrees {cut(self.dropped_out)}, "
                f"in-degrees {cut(self.dropped_in)}; {self.rounds} round(s)")


@dataclass(frozen=True)
class RescaledTarget:
    """The integer targets of a sample and the real-valued rescaled matrices they repair.

    Attributes:
        num_nodes: :math:`N'`.
        dcm, jdm: integer ``DCM'``, ``JDM'`` (sparse, non-zero entries only).
        dcm_rescaled, jdm_rescaled: :math:`\\widetilde{\\mathrm{DCM}}`,
            :math:`\\widetilde{\\mathrm{JDM}}` (float64, the original's non-zero entries).
        report: the :class:`Realisability` checks.
    """

    num_nodes: int
    dcm: sparse.coo_array
    jdm: sparse.coo_array
    dcm_rescaled: sparse.coo_array
    jdm_rescaled: sparse.coo_array
    report: Realisability

    @property
    def num_edges(self) -> int:
        return int(self.jdm.sum())

    def out_counts(self) -> np.ndarray:
        return np.asarray(self.dcm.sum(axis=1)).ravel().astype(np.int64)

    def in_counts(self) -> np.ndarray:
        return np.asarray(self.dcm.sum(axis=0)).ravel().astype(np.int64)

    def degree_sequences(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(out_degree, in_degree)`` of the target's nodes, grouped by DCM' entry."""
        d = self.dcm
        return np.repeat(d.row, d.data).astype(np.int64), np.repeat(d.col, d.data).astype(np.int64)


# --------------------------------------------------------------------------------- step 1
@dataclass
class _Side:
    """One side (out or in) of step 1: kept degrees and what their counts are measured against."""

    degs: np.ndarray        # kept degrees, ascending, starting with 0
    want: np.ndarray        # proportional real counts s * N_k of the kept degrees
    b_first: np.ndarray     # s * C_orig at the first / last original degree in [k_i, k_{i+1})
    b_last: np.ndarray
    sign: int               # +1 out (adds stubs), -1 in


def _side(counts: np.ndarray, cap: int, banned: FrozenSet[int], scale: float, sign: int):
    """Kept degrees of one side: 0, the original's up to ``cap`` and not banned, and ``cap``
    itself when original degrees lie above it (so a tail that cannot stay can be clipped)."""
    orig = np.union1d(np.flatnonzero(counts), [0])
    kept = {0} | {k for k in orig.tolist() if 1 <= k <= cap and k not in banned}
    if 1 <= cap < orig[-1] and cap not in banned:
        kept.add(cap)
    kept = np.array(sorted(kept), dtype=np.int64)
    cum = scale * np.cumsum(counts)                  # s C_orig(d) for d < counts.size
    # the original degrees (and kept ones) that C_i covers: [k_i, k_{i+1})
    points = np.union1d(orig, kept)
    nxt = np.append(kept[1:], np.iinfo(np.int64).max)
    last = points[np.searchsorted(points, nxt, side="left") - 1]
    return _Side(kept, scale * counts[kept], cum[kept], cum[last], sign)


def _round_counts(sides, centres, n_new: int, t_allow: float, window: int):
    """Integer cumulative counts for both sides with equal stub totals, or ``None``.

    ``C_i`` (the nodes of degree at most ``k_i``) is chosen in ``[floor(a_i) - window,
    ceil(a_i) + window]`` around the real centre ``a_i``, non-decreasing, with the first
    (degree 0) and last (``N'``) fixed, and with KS error ``|C_i - s C_orig(d)| <= t_allow``
    at every original degree ``d`` it covers. The stub totals are equal, and the cost is the
    stub-weighted deviation ``sum_k (k + 1) |N'_k - s N_k|`` (what the JDM's margins then
    miss). Dynamic programme over (previous choice, stub-balance offset): the offset's range
    is ``O(window * max degree)``.
    """
    items = []    # (choices, their stub-balance shifts, chain start, degree, wanted count)
    base = 0
    for side, a in zip(sides, centres):
        n_i = side.degs.size
        for i in range(n_i):
            f = int(np.floor(a[i] + 1e-9))
            if i == 0 or i == n_i - 1:
                ch = np.array([int(round(a[i]))])
            else:
                ch = np.arange(max(f - window, 0), min(int(np.ceil(a[i] - 1e-9)) + window,
                                                       n_new) + 1)
            dev = np.maximum(ch - side.b_first[i], side.b_last[i] - ch)
            ch = ch[dev <= t_allow + 1e-9] if 0 < i < n_i - 1 else ch
            if ch.size == 0:
                return None
            # stubs = k_last N' - sum_i C_i (k_{i+1} - k_i) on each side; out minus in is 0
            w = -side.sign * (int(side.degs[i + 1] - side.degs[i]) if i < n_i - 1 else 0)
            items.append((ch, w * (ch - ch[0]), i == 0, int(side.degs[i]), side.want[i]))
            base += w * int(ch[0])
    need = -sum(side.sign * int(side.degs[-1]) for side in sides) * n_new - base
    lo = sum(min(0, int(sh.min())) for _, sh, *_ in items)
    hi = sum(max(0, int(sh.max())) for _, sh, *_ in items)
    if not lo <= need <= hi:
        return None
    R = hi - lo + 1
    cost = np.full((1, R), np.inf)
    cost[0, -lo] = 0.0
    prev = np.array([0])
    back = []
    for ch, sh, start, k, want in items:
        new = np.full((ch.size, R), np.inf)
        arg = np.zeros((ch.size, R), dtype=np.int64)
        for ci, c in enumerate(ch.tolist()):
            if start:       # a chain's first item: its count is C_0 itself
                pair = np.full(prev.size, (k + 1) * abs(c - want))
            else:
                cnt = c - prev
                pair = np.where(cnt >= 0, (k + 1) * np.abs(cnt - want), np.inf)
            tot = cost + pair[:, None]
            best = tot.argmin(0)
            val = tot[best, np.arange(R)]
            d = int(sh[ci])
            if d >= 0:
                new[ci, d:], arg[ci, d:] = val[:R - d], best[:R - d]
            else:
                new[ci, :d], arg[ci, :d] = val[-d:], best[-d:]
        back.append((ch, sh, arg))
        cost, prev = new, ch
    end = need - lo
    ci = int(cost[:, end].argmin())
    if not np.isfinite(cost[ci, end]):
        return None
    out = []
    for ch, sh, arg in reversed(back):
        out.append(int(ch[ci]))
        p = int(arg[ci, end])
        end -= int(sh[ci])
        ci = p
    return out[::-1]


def _zero_count(frac_zero: float, other: np.ndarray, n_new: int) -> int:
    """Nodes of degree 0 on one side, trading its KS error against the other side's cap.

    ``c`` nodes of out-degree 0 cap in-degrees at ``N' - c`` (an in-neighbour has an
    out-edge); the other side's nodes above that cap (``other`` is
    its count per degree) are a KS error of at least their fraction. Picks the ``c`` that
    minimises the larger of the two lower bounds, nearest to the proportional count on ties.
    """
    t = frac_zero * n_new
    tail = 1.0 - np.cumsum(other) / other.sum()          # fraction with degree > d
    c = np.arange(n_new + 1)
    cap = np.minimum(n_new - 1, n_new - c)
    tail_c = np.where(cap < 0, 1.0, tail[np.clip(cap, 0, tail.size - 1)])
    tail_c = np.where(cap >= tail.size - 1, 0.0, tail_c)
    key = np.maximum(np.abs(c - t) / n_new, tail_c)
    best = np.flatnonzero(key <= key.min() + 1e-12)
    return int(best[np.abs(best - t).argmin()])


def _edgeless(n_new: int):
    """The last resort of step 1: ``N'`` nodes of degree 0 (always realisable)."""
    return np.array([n_new], dtype=np.int64), np.array([n_new], dtype=np.int64)


def _degree_targets(n_out: np.ndarray, n_in: np.ndarray, n_new: int,
                    banned_out: FrozenSet[int], banned_in: FrozenSet[int]):
    """Step 1: integer ``N'^out``, ``N'^in`` (arrays over degrees ``0..K-1``).

    The degree-0 counts are chosen first (:func:`_zero_count`); they fix the caps
    ``N' - N'^in_0`` on out-degrees and ``N' - N'^out_0`` on in-degrees. Two linear
    programmes over the real cumulative counts of the kept degrees (the original's below the
    cap and not banned), both with equal stub totals, give the smallest KS error ``t*`` (in
    nodes) and then, within ``t* + 1/2``, the counts nearest the proportional ones in
    stub-weighted L1; :func:`_round_counts` rounds those to integers under the same constraints.
    Where none of this has a solution (a target of one or two nodes, a graph too dense for
    ``N'`` nodes), the target has no edges.
    """
    n = int(n_out.sum())
    scale = n_new / n
    zeros = (_zero_count(n_out[0] / n, n_in, n_new), _zero_count(n_in[0] / n, n_out, n_new))
    sides = [_side(n_out, min(n_new - 1, n_new - zeros[1]), banned_out, scale, +1),
             _side(n_in, min(n_new - 1, n_new - zeros[0]), banned_in, scale, -1)]
    if any(zero < n_new and side.degs.size == 1 for side, zero in zip(sides, zeros)):
        return _edgeless(n_new)
    # Variables: cumulative counts C_1..C_p of each side's kept degrees >= 1 (C_0 is the zero
    # count, C_p = N'), then the KS bound t (nodes), then L1 slacks p_i, q_i per count.
    sizes = [side.degs.size - 1 for side in sides]
    offs = [0, sizes[0]]
    nc = sum(sizes)
    it, nv = nc, 3 * nc + 1
    ub_rows, eq_rows = [], []     # (dict coef, rhs)
    lb = np.zeros(nv)
    ub = np.full(nv, np.inf)
    stub = {}
    stub_rhs = 0.0
    for side, zero, off, p, counts in zip(sides, zeros, offs, sizes, (n_out, n_in)):
        lb[off:off + p] = zero
        lb[off + p - 1] = ub[off + p - 1] = n_new
        orig = np.union1d(np.flatnonzero(counts), side.degs)
        b = scale * np.cumsum(counts)[orig]
        j = np.searchsorted(side.degs, orig, side="right") - 1   # last kept degree <= d
        for jd, bd in zip(j.tolist(), b.tolist()):              # |C_j - s C_orig(d)| <= t
            if jd == 0:
                ub_rows += [({it: -1.0}, bd - zero), ({it: -1.0}, zero - bd)]
            else:
                ub_rows += [({off + jd - 1: 1.0, it: -1.0}, bd),
                            ({off + jd - 1: -1.0, it: -1.0}, -bd)]
        for i in range(1, p + 1):
            v, prev = off + i - 1, (off + i - 2 if i > 1 else None)
            slack = it + 1 + 2 * (v)
            coef = {v: 1.0, slack: -1.0, slack + 1: 1.0}   # C_i - C_{i-1} - p + q = want
            rhs = side.want[i]
            if prev is None:
                rhs += zero
            else:
                coef[prev] = -1.0
                ub_rows.append(({prev: 1.0, v: -1.0}, 0.0))  # non-decreasing
            eq_rows.append((coef, rhs))
            k = float(side.degs[i]) * side.sign                # stubs: sum_i k_i (C_i - C_{i-1})
            stub[v] = stub.get(v, 0.0) + k
            if prev is None:
                stub_rhs += k * zero
            else:
                stub[prev] = stub.get(prev, 0.0) - k
    eq_rows.append((stub, stub_rhs))

    def assemble(rows_):
        r = [i for i, (cf, _) in enumerate(rows_) for _ in cf]
        c = [j for cf, _ in rows_ for j in cf]
        v = [x for cf, _ in rows_ for x in cf.values()]
        return (sparse.csr_array((v, (r, c)), shape=(len(rows_), nv)),
                np.array([rhs for _, rhs in rows_]))
    A_ub, b_ub = assemble(ub_rows)
    A_eq, b_eq = assemble(eq_rows)
    c1 = np.zeros(nv)
    c1[it] = 1.0
    res = optimize.linprog(c1, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq,
                           bounds=np.stack([lb, ub], 1), method="highs")
    if res.status != 0:
        return _edgeless(n_new)
    t_star = float(res.x[it])
    weight = np.concatenate([side.degs[1:] for side in sides]) + 1.0
    c2 = np.zeros(nv)
    c2[it + 1:] = np.repeat(weight, 2)
    ub[it] = t_star + 0.5
    res = optimize.linprog(c2, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq,
                           bounds=np.stack([lb, ub], 1), method="highs")
    centres = [np.concatenate([[zero], res.x[off:off + p]])
               for zero, off, p in zip(zeros, offs, sizes)]
    for c in centres:
        c[-1] = n_new
    for slack, window in ((0.5, 0), (0.5, 1), (1, 1), (2, 2), (3, 3)):
        cum = _round_counts(sides, centres, n_new, t_star + slack, window)
        if cum is not None:
            break
    else:
        return _edgeless(n_new)
    out = []
    for side, cs in zip(sides, (cum[:sizes[0] + 1], cum[sizes[0] + 1:])):
        v = np.zeros(int(side.degs[-1]) + 1, dtype=np.int64)
        v[side.degs] = np.diff(cs, prepend=0)
        out.append(v)
    return tuple(out)


# ---------------------------------------------------------------------------- steps 2, 3
def _nearest_integer_transport(row, col, target, row_sums, col_sums, upper=None):
    """Integer matrix on cells ``(row, col)`` with the given margins, nearest to ``target`` in L1.

    ``|x - t|`` is convex piecewise linear in ``x`` with kinks at ``floor(t)`` and
    ``floor(t) + 1``, so ``x = L + u + v - w`` with ``L = floor(t)``, ``u in [0, 1]`` (cost
    ``1 - 2 frac(t)``), ``v >= 0`` and ``w in [0, L]`` (cost 1 each). The margin constraints
    are a bipartite incidence matrix with repeated and negated columns: totally unimodular, so
    the simplex (HiGHS dual simplex) vertex is integral. Returns ``None`` if infeasible.
    """
    n_c = row.size
    if n_c == 0:
        return np.zeros(0, np.int64) if not (row_sums.any() or col_sums.any()) else None
    t = np.asarray(target, dtype=np.float64)
    U = np.full(n_c, np.inf) if upper is None else np.asarray(upper, dtype=np.float64)
    L = np.minimum(np.floor(t), U)   # at the bound, only w (moving down) is left
    cost = np.concatenate([1 - 2 * (t - np.floor(t)), np.ones(n_c), np.ones(n_c)])
    ub = np.concatenate([np.clip(U - L, 0, 1), np.maximum(U - L - 1, 0), L])
    R, C = row_sums.size, col_sums.size
    eq_rows = np.concatenate([row, R + col])
    A_cell = sparse.csc_array((np.ones(2 * n_c), (eq_rows, np.tile(np.arange(n_c), 2))),
                              shape=(R + C, n_c))
    A = sparse.hstack([A_cell, A_cell, -A_cell], format="csc")
    base = np.concatenate([np.bincount(row, weights=L, minlength=R),
                           np.bincount(col, weights=L, minlength=C)])
    b = np.concatenate([row_sums, col_sums]).astype(np.float64) - base
    res = optimize.linprog(cost, A_eq=A, b_eq=b, bounds=np.stack([np.zeros(3 * n_c), ub], 1),
                           method="highs-ds")
    if res.status != 0:
        return None
    z = res.x
    delta = z[:n_c] + z[n_c:2 * n_c] - z[2 * n_c:]
    x = L + np.rint(delta)
    if np.abs(delta - np.rint(delta)).max(initial=0) > 1e-6:
        raise RuntimeError("transportation LP returned a fractional vertex")
    return x.astype(np.int64)


def _nearest_kept(sums: np.ndarray) -> np.ndarray:
    """For every degree, the nearest degree whose class is non-empty in the target (ties: lower)."""
    kept = np.flatnonzero(sums > 0)
    if kept.size == 0:
        return np.zeros(sums.size, dtype=np.int64)
    d = np.arange(sums.size)
    j = np.clip(np.searchsorted(kept, d), 1, max(kept.size - 1, 1))
    lo, hi = kept[np.maximum(j - 1, 0)], kept[np.minimum(j, kept.size - 1)]
    return np.where(d - lo <= hi - d, lo, hi)


def _solve_on(cells_r, cells_c, target, row_sums, col_sums, upper_fn):
    """Steps 2/3: on the original cells, else on widened cells, else on every pair of classes.

    Widening maps each cell's row and column, where their class is empty in the target, to the
    nearest non-empty class (:func:`_nearest_kept`) and adds those cells (target 0): a degree
    class the target lacks hands its edges to its neighbour. Returns ``(rows, cols, values,
    support)`` with ``support`` in ``'original'``, ``'widened'``, ``'full'``, or ``None``.
    """
    keep = (row_sums[cells_r] > 0) & (col_sums[cells_c] > 0)
    lookup = dict(zip(zip(cells_r[keep].tolist(), cells_c[keep].tolist()),
                      target[keep].tolist()))
    nr, nc = _nearest_kept(row_sums), _nearest_kept(col_sums)
    full_r, full_c = np.meshgrid(np.flatnonzero(row_sums), np.flatnonzero(col_sums),
                                 indexing="ij")
    candidates = [
        ("original", cells_r[keep], cells_c[keep]),
        ("widened", np.concatenate([cells_r, nr[cells_r], cells_r, nr[cells_r]]),
         np.concatenate([cells_c, cells_c, nc[cells_c], nc[cells_c]])),
        ("full", full_r.ravel(), full_c.ravel())]
    for support, r, c in candidates:
        ok = (row_sums[r] > 0) & (col_sums[c] > 0)
        code = np.unique(r[ok] * col_sums.size + c[ok])
        r, c = code // col_sums.size, code % col_sums.size
        t = np.array([lookup.get(p, 0.0) for p in zip(r.tolist(), c.tolist())])
        x = _nearest_integer_transport(r, c, t, row_sums, col_sums, upper_fn(r, c))
        if x is not None:
            nz = x > 0
            return r[nz], c[nz], x[nz], support
    return None


def rescale(matrices: DegreeMatrices, ratio: float) -> RescaledTarget:
    """Rescale a graph's JDM and DCM to ``round(ratio * N)`` nodes and repair them to integers.

    Args:
        matrices: the original graph's :class:`DegreeMatrices`.
        ratio: target size as a fraction of ``N`` (``> 0``; above 1 scales up).

    Returns:
        :class:`RescaledTarget`; ``target.report`` holds the realisability checks.

    Raises:
        ValueError: ``ratio`` not positive and finite, ``round(ratio * N) < 1``, or no
            realisable target exists (the message says what failed).
    """
    ratio = float(ratio)
    if not np.isfinite(ratio) or ratio <= 0:
        raise ValueError(f"ratio must be a positive finite number, got {ratio}")
    n = matrices.num_nodes
    n_new = int(round(ratio * n))
    if n_new < 1:
        raise ValueError(f"ratio {ratio} of {n} nodes rounds to {n_new} nodes; "
                         f"a sample needs at least 1")
    n_out, n_in = matrices.out_counts(), matrices.in_counts()
    dcm, jdm = matrices.dcm, matrices.jdm
    K, L = dcm.shape
    d_r, d_c = dcm.row.astype(np.int64), dcm.col.astype(np.int64)
    j_r, j_c = jdm.row.astype(np.int64), jdm.col.astype(np.int64)
    banned_out, banned_in = frozenset(), frozenset()
    for rounds in range(1, MAX_REPAIR_ROUNDS + 1):
        degs = _degree_targets(n_out, n_in, n_new, banned_out, banned_in)
        x = np.concatenate([degs[0], np.zeros(K - degs[0].size, np.int64)])
        y = np.concatenate([degs[1], np.zeros(L - degs[1].size, np.int64)])
        d_sol = _solve_on(d_r, d_c, dcm.data * (n_new / n), x, y, lambda r, c: None)
        if d_sol is None:  # cannot happen: with every pair of classes allowed it is feasible
            raise RuntimeError("DCM repair found no solution on the full grid")
        if not is_digraphic(np.repeat(d_sol[0], d_sol[2]), np.repeat(d_sol[1], d_sol[2])):
            # Fulkerson-Chen-Anstee fails: the degrees closest to their cap are too high.
            cap_o, cap_i = max(n_new - int(y[0]), 1), max(n_new - int(x[0]), 1)
            top_o, top_i = int(np.flatnonzero(x).max()), int(np.flatnonzero(y).max())
            if top_o / cap_o >= top_i / cap_i:
                banned_out = banned_out | {top_o}
            else:
                banned_in = banned_in | {top_i}
            continue
        d_at = dict(zip(zip(d_sol[0].tolist(), d_sol[1].tolist()), d_sol[2].tolist()))
        m_new = int((np.arange(K) * x).sum())
        j_scale = m_new / max(matrices.num_edges, 1)
        row_stubs, col_stubs = np.arange(K) * x, np.arange(L) * y

        def bound(r, c):
            return x[r] * y[c] - np.array([d_at.get(p, 0) for p in zip(r.tolist(), c.tolist())],
                                          dtype=np.int64)
        if m_new == 0:
            j_sol = (np.zeros(0, np.int64),) * 3 + ("original",)
            break
        j_sol = _solve_on(j_r, j_c, jdm.data * j_scale, row_stubs, col_stubs, bound)
        if j_sol is not None:
            break
        # Step 3 is infeasible even on the full grid: exclude the degree whose stubs cannot be
        # placed (a row or column over its total bound), else the largest degrees in use.
        rr, cc = np.meshgrid(np.arange(K), np.arange(L), indexing="ij")
        cap = bound(rr.ravel(), cc.ravel()).reshape(K, L)
        bad_out = set(np.flatnonzero(row_stubs > cap.sum(1)).tolist())
        bad_in = set(np.flatnonzero(col_stubs > cap.sum(0)).tolist())
        if not bad_out and not bad_in:
            bad_out = {int(np.flatnonzero(x).max())} - {0}
            bad_in = {int(np.flatnonzero(y).max())} - {0}
        banned_out, banned_in = banned_out | bad_out, banned_in | bad_in
    else:
        raise ValueError(f"no realisable JDM for {n_new} nodes after {MAX_REPAIR_ROUNDS} rounds")
    D = sparse.coo_array((d_sol[2], (d_sol[0], d_sol[1])), shape=(K, L))
    J = sparse.coo_array((j_sol[2], (j_sol[0], j_sol[1])), shape=(K, L))
    D.sum_duplicates()
    J.sum_duplicates()
    report = check_realisable(D, J, x, y)
    report = Realisability(**{
        **report.__dict__, "dcm_support": d_sol[3], "jdm_support": j_sol[3], "rounds": rounds,
        "dropped_out": tuple(k for k in np.flatnonzero(n_out).tolist() if not x[k]),
        "dropped_in": tuple(l for l in np.flatnonzero(n_in).tolist() if not y[l])})
    return RescaledTarget(
        num_nodes=n_new, dcm=D, jdm=J,
        dcm_rescaled=sparse.coo_array((dcm.data * (n_new / n), (d_r, d_c)), shape=(K, L)),
        jdm_rescaled=sparse.coo_array((jdm.data * j_scale, (j_r, j_c)), shape=(K, L)),
        report=report)


def is_digraphic(out_degree: np.ndarray, in_degree: np.ndarray) -> bool:
    """Whether a simple directed graph with these per-node degrees exists.

    The Fulkerson-Chen-Anstee test: with nodes sorted by (out, in) non-increasing,
    :math:`\sum_i a_i = \sum_i b_i` and, for every :math:`k`,
    :math:`\sum_{i \le k} a_i \le \sum_{i \le k} \min(b_i, k-1) + \sum_{i > k}
    \min(b_i, k)`. The right side is :math:`\sum_i \min(b_i, k) - |\{i \le k : b_i \ge
    k\}|`, computed for all ``k`` in :math:`O(N \log N)`.
    """
    a = np.asarray(out_degree, dtype=np.int64)
    b = np.asarray(in_degree, dtype=np.int64)
    if a.sum() != b.sum():
        return False
    n = a.size
    if n == 0:
        return True
    order = np.lexsort((-b, -a))
    a, b = a[order], b[order]
    ks = np.arange(1, n + 1)
    # sum_i min(b_i, k) = sum_{j=1..k} #{i : b_i >= j}
    ge = np.bincount(np.minimum(b, n), minlength=n + 1)[::-1].cumsum()[::-1]  # #{b_i >= j}
    min_sum = np.cumsum(ge[1:n + 1])
    # |{i <= k : b_i >= k}|: prefix counts of b_i >= k, by sorting (k, i) events
    pos = np.arange(n)
    # for node i (0-based position) with in-degree b_i: it counts for k in [i + 1, b_i]
    lo_k, hi_k = pos + 1, np.minimum(b, n)
    valid = lo_k <= hi_k
    diff = np.zeros(n + 2, dtype=np.int64)
    np.add.at(diff, lo_k[valid], 1)
    np.add.at(diff, hi_k[valid] + 1, -1)
    count = np.cumsum(diff)[1:n + 1]
    return bool(np.all(np.cumsum(a) <= min_sum - count))


def check_realisable(dcm: sparse.coo_array, jdm: sparse.coo_array,
                     out_counts: Optional[np.ndarray] = None,
                     in_counts: Optional[np.ndarray] = None) -> Realisability:
    """The directed 2K realisability conditions of (``dcm``, ``jdm``), as in the module docstring.

    With ``out_counts`` / ``in_counts`` (``N'^out``, ``N'^in``) the DCM's margins are checked
    against them too. Integer-valued float entries count as integral.
    """
    K = max(dcm.shape[0], jdm.shape[0])
    L = max(dcm.shape[1], jdm.shape[1])
    D = sparse.coo_array((dcm.data, (dcm.row, dcm.col)), shape=(K, L)).tocsr()
    J = sparse.coo_array((jdm.data, (jdm.row, jdm.col)), shape=(K, L)).tocoo()
    J.sum_duplicates()
    integral = bool(np.all(D.data >= 0) and np.all(J.data >= 0)
                    and np.all(np.mod(D.data, 1) == 0) and np.all(np.mod(J.data, 1) == 0))
    x = np.asarray(D.sum(axis=1)).ravel()
    y = np.asarray(D.sum(axis=0)).ravel()
    dcm_margins = True
    for given, got in ((out_counts, x), (in_counts, y)):
        if given is not None:
            g = np.zeros(max(len(given), got.size))
            g[:len(given)] = given
            h = np.zeros_like(g)
            h[:got.size] = got
            dcm_margins &= bool(np.array_equal(g, h))
    jr = np.bincount(J.row, weights=J.data, minlength=K)
    jc = np.bincount(J.col, weights=J.data, minlength=L)
    margins = bool(np.array_equal(jr, np.arange(K) * x) and np.array_equal(jc, np.arange(L) * y))
    d_at = np.asarray(D[J.row, J.col]).ravel() if J.nnz else np.zeros(0)
    bounds = bool(np.all(J.data + d_at <= x[J.row] * y[J.col]))
    return Realisability(integral=integral, dcm_margins=dcm_margins, jdm_margins=margins,
                         within_bounds=bounds, dcm_support="original", jdm_support="original",
                         dropped_out=(), dropped_in=(), rounds=0)
