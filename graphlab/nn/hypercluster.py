r"""HyperCluster: soft clustering of edges on the dual hypergraph (Jo et al., NeurIPS 2021;
harryjo97/EHGNN), with the same block over nodes as a GMPool-style node clustering."""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GCNConv
from torch_geometric.utils import to_dense_batch

from graphlab.nn.dual_conv import DualHypergraphConv, dual_hypergraph_index

__all__ = ["HyperCluster", "HyperClusterOutput"]

KEYS = ("hypergraph", "gcn")


class HyperClusterOutput(NamedTuple):
    clusters: Tensor    #: pooled representation ``[G, k, H]``
    assignment: Tensor  #: soft assignment ``[G, heads, k, M]`` (columns of members sum to 1)
    mask: Tensor        #: ``[G, M]``, True where a padded column is a real member


class HyperCluster(nn.Module):
    r"""HyperCluster from `"Edge Representation Learning with Hypergraphs"
    <https://arxiv.org/abs/2106.15845>`_ (Jo et al., NeurIPS 2021): :math:`k` learned seed
    vectors attend over the edges of each graph, in the multiset-attention style of GMPool
    (Baek et al., ICLR 2021), with the softmax taken over the **seeds** so that every edge
    splits itself over the :math:`k` clusters:

    .. math::
        \mathbf{Q} = \mathbf{S}\mathbf{W}_Q,\quad
        \mathbf{K} = \mathrm{HConv}_K(\mathbf{E}),\quad
        \mathbf{V} = \mathrm{HConv}_V(\mathbf{E}),\quad
        \mathbf{A} = \mathrm{softmax}_{\text{seeds}}\!\big(\mathbf{Q}\mathbf{K}^\top /
        \sqrt{H}\big) \in \mathbb{R}^{k \times m_g}

    .. math::
        \mathbf{O} = \mathrm{LN}_0(\mathbf{Q} + \mathbf{A}\mathbf{V}),\qquad
        \mathbf{C} = \mathrm{LN}_1\big(\mathbf{O} + \mathrm{ReLU}(\mathbf{O}\mathbf{W}_O +
        \mathbf{b}_O)\big) \in \mathbb{R}^{k \times H}

    per head (heads split the channels). :math:`\mathrm{HConv}` is
    :class:`~graphlab.nn.dual_conv.DualHypergraphConv`, so keys and values see the edges'
    neighbourhoods. :meth:`unpool` maps the clusters back to the members,
    :math:`\mathbf{A}^\top \mathbf{C}` (heads averaged).

    With ``keys='gcn'`` the members are the **nodes** and keys/values come from a PyG
    ``GCNConv`` on the graph: the same block as a GMPool-style node clustering, which is the
    node-pooling baseline for edge reconstruction.

    Choices (documented because the equation leaves them open): the scale is
    :math:`\sqrt{H}` (the full width, as the reference code), padded members get zero
    assignment, a graph with no members gets :math:`\mathbf{O} = \mathbf{Q}`, and ``layer_norm``
    switches both LayerNorms (off in the reference's reconstruction runs).

    Args:
        channels (int): member feature size :math:`H` (divisible by ``heads``).
        num_clusters (int): :math:`k`.
        heads (int): attention heads (default 1, the reference).
        layer_norm (bool): apply :math:`\mathrm{LN}_0, \mathrm{LN}_1` (default ``False``).
        keys (str): ``'hypergraph'`` (edges, default) or ``'gcn'`` (nodes).
        self_loops (bool): loops in the dual for the key/value convolutions.

    Shapes: ``x (N, H)`` members (edges or nodes), ``edge_index (2, |E|)``, ``batch (N,)``
    (graph of every member, sorted) -> :class:`HyperClusterOutput`, ``M`` = most members in a
    graph.
    """

    def __init__(self, channels: int, num_clusters: int, heads: int = 1,
                 layer_norm: bool = False, keys: str = "hypergraph", self_loops: bool = True):
        super().__init__()
        if keys not in KEYS:
            raise ValueError(f"keys={keys!r} is not one of {', '.join(KEYS)}")
        if num_clusters < 1:
            raise ValueError(f"num_clusters must be >= 1, got {num_clusters}")
        if channels % heads:
            raise ValueError(f"channels={channels} must be divisible by heads={heads}")
        self.channels, self.num_clusters, self.heads = channels, int(num_clusters), heads
        self.keys, self.self_loops = keys, self_loops
        self.seeds = nn.Parameter(torch.empty(1, self.num_clusters, channels))
        self.lin_q = nn.Linear(channels, channels)
        if keys == "hypergraph":
            self.conv_k = DualHypergraphConv(channels, channels, self_loops=self_loops)
            self.conv_v = DualHypergraphConv(channels, channels, self_loops=self_loops)
        else:
            self.conv_k = GCNConv(channels, channels)
            self.conv_v = GCNConv(channels, channels)
        self.lin_o = nn.Linear(channels, channels)
        self.norm0 = nn.LayerNorm(channels) if layer_norm else nn.Identity()
        self.norm1 = nn.LayerNorm(channels) if layer_norm else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.seeds)
        for m in (self.lin_q, self.conv_k, self.conv_v, self.lin_o, self.norm0, self.norm1):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def _keys_values(self, x: Tensor, edge_index: Tensor, num_nodes: Optional[int],
                     dual: Optional[Tuple[Tensor, int]]) -> Tuple[Tensor, Tensor]:
        if self.keys == "gcn":
            return self.conv_k(x, edge_index), self.conv_v(x, edge_index)
        if dual is None:
            if num_nodes is None:
                raise ValueError("HyperCluster over edges needs num_nodes (or dual)")
            dual = dual_hypergraph_index(edge_index, num_nodes, self.self_loops)
        return self.conv_k(x, dual=dual), self.conv_v(x, dual=dual)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor,
                num_nodes: Optional[int] = None, num_graphs: Optional[int] = None,
                dual: Optional[Tuple[Tensor, int]] = None) -> HyperClusterOutput:
        if x.dim() != 2 or x.size(1) != self.channels:
            raise ValueError(f"x must be [N, {self.channels}], got {tuple(x.shape)}")
        if batch.numel() != x.size(0):
            raise ValueError(f"batch has {batch.numel()} entries for {x.size(0)} members")
        G = int(num_graphs) if num_graphs is not None else (int(batch.max()) + 1 if batch.numel()
                                                             else 1)
        k_, v_ = self._keys_values(x, edge_index, num_nodes, dual)
        K, mask = to_dense_batch(k_, batch, batch_size=G)
        V, _ = to_dense_batch(v_, batch, batch_size=G)
        h, d = self.heads, self.channels // self.heads
        Q = self.lin_q(self.seeds).expand(G, -1, -1)
        Qh, Kh, Vh = (t.view(G, t.size(1), h, d).transpose(1, 2) for t in (Q, K, V))
        logits = Qh @ Kh.transpose(-1, -2) / math.sqrt(self.channels)  # [G, h, k, M]
        A = torch.softmax(logits, dim=2) * mask[:, None, None, :].to(logits.dtype)
        O = (Qh + A @ Vh).transpose(1, 2).reshape(G, self.num_clusters, self.channels)
        O = self.norm0(O)
        O = self.norm1(O + F.relu(self.lin_o(O)))
        return HyperClusterOutput(O, A, mask)

    @staticmethod
    def unpool(clusters: Tensor, assignment: Tensor, mask: Tensor) -> Tensor:
        r""":math:`\mathbf{A}^\top \mathbf{C}` for every graph, back on the members ``[N, H]``
        (assignments averaged over heads)."""
        A = assignment.mean(1)  # [G, k, M]
        return (A.transpose(1, 2) @ clusters)[mask]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.channels}, num_clusters={self.num_clusters}, "
                f"heads={self.heads}, keys={self.keys})")
