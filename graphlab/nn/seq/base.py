"""The sequence-core protocol shared by every core in :mod:`graphlab.nn.seq`.

A core maps token sequences ``x [B, L, D]`` to ``[B, L, D]``. Sequences are right-padded and
``mask [B, L]`` (``True`` = real token) says where each one ends; every core is causal, so the
output at position ``t`` depends on positions ``<= t`` of the same sequence only. Padded inputs
are replaced by zeros before any arithmetic (``torch.where``, so NaN/inf in pads never reach a
real output and pads receive exactly zero gradient), and padded outputs are zero.

For recurrent inference a core also offers ``init_state(batch_size)`` and
``step(x_t [B, D], state) -> (y_t [B, D], state)``; iterating ``step`` over ``L`` equals
``forward``.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import Tensor, nn
import torch.nn.functional as F


class SequenceCore(nn.Module):
    """Base class of graphlab's sequence cores (see module docstring for the contract).

    Subclasses implement :meth:`_forward` (on inputs whose pads are already zero),
    :meth:`init_state` and :meth:`step`.

    Args:
        d_model (int): token width :math:`D` (input and output).

    Shapes:
        - **input:** ``x`` :math:`(B, L, D)`, ``mask`` :math:`(B, L)` bool or ``None``
        - **output:** :math:`(B, L, D)` (zero at padded positions)
    """

    def __init__(self, d_model: int):
        super().__init__()
        if not isinstance(d_model, int) or d_model <= 0:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        self.d_model = d_model

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        x, mask = check_inputs(x, mask, self.d_model, type(self).__name__)
        if mask is not None:
            x = torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
        y = self._forward(x)
        if mask is not None:
            y = torch.where(mask.unsqueeze(-1), y, torch.zeros((), dtype=y.dtype, device=y.device))
        return y

    def _forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def init_state(self, batch_size: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, x_t: Tensor, state: Any) -> Tuple[Tensor, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _param(self) -> Tensor:
        return next(self.parameters())

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={getattr(self, k)}" for k in self._repr_keys())
        return f"{type(self).__name__}({self.d_model}{', ' + extra if extra else ''})"

    def _repr_keys(self) -> tuple:
        return ()


def check_inputs(x: Tensor, mask: Optional[Tensor], d_model: int, name: str):
    """Validates ``x [B, L, D]`` and ``mask [B, L]`` (bool, right-padded) with clear errors."""
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(f"{name}: x must be a tensor of shape [B, L, D], got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if x.size(-1) != d_model:
        raise ValueError(f"{name}: x has width {x.size(-1)} but d_model={d_model}")
    if mask is None:
        return x, None
    if mask.shape != x.shape[:2]:
        raise ValueError(f"{name}: mask must have shape {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name}: mask must be a bool tensor (True = real token), got {mask.dtype}")
    if mask.size(1) > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError(f"{name}: mask must be right-padded (no real token after a pad)")
    return x, mask


def causal_depthwise_conv(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    """Causal depthwise 1-D convolution: ``x [B, L, C]``, ``weight [C, W]`` -> ``[B, L, C]``.

    Output ``t`` sees inputs ``t-W+1 .. t`` (left zero padding), so right padding never leaks.
    """
    width = weight.size(-1)
    xt = F.pad(x.transpose(1, 2), (width - 1, 0))
    return F.conv1d(xt, weight.unsqueeze(1), bias, groups=weight.size(0)).transpose(1, 2)


def conv_step(x_t: Tensor, buf: Tensor, weight: Tensor, bias: Optional[Tensor]):
    """One step of :func:`causal_depthwise_conv`; ``buf [B, C, W-1]`` holds the last inputs."""
    window = torch.cat([buf, x_t.unsqueeze(-1)], dim=-1)          # [B, C, W]
    y = (window * weight).sum(-1)
    if bias is not None:
        y = y + bias
    return y, window[..., 1:]


def reverse_within_length(x: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Reverses each sequence of ``x [B, L, ...]`` within its own length (pads stay at the end).

    Position ``t < len_b`` of sequence ``b`` receives position ``len_b - 1 - t``; the map is its
    own inverse. Without a mask it is a plain flip along ``L``.
    """
    if mask is None:
        return x.flip(1)
    L = x.size(1)
    lengths = mask.sum(1, keepdim=True)                           # [B, 1]
    t = torch.arange(L, device=x.device).unsqueeze(0)             # [1, L]
    idx = torch.where(t < lengths, lengths - 1 - t, t)            # pads map to themselves
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)
