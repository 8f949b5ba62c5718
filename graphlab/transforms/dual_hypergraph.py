r"""The Dual Hypergraph Transformation (DHT) of Jo et al., "Edge Representation Learning with
Hypergraphs", NeurIPS 2021 (https://arxiv.org/abs/2106.15845; code: harryjo97/EHGNN).

A graph :math:`G = (\mathbf{X}, \mathbf{M}, \mathbf{E})` with node features
:math:`\mathbf{X} \in \mathbb{R}^{n \times F}`, incidence matrix
:math:`\mathbf{M} \in \{0, 1\}^{n \times m}` (:math:`\mathbf{M}_{ve} = 1` when node :math:`v` is an
endpoint of edge :math:`e`) and edge features :math:`\mathbf{E} \in \mathbb{R}^{m \times D}`
becomes its dual hypergraph

.. math::
    G^* = (\mathbf{E}, \mathbf{M}^\top, \mathbf{X}),

whose :math:`m` nodes are the edges of :math:`G` (with the edge features as node features) and
whose :math:`n` hyperedges are the nodes of :math:`G` (with the node features as hyperedge
features): hyperedge :math:`v` holds every edge incident to :math:`v`. Transposing twice gives
the graph back, :math:`(G^*)^* = G`.

Layout. The dual is a :class:`DualHypergraphData`: ``x`` ``[m, D]`` (the edge features),
``hyperedge_index`` ``[2, 2m]`` (row 0: dual node = edge id, row 1: hyperedge = original node id,
PyG ``HypergraphConv``'s convention), ``hyperedge_attr`` ``[n, F]`` (the node features),
``num_nodes = m`` and ``num_hyperedges = n``. Column ``2e`` holds edge ``e``'s source and
column ``2e + 1`` its target, so the incidence keeps each edge's direction and the order of the
edges, and the inverse is a reshape.

Rules for the cases the equation leaves open (all exact under the round trip):

* Direction: every column of ``edge_index`` is one edge, so an undirected graph stored with
  both directions (PyG's convention) has two dual nodes per undirected edge, both in the same
  two hyperedges (the reference code does the same).
* Self-loops: an edge :math:`v \to v` lies in hyperedge :math:`v` twice (an incidence of
  multiplicity 2; :math:`\mathbf{M}_{ve} = 2`).
* Multi-edges: parallel edges are distinct dual nodes with the same incidence.
* Isolated nodes: empty hyperedges; ``num_hyperedges`` keeps their count (and
  ``hyperedge_attr`` their features).
* Missing features: no ``edge_attr`` gives a dual without ``x`` and no ``x`` a dual without
  ``hyperedge_attr``; the round trip restores both as absent.
* Every other attribute (``y``, ``edge_weight``, ...) is carried over unchanged under its own
  name, in both directions.

Batches. Applied to a PyG ``Batch`` of graphs, the transform returns the ``Batch`` of their
duals (the incidence of a batch is block diagonal, so the dual of the batch is the batch of the
duals): ``batch`` and ``ptr`` index the dual nodes (the edges), per-graph offsets are kept, and
``to_data_list()`` gives each graph's dual. Edges must be grouped by graph, as PyG's collation
leaves them. :func:`hyperedge_batch` gives the graph of every hyperedge.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import BaseTransform
from graphlab.nn.dual_conv import dual_incidence  # noqa: F401  (part of this API)

__all__ = ["DualHypergraph", "DualHypergraphData", "dual_incidence", "graph_from_incidence",
           "hyperedge_batch"]

#: attribute names the transform moves; everything else is copied unchanged
_MOVED = ("x", "edge_index", "edge_attr", "hyperedge_index", "hyperedge_attr", "num_nodes",
          "num_hyperedges", "batch", "ptr")


class DualHypergraphData(Data):
    r"""A dual hypergraph: ``x`` ``[m, D]`` on its nodes, ``hyperedge_index`` ``[2, 2m]``
    (node, hyperedge) incidences, ``hyperedge_attr`` ``[n, F]`` and ``num_hyperedges = n``.

    Collation increments row 0 of ``hyperedge_index`` by the number of nodes and row 1 by the
    number of hyperedges (also when trailing hyperedges are empty, where PyG's
    ``HyperGraphData`` would read the count off the largest index).
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "hyperedge_index":
            return torch.tensor([[int(self.num_nodes)], [int(self.num_hyperedges)]])
        return super().__inc__(key, value, *args, **kwargs)


def graph_from_incidence(hyperedge_index: Tensor, num_nodes: int) -> Tensor:
    """``edge_index`` ``[2, m]`` of the graph whose dual has incidence ``hyperedge_index``
    (inverse of :func:`dual_incidence`); ``num_nodes`` is the dual's node count ``m``."""
    if hyperedge_index.dim() != 2 or hyperedge_index.size(0) != 2:
        raise ValueError("hyperedge_index must have shape [2, 2m], got "
                         f"{tuple(hyperedge_index.shape)}")
    expected = torch.arange(num_nodes, device=hyperedge_index.device).repeat_interleave(2)
    if hyperedge_index.size(1) != 2 * num_nodes or not torch.equal(hyperedge_index[0], expected):
        raise ValueError("not the dual of a graph: expected every dual node e in exactly two "
                         "incidences, in columns 2e (source) and 2e + 1 (target), as "
                         "DualHypergraph writes them")
    return hyperedge_index[1].view(-1, 2).t().contiguous()


def hyperedge_batch(dual) -> Tensor:
    """The graph index of every hyperedge of a (batched) dual hypergraph ``[n]``."""
    counts = torch.as_tensor(dual.num_hyperedges).view(-1)
    device = dual.hyperedge_index.device
    return torch.arange(counts.numel(), device=device).repeat_interleave(counts.to(device))


def _counts(batch: Tensor, num_graphs: int) -> Tensor:
    return torch.bincount(batch, minlength=num_graphs)


def _ptr(counts: Tensor) -> Tensor:
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


class DualHypergraph(BaseTransform):
    r"""The Dual Hypergraph Transformation (DHT): graph :math:`(\mathbf{X}, \mathbf{M},
    \mathbf{E})` :math:`\leftrightarrow` dual hypergraph :math:`(\mathbf{E}, \mathbf{M}^\top,
    \mathbf{X})`, from `"Edge Representation Learning with Hypergraphs"
    <https://arxiv.org/abs/2106.15845>`_ (Jo et al., NeurIPS 2021).

    The transform is its own inverse: a graph (``edge_index``) becomes a
    :class:`DualHypergraphData`, and a dual (``hyperedge_index``) becomes the graph again, so
    ``DualHypergraph()(DualHypergraph()(data))`` equals ``data`` exactly (features are moved,
    never computed). See the module docstring for the layout and the rules for self-loops,
    multi-edges, isolated nodes and missing features. Works on single graphs and on PyG
    ``Batch`` objects (per-graph offsets kept).

    Shapes:
        graph: ``x [n, F]``, ``edge_index [2, m]``, ``edge_attr [m, D]`` ->
        dual: ``x [m, D]``, ``hyperedge_index [2, 2m]``, ``hyperedge_attr [n, F]``.
    """

    def forward(self, data):
        is_dual = "hyperedge_index" in data
        if not is_dual and getattr(data, "edge_index", None) is None:
            raise ValueError("DualHypergraph needs a graph (edge_index) or a dual hypergraph "
                             "(hyperedge_index)")
        if isinstance(data, Batch):
            return self._batch(data, is_dual)
        if is_dual:
            return Data(**self._to_graph(data))
        return DualHypergraphData(**self._to_dual(data))

    # -- one graph --------------------------------------------------------------------------
    @staticmethod
    def _rest(data) -> dict:
        return {k: v for k, v in data.items() if k not in _MOVED}

    def _to_dual(self, data) -> dict:
        n = data.num_nodes
        if n is None:
            raise ValueError("the graph's node count is unknown: set data.num_nodes")
        ei = data.edge_index
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n):
            raise ValueError(f"edge_index refers to nodes outside 0..{n - 1}")
        out = self._rest(data)
        out.update(hyperedge_index=dual_incidence(ei), num_nodes=ei.size(1),
                   num_hyperedges=int(n))
        if getattr(data, "edge_attr", None) is not None:
            out["x"] = data.edge_attr
        if getattr(data, "x", None) is not None:
            out["hyperedge_attr"] = data.x
        return out

    def _to_graph(self, data) -> dict:
        m = data.num_nodes
        if m is None:
            raise ValueError("the dual's node count is unknown: set data.num_nodes")
        out = self._rest(data)
        out.update(edge_index=graph_from_incidence(data.hyperedge_index, int(m)),
                   num_nodes=int(torch.as_tensor(data.num_hyperedges).sum()))
        if getattr(data, "x", None) is not None:
            out["edge_attr"] = data.x
        if getattr(data, "hyperedge_attr", None) is not None:
            out["x"] = data.hyperedge_attr
        return out

    # -- batches ----------------------------------------------------------------------------
    def _batch(self, data: Batch, is_dual: bool) -> Batch:
        G = data.num_graphs
        if is_dual:  # dual nodes -> edges, hyperedges -> nodes
            edge_graph = data.batch
            node_counts = torch.as_tensor(data.num_hyperedges).view(-1).to(edge_graph.device)
            node_graph = torch.arange(G, device=edge_graph.device).repeat_interleave(node_counts)
            fields = self._to_graph(data)
            base, new_batch, new_counts = Data, node_graph, node_counts
        else:
            node_graph = data.batch
            edge_graph = node_graph[data.edge_index[0]]
            if edge_graph.numel() > 1 and bool((edge_graph[1:] < edge_graph[:-1]).any()):
                raise ValueError("the batch's edges are not grouped by graph; collate it with "
                                 "PyG's Batch.from_data_list")
            node_counts = _counts(node_graph, G)
            fields = self._to_dual(data)
            base, new_batch, new_counts = DualHypergraphData, edge_graph, _counts(edge_graph, G)
        edge_counts = _counts(edge_graph, G)
        node_ptr, edge_ptr = _ptr(node_counts), _ptr(edge_counts)
        out = Batch(_base_cls=base)
        for k, v in fields.items():
            setattr(out, k, v)
        out.batch, out.ptr = new_batch, _ptr(new_counts)
        if not is_dual:
            out.num_hyperedges = node_counts.cpu()
        slices, incs = self._slices_and_incs(data, is_dual, node_ptr.cpu(), edge_ptr.cpu(), G)
        out._slice_dict, out._inc_dict, out._num_graphs = slices, incs, G
        out._store._num_nodes = new_counts.tolist()
        return out

    @staticmethod
    def _slices_and_incs(data: Batch, is_dual: bool, node_ptr: Tensor, edge_ptr: Tensor,
                         G: int) -> Tuple[dict, dict]:
        """Per-graph slices and increments of the output batch (what ``to_data_list`` reads),
        in PyG's collate format; keys that are not moved keep the input's entries."""
        zeros = torch.zeros(G, dtype=torch.long)
        slices = {k: v for k, v in data._slice_dict.items() if k not in _MOVED}
        incs = {k: v for k, v in data._inc_dict.items() if k not in _MOVED}
        has_edge_feat = "x" in data if is_dual else "edge_attr" in data
        has_node_feat = "hyperedge_attr" in data if is_dual else "x" in data
        if is_dual:
            slices["edge_index"], incs["edge_index"] = edge_ptr, node_ptr[:-1]
            feats = {"edge_attr": (has_edge_feat, edge_ptr), "x": (has_node_feat, node_ptr)}
        else:
            slices["hyperedge_index"] = 2 * edge_ptr
            incs["hyperedge_index"] = torch.stack([edge_ptr[:-1], node_ptr[:-1]], 1).unsqueeze(-1)
            slices["num_hyperedges"], incs["num_hyperedges"] = torch.arange(G + 1), zeros
            feats = {"x": (has_edge_feat, edge_ptr), "hyperedge_attr": (has_node_feat, node_ptr)}
        for k, (present, ptr) in feats.items():
            if present:
                slices[k], incs[k] = ptr, zeros
        return slices, incs

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def dual_hypergraph(data) -> Optional[DualHypergraphData]:
    """Functional form of :class:`DualHypergraph`."""
    return DualHypergraph()(data)
