"""LightGCN for recommendation (He et al., SIGIR 2020, https://arxiv.org/abs/2002.02126)."""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn
from torch_geometric.nn import LightGCN as _PyGLightGCN

from graphlab.registry import register_model
from graphlab.schema import Range


@register_model("lightgcn")
class LightGCN(nn.Module):
    r"""LightGCN: free user and item embeddings smoothed by K rounds of symmetric-normalised
    propagation over the user–item graph, averaged over layers.

    .. math::
        \mathbf{E}^{(k+1)} = \tilde{\mathbf{D}}^{-1/2}\mathbf{A}\tilde{\mathbf{D}}^{-1/2}
        \mathbf{E}^{(k)}, \qquad \mathbf{E} = \frac{1}{K+1}\sum_{k=0}^{K}\mathbf{E}^{(k)}

    A thin wrapper of PyG's :class:`torch_geometric.nn.LightGCN` in graphlab's model contract.
    The graph has ``num_users + num_items`` nodes (items offset by ``num_users``); ``forward``
    returns all embeddings ``(num_users + num_items, hidden_channels)``, scored by dot product.

    Args:
        hidden_channels: embedding size (paper: 64).
        num_layers: propagation rounds K (paper: 3).
        num_users, num_items: filled in by the trainer from the dataset.
    """

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: Annotated[int, Range(ge=1)] = 64,
                 num_layers: Annotated[int, Range(ge=1)] = 3, num_users: int = 0, num_items: int = 0,
                 task_level: str = "node"):
        super().__init__()
        if num_users <= 0 or num_items <= 0:
            raise ValueError(f"LightGCN needs num_users and num_items > 0, got {num_users}, "
                             f"{num_items} (the trainer sets them from a recommendation dataset)")
        self.num_users, self.num_items = num_users, num_items
        self.net = _PyGLightGCN(num_users + num_items, hidden_channels, num_layers)

    def reset_parameters(self) -> None:
        self.net.reset_parameters()

    def base_embedding(self) -> Tensor:
        """The layer-0 table ``(num_users + num_items, hidden_channels)`` (LightGCN's L2 term
        reads it)."""
        return self.net.embedding.weight

    def forward(self, data) -> Tensor:
        return self.net.get_embedding(data.edge_index)
