r"""Plain Laplacian-eigenvector positional encoding (baseline for SPE and SignNet)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from graphlab.nn.mixers import graph_count
from graphlab.nn.spe import _check_eigen_inputs, eigen_inputs


class LapPE(nn.Module):
    r"""Laplacian eigenvector PE from `"Benchmarking Graph Neural Networks"
    <https://arxiv.org/abs/2003.00982>`_ (Dwivedi et al., JMLR 2023): a linear map of the
    ``k`` eigenvectors, with a random sign flip per graph and eigenvector during training.

    .. math::
        \mathrm{PE} = [\, V S \;\Vert\; \mathbf{1}\lambda^\top \,] \mathbf{W} + \mathbf{b},
        \qquad S = \operatorname{diag}(\pm 1) \text{ (random while training, } I
        \text{ in eval)}

    The output depends on the signs and, on a repeated eigenvalue, on the basis; it is the
    unstable baseline (see :class:`SPE`). Padding entries (``eig_mask`` False) are zeroed.

    Args:
        out_channels (int): output width.
        k (int): number of eigenvectors (width of ``data.eigvecs``).
        use_eigvals (bool): also feed the eigenvalues (default: ``False``).
        sign_flip (bool): random sign flips in training mode (default: ``True``).

    Shapes:
        - input: ``data.eigvecs (|V|, k)``, optional ``data.eigvals (|V|, k)``,
          ``data.eig_mask (|V|, k)``, ``data.batch (|V|)``
        - output: ``(|V|, out_channels)``
    """

    def __init__(self, out_channels: int, k: int = 16, *, use_eigvals: bool = False,
                 sign_flip: bool = True):
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.out_channels, self.k = out_channels, k
        self.use_eigvals, self.sign_flip = use_eigvals, sign_flip
        self.lin = nn.Linear(2 * k if use_eigvals else k, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, data) -> Tensor:
        eigvals, eigvecs, eig_mask, batch = eigen_inputs(data, "LapPE")
        # a Batch knows its graph count on the host: no read-back for the sign flips
        return self.encode(eigvals, eigvecs, batch, eig_mask, num_graphs=graph_count(data))

    def encode(self, eigvals: Tensor, eigvecs: Tensor, batch: Optional[Tensor] = None,
               eig_mask: Optional[Tensor] = None, num_graphs: Optional[int] = None) -> Tensor:
        """Tensor interface of :meth:`forward` (``num_graphs``: the number of graphs in
        ``batch``, read from it when not given)."""
        _check_eigen_inputs("LapPE", eigvals, eigvecs, eig_mask)
        if eigvecs.size(1) != self.k:
            raise ValueError(f"LapPE(k={self.k}) got eigvecs with {eigvecs.size(1)} columns; "
                             f"use the same k in the transform and the encoder")
        eigvals = eigvals.to(self.lin.weight.dtype)
        v = eigvecs.to(self.lin.weight.dtype)
        if self.training and self.sign_flip:
            if batch is None:
                batch = v.new_zeros(v.size(0), dtype=torch.long)
            if num_graphs is None:
                num_graphs = int(batch.max()) + 1 if batch.numel() else 0
            signs = torch.randint(0, 2, (num_graphs, self.k), device=v.device) * 2 - 1
            v = v * signs[batch].to(v.dtype)
        x = torch.cat([v, eigvals], -1) if self.use_eigvals else v
        if eig_mask is not None:
            mask = eig_mask.to(x.dtype)
            x = x * (torch.cat([mask, mask], -1) if self.use_eigvals else mask)
        return self.lin(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.out_channels}, k={self.k})"
