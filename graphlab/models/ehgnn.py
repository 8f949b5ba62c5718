r"""EHGNN: edge representation learning with hypergraphs (Jo et al., "Edge Representation
Learning with Hypergraphs", NeurIPS 2021, https://arxiv.org/abs/2106.15845; code:
harryjo97/EHGNN).

* :class:`EHGNN` (``ehgnn``): graph classification with HyperDrop, the reference's
  ``Model_HyperDrop`` (TU) and ``Model_HyperDrop_OGB`` (molecules).
* :class:`EdgeAutoencoder`: edge-feature (bond-type) reconstruction through a pooled
  bottleneck, with HyperCluster over edges (the reference's ``Model_HyperCluster``), a
  GMPool-style node clustering, or no pooling (the upper bound). Its output is per edge, a task
  the trainer does not have; ``scripts/ehgnn_reconstruction.py`` trains it.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import (GCNConv, GINEConv, global_add_pool, global_max_pool,
                                global_mean_pool)

from graphlab.models.basic import _check_choice, reset_children
from graphlab.nn.dual_conv import DualHypergraphConv, dual_hypergraph_index
from graphlab.nn.edge_gcn_conv import EdgeGCNConv
from graphlab.nn.encoders import EdgeEncoder, FeatureEncoder
from graphlab.nn.hypercluster import HyperCluster
from graphlab.nn.hyperdrop import HyperDrop
from graphlab.registry import register_model

NODE_CONVS = ("gcn", "edge_gcn")


def graph_of(data, num_nodes: int) -> Tensor:
    """``data.batch``, or all zeros for a single graph."""
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=data.edge_index.device)
    return batch


def num_graphs_of(data) -> int:
    return int(getattr(data, "num_graphs", 1) or 1)


def classifier(in_dim: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    """The reference's head: ``in -> H -> H/2 -> out`` with ReLU and dropout."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden // 2, out))


def multi_readout(x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """``[max || mean || sum]`` over each graph's nodes ``[G, 3H]``."""
    return torch.cat([global_max_pool(x, batch, size=num_graphs),
                      global_mean_pool(x, batch, size=num_graphs),
                      global_add_pool(x, batch, size=num_graphs)], dim=1)


@register_model("ehgnn")
class EHGNN(nn.Module):
    r"""EHGNN with HyperDrop for graph classification (Jo et al., NeurIPS 2021).

    Two streams per layer :math:`\ell = 1..L`: node states on the graph and edge states on its
    dual hypergraph (:class:`~graphlab.transforms.DualHypergraph`). With
    :math:`\mathbf{X}^{(0)}, \mathbf{E}^{(0)}` the encoded features:

    .. math::
        \mathbf{X}^{(\ell)} = \mathrm{ReLU}\big(\mathrm{NodeConv}(\mathbf{X}^{(\ell-1)},
        \mathcal{E}^{(\ell-1)}, \mathbf{w}^{(\ell-1)} [, \mathbf{E}^{(\ell-1)}])\big)

    and for :math:`\ell < L`

    .. math::
        \mathbf{E}^{(\ell)} = \mathrm{ReLU}\big(\mathrm{HConv}(\mathbf{E}^{(\ell-1)},
        \tilde{\mathbf{M}}_{\ell-1}^\top)\big), \qquad
        (\mathcal{E}^{(\ell)}, \mathbf{E}^{(\ell)}, \mathbf{w}^{(\ell)}) =
        \mathrm{HyperDrop}_r(\mathbf{E}^{(\ell)})

    (:class:`~graphlab.nn.dual_conv.DualHypergraphConv`, :class:`~graphlab.nn.HyperDrop`:
    the best :math:`\lceil r\, m_g \rceil` edges of each graph survive, every node does, and
    their clamped scores :math:`\mathbf{w}` weight the next node convolution; the first one is
    unweighted). The graph representation sums the multi-readout of every layer,
    :math:`\mathbf{h}_G = \sum_\ell [\max \Vert \mathrm{mean} \Vert \mathrm{sum}]
    (\mathbf{X}^{(\ell)})`, and a 3-layer MLP with dropout classifies it.

    ``node_conv='gcn'`` is PyG's ``GCNConv`` (edge features only steer the edge stream: the
    reference TU model); ``'edge_gcn'`` is :class:`~graphlab.nn.edge_gcn_conv.EdgeGCNConv`,
    which also adds the current edge states to the messages (the reference molecule model).

    Choices (documented because the paper leaves them open): features are first embedded to
    ``hidden_channels`` by graphlab's encoders (the reference TU model feeds raw features to
    the first convolutions); graphs without edge features get one learned edge vector (the
    reference: a constant 1); the output is logits (the reference TU model returns
    log-softmax, the same loss under cross-entropy).

    Args:
        hidden_channels: width of both streams (reference: 128).
        num_layers: node convolutions :math:`L`; :math:`L - 1` HyperDrops (reference: 3).
        ratio: HyperDrop's kept edge fraction :math:`r` (reference: 0.8; PROTEINS 0.65).
        dropout: dropout in the classifier (reference: 0.5).
        node_conv: ``gcn`` | ``edge_gcn``.
        self_loops: loops in the dual hypergraph (reference: yes).

    Shapes: ``x (|V|, F)``, ``edge_index (2, |E|)``, optional ``edge_attr (|E|, D)``, ``batch``
    -> ``(num_graphs, out)``.
    """

    task_levels = ("graph",)  # pooling: graph-level outputs only

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: int = 128,
                 num_layers: int = 3, ratio: float = 0.8, dropout: float = 0.5,
                 node_conv: str = "gcn", self_loops: bool = True, task_level: str = "graph",
                 node_encoder: str = "linear", edge_dim: Optional[int] = None,
                 edge_encoder: str = "linear"):
        super().__init__()
        _check_choice("task_level", task_level, ("graph",))
        _check_choice("node_conv", node_conv, NODE_CONVS)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        H = hidden_channels
        self.hidden_channels, self.num_layers, self.ratio = H, num_layers, float(ratio)
        self.dropout, self.node_conv, self.self_loops = dropout, node_conv, self_loops
        self.encoder = FeatureEncoder(node_encoder, in_channels, H)
        self.edge_encoder = EdgeEncoder(edge_encoder if edge_dim is not None else "none",
                                        edge_dim, H)
        self.convs = nn.ModuleList(GCNConv(H, H) if node_conv == "gcn" else EdgeGCNConv(H)
                                   for _ in range(num_layers))
        self.edge_convs = nn.ModuleList(DualHypergraphConv(H, H, self_loops=self_loops)
                                        for _ in range(num_layers - 1))
        self.drops = nn.ModuleList(HyperDrop(H, ratio, self_loops=self_loops)
                                   for _ in range(num_layers - 1))
        self.head = classifier(3 * H, H, out_channels, dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_children(self)

    def _node_conv(self, i: int, x: Tensor, edge_index: Tensor, e: Tensor,
                   w: Optional[Tensor]) -> Tensor:
        if self.node_conv == "gcn":
            return self.convs[i](x, edge_index, w)
        return self.convs[i](x, edge_index, e, w)

    def forward(self, data) -> Tensor:
        n = data.num_nodes
        edge_index = data.edge_index
        x = self.encoder(getattr(data, "x", None), n)
        e = self.edge_encoder(getattr(data, "edge_attr", None), edge_index.size(1))
        batch, G = graph_of(data, n), num_graphs_of(data)
        w = None
        h = 0
        for i in range(self.num_layers):
            x = F.relu(self._node_conv(i, x, edge_index, e, w))
            if i < self.num_layers - 1:
                dual = dual_hypergraph_index(edge_index, n, self.self_loops)
                e = F.relu(self.edge_convs[i](e, dual=dual))
                kept = self.drops[i](e, edge_index, batch[edge_index[0]], n, G, dual=dual)
                edge_index, e, w = kept.edge_index, kept.edge_attr, kept.edge_weight
            h = h + multi_readout(x, batch, G)
        return self.head(h)


POOLS = ("hypercluster", "node_cluster", "none")


class EdgeAutoencoder(nn.Module):
    r"""Edge-feature reconstruction through a pooled bottleneck (Jo et al., NeurIPS 2021,
    graph reconstruction with HyperCluster; the reference's ``Model_HyperCluster``).

    Every model sees the same inputs, the edge features and the graph (no node features), and
    predicts every edge's class (e.g. the bond type) from the representation it pooled:

    * ``pool='hypercluster'``: :math:`L` :class:`~graphlab.nn.dual_conv.DualHypergraphConv` on
      the edges, :class:`~graphlab.nn.HyperCluster` to ``num_clusters`` clusters, unpool
      (:math:`\mathbf{A}^\top\mathbf{C}`), :math:`L` more dual convolutions and a last dual
      convolution to the classes (the reference).
    * ``pool='node_cluster'``: the node-pooling baseline in GMPool's style (Baek et al.,
      ICLR 2021): one learned vector per node, :math:`L` GINE convolutions that read the edge
      features, :class:`~graphlab.nn.HyperCluster` with ``keys='gcn'`` over the **nodes**,
      unpool, :math:`L` GCN convolutions, and an MLP on the two endpoint states of every edge.
    * ``pool='none'``: the ``hypercluster`` model without the bottleneck (upper bound).

    The bottleneck is ``num_clusters`` vectors of ``hidden_channels`` per graph for both
    pooling models. ``edge_dim`` / ``edge_encoder`` describe the edge features as for every
    graphlab model (e.g. ``bond`` for OGB molecules).

    Shapes: ``edge_index (2, |E|)``, ``edge_attr (|E|, D)``, ``batch`` -> ``(|E|, out)``.
    """

    def __init__(self, out_channels: int, *, edge_dim: int, num_clusters: int,
                 hidden_channels: int = 32, num_layers: int = 2, pool: str = "hypercluster",
                 heads: int = 1, layer_norm: bool = False, self_loops: bool = True,
                 edge_encoder: str = "linear"):
        super().__init__()
        _check_choice("pool", pool, POOLS)
        H = hidden_channels
        self.pool, self.num_layers, self.self_loops = pool, num_layers, self_loops
        self.edge_encoder = EdgeEncoder(edge_encoder, edge_dim, H)
        if pool == "node_cluster":
            self.node_emb = FeatureEncoder("none", None, H)
            self.enc = nn.ModuleList(
                GINEConv(nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.Linear(H, H)))
                for _ in range(num_layers))
            self.dec = nn.ModuleList(GCNConv(H, H) for _ in range(num_layers))
            self.out = nn.Sequential(nn.Linear(2 * H, H), nn.ReLU(), nn.Linear(H, out_channels))
        else:
            self.enc = nn.ModuleList(DualHypergraphConv(H, H, self_loops)
                                     for _ in range(num_layers))
            self.dec = nn.ModuleList(DualHypergraphConv(H, H, self_loops)
                                     for _ in range(num_layers))
            self.out = DualHypergraphConv(H, out_channels, self_loops)
        self.cluster = None if pool == "none" else HyperCluster(
            H, num_clusters, heads=heads, layer_norm=layer_norm,
            keys="gcn" if pool == "node_cluster" else "hypergraph", self_loops=self_loops)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, data) -> Tensor:
        n, ei = data.num_nodes, data.edge_index
        e = self.edge_encoder(getattr(data, "edge_attr", None), ei.size(1))
        batch, G = graph_of(data, n), num_graphs_of(data)
        if self.pool == "node_cluster":
            x = self.node_emb(None, n)
            for conv in self.enc:
                x = F.relu(conv(x, ei, e))
            c = self.cluster(x, ei, batch, num_graphs=G)
            x = HyperCluster.unpool(c.clusters, c.assignment, c.mask)
            for conv in self.dec:
                x = F.relu(conv(x, ei))
            return self.out(torch.cat([x[ei[0]], x[ei[1]]], dim=1))
        dual = dual_hypergraph_index(ei, n, self.self_loops)
        for conv in self.enc:
            e = F.relu(conv(e, dual=dual))
        if self.cluster is not None:
            c = self.cluster(e, ei, batch[ei[0]], num_graphs=G, dual=dual)
            e = HyperCluster.unpool(c.clusters, c.assignment, c.mask)
        for conv in self.dec:
            e = F.relu(conv(e, dual=dual))
        return self.out(e, dual=dual)
