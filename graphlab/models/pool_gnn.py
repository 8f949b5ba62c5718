r"""Hierarchical node-pooling GNNs with PyG's own pooling layers: the baselines of EHGNN's
HyperDrop (Jo et al., NeurIPS 2021)."""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import EdgePooling, GCNConv, SAGPooling, TopKPooling

from graphlab.models.basic import _check_choice, reset_children
from graphlab.models.ehgnn import classifier, graph_of, multi_readout, num_graphs_of
from graphlab.nn.encoders import FeatureEncoder
from graphlab.registry import register_model

POOLS = ("topk", "sag", "edge", "none")


@register_model("pool_gnn")
class PoolGNN(nn.Module):
    r"""GCN layers with node pooling between them, read out after every layer: the skeleton of
    :class:`~graphlab.models.ehgnn.EHGNN` with its edge stream and HyperDrop replaced by one of
    PyG's node-pooling layers (as in the hierarchical SAGPool architecture, Lee et al., ICML
    2019):

    .. math::
        \mathbf{X}^{(\ell)} = \mathrm{ReLU}\big(\mathrm{GCN}(\mathbf{X}^{(\ell-1)},
        \mathbf{A}^{(\ell-1)})\big), \quad
        (\mathbf{X}^{(\ell)}, \mathbf{A}^{(\ell)}) \leftarrow \mathrm{Pool}(\mathbf{X}^{(\ell)},
        \mathbf{A}^{(\ell)})\ (\ell < L), \quad
        \mathbf{h}_G = \sum_{\ell} [\max \Vert \mathrm{mean} \Vert \mathrm{sum}]
        (\mathbf{X}^{(\ell)})

    read out before pooling, then the same 3-layer MLP head.

    ``pool``: ``topk`` (PyG ``TopKPooling``, Gao & Ji 2019 / Cangea et al. 2018), ``sag``
    (``SAGPooling``, Lee et al. 2019, with its default ``GraphConv`` scorer), ``edge``
    (``EdgePooling``, Diehl 2019: contracts a matching of edges, about half the nodes) or
    ``none`` (no pooling). ``ratio`` is the kept node fraction of ``topk`` / ``sag``
    (PyG's default 0.5); EdgePooling has no ratio. Edge features are not used (as in the
    reference's TU baselines).

    Shapes: ``x (|V|, F)``, ``edge_index (2, |E|)``, ``batch`` -> ``(num_graphs, out)``.
    """

    task_levels = ("graph",)  # pooling: graph-level outputs only

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: int = 128,
                 num_layers: int = 3, pool: str = "topk", ratio: float = 0.5,
                 dropout: float = 0.5, task_level: str = "graph", node_encoder: str = "linear"):
        super().__init__()
        _check_choice("task_level", task_level, ("graph",))
        _check_choice("pool", pool, POOLS)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if pool in ("topk", "sag") and not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        H = hidden_channels
        self.pool, self.num_layers, self.ratio = pool, num_layers, ratio
        self.encoder = FeatureEncoder(node_encoder, in_channels, H)
        self.convs = nn.ModuleList(GCNConv(H, H) for _ in range(num_layers))
        make = {"topk": lambda: TopKPooling(H, ratio), "sag": lambda: SAGPooling(H, ratio),
                "edge": lambda: EdgePooling(H), "none": None}[pool]
        self.pools = nn.ModuleList(make() for _ in range(num_layers - 1)) if make else None
        self.head = classifier(3 * H, H, out_channels, dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, data) -> Tensor:
        n = data.num_nodes
        x = self.encoder(getattr(data, "x", None), n)
        edge_index, batch, G = data.edge_index, graph_of(data, n), num_graphs_of(data)
        h = 0
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x, edge_index))
            h = h + multi_readout(x, batch, G)
            if self.pools is None or i == self.num_layers - 1:
                continue
            if self.pool == "edge":
                x, edge_index, batch, _ = self.pools[i](x, edge_index, batch)
            else:
                x, edge_index, _, batch, _, _ = self.pools[i](x, edge_index, batch=batch)
        return self.head(h)
