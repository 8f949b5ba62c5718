r"""M-FAC: matrix-free inverse empirical Fisher preconditioning over a sliding gradient window.

Frantar, Kurtic & Alistarh, `"M-FAC: Efficient Matrix-Free Approximations of Second-Order
Information" <https://arxiv.org/abs/2107.03356>`_, NeurIPS 2021.

The empirical Fisher of the last :math:`m` gradients :math:`g_1, \dots, g_m \in \mathbb{R}^d`
(rows of :math:`G \in \mathbb{R}^{m \times d}`), damped by :math:`\lambda`,

.. math::
    F = \lambda I + \frac{1}{m} \sum_{i=1}^m g_i g_i^\top = \lambda I + \frac{1}{m} G^\top G,

is inverted by the Woodbury identity without ever forming a :math:`d \times d` matrix:

.. math::
    F^{-1} v = \frac{1}{\lambda} \Big( v - G^\top (m\lambda I_m + G G^\top)^{-1} G v \Big).

:class:`FisherInverse` keeps the window as a ring buffer :math:`G`, the Gram matrix
:math:`G G^\top` and :math:`K^{-1} = (m\lambda I + G G^\top)^{-1}`. Replacing the oldest gradient
by a new one changes one row and one column of :math:`K`, so
:math:`K^{-1}` is updated (remove row and column, add them back, by
:math:`2 \times 2` block inversion) in :math:`O(m^2)` after one :math:`O(dm)`
product :math:`G g`; a product :math:`F^{-1} v` costs :math:`Gv`, an :math:`m \times m`
product and :math:`G^\top y`: :math:`O(dm)`. Memory: :math:`G` (:math:`d m` numbers) plus two
:math:`m \times m` matrices. Before the window is full its empty rows are zero, so :math:`F`
is :math:`\lambda I` plus :math:`1/m` times the gradients seen so far (our choice).

Choices (documented because the paper leaves them open):

* The paper's dynamic algorithm updates the coefficients of its recursive Woodbury expansion
  when the window slides; here the inverse of the :math:`m \times m` matrix :math:`K` is updated
  instead (same maths and the same :math:`O(dm)` step; the small matrix costs
  :math:`O(m^2)` per slide).
* The window is float32 (or the parameters' dtype); the two :math:`m \times m` matrices are
  float64, because the Gram entries span many orders of magnitude (large early gradients,
  small late ones) next to :math:`m\lambda`, and in float32 :math:`K` is then numerically
  singular. Rounding still accumulates, so every :math:`m` updates the Gram matrix is
  recomputed from the window in float64 and :math:`K^{-1}` from it (:math:`O(dm^2 + m^3)`,
  amortised :math:`O(dm + m^2)` per step), and at once if an update's Schur complement is
  not positive.
* :class:`MFAC` preconditions the gradient of all its parameters as one vector (one window,
  as the paper's ``MFAC`` optimizer does), weight decay is added to the gradient before
  preconditioning, and momentum acts on the preconditioned direction.

Cost. Per step :math:`O(dm + m^2)` time; state :math:`4dm + 16m^2` bytes plus the momentum.
"""
from __future__ import annotations

from typing import Annotated, Iterable

import torch

from graphlab.registry import register_optimizer
from graphlab.schema import Range

__all__ = ["FisherInverse", "MFAC", "dense_fisher_inverse"]


def dense_fisher_inverse(grads: torch.Tensor, damp: float, ngrads: int) -> torch.Tensor:
    r"""The naive twin: :math:`(\lambda I + \frac{1}{m} \sum_i g_i g_i^\top)^{-1}` as a dense
    ``(d, d)`` matrix from the ``(k, d)`` window ``grads`` (``k <= m`` rows)."""
    d = grads.shape[1]
    eye = torch.eye(d, dtype=grads.dtype, device=grads.device)
    return torch.linalg.inv(damp * eye + grads.T @ grads / ngrads)


class FisherInverse:
    r"""The damped inverse empirical Fisher of a sliding window of ``ngrads`` gradients.

    Args:
        dim (int): the gradient length :math:`d`.
        ngrads (int): the window length :math:`m`.
        damp (float): the damping :math:`\lambda > 0`.
        dtype, device: of the window (the :math:`m \times m` matrices are float64).

    :meth:`update` pushes a gradient ``(d,)`` (dropping the oldest once ``ngrads`` are held);
    :meth:`mul` returns :math:`F^{-1} v` for ``v`` of shape ``(d,)``.
    """

    def __init__(self, dim: int, ngrads: int, damp: float, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        _check(ngrads, damp)
        self.ngrads, self.damp = int(ngrads), float(damp)
        self.grads = torch.zeros(ngrads, dim, dtype=dtype, device=device)
        small = torch.float64 if dtype in (torch.float32, torch.float64) else dtype
        self.gram = torch.zeros(ngrads, ngrads, dtype=small, device=device)
        self.kinv = torch.eye(ngrads, dtype=small, device=device) / (ngrads * damp)
        self.pos = 0      # next slot of the ring buffer
        self.updates = 0  # rank-2 updates since K^{-1} was last recomputed

    def update(self, g: torch.Tensor) -> None:
        m, i = self.ngrads, self.pos
        g = g.to(self.grads.dtype)
        new = (self.grads @ g).to(self.gram.dtype)
        new[i] = g @ g
        self.grads[i] = g
        self.gram[i] = new
        self.gram[:, i] = new
        self.pos = (i + 1) % m
        self.updates += 1
        if self.updates >= m:
            self._refresh()
            return
        # K = m*damp*I + G G^T changed in row and column i only: remove index i from K^{-1}
        # (Schur complement), then add it back with the new column (block inverse); both
        # O(m^2) and well posed since every principal submatrix of K is positive definite.
        kinv = self.kinv
        p = kinv - torch.outer(kinv[:, i], kinv[i]) / kinv[i, i]
        p[i] = 0
        p[:, i] = 0
        col = new.clone()
        col[i] = 0
        pk = p @ col
        schur = new[i] + m * self.damp - col @ pk
        if not schur > 0:  # rounding in the window's float32 dot products: start afresh
            self._refresh()
            return
        kinv = p + torch.outer(pk, pk) / schur
        kinv[i] = -pk / schur
        kinv[:, i] = -pk / schur
        kinv[i, i] = 1 / schur
        self.kinv = kinv

    def _refresh(self) -> None:
        m = self.ngrads
        window = self.grads.to(self.gram.dtype)
        self.gram = window @ window.T
        eye = torch.eye(m, dtype=self.gram.dtype, device=self.gram.device)
        self.kinv = torch.cholesky_inverse(torch.linalg.cholesky(m * self.damp * eye + self.gram))
        self.updates = 0

    def mul(self, v: torch.Tensor) -> torch.Tensor:
        v = v.to(self.grads.dtype)
        y = self.kinv @ (self.grads @ v).to(self.kinv.dtype)
        return (v - self.grads.T @ y.to(v.dtype)) / self.damp

    def state(self) -> dict:
        return {"grads": self.grads, "gram": self.gram, "kinv": self.kinv,
                "pos": self.pos, "updates": self.updates}

    def load(self, state: dict) -> None:
        for key in ("grads", "gram", "kinv"):
            getattr(self, key).copy_(state[key])
        self.pos, self.updates = int(state["pos"]), int(state["updates"])


def _check(ngrads: int, damp: float) -> None:
    if int(ngrads) != ngrads or ngrads < 1:
        raise ValueError(f"M-FAC: ngrads must be an integer >= 1, got {ngrads!r}")
    if not damp > 0:
        raise ValueError(f"M-FAC: damp must be > 0, got {damp!r}")


@register_optimizer("mfac")
class MFAC(torch.optim.Optimizer):
    r"""M-FAC optimizer: SGD on the direction :math:`F^{-1}(g + \text{wd}\, w)`, with :math:`F`
    the damped empirical Fisher of the last ``ngrads`` gradients (see the module docstring).

    .. math::
        u_t = F_t^{-1} (g_t + \text{wd}\, w_t), \quad b_t = \mu\, b_{t-1} + u_t, \quad
        w_{t+1} = w_t - \eta\, b_t

    Args:
        params: parameters or parameter groups (one window over all of them; ``lr`` may
            differ per group).
        lr (float): :math:`\eta` (default: ``1e-3``).
        momentum (float): :math:`\mu` (default: ``0``).
        weight_decay (float): added to the gradient before preconditioning (default: ``0``).
        ngrads (int): window length :math:`m` (default: ``1024``, the paper's).
        damp (float): :math:`\lambda` (default: ``1e-5``, the paper's).

    The window and momentum are float32 (the two :math:`m \times m` matrices float64) on the
    parameters' device; ``state_dict`` / ``load_state_dict`` resume a run exactly.
    """

    def __init__(self, params: Iterable, lr: Annotated[float, Range(ge=0)] = 1e-3,
                 momentum: Annotated[float, Range(ge=0)] = 0.0,
                 weight_decay: Annotated[float, Range(ge=0)] = 0.0,
                 ngrads: Annotated[int, Range(ge=1)] = 1024,
                 damp: Annotated[float, Range(gt=0)] = 1e-5):
        _check(ngrads, damp)
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"M-FAC: lr, momentum and weight_decay must be >= 0, got "
                             f"{lr!r}, {momentum!r}, {weight_decay!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.ngrads, self.damp = int(ngrads), float(damp)
        plist = self._params()
        device = plist[0].device
        dim = sum(p.numel() for p in plist)
        self.fisher = FisherInverse(dim, self.ngrads, self.damp, torch.float32, device)

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        parts = []
        for group in self.param_groups:
            for p in group["params"]:
                g = torch.zeros_like(p) if p.grad is None else p.grad
                if group["weight_decay"]:
                    g = g + group["weight_decay"] * p
                parts.append(g.reshape(-1).float())
        g = torch.cat(parts)
        self.fisher.update(g)
        direction = self.fisher.mul(g)
        offset = 0
        for group in self.param_groups:
            for p in group["params"]:
                n = p.numel()
                u = direction[offset:offset + n].view_as(p)
                offset += n
                if group["momentum"]:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = u.clone()
                    else:
                        buf.mul_(group["momentum"]).add_(u)
                    u = buf
                p.add_(u.to(p.dtype), alpha=-group["lr"])
        return loss

    def state_dict(self):
        sd = super().state_dict()
        sd["fisher"] = {k: (v.clone() if torch.is_tensor(v) else v)
                        for k, v in self.fisher.state().items()}
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        fisher = state_dict.pop("fisher")
        super().load_state_dict(state_dict)
        self.fisher.load(fisher)
