r"""SignNet positional encoding (sign-invariant baseline for SPE)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from graphlab.nn.spe import _check_eigen_inputs, eigen_inputs
from graphlab.nn.tensor_gin import NORMS, TensorGIN, tensor_mlp


class SignNet(nn.Module):
    r"""SignNet from `"Sign and Basis Invariant Networks for Spectral Graph Representation
    Learning" <https://arxiv.org/abs/2202.13013>`_ (Lim et al., ICLR 2023).

    .. math::
        \mathrm{PE} = \rho\Big(\big[\phi(v_j, \lambda_j) + \phi(-v_j, \lambda_j)
        \big]_{j=1}^{k}\Big)

    :math:`\phi` is a GIN run on every eigenvector :math:`v_j` as a node signal (shared
    weights; the eigenvalue :math:`\lambda_j` is appended to every node's input when
    ``use_eigvals``), so :math:`\phi(v)+\phi(-v)` is sign invariant and permutation
    equivariant. Padding eigenvectors (``eig_mask`` False) are zeroed before :math:`\rho`, an
    MLP on the concatenation ``[N, k * phi_out_channels]``. Not basis invariant: on a
    repeated eigenvalue the output depends on the chosen basis (use :class:`SPE`).
    Defaults follow the sign-invariant baseline of the SPE reference code (``Graph-COM/SPE``
    ``src/model.py``: GIN output width 4 per eigenvector, MLP :math:`\rho`); widths and depths
    are ours (64 hidden, 3 GIN layers, 2 MLP layers).

    Args:
        out_channels (int): output width.
        k (int): number of eigenvectors (width of ``data.eigvecs``).
        hidden_channels (int): hidden width of :math:`\phi` and :math:`\rho` (default: ``64``).
        num_layers (int): GIN layers of :math:`\phi` (default: ``3``).
        phi_out_channels (int): output width of :math:`\phi` per eigenvector (default: ``4``).
        rho_layers (int): MLP layers of :math:`\rho` (default: ``2``).
        use_eigvals (bool): feed :math:`\lambda_j` to :math:`\phi` (default: ``True``).
        norm (str): ``'layer'`` or ``'none'`` inside the MLPs (default: ``'layer'``).

    Shapes:
        - input: ``data.eigvecs (|V|, k)``, ``data.eigvals (|V|, k)``, optional
          ``data.eig_mask (|V|, k)``, ``data.edge_index (2, |E|)``
        - output: ``(|V|, out_channels)``
    """

    def __init__(self, out_channels: int, k: int = 16, *, hidden_channels: int = 64,
                 num_layers: int = 3, phi_out_channels: int = 4, rho_layers: int = 2,
                 use_eigvals: bool = True, norm: str = "layer"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is not one of {', '.join(NORMS)}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.out_channels, self.k, self.use_eigvals = out_channels, k, use_eigvals
        self.phi = TensorGIN(2 if use_eigvals else 1, hidden_channels, phi_out_channels,
                             num_layers, norm)
        self.rho = tensor_mlp(k * phi_out_channels, hidden_channels, out_channels, rho_layers,
                              norm)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.phi.reset_parameters()
        for m in self.rho.modules():
            if m is not self.rho and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, data) -> Tensor:
        eigvals, eigvecs, eig_mask, _ = eigen_inputs(data, "SignNet")
        return self.encode(eigvals, eigvecs, data.edge_index, eig_mask)

    def encode(self, eigvals: Tensor, eigvecs: Tensor, edge_index: Tensor,
               eig_mask: Optional[Tensor] = None) -> Tensor:
        """Tensor interface of :meth:`forward`."""
        _check_eigen_inputs("SignNet", eigvals, eigvecs, eig_mask)
        if eigvecs.size(1) != self.k:
            raise ValueError(f"SignNet(k={self.k}) got eigvecs with {eigvecs.size(1)} columns; "
                             f"use the same k in the transform and the encoder")
        dtype = self.rho[0].weight.dtype
        eigvals, eigvecs = eigvals.to(dtype), eigvecs.to(dtype)
        v = eigvecs.unsqueeze(-1)                                         # [N, k, 1]
        if self.use_eigvals:
            lam = eigvals.unsqueeze(-1)
            pos, neg = torch.cat([v, lam], -1), torch.cat([-v, lam], -1)
        else:
            pos, neg = v, -v
        h = self.phi(pos, edge_index) + self.phi(neg, edge_index)         # [N, k, c]
        if eig_mask is not None:
            h = h * eig_mask.unsqueeze(-1).to(h.dtype)
        return self.rho(h.flatten(1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.out_channels}, k={self.k})"
