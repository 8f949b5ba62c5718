r"""GCN convolution with edge features and edge weights (OGB's molecule GCN)."""
from __future__ import annotations

from torch import Tensor, nn
import torch
import torch.nn.functional as F
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import OptTensor
from torch_geometric.utils import scatter

__all__ = ["EdgeGCNConv"]


class EdgeGCNConv(MessagePassing):
    r"""The GCN convolution with edge features of OGB's molecule baselines (Hu et al., "Open
    Graph Benchmark", NeurIPS 2020; ``snap-stanford/ogb`` examples/graphproppred/mol), with
    optional edge weights, the node convolution of the EHGNN molecule model (Jo et al.,
    NeurIPS 2021; harryjo97/EHGNN), where the weights are HyperDrop's edge scores:

    .. math::
        \mathbf{x}_i' = \sum_{j \to i} \frac{w_{ji}}{\sqrt{\hat d_j \hat d_i}}\,
        \mathrm{ReLU}(\mathbf{W}\mathbf{x}_j + \mathbf{b} + \mathbf{W}_e\mathbf{e}_{ji}
        + \mathbf{b}_e) + \frac{1}{\hat d_i}\mathrm{ReLU}(\mathbf{W}\mathbf{x}_i + \mathbf{b} +
        \mathbf{r}),
        \qquad \hat d_i = 1 + \sum_{j \to i} w_{ji}

    (:math:`w = 1` without weights; :math:`\mathbf{r}` is a learned root vector). Matrix form
    with :math:`\hat{\mathbf{D}} = \mathbf{I} + \mathrm{diag}(\mathbf{W}_{adj}^\top\mathbf{1})`:
    a symmetrically normalised sum of per-edge ReLU messages plus a self term. A node without
    in-edges keeps only its self term (:math:`\hat d_i = 1`).

    Args:
        channels (int): node and edge feature size (edge features are encoded to it first).

    Shapes: ``x (|V|, H)``, ``edge_index (2, |E|)``, ``edge_attr (|E|, H)``, optional
    ``edge_weight (|E|,)`` -> ``(|V|, H)``.
    """

    def __init__(self, channels: int):
        super().__init__(aggr="add")
        self.channels = channels
        self.lin = nn.Linear(channels, channels)
        self.lin_edge = nn.Linear(channels, channels)
        self.root = nn.Parameter(torch.empty(1, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()
        self.lin_edge.reset_parameters()
        nn.init.zeros_(self.root)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor,
                edge_weight: OptTensor = None) -> Tensor:
        if edge_attr.size(0) != edge_index.size(1):
            raise ValueError(f"edge_attr has {edge_attr.size(0)} rows for "
                             f"{edge_index.size(1)} edges")
        x = self.lin(x)
        e = self.lin_edge(edge_attr)
        src, dst = edge_index
        w = x.new_ones(src.numel()) if edge_weight is None else edge_weight.to(x.dtype).view(-1)
        deg = scatter(w, dst, dim=0, dim_size=x.size(0), reduce="sum") + 1.0
        inv_sqrt = deg.rsqrt()
        norm = inv_sqrt[src] * w * inv_sqrt[dst]
        out = self.propagate(edge_index, x=x, e=e, norm=norm)
        return out + F.relu(x + self.root) / deg.view(-1, 1)

    def message(self, x_j: Tensor, e: Tensor, norm: Tensor) -> Tensor:
        return norm.view(-1, 1) * F.relu(x_j + e)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels})"
