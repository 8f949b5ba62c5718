r"""Self-loops for GCN and GAT without data-dependent sizes (so steps can be CUDA graphs).

PyG's convolutions add self-loops inside ``forward``: :class:`~torch_geometric.nn.GCNConv` with
``add_remaining_self_loops`` and :class:`~torch_geometric.nn.GATConv` /
:class:`~torch_geometric.nn.GATv2Conv` with ``remove_self_loops`` then ``add_self_loops``.
Both drop the graph's existing loops with a boolean mask, so the output size depends on the
data; on a GPU that reads a count back to the host, which a CUDA-graph recording refuses
(``task.cuda_graphs``). The functions here produce the same convolution with a size fixed by
the input, ``E + N`` edges, and no read-back:

* :func:`gcn_self_loops` (GCN's rule). Every input edge stays where it is; an existing loop
  gets weight 0, so it adds nothing to a degree or a weighted sum. Node ``i`` gets one appended
  loop, weighted as ``add_remaining_self_loops`` weights it: the weight of ``i``'s existing loop
  when weights are given and it has one, else ``fill_value``.
* :func:`gat_self_loops` (GAT's rule). The attention softmax has no neutral weight, so an
  existing loop is moved to a spare node ``N`` instead: the convolution runs on ``N + 1`` nodes
  (the caller appends a row to ``x`` and drops it from the output). Node ``i`` gets one appended
  loop whose edge feature is the mean of its incoming non-loop edges' features
  (``fill_value='mean'``, PyG's default for GAT).

Sparse adjacencies (``torch.sparse`` or ``SparseTensor``) take PyG's own utilities, as the
convolutions would; only the ``edge_index`` form is rewritten. For graphs without self-loops
the edge list equals PyG's (the input edges, then the loops in node order); the tests compare
both rules against the PyG convolutions in float64, with and without existing loops.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import (add_self_loops, is_torch_sparse_tensor, remove_self_loops,
                                   scatter)

__all__ = ["gcn_self_loops", "gat_self_loops", "gat_conv_with_self_loops", "is_edge_list"]


def is_edge_list(edge_index) -> bool:
    """True for a ``[2, E]`` index tensor (also ``EdgeIndex``), False for sparse adjacencies."""
    return isinstance(edge_index, Tensor) and not is_torch_sparse_tensor(edge_index)


def _loop_index(num_nodes: int, like: Tensor) -> Tensor:
    loops = torch.arange(num_nodes, device=like.device, dtype=like.dtype)
    return torch.stack([loops, loops])


def gcn_self_loops(edge_index, edge_weight: Optional[Tensor], num_nodes: int,
                   fill_value: float = 1.0, dtype: Optional[torch.dtype] = None
                   ) -> Tuple[object, Optional[Tensor]]:
    """``edge_index`` and weights with one self-loop per node, for a convolution built with
    ``add_self_loops=False`` (see the module docstring). Returns ``[2, E + N]`` indices and
    ``[E + N]`` weights (of ``dtype`` when no weights are given) for an edge list; a sparse
    adjacency with its diagonal filled (weights None) as ``gcn_norm`` does it."""
    if isinstance(edge_index, SparseTensor):
        import torch_sparse
        adj = edge_index if edge_index.has_value() else edge_index.fill_value(1.0)
        return torch_sparse.fill_diag(adj, fill_value), None
    if is_torch_sparse_tensor(edge_index):
        return add_self_loops(edge_index, None, fill_value, num_nodes)[0], None
    edge_index = edge_index.as_subclass(Tensor) if type(edge_index) is not Tensor else edge_index
    E = edge_index.size(1)
    is_loop = edge_index[0] == edge_index[1]
    weight = edge_weight if edge_weight is not None else \
        torch.ones(E, device=edge_index.device, dtype=dtype)
    if edge_weight is not None:
        # node i's loop weight: its existing loop's weight, else fill_value; non-loop edges
        # write into the spare slot N, which is dropped
        slot = torch.where(is_loop, edge_index[0], num_nodes)
        loop_weight = weight.new_full((num_nodes + 1,), fill_value)
        loop_weight = loop_weight.scatter(0, slot, weight)[:num_nodes]
    else:  # add_remaining_self_loops without weights: gcn_norm then weights every edge 1
        loop_weight = weight.new_ones(num_nodes)
    weight = weight.masked_fill(is_loop, 0.0)
    index = torch.cat([edge_index, _loop_index(num_nodes, edge_index)], dim=1)
    return index, torch.cat([weight, loop_weight])


def gat_self_loops(edge_index, edge_attr: Optional[Tensor], num_nodes: int
                   ) -> Tuple[object, Optional[Tensor]]:
    """``edge_index`` and edge features with one self-loop per node, for a GAT convolution
    built with ``add_self_loops=False`` (see the module docstring). For an edge list the result
    addresses ``num_nodes + 1`` nodes: the input's own loops are moved to the spare node
    ``num_nodes``; run the convolution on ``x`` with one row appended and drop that row of the
    output. Sparse adjacencies take PyG's ``remove_self_loops`` / ``add_self_loops`` (or
    ``set_diag``) as ``GATConv`` does, and address ``num_nodes`` nodes."""
    if isinstance(edge_index, SparseTensor):
        if edge_attr is not None:
            raise NotImplementedError("GAT with edge features needs an edge_index list, not a "
                                      "SparseTensor (as in PyG)")
        import torch_sparse
        return torch_sparse.set_diag(edge_index), None
    if is_torch_sparse_tensor(edge_index):
        edge_index, edge_attr = remove_self_loops(edge_index, edge_attr)
        return add_self_loops(edge_index, edge_attr, fill_value="mean", num_nodes=num_nodes)
    edge_index = edge_index.as_subclass(Tensor) if type(edge_index) is not Tensor else edge_index
    is_loop = edge_index[0] == edge_index[1]
    moved = torch.where(is_loop, num_nodes, edge_index)
    index = torch.cat([moved, _loop_index(num_nodes, edge_index)], dim=1)
    if edge_attr is None:
        return index, None
    loop_attr = scatter(edge_attr, moved[1], 0, dim_size=num_nodes + 1, reduce="mean")
    return index, torch.cat([edge_attr, loop_attr[:num_nodes]], dim=0)


def gat_conv_with_self_loops(conv, x: Tensor, edge_index, edge_attr: Optional[Tensor] = None
                             ) -> Tensor:
    """``conv(x, edge_index, edge_attr)`` for a ``GATConv`` / ``GATv2Conv`` built with
    ``add_self_loops=False``, with the self-loops PyG would add (:func:`gat_self_loops`; for an
    edge list, ``x`` gets the spare row and the output loses it)."""
    N = x.size(0)
    index, attr = gat_self_loops(edge_index, edge_attr, N)
    if not is_edge_list(edge_index):
        return conv(x, index, attr)
    return conv(torch.cat([x, x.new_zeros(1, x.size(1))]), index, attr)[:N]
