r"""GIN message passing over node tensors with extra axes (used by SPE's :math:`\rho` and
SignNet's :math:`\phi`)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
import torch.nn.functional as F
from torch_geometric.nn import MessagePassing

NORMS = ("layer", "none")


def tensor_mlp(in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
               norm: str = "layer") -> nn.Sequential:
    """Linear -> [norm] -> ReLU -> ... -> Linear on the last axis (norm is per entry, so the
    MLP never mixes nodes, graphs or padding)."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not one of {', '.join(NORMS)}")
    dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
    layers: list = []
    for i in range(num_layers):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < num_layers - 1:
            if norm == "layer":
                layers.append(nn.LayerNorm(dims[i + 1]))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class TensorGINConv(MessagePassing):
    r"""GIN layer (Xu et al., "How Powerful are Graph Neural Networks?", ICLR 2019,
    https://arxiv.org/abs/1810.00826) on node features with extra axes: every slice
    ``x[:, a, ...]`` is a separate node signal; all slices share the weights.

    .. math::
        \mathbf{X}'_{i,\cdot} = \mathrm{MLP}\Big((1+\epsilon)\mathbf{X}_{i,\cdot}
        + \sum_{j \in \mathcal N(i)} \mathbf{X}_{j,\cdot}\Big)

    Args:
        mlp (nn.Module): applied to the last axis.
        eps (float): initial :math:`\epsilon` (default: ``0``).
        train_eps (bool): learn :math:`\epsilon` (default: ``True``).

    Shapes:
        - input: ``x (|V|, *, F_in)``, ``edge_index (2, |E|)``
        - output: ``(|V|, *, F_out)``
    """

    def __init__(self, mlp: nn.Module, eps: float = 0.0, train_eps: bool = True):
        super().__init__(aggr="add", node_dim=0)
        self.mlp, self.initial_eps = mlp, eps
        if train_eps:
            self.eps = nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("eps", torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.mlp.modules():
            if m is not self.mlp and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        self.eps.data.fill_(self.initial_eps)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        out = self.propagate(edge_index, x=x, size=(x.size(0), x.size(0)))
        return self.mlp((1 + self.eps) * x + out)

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mlp={self.mlp})"


class TensorGIN(nn.Module):
    r"""A stack of :class:`TensorGINConv` layers with ReLU between them.

    Args:
        in_channels (int): input width (last axis).
        hidden_channels (int): width between layers (and inside each layer's 2-layer MLP).
        out_channels (int): output width.
        num_layers (int): number of GIN layers.
        norm (str): ``'layer'`` (LayerNorm inside each MLP, default) or ``'none'``.

    Shapes:
        - input: ``x (|V|, *, in_channels)``, ``edge_index (2, |E|)``
        - output: ``(|V|, *, out_channels)``
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int, norm: str = "layer"):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(
            TensorGINConv(tensor_mlp(dims[i], hidden_channels, dims[i + 1], 2, norm))
            for i in range(num_layers))

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x
