r"""S4D's convolution kernel (Vandermonde product) and FFT convolution.

For a diagonal SSM with ZOH discretisation :math:`\bar\lambda = e^{\Delta\lambda}`,
:math:`\bar B = (\bar\lambda - 1)\lambda^{-1} B`, the output is the causal convolution
:math:`y = K * u + D u` with

.. math:: K_\ell = s\,\mathrm{Re}\Big(\sum_m C_m \bar B_m \bar\lambda_m^{\,\ell}\Big),\quad \ell = 0..L-1,

computed as one Vandermonde matrix product (no loop over :math:`\ell`), and the convolution by
zero-padded FFT in :math:`O(L \log L)`.
"""
from __future__ import annotations

import torch
from torch import Tensor


def zoh(lam: Tensor, dt: Tensor):
    r"""Zero-order hold: ``(lam_bar, (lam_bar - 1) / lam)`` for ``lam [..., M]`` and ``dt [..., 1]``."""
    lam_bar = torch.exp(dt * lam)
    return lam_bar, (lam_bar - 1.0) / lam


def vandermonde_kernel(lam: Tensor, dt: Tensor, CB: Tensor, L: int, scale: float = 2.0) -> Tensor:
    """``K [H, L]`` for ``lam, CB [H, M]`` (``CB = C * B`` before discretisation), ``dt [H, 1]``."""
    lam_bar, b_fac = zoh(lam, dt)
    ell = torch.arange(L, device=lam.device, dtype=lam.real.dtype)
    vander = torch.exp((dt * lam).unsqueeze(-1) * ell)           # [H, M, L] = lam_bar ** ell
    return scale * torch.einsum("hm,hml->hl", CB * b_fac, vander).real


def fft_causal_conv(u: Tensor, K: Tensor) -> Tensor:
    """Causal convolution ``y_t = sum_{l<=t} K_l u_{t-l}`` of ``u [B, L, H]`` with ``K [H, L]``."""
    L = u.size(1)
    n = 2 * L
    uf = torch.fft.rfft(u.transpose(1, 2), n=n)
    kf = torch.fft.rfft(K, n=n)
    return torch.fft.irfft(uf * kf, n=n)[..., :L].transpose(1, 2)
