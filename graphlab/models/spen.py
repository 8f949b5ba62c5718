"""SPEN: Subgraph Permutation Equivariant Networks (Mitton & Murray-Smith, arXiv 2111.11840)."""
from __future__ import annotations

from typing import Annotated, List, Optional, Tuple

import torch
from torch import Tensor, nn
import torch.nn.functional as F
from torch_geometric.utils import scatter

from graphlab.models.basic import POOLS, TASK_LEVELS, _check_choice, readout
from graphlab.nn.checks import check_no_nan
from graphlab.nn.encoders import EdgeEncoder, FeatureEncoder
from graphlab.nn.equivariant import REDUCES, EquivariantLinear, SetLayout
from graphlab.registry import register_model
from graphlab.schema import Range


def ego_net_slots(edge_index: Tensor, num_nodes: int, num_hops: int) -> Tensor:
    r"""Membership of every :math:`k`-hop ego-network, vectorised (breadth-first frontier
    expansion over the symmetrised graph, no loop over nodes).

    Returns the sorted keys ``center * num_nodes + node`` of all pairs with
    :math:`d(\text{center}, \text{node}) \le k`, so the slots of one ego-net are contiguous and
    in node order.
    """
    if num_hops < 0:
        raise ValueError(f"num_hops must be >= 0, got {num_hops}")
    N = num_nodes
    dev = edge_index.device
    nodes = torch.arange(N, device=dev)
    keys = nodes * N + nodes
    if num_hops == 0 or edge_index.numel() == 0:
        return keys
    und = torch.unique(torch.cat([edge_index[0] * N + edge_index[1],
                                  edge_index[1] * N + edge_index[0]]))
    src, dst = und // N, und % N
    rowptr = torch.cat([src.new_zeros(1), torch.bincount(src, minlength=N).cumsum(0)])
    frontier = keys
    for _ in range(num_hops):
        c, u = frontier // N, frontier % N
        deg = rowptr[u + 1] - rowptr[u]
        first = torch.repeat_interleave(rowptr[u], deg)
        offset = torch.arange(int(deg.sum()), device=dev) - torch.repeat_interleave(
            deg.cumsum(0) - deg, deg)
        new = torch.unique(torch.repeat_interleave(c, deg) * N + dst[first + offset])
        frontier = new[~torch.isin(new, keys)]
        if frontier.numel() == 0:
            break
        keys = torch.unique(torch.cat([keys, frontier]))
    return keys


def ego_net_layout(edge_index: Tensor, num_nodes: int, num_hops: int
                   ) -> Tuple[SetLayout, Tensor, Tensor, Tensor]:
    """Ragged layout of all ego-nets of a (batched) graph.

    Returns ``(layout, slot_node [M1], edge_pair [E'], edge_id [E'])``: the set of node ``c``
    is its ego-net; ``edge_pair`` is the order-2 entry ``(c, source, target)`` of every edge
    whose two ends lie in ego-net ``c`` and ``edge_id`` that edge's column in ``edge_index``.
    """
    N = num_nodes
    keys = ego_net_slots(edge_index, N, num_hops)
    centers = keys // N
    layout = SetLayout(torch.bincount(centers, minlength=N))
    slot_node = keys % N
    # For each slot (c, a), every edge a -> b; keep those with b in ego-net c.
    order = torch.argsort(edge_index[0], stable=True)
    src, dst = edge_index[0, order], edge_index[1, order]
    rowptr = torch.cat([src.new_zeros(1), torch.bincount(src, minlength=N).cumsum(0)])
    deg = rowptr[slot_node + 1] - rowptr[slot_node]
    slot = torch.repeat_interleave(torch.arange(keys.numel(), device=keys.device), deg)
    offset = torch.arange(slot.numel(), device=keys.device) - torch.repeat_interleave(
        deg.cumsum(0) - deg, deg)
    pos = rowptr[slot_node[slot]] + offset
    want = centers[slot] * N + dst[pos]
    hit = torch.searchsorted(keys, want).clamp(max=max(keys.numel() - 1, 0))
    found = keys[hit] == want
    slot, hit, pos = slot[found], hit[found], pos[found]
    return layout, slot_node, layout.pair_index(slot, hit), order[pos]


@register_model("spen")
class SPEN(nn.Module):
    r"""Subgraph Permutation Equivariant Network (`"Subgraph Permutation Equivariant Networks"
    <https://arxiv.org/abs/2111.11840>`_, Mitton & Murray-Smith; arXiv v1 was titled "Local
    Permutation Equivariance For Graph Neural Networks").

    Every node :math:`c` contributes its :math:`k`-hop ego-network :math:`S_c` (induced
    subgraph). Each ego-net is a dense order-2 tensor
    :math:`\mathbf{X}_c \in \mathbb{R}^{n_c \times n_c \times C}` with the node features on the
    diagonal and the adjacency (and encoded edge features) off the diagonal. Layers are
    permutation-equivariant linear maps (:class:`graphlab.nn.EquivariantLinear`, the full
    Maron et al. basis of order 1/2, so every layer commutes with the automorphisms of each
    ego-net) followed by a pointwise nonlinearity:

    .. math::
        \mathbf{X}^{(\ell+1)}_c = \sigma\big(L^{(\ell)}(\mathbf{X}^{(\ell)}_c)\big),\qquad
        \mathbf{x}^{(\ell+1)}_{c,v} \mathrel{+}= \underset{c' \ni v}{\mathrm{mean}}\;
        \mathbf{x}^{(\ell+1)}_{c',v}

    The second step (``cross_subgraph``) shares state between the ego-nets that hold the same
    node. ``mean``/``sum`` (our reading, the default) add the node's mean/sum over those ego-nets
    to its order-1 slot or order-2 diagonal entry after the nonlinearity. ``replace`` follows the
    authors' public code (github.com/JoshuaMitton/LPEGN, ``layers/subgraphs.py``:
    ``subnodes_to_nodes`` / ``subgraphs_to_graph``, read 2026-11): after every layer's linear map
    each order-1 entry :math:`(c, v)` is *replaced* by its mean over all ego-nets holding
    :math:`v`, and each order-2 entry :math:`(c, u, v)` (every pair, diagonal and off-diagonal)
    by its mean over all ego-nets holding both :math:`u` and :math:`v`; the next layer reads its
    ego-net tensors back from these graph-level states, then norm and nonlinearity follow.

    The last layer is order 1. Readout: by default node :math:`v`'s representation is pooled
    over all ego-nets that contain it (``node_pool``), then a graph readout (``pool``) and an
    MLP head. With ``subgraph_readout=True`` (the authors' code: a final invariant order-0 map per
    sub-graph, then the mean over sub-graphs of each graph) the last layer's order-1 output is
    averaged (``reduce``) over each ego-net's slots before norm and nonlinearity, which spans
    the invariant 2→0 / 1→0 linear maps (diagonal and total pooling; for ``reduce='sum'`` up
    to factors of the ego-net size), and the ego-net vectors (one per centre node) go to
    ``pool`` and the head.

    Not reproduced from the authors' code (documented deviations): their layers carry an order-2
    and an order-1 tensor side by side (four maps 2→2, 1→2, 2→1, 1→1, outputs concatenated),
    keep a separate weight set per sub-graph *size* (ego-nets of equal size share weights: the
    "automorphism group" of the abstract), use ELU, GraphNorm and residual connections, and feed
    the PPGN input (normalised adjacency in every channel plus one-hot labels on the diagonal).
    The 1-hop "ego-net" there is the node's neighbour list in ``edge_index`` (with self-loops on
    labelled datasets, none on IMDB). The paper's own text beyond the abstract was not available
    to check against.

    Batching: all ego-nets of a batch form one block-diagonal, ragged tensor
    (:class:`graphlab.nn.equivariant.SetLayout`; ``Σ_c n_c^2`` rows, no padding) built with
    vectorised index arithmetic, so no Python loop runs per node or per subgraph. Memory is
    :math:`O(\sum_c n_c^2 C)` instead of :math:`O(|V|^2 C)` for a global order-2 network.

    Args:
        in_channels (int): node feature size (from the dataset).
        out_channels (int): outputs per graph / node.
        hidden_channels (int): channels of every layer (default: ``32``).
        num_hops (int): :math:`k` of the ego-nets (default: ``1``).
        orders (list of int): output order (1 or 2) of each equivariant layer; the last must be
            1 (default: ``[2, 2, 1]``).
        input_order (int): 2 (adjacency + node features) or 1 (node features only) (default: ``2``).
        reduce (str): ``mean`` or ``sum`` for the pooling basis maps (default: ``'mean'``).
        cross_subgraph (str): ``mean``, ``sum``, ``replace`` (authors' code) or ``none``
            (default: ``'mean'``).
        node_pool (str): ``mean`` or ``sum`` over the ego-nets containing a node (default: ``'mean'``).
        subgraph_readout (bool): read out per ego-net (order 0) instead of per node
            (default: ``False``).
        mark_center (bool): add a channel marking each ego-net's centre (default: ``False``).
        norm (str): ``batch`` (BatchNorm over all entries, i.e. per channel) or ``none`` after
            each layer (default: ``'batch'``). With BatchNorm keep the learning rate moderate (1e-3):
            at 1e-2 the running statistics of order-2 layers lag the batch statistics and
            evaluation-mode outputs drift (seen on MUTAG).
        dropout (float): dropout after each layer.
        pool (str): graph readout ``sum|mean|max`` (default: ``'sum'``).
        readout_layers (int): layers of the MLP head (default: ``2``).
        task_level, node_encoder, edge_dim, edge_encoder: filled by the trainer.

    Shapes: ``x (|V|, F_in)``, ``edge_index (2, |E|)``, optional ``edge_attr (|E|, D)`` ->
    ``(num_graphs, out)`` (graph level) or ``(|V|, out)`` (node level; with
    ``subgraph_readout`` row :math:`v` is node :math:`v`'s ego-net).
    """

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: Annotated[int, Range(ge=1)] = 32,
                 num_hops: int = 1, orders: List[int] = (2, 2, 1), input_order: int = 2,
                 reduce: str = "mean", cross_subgraph: str = "mean", node_pool: str = "mean",
                 subgraph_readout: bool = False, mark_center: bool = False,
                 norm: str = "batch", dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0,
                 pool: str = "sum", readout_layers: int = 2, task_level: str = "graph",
                 node_encoder: str = "linear", edge_dim: Optional[int] = None,
                 edge_encoder: str = "linear"):
        super().__init__()
        _check_choice("task_level", task_level, TASK_LEVELS)
        _check_choice("pool", pool, tuple(POOLS))
        _check_choice("reduce", reduce, REDUCES)
        _check_choice("cross_subgraph", cross_subgraph, ("mean", "sum", "replace", "none"))
        _check_choice("node_pool", node_pool, ("mean", "sum"))
        _check_choice("norm", norm, ("batch", "none"))
        _check_choice("input_order", input_order, (1, 2))
        orders = [int(o) for o in orders]
        if not orders or any(o not in (1, 2) for o in orders) or orders[-1] != 1:
            raise ValueError(f"orders must be a non-empty list of 1/2 ending in 1, got {orders}")
        if num_hops < 0:
            raise ValueError(f"num_hops must be >= 0, got {num_hops}")
        if readout_layers < 1:
            raise ValueError(f"readout_layers must be >= 1, got {readout_layers}")
        H = hidden_channels
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, H
        self.num_hops, self.orders, self.input_order = num_hops, orders, input_order
        self.cross_subgraph, self.node_pool = cross_subgraph, node_pool
        self.subgraph_readout, self.reduce = bool(subgraph_readout), reduce
        self.mark_center = mark_center
        self.dropout, self.pool, self.task_level = dropout, pool, task_level
        self.use_edges = edge_dim is not None and input_order == 2
        self.encoder = FeatureEncoder(node_encoder, in_channels, H)
        self.edge_encoder = EdgeEncoder(edge_encoder, edge_dim, H) if self.use_edges else None
        c_in = H + int(mark_center) + ((1 + H * self.use_edges) if input_order == 2 else 0)
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        cur = input_order
        for o in orders:
            self.layers.append(EquivariantLinear(cur, o, c_in, H, reduce=reduce))
            self.norms.append(nn.BatchNorm1d(H) if norm == "batch" else nn.Identity())
            cur, c_in = o, H
        head: List[nn.Module] = []
        for i in range(readout_layers):
            last = i == readout_layers - 1
            head.append(nn.Linear(H, out_channels if last else H))
            if not last:
                head.append(nn.ReLU())
        self.head = nn.Sequential(*head)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def _encode(self, enc, x, num, dtype):
        # The shared encoders cast 'linear' inputs to float32; keep the model's dtype.
        if enc.kind == "linear" and x is not None:
            return enc.enc(x.to(dtype))
        return enc(x, num)

    def _share(self, x: Tensor, order: int, layout: SetLayout, slot_node: Tensor, N: int,
               pair_group: Optional[Tuple[Tensor, int]]) -> Tensor:
        if self.cross_subgraph == "none":
            return x
        if self.cross_subgraph == "replace":
            # Authors' code: every entry becomes its mean over the ego-nets holding that node
            # (order 1) or that node pair (order 2).
            if order == 1:
                return scatter(x, slot_node, dim=0, dim_size=N, reduce="mean")[slot_node]
            group, num = pair_group
            return scatter(x, group, dim=0, dim_size=num, reduce="mean")[group]
        rows = x if order == 1 else x[layout.diag]
        shared = scatter(rows, slot_node, dim=0, dim_size=N, reduce=self.cross_subgraph)[slot_node]
        if order == 1:
            return x + shared
        return x.index_add(0, layout.diag, shared)

    def forward(self, data) -> Tensor:
        dtype = self.head[0].weight.dtype
        N = int(data.num_nodes)
        check_no_nan(getattr(data, "x", None), "node features (data.x)")
        x = self._encode(self.encoder, getattr(data, "x", None), N, dtype)
        edge_index = getattr(data, "edge_index", None)
        if edge_index is None:
            edge_index = x.new_zeros(2, 0, dtype=torch.long)
        layout, slot_node, edge_pair, edge_id = ego_net_layout(edge_index, N, self.num_hops)
        feats = [x[slot_node]]
        if self.mark_center:
            feats.append((slot_node == layout.slot_set).to(dtype).unsqueeze(-1))
        h = torch.cat(feats, dim=-1)
        if self.input_order == 2:
            M2 = layout.num_pairs
            chans = h.size(-1) + 1 + (self.hidden_channels if self.use_edges else 0)
            X = h.new_zeros(M2, chans)
            X = X.index_copy(0, layout.diag, F.pad(h, (0, chans - h.size(-1))))
            edge_val = [h.new_ones(edge_pair.numel(), 1)]
            if self.use_edges:
                e = self._encode(self.edge_encoder, getattr(data, "edge_attr", None),
                                 edge_index.size(1), dtype)
                edge_val.append(e[edge_id])
            edge_val = F.pad(torch.cat(edge_val, -1), (h.size(-1), 0))
            h = X.index_add(0, edge_pair, edge_val)
        pair_group = None
        if self.cross_subgraph == "replace" and 2 in self.orders[:-1]:
            keys = slot_node[layout.pair_row] * N + slot_node[layout.pair_col]
            uniq, inv = torch.unique(keys, return_inverse=True)
            pair_group = (inv, uniq.numel())
        last = len(self.layers) - 1
        for i, (layer, o) in enumerate(zip(self.layers, self.orders)):
            h = layer(h, layout)
            if i == last and self.subgraph_readout:
                # Invariant order-0 output per ego-net: pooling the order-1 output over the
                # ego-net's slots spans the 2->0 (diagonal, total) and 1->0 maps.
                h = scatter(h, layout.slot_set, dim=0, dim_size=layout.num_sets,
                            reduce=self.reduce)
            elif i < last and self.cross_subgraph == "replace":
                h = self._share(h, o, layout, slot_node, N, pair_group)
            h = F.relu(self.norms[i](h))
            h = F.dropout(h, self.dropout, self.training)
            if i < last and self.cross_subgraph in ("mean", "sum"):
                h = self._share(h, o, layout, slot_node, N, None)
        if self.subgraph_readout:
            node = h                      # ego-net c is centred on node c: one row per node
        else:
            node = scatter(h, slot_node, dim=0, dim_size=N, reduce=self.node_pool)
        return self.head(readout(node, data, self.task_level, self.pool))
