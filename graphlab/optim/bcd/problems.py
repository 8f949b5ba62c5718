r"""Objectives for block coordinate descent: what a solver needs is the value, the gradient, the
coordinate-wise Lipschitz constants :math:`L_i`, and per block a matrix upper bound
:math:`M_b \succeq \nabla^2_{bb} f` and the block Hessian. A variable is a row of ``x``
(``(n, c)``: label propagation has one row of class scores per node).

* :class:`Quadratic`: :math:`f(X) = \tfrac12 \operatorname{tr}(X^\top A X) -
  \operatorname{tr}(B^\top X)`, :math:`A` sparse symmetric positive definite;
  :math:`M_b = \nabla^2_{bb} f = A_{bb}`, and the dependency graph of the variables is the
  sparsity pattern of :math:`A`.
* :func:`label_propagation`: the Laplacian-regularised least squares of a graph,
  :math:`f(X) = \tfrac12 \sum_{i \in \text{train}} \|x_i - y_i\|^2 + \tfrac{\alpha}{2}
  \sum_{(i,j) \in E} \|x_i - x_j\|^2 + \tfrac{\varepsilon}{2} \|X\|^2`
  (:math:`A = \operatorname{diag}(\mathbb 1_\text{train}) + \alpha L + \varepsilon I`,
  :math:`L = D - W` the graph Laplacian; :math:`y_i` one-hot).
* :class:`Logistic`: sparse L2-regularised logistic regression,
  :math:`f(w) = \frac1N \sum_k \log(1 + e^{-y_k a_k^\top w}) + \frac{\lambda}{2}\|w\|^2`,
  :math:`M_b = \frac{1}{4N} A_{:b}^\top A_{:b} + \lambda I`.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["Quadratic", "Logistic", "label_propagation"]


class Quadratic:
    """``f(X) = tr(X^T A X) / 2 - tr(B^T X)`` for sparse SPD ``A`` ``(n, n)`` and ``B``
    ``(n, c)``; :meth:`solution` is the closed-form optimum ``A^{-1} B``."""

    def __init__(self, a: sp.spmatrix, b: np.ndarray):
        a = sp.csr_matrix(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if b.ndim == 1:
            b = b[:, None]
        if a.shape[0] != a.shape[1] or a.shape[0] != b.shape[0]:
            raise ValueError(f"Quadratic: expected A (n, n) and B (n, c), got {a.shape} and "
                             f"{b.shape}")
        self.a, self.b, self.n = a, b, a.shape[0]
        self.lipschitz = a.diagonal().copy()
        if np.any(self.lipschitz <= 0):
            raise ValueError("Quadratic: A must be positive definite (a diagonal entry is <= 0)")
        off = a - sp.diags(self.lipschitz)
        off.eliminate_zeros()
        self.dependency = off.tocsr()

    def init(self) -> np.ndarray:
        return np.zeros_like(self.b)

    def value(self, x: np.ndarray) -> float:
        return float(0.5 * np.sum(x * (self.a @ x)) - np.sum(self.b * x))

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.a @ x - self.b

    def update_grad(self, g: np.ndarray, x: np.ndarray, block: np.ndarray,
                    delta: np.ndarray) -> np.ndarray:
        """The gradient after ``x[block] += delta``: only the columns ``A[:, block]`` act."""
        g += self.a[:, block] @ delta
        return g

    def bound(self, x: np.ndarray, block: np.ndarray) -> np.ndarray:
        return self.a[block][:, block].toarray()

    hessian = bound

    def solution(self) -> np.ndarray:
        return sp.linalg.splu(self.a.tocsc()).solve(self.b)


def label_propagation(edge_index, y, train_mask, alpha: float = 1.0, eps: float = 1e-2,
                      num_nodes: int | None = None) -> Quadratic:
    """The Laplacian-regularised least squares of a graph (module docstring) from PyG-style
    ``edge_index`` ``(2, |E|)``, node labels ``y`` ``(n,)`` and ``train_mask`` ``(n,)``."""
    if alpha < 0 or eps <= 0:
        raise ValueError(f"label_propagation: expected alpha >= 0 and eps > 0, got {alpha}, {eps}")
    ei = np.asarray(edge_index)
    y = np.asarray(y)
    train = np.asarray(train_mask, dtype=bool)
    n = int(num_nodes if num_nodes is not None else len(y))
    keep = ei[0] != ei[1]
    w = sp.coo_matrix((np.ones(keep.sum()), (ei[0][keep], ei[1][keep])), shape=(n, n)).tocsr()
    w = ((w + w.T) > 0).astype(np.float64)
    lap = sp.diags(np.asarray(w.sum(1)).ravel()) - w
    a = sp.diags(train.astype(np.float64) + eps) + alpha * lap
    b = np.zeros((n, int(y.max()) + 1))
    b[np.flatnonzero(train), y[train]] = 1.0
    return Quadratic(a, b)


class Logistic:
    """Sparse L2-regularised logistic regression on features ``a`` ``(N, n)`` (sparse) and
    labels ``y`` in ``{-1, +1}``; the variables are the ``n`` weights (``x`` is ``(n, 1)``)."""

    def __init__(self, a: sp.spmatrix, y: np.ndarray, lam: float = 1e-2):
        if lam <= 0:
            raise ValueError(f"Logistic: expected lam > 0, got {lam}")
        self.a = sp.csc_matrix(a, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        if not np.all(np.isin(self.y, (-1.0, 1.0))):
            raise ValueError("Logistic: labels must be -1 or +1")
        self.lam, self.count, self.n = float(lam), self.a.shape[0], self.a.shape[1]
        self.lipschitz = np.asarray(self.a.multiply(self.a).sum(0)).ravel() / (4 * self.count) \
            + self.lam

    def init(self) -> np.ndarray:
        return np.zeros((self.n, 1))

    def _margins(self, x):
        return self.y * (self.a @ x[:, 0])

    def value(self, x: np.ndarray) -> float:
        return float(np.mean(np.logaddexp(0, -self._margins(x))) + 0.5 * self.lam * np.sum(x * x))

    def grad(self, x: np.ndarray) -> np.ndarray:
        s = -self.y / (1 + np.exp(self._margins(x)))
        return (self.a.T @ s)[:, None] / self.count + self.lam * x

    def update_grad(self, g, x, block, delta):
        return self.grad(x)

    def bound(self, x: np.ndarray, block: np.ndarray) -> np.ndarray:
        ab = self.a[:, block].toarray()
        return ab.T @ ab / (4 * self.count) + self.lam * np.eye(len(block))

    def hessian(self, x: np.ndarray, block: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-self._margins(x)))
        ab = self.a[:, block].toarray()
        return (ab * (p * (1 - p))[:, None]).T @ ab / self.count + self.lam * np.eye(len(block))
