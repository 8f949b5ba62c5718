r"""Block coordinate descent with the selection rules and updates of Nutini, Laradji & Schmidt
(JMLR 2022, Sec. 2-5).

Selection over ``blocks="fixed"`` (a seeded partition into blocks of ``block_size``) scores each
block :math:`b` with the gradient :math:`g_b`:

* ``random``, ``cyclic``;
* ``gs``: :math:`\|g_b\|^2`; ``gsl``: :math:`\|g_b\|^2 / L_b`, :math:`L_b = \lambda_{\max}(M_b)`;
* ``gsd``: :math:`\sum_{i \in b} \|g_i\|^2 / (|b| L_i)` (the diagonal bound
  :math:`M_b \preceq |b| \operatorname{diag}(L_i)`);
* ``gsq``: :math:`g_b^\top M_b^{-1} g_b` (the progress bound of the matrix update).

``blocks="variable"`` takes the ``block_size`` variables of largest :math:`\|g_i\|^2` (``gs``) or
:math:`\|g_i\|^2 / L_i` (``gsl``, ``gsd``: the same order), and for ``gsq`` grows the block
greedily by the largest Schur-complement gain among the ``2 * block_size`` best by ``gsl``.
``blocks="forest"`` keeps, in ``gs`` / ``gsl`` / ``random`` order, the largest forest of the
dependency graph (:func:`graphlab.optim.bcd.tree.greedy_forest`).

Updates: ``gradient``, :math:`x_b \leftarrow x_b - g_b / L_b`; ``newton``,
:math:`x_b \leftarrow x_b - H_b^{-1} g_b` (dense solve, or message passing on forest blocks).
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

import numpy as np

from graphlab.optim.bcd.tree import forest_solve, greedy_forest

__all__ = ["bcd", "RULES", "UPDATES"]

RULES = ("random", "cyclic", "gs", "gsl", "gsd", "gsq")
UPDATES = ("gradient", "newton")
BLOCKS = ("fixed", "variable", "forest")


def _check(rule, update, blocks, block_size):
    if rule not in RULES:
        raise ValueError(f"bcd: unknown rule {rule!r}; choose from {', '.join(RULES)}")
    if update not in UPDATES:
        raise ValueError(f"bcd: unknown update {update!r}; choose from {', '.join(UPDATES)}")
    if blocks not in BLOCKS:
        raise ValueError(f"bcd: unknown blocks {blocks!r}; choose from {', '.join(BLOCKS)}")
    if blocks != "fixed" and rule == "cyclic":
        raise ValueError("bcd: the cyclic rule needs fixed blocks")
    if blocks == "forest" and rule not in ("random", "gs", "gsl"):
        raise ValueError("bcd: forest blocks take the random, gs or gsl rule")
    if int(block_size) < 1:
        raise ValueError(f"bcd: block_size must be >= 1, got {block_size}")


def _lmax(m):
    return float(np.linalg.eigvalsh(m)[-1])


def _variable_gsq(prob, x, g, size):
    score = (g * g).sum(1) / prob.lipschitz
    pool = np.argsort(-score)[:2 * size]
    m = prob.bound(x, pool)
    gp = g[pool]
    chosen = []
    for _ in range(min(size, len(pool))):
        if chosen:
            s = np.array(chosen)
            minv = np.linalg.inv(m[np.ix_(s, s)])
            cross = m[:, s] @ minv                     # (pool, |S|)
            resid = gp - cross @ gp[s]
            schur = np.diag(m) - np.einsum("ij,ij->i", cross, m[:, s])
        else:
            resid, schur = gp, np.diag(m).copy()
        gain = (resid * resid).sum(1) / np.maximum(schur, 1e-300)
        gain[chosen] = -np.inf
        chosen.append(int(np.argmax(gain)))
    return np.sort(pool[chosen])


def bcd(prob, rule: str = "gsl", update: str = "newton", blocks: str = "fixed",
        block_size: int = 5, max_iter: int = 10000, tol: float = 1e-6,
        f_star: Optional[float] = None, seed: int = 0, max_time: Optional[float] = None
        ) -> Dict[str, Any]:
    """Minimise ``prob`` from ``prob.init()``; stops when ``(f - f*) / (f_0 - f*) <= tol``
    (with ``f_star``), after ``max_iter`` iterations or ``max_time`` seconds. Returns ``x``,
    ``iterations``, ``converged``, ``seconds`` and the ``history`` of relative errors."""
    _check(rule, update, blocks, block_size)
    rng = np.random.default_rng(seed)
    x = prob.init()
    g = prob.grad(x)
    n = prob.n
    f0 = prob.value(x)
    parts = np.array_split(rng.permutation(n), max(1, n // block_size)) \
        if blocks == "fixed" else None
    if parts is not None:
        parts = [np.sort(p) for p in parts]
        bounds = [prob.bound(x, p) for p in parts]
        lb = np.array([_lmax(m) for m in bounds])
        minv = [np.linalg.inv(m) for m in bounds] if rule == "gsq" else None
    history, start, converged, k = [], time.perf_counter(), False, 0
    for k in range(1, max_iter + 1):
        sq = (g * g).sum(1)
        if parts is not None:
            if rule == "random":
                j = int(rng.integers(len(parts)))
            elif rule == "cyclic":
                j = (k - 1) % len(parts)
            else:
                per = np.array([sq[p].sum() for p in parts]) if rule in ("gs", "gsl") else None
                if rule == "gs":
                    scores = per
                elif rule == "gsl":
                    scores = per / lb
                elif rule == "gsd":
                    scores = np.array([(sq[p] / (len(p) * prob.lipschitz[p])).sum()
                                       for p in parts])
                else:
                    scores = np.array([np.sum(g[p] * (mi @ g[p])) for p, mi in zip(parts, minv)])
                j = int(np.argmax(scores))
            block = parts[j]
            lip = lb[j]
        else:
            if blocks == "variable":
                if rule == "gsq":
                    block = _variable_gsq(prob, x, g, block_size)
                else:
                    score = sq if rule == "gs" else sq / prob.lipschitz
                    if rule == "random":
                        score = rng.random(n)
                    block = np.sort(np.argsort(-score)[:block_size])
            else:
                score = {"random": rng.random(n), "gs": sq, "gsl": sq / prob.lipschitz}[rule]
                block = greedy_forest(prob.dependency, np.argsort(-score))
            lip = None
        if update == "gradient":
            lip = lip if lip is not None else _lmax(prob.bound(x, block)) if blocks != "forest" \
                else None
            if lip is None:   # a forest block's L_b by its Gershgorin bound
                sub = prob.a[block][:, block]
                lip = float(np.abs(sub).sum(1).max())
            delta = -g[block] / lip
        elif blocks == "forest":
            delta = -forest_solve(prob.a[block][:, block], g[block])
        else:
            delta = -np.linalg.solve(prob.hessian(x, block), g[block])
        x[block] += delta
        g = prob.update_grad(g, x, block, delta)
        if f_star is not None:
            rel = (prob.value(x) - f_star) / max(f0 - f_star, 1e-300)
            history.append(rel)
            if rel <= tol:
                converged = True
                break
        if max_time is not None and time.perf_counter() - start > max_time:
            break
    return {"x": x, "iterations": k, "converged": converged,
            "seconds": time.perf_counter() - start, "history": history}
