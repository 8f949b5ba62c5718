r"""BatchNorm that ignores padding rows, for static-shape (CUDA-graph) training.

A batch padded to a fixed size (:mod:`graphlab.data.static_batch`) carries rows that are not
data: pad nodes, pad edges and empty or pad graphs. Layers that act on each row alone do not
care, but ``BatchNorm`` takes its statistics over all rows, so padding would change the
normalisation of the real rows. :class:`MaskedBatchNorm1d` takes them over the real rows only:

.. math::
    \mu = \frac{\sum_i m_i x_i}{\sum_i m_i}, \qquad
    \sigma^2 = \frac{\sum_i m_i (x_i - \mu)^2}{\sum_i m_i}, \qquad
    y_i = \gamma \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,

with the running statistics updated as ``nn.BatchNorm1d`` does (momentum, unbiased running
variance ``sigma^2 n / (n - 1)``), so training on a padded batch equals training on the batch
without padding (within float tolerance). The mask of a call is chosen by the number of rows of
its input among those registered with :func:`padding_masks` for the current forward (node,
edge and graph rows have distinct padded sizes); outside that context, or in eval mode, the
layer is exactly ``nn.BatchNorm1d``.

Shapes:
    input ``(N, C)``, output ``(N, C)``; the mask of ``N`` rows is a bool tensor ``(N,)``.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Optional

import torch
from torch import Tensor, nn

from graphlab.nn.row_sums import row_sum as _row_sum

__all__ = ["MaskedBatchNorm1d", "padding_masks", "mask_batchnorms", "current_masks"]

_MASKS: list = []  # stack of {rows: mask} of the forwards in progress


@contextlib.contextmanager
def padding_masks(*masks: Tensor) -> Iterator[Dict[int, Tensor]]:
    """Register the row masks (bool, True = real row) of one padded forward; masks of equal
    length must be equal (a row count names one kind of row)."""
    table: Dict[int, Tensor] = {}
    for m in masks:
        if m is None:
            continue
        if m.dim() != 1 or m.dtype != torch.bool:
            raise ValueError(f"padding masks are 1-d bool tensors, got {tuple(m.shape)} "
                             f"{m.dtype}")
        n = m.numel()
        if n in table and table[n] is not m:
            raise ValueError(f"two padding masks of the same length {n}: their rows cannot be "
                             "told apart; pad node, edge and graph rows to different sizes")
        table[n] = m
    _MASKS.append(table)
    try:
        yield table
    finally:
        _MASKS.pop()


def current_masks() -> Optional[Dict[int, Tensor]]:
    return _MASKS[-1] if _MASKS else None


class _MaskedBatchNormTrain(torch.autograd.Function):
    r"""The affine training-mode normalisation with masked statistics, with a hand-written
    backward. With :math:`\hat x_i = (x_i - \mu) s`, :math:`s = (\sigma^2 + \epsilon)^{-1/2}`
    and :math:`n = \sum_i m_i`, the gradient of :math:`y_i = \gamma \hat x_i + \beta` is

    .. math::
        \nabla_\beta = \sum_i g_i, \quad \nabla_\gamma = \sum_i g_i \hat x_i, \quad
        \nabla_{x_k} = \gamma s \Big(g_k - \frac{m_k}{n}\big(\nabla_\beta
        + \hat x_k \nabla_\gamma\big)\Big),

    sums over all rows (pad rows included, as autograd's broadcast rule takes them). Both sums
    are vector-matrix products (exact float32) where autograd's version takes three column
    reductions per layer (on an H200, for 10 stacked members: ~15 µs per reduction, ~6 µs per
    product; see :mod:`graphlab.nn.row_sums`). ``generate_vmap_rule`` maps
    it over stacked ensemble members. Outputs ``(y, mean, var, inv_std, xc)``; all but ``y``
    are non-differentiable (saved intermediates, statistics for the running averages)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, w: Tensor, weight: Tensor, bias: Tensor, eps: float):
        inv_n = 1.0 / w.sum().clamp_min(1)
        mean = _row_sum(w, x) * inv_n
        xc = x - mean
        var = _row_sum(w, xc * xc) * inv_n
        inv_std = torch.rsqrt(var + eps)
        y = torch.addcmul(bias, xc, inv_std * weight)  # one pass over the rows
        return y, mean, var, inv_std, xc

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, w, weight, _, _ = inputs
        _, mean, var, inv_std, xc = output
        ctx.mark_non_differentiable(mean, var, inv_std, xc)
        ctx.save_for_backward(xc, inv_std, w, weight)

    @staticmethod
    def backward(ctx, gy, *_):
        xc, inv_std, w, weight = ctx.saved_tensors
        xhat = xc * inv_std
        ones = torch.ones_like(w)
        g_bias = _row_sum(ones, gy)
        g_weight = _row_sum(ones, gy * xhat)
        coef = (w / w.sum().clamp_min(1)).unsqueeze(-1)
        gx = (gy - coef * torch.addcmul(g_bias, xhat, g_weight)) * (inv_std * weight)
        return gx, None, g_weight, g_bias, None


class MaskedBatchNorm1d(nn.BatchNorm1d):
    r"""``nn.BatchNorm1d`` whose training statistics skip padding rows (see the module
    docstring). Same parameters, buffers and state-dict keys as ``nn.BatchNorm1d``."""

    def forward(self, x: Tensor) -> Tensor:
        table = current_masks()
        if table is None or not self.training:
            return super().forward(x)
        mask = table.get(x.size(0))
        if mask is None:
            raise ValueError(f"MaskedBatchNorm1d: input of {x.size(0)} rows matches none of the "
                             f"padded sizes of this forward ({sorted(table)}); normalising rows "
                             "of another kind inside a padded forward is not supported")
        if x.dim() != 2:
            raise ValueError(f"MaskedBatchNorm1d: padded inputs must be (N, C), got "
                             f"{tuple(x.shape)}")
        w = mask.to(x.dtype)
        n = w.sum()
        if self.affine:
            y, mean, var, _, _ = _MaskedBatchNormTrain.apply(x, w, self.weight, self.bias,
                                                             self.eps)
        else:
            inv_n = 1.0 / n.clamp_min(1)
            mean = _row_sum(w, x) * inv_n
            xc = x - mean
            var = _row_sum(w, xc * xc) * inv_n
            y = xc * torch.rsqrt(var + self.eps)
        if self.track_running_stats and self.running_mean is not None:
            if self.momentum is None:
                raise ValueError("MaskedBatchNorm1d: momentum=None (cumulative average) is not "
                                 "supported on padded batches")
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                mom = self.momentum
                unbiased = var * (n / (n - 1).clamp_min(1))
                self.running_mean.mul_(1 - mom).add_(mean.detach() * mom)
                self.running_var.mul_(1 - mom).add_(unbiased.detach() * mom)
        return y


def mask_batchnorms(module: nn.Module) -> int:
    """Turn every ``nn.BatchNorm1d`` inside ``module`` into a :class:`MaskedBatchNorm1d` in
    place (class swap: parameters, buffers and state-dict keys unchanged). Returns how many."""
    n = 0
    for m in module.modules():
        if type(m) is nn.BatchNorm1d:
            m.__class__ = MaskedBatchNorm1d
            n += 1
    return n


def has_unmasked_batch_statistics(module: nn.Module) -> Optional[str]:
    """The name of a layer whose training output mixes the rows of all graphs, so that padding
    would change it (a batch norm other than :class:`MaskedBatchNorm1d`), or None. Per-graph
    norms (PyG ``GraphNorm``, ``InstanceNorm``, graph-mode ``LayerNorm``) are safe: padding
    lives in graphs of its own."""
    for name, m in module.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, MaskedBatchNorm1d):
            return name or type(m).__name__
    return None
