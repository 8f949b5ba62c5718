r"""Column sums as vector-matrix products, for padded CUDA-graph training steps.

A gradient that sums over rows (a bias broadcast over ``N`` rows, BatchNorm's weight and bias)
is, in autograd, a column reduction of the ``(N, C)`` gradient; for the stacked members of a
vmapped ensemble (``(K, N, C)``) a GPU runs it at about 15 µs, where the same sum written as
:math:`\mathbf{1}^\top G` (one batched vector-matrix product) takes about 6 µs (one H200,
10-seed GIN-virtual on ogbg-molhiv, ``scripts/profile_step.py``). The products run at full
float32 precision also when a run allows TF32 (:func:`~graphlab.nn.checks.exact_fp32_products`),
so they are the same sums.

* :func:`row_sum` -- :math:`\sum_i w_i \mathbf{t}_i` for ``w`` ``(N,)`` and ``t`` ``(N, C)``.
* :class:`RowSumBiasLinear` -- ``nn.Linear`` whose bias gradient is such a product;
  :func:`row_sum_biases` swaps it in for every ``nn.Linear`` of a module (class swap: the same
  parameters and state-dict keys), as ``task.cuda_graphs`` does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn.checks import exact_fp32_products

__all__ = ["row_sum", "RowSumBiasLinear", "row_sum_biases"]


def row_sum(w: Tensor, t: Tensor) -> Tensor:
    """``sum_i w_i t_i`` over the rows of ``t`` ``(N, C)`` as one vector-matrix product (a
    single pass over ``t``), exact in float32 also when the run allows TF32 products."""
    with exact_fp32_products():
        return w @ t


class _AddBias(torch.autograd.Function):
    """``x + b`` (``b`` broadcast over every leading dimension of ``x``) whose gradient for
    ``b`` is :func:`row_sum` of the incoming gradient with ones."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, b: Tensor) -> Tensor:
        return x + b

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g: Tensor):
        g2 = g.reshape(-1, g.size(-1))
        return g, row_sum(g2.new_ones(g2.size(0)), g2)


class RowSumBiasLinear(nn.Linear):
    r""":class:`torch.nn.Linear` (:math:`\mathbf{y} = \mathbf{x}\mathbf{W}^\top + \mathbf{b}`)
    whose bias gradient :math:`\sum_i \mathbf{g}_i` is one vector-matrix product instead of
    a column reduction; the same values, parameters and state-dict keys.

    Shapes:
        input ``(*, in_features)``, output ``(*, out_features)``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.bias is None:
            return F.linear(x, self.weight)
        return _AddBias.apply(F.linear(x, self.weight), self.bias)


def row_sum_biases(module: nn.Module) -> int:
    """Turn every ``nn.Linear`` with a bias inside ``module`` into a :class:`RowSumBiasLinear`
    in place (class swap). Returns how many."""
    n = 0
    for m in module.modules():
        if type(m) is nn.Linear and m.bias is not None:
            m.__class__ = RowSumBiasLinear
            n += 1
    return n
