"""S4D and S4-PTD: one diagonal SISO state space per channel, evaluated as a causal convolution
with a Vandermonde kernel through the FFT (the ``S4D`` core, and ``S4PTD`` with the
perturb-then-diagonalise init).

:func:`s4d_eigenvalues` gives the S4D-Lin / S4D-Inv / S4D-LegS diagonals; the kernel's
step-by-step twin is :mod:`graphlab.nn.seq.ssm.naive`.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn.seq.base import SequenceCore
from graphlab.nn.seq.ssm.hippo import (eig_unit, hippo_legs, hippo_legs_normal, ptd_diagonalize,
                                       stable_eigenvalues)
from graphlab.nn.seq.ssm.kernel import fft_causal_conv, vandermonde_kernel, zoh
from graphlab.registry import register_seq_core

S4D_INITS = ("lin", "inv", "legs", "ptd")


def s4d_eigenvalues(N: int, init: str) -> np.ndarray:
    r"""S4D-Lin :math:`-\tfrac12 + i\pi n` or S4D-Inv :math:`-\tfrac12 + i\frac{N}{\pi}(\frac{N}{2n+1}-1)`,
    :math:`n = 0..N/2-1` (one of each conjugate pair)."""
    n = np.arange(N // 2)
    if init == "lin":
        return -0.5 + 1j * np.pi * n
    if init == "inv":
        return -0.5 + 1j * (N / np.pi) * (N / (2 * n + 1) - 1)
    raise ValueError(f"unknown S4D init '{init}'; choose from lin, inv (legs: see S4D._init_modes)")


@register_seq_core("s4d")
class S4D(SequenceCore):
    r"""Diagonal state-space core from `"On the Parameterization and Initialization of Diagonal State
    Space Models" <https://arxiv.org/abs/2206.11893>`_ (Gu, Gupta, Goel, Ré; NeurIPS 2022).

    One single-input single-output diagonal SSM per channel :math:`h`, discretised by zero-order
    hold, evaluated as a causal convolution with a Vandermonde kernel through the FFT:

    .. math::
        \bar\lambda = e^{\Delta\lambda},\quad \bar B = (\bar\lambda - 1)\lambda^{-1} B,\quad
        K_\ell = s\,\mathrm{Re}\textstyle\sum_m C_m \bar B_m \bar\lambda_m^{\ell},\quad
        y = K * u + D u,

    followed by :math:`\mathrm{GLU}(W\,\mathrm{GELU}(y))` as in S4D's block. Only one eigenvalue of
    each conjugate pair is kept (:math:`s = 2`). Inits: ``'lin'`` (S4D-Lin), ``'inv'`` (S4D-Inv) and
    ``'legs'`` (S4D-LegS: the normal part :math:`A + PP^\top = V\Lambda V^*` of HiPPO-LegS,
    :math:`\lambda = \Lambda`, :math:`B = V^* B_{LegS}`, :math:`C = C_0 V`, the diagonal init whose
    transfer function Yu et al. (ICLR 2024, section 3) show converges to HiPPO's only weakly);
    :class:`S4PTD` uses the perturb-then-diagonalize HiPPO-LegS. :math:`\log\Delta \sim
    U[\log \Delta_{min}, \log \Delta_{max}]`, :math:`\mathrm{Re}\,\lambda = -\exp(\cdot)` stays negative.

    Args:
        d_model (int): token width :math:`D` (= number of SSM channels).
        d_state (int): state size :math:`N` (``N/2`` complex modes with ``s = 2``). (default: ``64``)
        init (str): ``'lin'``, ``'inv'`` or ``'legs'``. (default: ``'inv'``)
        dt_min (float): smallest initial step. (default: ``1e-3``)
        dt_max (float): largest initial step. (default: ``1e-1``)

    Shapes:
        - **input:** ``x`` :math:`(B, L, D)`, ``mask`` :math:`(B, L)` or ``None``
        - **output:** :math:`(B, L, D)`
    """

    _scale = 2.0

    def __init__(self, d_model: int, d_state: int = 64, init: str = "inv",
                 dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__(d_model)
        if init not in S4D_INITS:
            raise ValueError(f"S4D: unknown init '{init}'; choose from {', '.join(S4D_INITS)}")
        if d_state < 2:
            raise ValueError(f"S4D: d_state must be >= 2, got {d_state}")
        if init == "legs" and d_state % 2:
            raise ValueError(f"S4D: init='legs' needs an even d_state (conjugate pairs), got {d_state}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"S4D: need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        self.d_state, self.init, self.dt_min, self.dt_max = d_state, init, dt_min, dt_max
        M = self._num_modes()
        H = d_model
        self.log_dt = nn.Parameter(torch.empty(H))
        self.log_neg_re = nn.Parameter(torch.empty(H, M))
        self.im = nn.Parameter(torch.empty(H, M))
        self.B = nn.Parameter(torch.empty(H, M, 2))     # complex as real pairs
        self.C = nn.Parameter(torch.empty(H, M, 2))
        self.D = nn.Parameter(torch.empty(H))
        self.out_linear = nn.Linear(H, 2 * H)
        self.reset_parameters()

    def _num_modes(self) -> int:
        return self.d_state // 2

    def _init_modes(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lambda [M], B [M], V [N, M] or None)``: eigenvalues, input vector, basis for C."""
        if self.init == "legs":  # one of each conjugate pair of the normal part's eigensystem
            w, V = eig_unit(hippo_legs_normal(self.d_state))
            keep = w.imag > 0
            _, b = hippo_legs(self.d_state)
            return w[keep], np.linalg.solve(V, b)[keep], V[:, keep]
        lam = s4d_eigenvalues(self.d_state, self.init)
        return lam, np.ones_like(lam), None

    def reset_parameters(self) -> None:
        H, M = self.d_model, self._num_modes()
        lam, b, V = self._init_modes()
        with torch.no_grad():
            self.log_dt.copy_(torch.rand(H) * (math.log(self.dt_max) - math.log(self.dt_min))
                              + math.log(self.dt_min))
            self.log_neg_re.copy_(torch.as_tensor(np.log(-lam.real)).expand(H, M))
            self.im.copy_(torch.as_tensor(lam.imag).expand(H, M))
            self.B.copy_(torch.view_as_real(torch.as_tensor(b, dtype=torch.complex128)).expand(H, M, 2))
            if V is None:  # S4D: C ~ CN(0, 1)
                c = torch.randn(H, M, 2) * math.sqrt(0.5)
            else:          # LegS / PTD: C = C_0 V with C_0 ~ N(0, 1) real
                c0 = torch.randn(H, V.shape[0], dtype=torch.float64)
                c = torch.view_as_real(c0.to(torch.complex128) @ torch.as_tensor(V))
            self.C.copy_(c)
            self.D.normal_()
        self.out_linear.reset_parameters()

    def _repr_keys(self):
        return ("d_state", "init")

    def _modes(self):
        lam = torch.complex(-torch.exp(self.log_neg_re), self.im)
        CB = torch.view_as_complex(self.C) * torch.view_as_complex(self.B)
        return lam, CB, torch.exp(self.log_dt).unsqueeze(-1)

    def kernel(self, L: int) -> Tensor:
        """The convolution kernel ``K [D, L]``."""
        lam, CB, dt = self._modes()
        return vandermonde_kernel(lam, dt, CB, L, self._scale)

    def _output(self, y: Tensor) -> Tensor:
        return F.glu(self.out_linear(F.gelu(y)), dim=-1)

    def _forward(self, x: Tensor) -> Tensor:
        K = self.kernel(x.size(1)).to(x.dtype)
        return self._output(fft_causal_conv(x, K) + self.D * x)

    def init_state(self, batch_size: int) -> Tensor:
        lam, _, _ = self._modes()
        return torch.zeros(batch_size, *lam.shape, dtype=lam.dtype, device=lam.device)

    def step(self, x_t: Tensor, state: Tensor) -> Tuple[Tensor, Tensor]:
        lam, CB, dt = self._modes()
        lam_bar, b_fac = zoh(lam, dt)
        state = lam_bar * state + x_t.unsqueeze(-1)
        y = self._scale * (state * CB * b_fac).sum(-1).real.to(x_t.dtype) + self.D * x_t
        return self._output(y), state


@register_seq_core("s4ptd")
class S4PTD(S4D):
    r"""S4-PTD from `"Robustifying State-space Models for Long Sequences via Approximate
    Diagonalization" <https://arxiv.org/abs/2310.01698>`_ (Yu et al., ICLR 2024): the :class:`S4D`
    core initialised with the perturb-then-diagonalize HiPPO-LegS
    :math:`A + E = \tilde V\tilde\Lambda\tilde V^{-1}` (see :mod:`graphlab.nn.seq.ssm.hippo`):
    :math:`\lambda = \tilde\Lambda`, :math:`B = \tilde V^{-1} B_{LegS}`, :math:`C = C_0 \tilde V`.
    All :math:`N` eigenvalues are kept (the perturbed spectrum need not pair up exactly), so
    :math:`s = 1`; the initial transfer function is close to HiPPO-LegS's in the uniform norm.

    Args:
        d_model (int): token width :math:`D`.
        d_state (int): state size :math:`N`. (default: ``64``)
        dt_min (float): smallest initial step. (default: ``1e-3``)
        dt_max (float): largest initial step. (default: ``1e-1``)
        ptd_eps (float): radius :math:`\|E\| \le \epsilon\|A\|` of the PTD optimisation. (default: ``1e-4``)
        ptd_gamma (float): weight of :math:`\|E\|/\|A\|` in the PTD objective. (default: ``1e3``)

    Shapes:
        - **input:** ``x`` :math:`(B, L, D)`, ``mask`` :math:`(B, L)` or ``None``
        - **output:** :math:`(B, L, D)`
    """

    _scale = 1.0

    def __init__(self, d_model: int, d_state: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 ptd_eps: float = 1e-4, ptd_gamma: float = 1e3):
        self.ptd_eps, self.ptd_gamma = ptd_eps, ptd_gamma
        super().__init__(d_model, d_state, "ptd", dt_min, dt_max)

    def _num_modes(self) -> int:
        return self.d_state

    def _init_modes(self):
        w, V, Bt, _ = ptd_diagonalize(self.d_state, eps=self.ptd_eps, gamma=self.ptd_gamma)
        return stable_eigenvalues(w), Bt, V
