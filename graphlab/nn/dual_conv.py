r"""Edge message passing on the dual hypergraph (Jo et al., NeurIPS 2021; harryjo97/EHGNN)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.nn import HypergraphConv

__all__ = ["DualHypergraphConv", "dual_hypergraph_index", "dual_incidence"]


def dual_incidence(edge_index: Tensor) -> Tensor:
    r"""The dual's incidence ``[2, 2m]``: column ``2e`` is ``(e, src_e)``, ``2e + 1`` is
    ``(e, dst_e)`` (:math:`\mathbf{M}^\top` as a (dual node, hyperedge) list)."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, m], got {tuple(edge_index.shape)}")
    m = edge_index.size(1)
    ids = torch.arange(m, device=edge_index.device).repeat_interleave(2)
    return torch.stack([ids, edge_index.t().reshape(-1)])


def dual_hypergraph_index(edge_index: Tensor, num_nodes: int,
                          self_loops: bool = True) -> Tuple[Tensor, int]:
    r"""Incidence of the dual hypergraph of ``edge_index`` as the convolution uses it, and its
    hyperedge count.

    Without ``self_loops`` this is :math:`\mathbf{M}^\top` of
    :func:`dual_incidence` with ``num_nodes`` hyperedges.
    With ``self_loops`` every dual node :math:`e` also gets a hyperedge of its own
    (id ``num_nodes + e``) so that its update keeps its own state, and the hyperedges of
    degree-1 nodes, which hold one dual node and would repeat that loop, lose their incidence
    (they stay as empty hyperedges); the rule of the reference code.

    Returns ``(hyperedge_index [2, P], num_hyperedges)``.
    """
    inc = dual_incidence(edge_index)
    if not self_loops:
        return inc, int(num_nodes)
    m = edge_index.size(1)
    size = torch.bincount(inc[1], minlength=num_nodes)
    inc = inc[:, size[inc[1]] != 1]
    ids = torch.arange(m, device=edge_index.device)
    loops = torch.stack([ids, ids + num_nodes])
    return torch.cat([inc, loops], 1), int(num_nodes) + m


class DualHypergraphConv(HypergraphConv):
    r"""Hypergraph convolution on the dual hypergraph of a graph: a message-passing layer
    over **edges** (Jo et al., `"Edge Representation Learning with Hypergraphs"
    <https://arxiv.org/abs/2106.15845>`_, NeurIPS 2021), PyG's
    :class:`~torch_geometric.nn.conv.HypergraphConv` (Bai et al., 2021) applied to
    :math:`G^* = (\mathbf{E}, \mathbf{M}^\top, \mathbf{X})`:

    .. math::
        \mathbf{E}' = \mathbf{D}_e^{-1} \tilde{\mathbf{M}}^\top \mathbf{B}^{-1}
        \tilde{\mathbf{M}} \mathbf{E} \mathbf{\Theta} + \mathbf{b}

    where :math:`\tilde{\mathbf{M}} \in \mathbb{R}^{n' \times m}` is the incidence of
    :func:`dual_hypergraph_index` (nodes of the graph, plus one loop per edge with
    ``self_loops``), :math:`\mathbf{B}` its hyperedge sizes and :math:`\mathbf{D}_e` the
    number of hyperedges of each edge. Edge-wise: edge :math:`e = (u, v)` averages the mean
    edge state at :math:`u`, the mean at :math:`v` and (with loops) its own state.

    Args:
        in_channels (int): edge feature size :math:`D`.
        out_channels (int): output size.
        self_loops (bool): add a hyperedge per edge (default ``True``, as the reference).
        bias (bool): learn :math:`\mathbf{b}` (default ``True``).

    Shapes: ``edge_attr (|E|, D)``, ``edge_index (2, |E|)`` -> ``(|E|, out)``. A precomputed
    ``dual = dual_hypergraph_index(...)`` skips rebuilding the incidence.
    """

    def __init__(self, in_channels: int, out_channels: int, self_loops: bool = True,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, use_attention=False, bias=bias)
        self.self_loops = self_loops

    def forward(self, edge_attr: Tensor, edge_index: Optional[Tensor] = None,
                num_nodes: Optional[int] = None,
                dual: Optional[Tuple[Tensor, int]] = None) -> Tensor:
        if dual is None:
            if edge_index is None or num_nodes is None:
                raise ValueError("DualHypergraphConv needs edge_index and num_nodes, or dual")
            dual = dual_hypergraph_index(edge_index, num_nodes, self.self_loops)
        hyperedge_index, num_hyperedges = dual
        return super().forward(edge_attr, hyperedge_index, num_edges=num_hyperedges)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"self_loops={self.self_loops})")
