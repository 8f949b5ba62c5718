r"""Stable and expressive positional encodings (SPE)."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn
import torch.nn.functional as F
from torch_geometric.utils import to_dense_batch

from graphlab.nn import checks as _checks
from graphlab.nn.tensor_gin import NORMS, TensorGIN


def _check_eigen_inputs(name: str, eigvals: Tensor, eigvecs: Tensor,
                        eig_mask: Optional[Tensor]) -> None:
    if eigvecs.dim() != 2 or eigvals.shape != eigvecs.shape:
        raise ValueError(f"{name}: eigvals and eigvecs must both be [N, k], got "
                         f"{tuple(eigvals.shape)} and {tuple(eigvecs.shape)} (run "
                         f"graphlab.transforms.AddLaplacianEigen(k) on the dataset)")
    if eig_mask is not None and eig_mask.shape != eigvecs.shape:
        raise ValueError(f"{name}: eig_mask must be [N, k] like eigvecs, got "
                         f"{tuple(eig_mask.shape)}")
    if _checks._tracing():  # reading the check back is not allowed while tracing/recording
        return
    if not (torch.isfinite(eigvals).all() and torch.isfinite(eigvecs).all()):
        raise ValueError(f"{name}: eigvals/eigvecs contain NaN or inf")


def eigen_inputs(data, name: str) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    """``(eigvals, eigvecs, eig_mask, batch)`` from a ``Data``/``Batch`` with a clear error when
    :class:`~graphlab.transforms.AddLaplacianEigen` has not been applied."""
    eigvals, eigvecs = getattr(data, "eigvals", None), getattr(data, "eigvecs", None)
    if eigvals is None or eigvecs is None:
        raise ValueError(f"{name} needs data.eigvals and data.eigvecs; add "
                         f"graphlab.transforms.AddLaplacianEigen(k) (or "
                         f"graphlab.transforms.pe.pe_transform(...)) to the dataset's pre_transform")
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = eigvecs.new_zeros(eigvecs.size(0), dtype=torch.long)
    return eigvals, eigvecs, getattr(data, "eig_mask", None), batch


class _EigenvalueMLPs(nn.Module):
    """``m`` independent MLPs R -> R applied to every eigenvalue (batched as one einsum)."""

    def __init__(self, m: int, hidden_channels: int, num_layers: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"phi_layers must be >= 1, got {num_layers}")
        dims = [1] + [hidden_channels] * (num_layers - 1) + [1]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(m, dims[i], dims[i + 1]))
                                        for i in range(num_layers))
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(m, dims[i + 1]))
                                       for i in range(num_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for w, b in zip(self.weights, self.biases):  # nn.Linear's default range per MLP
            bound = 1.0 / math.sqrt(w.size(1))
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def forward(self, lam: Tensor) -> Tensor:
        """``lam [..., k]`` -> ``[..., k, m]``."""
        m = self.weights[0].size(0)
        x = lam.unsqueeze(-1).unsqueeze(-1).expand(*lam.shape, m, 1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.einsum("...mi,mio->...mo", x, w) + b
            if i < len(self.weights) - 1:
                x = F.relu(x)
        return x.squeeze(-1)


class SPE(nn.Module):
    r"""Stable and expressive positional encoding from `"On the Stability of Expressive
    Positional Encodings for Graphs" <https://arxiv.org/abs/2310.02579>`_ (Huang et al.,
    ICLR 2024).

    .. math::
        \mathrm{SPE}(V, \lambda) = \rho\big(V\operatorname{diag}(\phi_1(\lambda))V^\top,
        \dots, V\operatorname{diag}(\phi_m(\lambda))V^\top\big)

    :math:`\phi_\ell` is an MLP applied to each eigenvalue separately (hence permutation
    equivariant on :math:`\lambda`; the ``m`` MLPs are independent). Each
    :math:`W_\ell = V\operatorname{diag}(\phi_\ell(\lambda))V^\top` depends only on the
    eigenspaces, so the encoding is invariant to eigenvector signs and to any basis of a
    repeated eigenvalue (as long as ``k`` does not split an eigenspace). :math:`\rho` takes the
    full :math:`n \times n \times m` tensor: every column :math:`W_{\cdot j}` is an
    ``m``-channel node signal, a GIN (shared weights) runs on each column over the graph, and
    the columns are summed:

    .. math::
        \mathrm{PE}_i = \mathbf{W}_{\mathrm{out}}\sum_{j=1}^{n}
        \mathrm{GIN}\big(W_{\cdot j\cdot}\big)_i

    Names follow the paper: in the reference code (``Graph-COM/SPE``) ``psi_list`` is
    :math:`\phi` and ``phi`` is :math:`\rho`. Defaults are that code's ZINC configuration
    (``SPE_gine_gin_mlp_pe37.yaml``: ``n_psis`` 16, psi MLP 3 layers x 16 hidden, GIN 8 layers
    x 128, layer norm in the GIN's MLPs).

    Cost: memory :math:`O(N_\mathrm{sum} \cdot n_\mathrm{max} \cdot h)` per GIN layer for a
    batch of :math:`N_\mathrm{sum}` nodes whose largest graph has :math:`n_\mathrm{max}` nodes.
    A graph with more than ``max_nodes`` nodes, or a batch whose activation tensor would exceed
    ``max_pair_elements`` entries, raises ``ValueError`` before anything large is allocated
    (use a smaller batch, raise the limits, or another encoding for large graphs).

    Args:
        out_channels (int): output width.
        num_phis (int): :math:`m`, number of eigenvalue functions (default: ``16``).
        phi_hidden_channels (int): hidden width of each :math:`\phi_\ell` (default: ``16``).
        phi_layers (int): layers of each :math:`\phi_\ell` (default: ``3``).
        rho_hidden_channels (int): hidden width of :math:`\rho` (default: ``128``).
        rho_layers (int): GIN layers of :math:`\rho` (default: ``8``).
        norm (str): ``'layer'`` or ``'none'`` inside :math:`\rho`'s MLPs (default: ``'layer'``).
        max_nodes (int): largest graph accepted (default: ``500``).
        max_pair_elements (int): largest :math:`N_\mathrm{sum} n_\mathrm{max} h` accepted
            (default: :math:`2^{28}`, 1 GiB per float32 activation).

    Shapes:
        - input: ``data.eigvals (|V|, k)``, ``data.eigvecs (|V|, k)``, optional
          ``data.eig_mask (|V|, k)``, ``data.edge_index (2, |E|)``, ``data.batch (|V|)``
          (from :class:`~graphlab.transforms.AddLaplacianEigen`)
        - output: ``(|V|, out_channels)``
    """

    def __init__(self, out_channels: int, *, num_phis: int = 16, phi_hidden_channels: int = 16,
                 phi_layers: int = 3, rho_hidden_channels: int = 128, rho_layers: int = 8,
                 norm: str = "layer", max_nodes: int = 500, max_pair_elements: int = 2 ** 28):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is not one of {', '.join(NORMS)}")
        for arg, v in (("out_channels", out_channels), ("num_phis", num_phis),
                       ("max_nodes", max_nodes)):
            if v < 1:
                raise ValueError(f"{arg} must be >= 1, got {v}")
        self.out_channels, self.num_phis = out_channels, num_phis
        self.rho_hidden_channels = rho_hidden_channels
        self.max_nodes, self.max_pair_elements = max_nodes, max_pair_elements
        self.phi = _EigenvalueMLPs(num_phis, phi_hidden_channels, phi_layers)
        self.rho = TensorGIN(num_phis, rho_hidden_channels, rho_hidden_channels, rho_layers, norm)
        self.lin_out = nn.Linear(rho_hidden_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.phi.reset_parameters()
        self.rho.reset_parameters()
        self.lin_out.reset_parameters()

    def forward(self, data) -> Tensor:
        eigvals, eigvecs, eig_mask, batch = eigen_inputs(data, "SPE")
        return self.encode(eigvals, eigvecs, data.edge_index, batch, eig_mask)

    def encode(self, eigvals: Tensor, eigvecs: Tensor, edge_index: Tensor,
               batch: Optional[Tensor] = None, eig_mask: Optional[Tensor] = None) -> Tensor:
        """Tensor interface of :meth:`forward` (``batch`` sorted, as in PyG batches)."""
        W, node_mask = self.pairwise(eigvals, eigvecs, batch, eig_mask)
        return self.readout(W, node_mask, edge_index)

    def pairwise(self, eigvals: Tensor, eigvecs: Tensor, batch: Optional[Tensor] = None,
                 eig_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        r"""The per-graph tensors :math:`W[b] = [V\operatorname{diag}(\phi_\ell(\lambda))
        V^\top]_\ell` as ``[B, n_max, n_max, m]`` (zero outside each graph) and the node mask
        ``[B, n_max]``."""
        _check_eigen_inputs("SPE", eigvals, eigvecs, eig_mask)
        dtype = self.lin_out.weight.dtype  # stored inputs may be float32 under a float64 model
        eigvals, eigvecs = eigvals.to(dtype), eigvecs.to(dtype)
        if batch is None:
            batch = eigvecs.new_zeros(eigvecs.size(0), dtype=torch.long)
        V, node_mask = to_dense_batch(eigvecs, batch)                    # [B, n, k]
        n_max = V.size(1)
        if n_max > self.max_nodes:
            raise ValueError(f"SPE: a graph has {n_max} nodes, more than max_nodes="
                             f"{self.max_nodes}; SPE's pairwise tensor is quadratic in the graph "
                             f"size (raise max_nodes if memory allows, or use pe='rwse'/'lap')")
        width = max(self.rho_hidden_channels, self.num_phis)
        if eigvecs.size(0) * n_max * width > self.max_pair_elements:
            raise ValueError(f"SPE: this batch needs {eigvecs.size(0)}*{n_max}*{width} entries "
                             f"per activation, more than max_pair_elements="
                             f"{self.max_pair_elements}; use a smaller batch_size or raise "
                             f"max_pair_elements")
        lam = to_dense_batch(eigvals, batch)[0][:, 0, :]                 # [B, k]
        Z = self.phi(lam)                                                # [B, k, m]
        if eig_mask is not None:
            Z = Z * to_dense_batch(eig_mask, batch)[0][:, 0, :].unsqueeze(-1).to(Z.dtype)
        W = torch.einsum("bik,bkm,bjk->bijm", V, Z, V)                   # [B, n, n, m]
        return W, node_mask

    def readout(self, W: Tensor, node_mask: Tensor, edge_index: Tensor) -> Tensor:
        r""":math:`\rho`: GIN over the columns of ``W [B, n_max, n_max, m]`` (see class
        docstring) -> ``[N, out_channels]``."""
        X = W[node_mask]                                                 # [N, n, m]
        col_mask = node_mask.repeat_interleave(node_mask.sum(1), dim=0)  # [N, n]
        H = self.rho(X, edge_index)                                      # [N, n, h]
        H = (H * col_mask.unsqueeze(-1).to(H.dtype)).sum(dim=1)
        return self.lin_out(H)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.out_channels}, num_phis={self.num_phis}, "
                f"rho_hidden_channels={self.rho_hidden_channels}, "
                f"rho_layers={len(self.rho.convs)})")
