"""Residual gated graph convolution with edge gates (GatedGCN)."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj, OptTensor


class GatedGCNConv(MessagePassing):
    r"""The gated graph convolution with explicit edge features from `"Residual Gated Graph
    ConvNets" <https://arxiv.org/abs/1711.07553>`_ (Bresson & Laurent, 2017), in the form used by
    the benchmarking papers (`"Benchmarking Graph Neural Networks"
    <https://arxiv.org/abs/2003.00982>`_) and by LRGB / GraphGPS, where every edge carries a
    hidden state that is updated together with the nodes:

    .. math::
        \hat{\mathbf{e}}_{ij} &= \mathbf{D}\mathbf{x}_i + \mathbf{E}\mathbf{x}_j
            + \mathbf{C}\mathbf{e}_{ij}, \qquad
        \boldsymbol{\sigma}_{ij} = \mathrm{sigmoid}(\hat{\mathbf{e}}_{ij}),

        \mathbf{x}_i' &= \mathbf{A}\mathbf{x}_i + \frac{\sum_{j \in \mathcal{N}(i)}
            \boldsymbol{\sigma}_{ij} \odot \mathbf{B}\mathbf{x}_j}
            {\sum_{j \in \mathcal{N}(i)} \boldsymbol{\sigma}_{ij} + \varepsilon},
        \qquad \mathbf{e}_{ij}' = \hat{\mathbf{e}}_{ij}

    for an edge :math:`j \to i` (``edge_index[0] = j``, ``edge_index[1] = i``). The gates are
    normalised per channel over the incoming edges (a soft attention with a sigmoid kernel). The
    layer is the bare convolution: normalisation, activation, dropout and the residual
    connections of the benchmark block are left to the model that stacks it, which lets
    :class:`~graphlab.models.GPS` treat every local MPNN alike. Nodes without incoming edges get
    :math:`\mathbf{A}\mathbf{x}_i`.

    Args:
        in_channels (int): Size of each input node feature.
        out_channels (int): Size of each output node (and edge) feature.
        edge_dim (int, optional): Size of each input edge feature. With ``None`` the gate has no
            :math:`\mathbf{C}\mathbf{e}_{ij}` term and ``edge_attr`` must not be given.
            (default: ``None``)
        eps (float, optional): :math:`\varepsilon` in the gate normaliser. (default: ``1e-6``,
            the value of the benchmarking code)
        bias (bool, optional): Learn additive biases in the five linear maps.
            (default: ``True``)
        **kwargs: Additional arguments of :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)`, edge features :math:`(|\mathcal{E}|, D)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`, and with
          ``return_edge_attr=True`` also edge features :math:`(|\mathcal{E}|, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, edge_dim: Optional[int] = None,
                 eps: float = 1e-6, bias: bool = True, **kwargs):
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.edge_dim, self.eps = edge_dim, eps
        self.lin_A = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_B = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_D = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_E = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_C = nn.Linear(edge_dim, out_channels, bias=bias) if edge_dim is not None else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in (self.lin_A, self.lin_B, self.lin_D, self.lin_E, self.lin_C):
            if lin is not None:
                lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj, edge_attr: OptTensor = None,
                return_edge_attr: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(f"x must have shape [num_nodes, {self.in_channels}], "
                             f"got {tuple(x.shape)}")
        if isinstance(edge_index, Tensor) and not edge_index.is_floating_point():
            if edge_index.dim() != 2 or edge_index.size(0) != 2:
                raise ValueError(f"edge_index must have shape [2, num_edges], "
                                 f"got {tuple(edge_index.shape)}")
        if (edge_attr is None) != (self.lin_C is None):
            raise ValueError("edge_attr must be given exactly when edge_dim is set "
                             f"(edge_dim={self.edge_dim}, edge_attr "
                             f"{'missing' if edge_attr is None else 'given'})")
        if edge_attr is not None and edge_attr.dim() == 1:
            edge_attr = edge_attr.unsqueeze(-1)
        Ce = self.lin_C(edge_attr) if self.lin_C is not None else None
        e_hat = self.edge_updater(edge_index, Dx=self.lin_D(x), Ex=self.lin_E(x), Ce=Ce,
                                  size=(x.size(0), x.size(0)))
        # one propagate aggregates the gated values and the gates, stacked on the channel axis
        agg = self.propagate(edge_index, Bx=self.lin_B(x), e_hat=e_hat,
                             size=(x.size(0), x.size(0)))
        num, den = agg.chunk(2, dim=-1)
        out = self.lin_A(x) + num / (den + self.eps)
        return (out, e_hat) if return_edge_attr else out

    def edge_update(self, Dx_i: Tensor, Ex_j: Tensor, Ce: OptTensor) -> Tensor:
        return Dx_i + Ex_j if Ce is None else Dx_i + Ex_j + Ce

    def message(self, Bx_j: Tensor, e_hat: Tensor) -> Tensor:
        sigma = torch.sigmoid(e_hat)
        return torch.cat([sigma * Bx_j, sigma], dim=-1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"edge_dim={self.edge_dim})")
