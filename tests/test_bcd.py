"""Block coordinate descent pieces: the forest message-passing Newton solve equals a dense solve,
greedy forest blocks are forests, objectives' gradients and closed-form optimum."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graphlab.optim.bcd import Logistic, forest_solve, greedy_forest, label_propagation


def _random_forest(k, trees, rng):
    edges = [(v, rng.integers(0, v)) for v in range(1, k) if v % (k // trees) != 0]
    rows, cols = zip(*edges)
    w = sp.coo_matrix((rng.uniform(-1, 1, len(edges)), (rows, cols)), shape=(k, k))
    w = (w + w.T).tocsr()
    return w + sp.diags(np.asarray(abs(w).sum(1)).ravel() + rng.uniform(0.1, 1, k))


@pytest.mark.parametrize("k,trees,c", [(1, 1, 1), (7, 1, 1), (200, 5, 3)])
def test_forest_solve_equals_dense_solve(k, trees, c):
    rng = np.random.default_rng(k)
    h = _random_forest(k, trees, rng) if k > 1 else sp.csr_matrix([[2.0]])
    rhs = rng.normal(size=(k, c))
    np.testing.assert_allclose(forest_solve(h, rhs), np.linalg.solve(h.toarray(), rhs),
                               rtol=0, atol=1e-10)


def test_forest_solve_refuses_a_cycle():
    h = sp.csr_matrix(np.array([[3.0, 1, 1], [1, 3, 1], [1, 1, 3]]))
    with pytest.raises(ValueError, match="cycle"):
        forest_solve(h, np.ones(3))


def test_greedy_forest_keeps_a_forest_in_score_order():
    # a 4-cycle 0-1-2-3-0 plus a pendant 4 on 0: visiting 0..4 drops 3 (it would close the cycle)
    e = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [0, 4]])
    a = sp.coo_matrix((np.ones(5), (e[:, 0], e[:, 1])), shape=(5, 5))
    a = (a + a.T).tocsr()
    assert greedy_forest(a, np.arange(5)).tolist() == [0, 1, 2, 4]
    assert greedy_forest(a, np.arange(5), max_size=2).tolist() == [0, 1]


def test_label_propagation_gradient_and_closed_form_optimum():
    rng = np.random.default_rng(0)
    ei = rng.integers(0, 30, size=(2, 80))
    y = rng.integers(0, 3, 30)
    train = rng.random(30) < 0.3
    prob = label_propagation(ei, y, train, alpha=0.5, eps=0.1)
    x = rng.normal(size=(30, 3))
    eps = 1e-6
    dx = np.zeros_like(x)
    dx[4, 1] = eps
    num = (prob.value(x + dx) - prob.value(x - dx)) / (2 * eps)
    assert abs(num - prob.grad(x)[4, 1]) < 1e-6
    assert np.abs(prob.grad(prob.solution())).max() < 1e-10
    with pytest.raises(ValueError, match="eps > 0"):
        label_propagation(ei, y, train, eps=0.0)


def test_logistic_gradient_and_bound():
    rng = np.random.default_rng(1)
    a = sp.random(40, 6, density=0.5, random_state=1, format="csr")
    y = np.where(rng.random(40) < 0.5, -1.0, 1.0)
    prob = Logistic(a, y, lam=0.1)
    x = rng.normal(size=(6, 1))
    e = np.zeros_like(x)
    e[2] = 1e-6
    num = (prob.value(x + e) - prob.value(x - e)) / 2e-6
    assert abs(num - prob.grad(x)[2, 0]) < 1e-6
    block = np.array([0, 2, 5])
    gap = prob.bound(x, block) - prob.hessian(x, block)
    assert np.linalg.eigvalsh(gap).min() >= -1e-12   # M_b is an upper bound of the Hessian


from graphlab.optim.bcd import bcd  # noqa: E402


def _small_lp():
    rng = np.random.default_rng(3)
    ei = rng.integers(0, 40, size=(2, 90))
    return label_propagation(ei, rng.integers(0, 3, 40), rng.random(40) < 0.3, alpha=0.5,
                             eps=0.2)


@pytest.mark.parametrize("blocks,rules", [("fixed", ["random", "cyclic", "gs", "gsl", "gsd", "gsq"]),
                                          ("variable", ["random", "gs", "gsl", "gsd", "gsq"]),
                                          ("forest", ["random", "gs", "gsl"])])
@pytest.mark.parametrize("update", ["gradient", "newton"])
def test_every_rule_converges_to_the_closed_form_optimum(blocks, rules, update):
    prob = _small_lp()
    xstar = prob.solution()
    fstar = prob.value(xstar)
    for rule in rules:
        out = bcd(prob, rule, update, blocks, block_size=4, max_iter=20000, tol=1e-12,
                  f_star=fstar)
        assert out["converged"], (rule, update, blocks)
        assert np.abs(out["x"] - xstar).max() < 1e-4, (rule, update, blocks)


def test_gs_and_gsl_pick_what_their_definitions_say():
    # two fixed blocks via block_size; block {0} has the larger gradient, block {1} the larger
    # gradient per Lipschitz constant
    import scipy.sparse as sps
    from graphlab.optim.bcd import Quadratic
    prob = Quadratic(sps.diags([100.0, 1.0]), np.array([[20.0], [5.0]]))
    first = {r: bcd(prob, r, "gradient", "variable", block_size=1, max_iter=1)["x"]
             for r in ("gs", "gsl")}
    assert first["gs"][0, 0] != 0 and first["gs"][1, 0] == 0      # |20| > |5|
    assert first["gsl"][1, 0] != 0 and first["gsl"][0, 0] == 0    # 5^2/1 > 20^2/100


def test_bad_options_give_one_line_error():
    with pytest.raises(ValueError, match="unknown rule 'gsx'"):
        bcd(_small_lp(), "gsx")
