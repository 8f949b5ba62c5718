"""S5 and S5-PTD: one complex diagonal MIMO state space shared by all channels, run with a
chunked parallel scan (the ``S5`` core, and ``S5PTD`` with the perturb-then-diagonalise init).

The step-by-step twin is :mod:`graphlab.nn.seq.ssm.naive`; the inits live in
:mod:`graphlab.nn.seq.ssm.hippo`.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn.seq.base import SequenceCore
from graphlab.nn.seq.ssm.hippo import eig_unit, hippo_legs_normal, ptd_diagonalize, stable_eigenvalues
from graphlab.nn.seq.ssm.kernel import zoh
from graphlab.nn.seq.ssm.scan import linear_scan
from graphlab.registry import register_seq_core


@register_seq_core("s5")
class S5(SequenceCore):
    r"""Multi-input multi-output diagonal SSM from `"Simplified State Space Layers for Sequence
    Modeling" <https://arxiv.org/abs/2208.04933>`_ (Smith, Warrington, Linderman; ICLR 2023).

    One :math:`P`-dimensional complex diagonal system shared by all :math:`H = D` channels, ZOH
    discretised with a per-mode step :math:`\Delta`, run with a chunked parallel scan:

    .. math::
        \bar\Lambda = e^{\Lambda\Delta},\quad \bar B = (\bar\Lambda - I)\Lambda^{-1}\tilde B,\quad
        x_t = \bar\Lambda x_{t-1} + \bar B u_t,\quad y_t = \mathrm{Re}(\tilde C x_t) + D u_t,

    followed by :math:`\mathrm{GLU}(W\,\mathrm{GELU}(y))`. The ``'legs'`` init diagonalises the
    normal part of HiPPO-LegS (:math:`A + PP^\top = V\Lambda V^*`, exactly unitary :math:`V`):
    :math:`\tilde B = V^{-1}B_0`, :math:`\tilde C = C_0 V` with LeCun-normal real :math:`B_0, C_0`.
    :class:`S5PTD` uses the perturb-then-diagonalize HiPPO-LegS instead. All :math:`P` modes are
    kept (no conjugate halving), so the real part is exact.

    Args:
        d_model (int): token width :math:`D`.
        d_state (int): state size :math:`P`. (default: ``64``)
        dt_min (float): smallest initial step. (default: ``1e-3``)
        dt_max (float): largest initial step. (default: ``1e-1``)
        chunk_size (int): chunk length of the parallel scan. (default: ``64``)

    Shapes:
        - **input:** ``x`` :math:`(B, L, D)`, ``mask`` :math:`(B, L)` or ``None``
        - **output:** :math:`(B, L, D)`
    """

    def __init__(self, d_model: int, d_state: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 chunk_size: int = 64):
        super().__init__(d_model)
        if d_state < 1:
            raise ValueError(f"{type(self).__name__}: d_state must be >= 1, got {d_state}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"{type(self).__name__}: need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        self.d_state, self.dt_min, self.dt_max, self.chunk_size = d_state, dt_min, dt_max, chunk_size
        P, H = d_state, d_model
        self.log_dt = nn.Parameter(torch.empty(P))
        self.log_neg_re = nn.Parameter(torch.empty(P))
        self.im = nn.Parameter(torch.empty(P))
        self.B = nn.Parameter(torch.empty(P, H, 2))
        self.C = nn.Parameter(torch.empty(H, P, 2))
        self.D = nn.Parameter(torch.empty(H))
        self.out_linear = nn.Linear(H, 2 * H)
        self.reset_parameters()

    def _eigensystem(self) -> Tuple[np.ndarray, np.ndarray]:
        w, V = eig_unit(hippo_legs_normal(self.d_state))
        return stable_eigenvalues(w), V

    def reset_parameters(self) -> None:
        P, H = self.d_state, self.d_model
        w, V = self._eigensystem()
        V = torch.as_tensor(V)
        with torch.no_grad():
            self.log_dt.copy_(torch.rand(P) * (math.log(self.dt_max) - math.log(self.dt_min))
                              + math.log(self.dt_min))
            self.log_neg_re.copy_(torch.as_tensor(np.log(-w.real)))
            self.im.copy_(torch.as_tensor(w.imag))
            B0 = torch.randn(P, H, dtype=torch.float64) / math.sqrt(H)
            C0 = torch.randn(H, P, dtype=torch.float64) / math.sqrt(P)
            self.B.copy_(torch.view_as_real(torch.linalg.solve(V, B0.to(V.dtype))))
            self.C.copy_(torch.view_as_real(C0.to(V.dtype) @ V))
            self.D.normal_()
        self.out_linear.reset_parameters()

    def _repr_keys(self):
        return ("d_state",)

    def _discrete(self):
        lam = torch.complex(-torch.exp(self.log_neg_re), self.im)
        lam_bar, b_fac = zoh(lam, torch.exp(self.log_dt))
        B_bar = b_fac.unsqueeze(-1) * torch.view_as_complex(self.B)        # [P, H]
        return lam_bar, B_bar, torch.view_as_complex(self.C)

    def _output(self, y: Tensor) -> Tensor:
        return F.glu(self.out_linear(F.gelu(y)), dim=-1)

    def _forward(self, x: Tensor) -> Tensor:
        lam_bar, B_bar, C = self._discrete()
        b = x.to(B_bar.dtype) @ B_bar.T                                     # [B, L, P]
        h = linear_scan(lam_bar.expand_as(b), b, chunk_size=self.chunk_size)
        y = (h @ C.T).real.to(x.dtype) + self.D * x
        return self._output(y)

    def init_state(self, batch_size: int) -> Tensor:
        lam_bar, _, _ = self._discrete()
        return torch.zeros(batch_size, self.d_state, dtype=lam_bar.dtype, device=lam_bar.device)

    def step(self, x_t: Tensor, state: Tensor) -> Tuple[Tensor, Tensor]:
        lam_bar, B_bar, C = self._discrete()
        state = lam_bar * state + x_t.to(B_bar.dtype) @ B_bar.T
        y = (state @ C.T).real.to(x_t.dtype) + self.D * x_t
        return self._output(y), state


@register_seq_core("s5ptd")
class S5PTD(S5):
    r"""S5-PTD from `"Robustifying State-space Models for Long Sequences via Approximate
    Diagonalization" <https://arxiv.org/abs/2310.01698>`_ (Yu et al., ICLR 2024): :class:`S5` with
    :math:`\Lambda, V` from the perturb-then-diagonalize HiPPO-LegS
    :math:`A + E = \tilde V\tilde\Lambda\tilde V^{-1}` (:mod:`graphlab.nn.seq.ssm.hippo`), so
    :math:`\tilde B = \tilde V^{-1}B_0`, :math:`\tilde C = C_0\tilde V`.

    Args:
        d_model (int): token width :math:`D`.
        d_state (int): state size :math:`P`. (default: ``64``)
        dt_min (float): smallest initial step. (default: ``1e-3``)
        dt_max (float): largest initial step. (default: ``1e-1``)
        chunk_size (int): chunk length of the parallel scan. (default: ``64``)
        ptd_eps (float): radius :math:`\|E\| \le \epsilon\|A\|` of the PTD optimisation. (default: ``1e-4``)
        ptd_gamma (float): weight of :math:`\|E\|/\|A\|` in the PTD objective. (default: ``1e3``)

    Shapes:
        - **input:** ``x`` :math:`(B, L, D)`, ``mask`` :math:`(B, L)` or ``None``
        - **output:** :math:`(B, L, D)`
    """

    def __init__(self, d_model: int, d_state: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 chunk_size: int = 64, ptd_eps: float = 1e-4, ptd_gamma: float = 1e3):
        self.ptd_eps, self.ptd_gamma = ptd_eps, ptd_gamma
        super().__init__(d_model, d_state, dt_min, dt_max, chunk_size)

    def _eigensystem(self):
        w, V, _, _ = ptd_diagonalize(self.d_state, eps=self.ptd_eps, gamma=self.ptd_gamma)
        return stable_eigenvalues(w), V
