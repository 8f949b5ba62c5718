"""PyG baselines: GCN, GIN (optionally with edge features and a virtual node) and GAT.

Model contract (every graphlab model follows it; the trainer relies on it):

* ``__init__(in_channels, out_channels, *, ..., task_level='graph', node_encoder='linear',
  edge_dim=None, edge_encoder='linear')``. ``in_channels``, ``out_channels``, ``task_level``,
  ``node_encoder``, ``edge_dim`` and ``edge_encoder`` are filled from the dataset by the
  trainer; every other keyword comes from the config's ``model:`` section and is validated
  against this signature.
* ``forward(data) -> Tensor``: ``[num_nodes, out]`` when ``task_level='node'``,
  ``[num_graphs, out]`` when ``task_level='graph'`` (``data`` is a PyG ``Data``/``Batch``).
* ``reset_parameters()`` re-initialises every parameter.
"""
from __future__ import annotations

from typing import Annotated, Optional

import torch
from torch import Tensor, nn
import torch.nn.functional as F
from torch_geometric.nn import (GATConv, GCNConv, GINConv, GINEConv, global_add_pool,
                                global_max_pool, global_mean_pool)

from graphlab.nn.encoders import EdgeEncoder, FeatureEncoder
from graphlab.nn.self_loops import gat_conv_with_self_loops, gcn_self_loops
from graphlab.registry import register_model
from graphlab.schema import Choice, Range

POOLS = {"mean": global_mean_pool, "sum": global_add_pool, "add": global_add_pool,
         "max": global_max_pool}
TASK_LEVELS = ("node", "graph")


def readout(x: Tensor, data, task_level: str, pool: str) -> Tensor:
    """Node-level output as is, or a graph-level pooling over ``data.batch``."""
    if task_level == "node":
        return x
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = x.new_zeros(x.size(0), dtype=torch.long)
    return POOLS[pool](x, batch, size=getattr(data, "num_graphs", None))


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(str, choices))}")


def check_common(task_level: str, pool: str, norm: str, num_layers: int) -> None:
    """Argument checks shared by graphlab's models (clear errors instead of deep crashes)."""
    _check_choice("task_level", task_level, TASK_LEVELS)
    _check_choice("pool", pool, tuple(POOLS))
    _check_choice("norm", norm, ("batch", "layer", "none"))
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")


def make_norm(norm: str, dim: int) -> nn.Module:
    return nn.BatchNorm1d(dim) if norm == "batch" else nn.LayerNorm(dim) if norm == "layer" \
        else nn.Identity()


def reset_children(module: nn.Module) -> None:
    """Call ``reset_parameters`` on every submodule that has one."""
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()


class _GNN(nn.Module):
    """Shared skeleton: encoder -> L conv blocks (norm, act, dropout, residual) -> readout -> head."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, num_layers: int,
                 dropout: float, norm: str, residual: bool, pool: str, task_level: str,
                 node_encoder: str, edge_dim: Optional[int], edge_encoder: str,
                 pe: str = "none", pe_dim: Annotated[int, Range(ge=1)] = 16, pe_kwargs: Optional[dict] = None):
        super().__init__()
        check_common(task_level, pool, norm, num_layers)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hidden_channels, self.num_layers = hidden_channels, num_layers
        self.dropout, self.residual, self.pool, self.task_level = dropout, residual, pool, task_level
        # Positional encoding (graphlab.nn.pe): concatenated to the input embedding, which then
        # has hidden_channels - pe_dim channels, as in GraphGPS.
        from graphlab.nn.pe import build_pe_encoder, pe_channels
        width = pe_channels(pe, pe_dim)
        if width >= hidden_channels:
            raise ValueError(f"pe_dim={pe_dim} must be smaller than hidden_channels={hidden_channels}")
        self.pe_encoder = build_pe_encoder(pe, pe_dim, **dict(pe_kwargs or {}))
        self.encoder = FeatureEncoder(node_encoder, in_channels, hidden_channels - width)
        self.edge_dim = edge_dim
        self.convs = nn.ModuleList()
        self.edge_encoders = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(num_layers):
            self.norms.append(make_norm(norm, hidden_channels))
        self.head = nn.Linear(hidden_channels, out_channels)

    def reset_parameters(self) -> None:
        reset_children(self)

    def conv(self, i: int, x: Tensor, data) -> Tensor:
        raise NotImplementedError

    def between_layers(self, i: int, x: Tensor, data, state: dict) -> Tensor:
        """Hook before layer ``i``; ``state`` is a dict local to one forward call (no module
        attributes are written during forward, which keeps vmap / torch.compile side-effect free)."""
        return x

    def forward(self, data) -> Tensor:
        from graphlab.nn.pe import add_pe
        x = add_pe(self.encoder(getattr(data, "x", None), data.num_nodes), data, self.pe_encoder)
        state: dict = {}
        for i in range(self.num_layers):
            x = self.between_layers(i, x, data, state)
            h = self.norms[i](self.conv(i, x, data))
            if i < self.num_layers - 1:
                h = F.relu(h)
            h = F.dropout(h, p=self.dropout, training=self.training)
            x = x + h if self.residual else h
        return self.head(readout(x, data, self.task_level, self.pool))


@register_model("gcn")
class GCN(nn.Module):
    r"""Graph convolutional network (Kipf & Welling, ICLR 2017, https://arxiv.org/abs/1609.02907).

    .. math::
        \mathbf{X}^{(\ell+1)} = \sigma\left(\hat{\mathbf{D}}^{-1/2}\hat{\mathbf{A}}
        \hat{\mathbf{D}}^{-1/2}\mathbf{X}^{(\ell)}\mathbf{W}^{(\ell)}\right)

    As in the paper, with continuous node features (``node_encoder='linear'``) the first
    convolution reads the raw features and, for node-level tasks, the last one outputs the
    classes (``X -> conv -> ReLU -> dropout -> ... -> conv``). For categorical inputs (e.g. OGB
    atoms) an encoder embeds them first; graph-level tasks pool and apply a linear head.

    Args:
        hidden_channels: width of the hidden convolutions (paper: 16).
        num_layers: number of convolutions (paper: 2).
        dropout: dropout on the input of every convolution (paper: 0.5).
        norm: ``batch`` | ``layer`` | ``none`` after hidden convolutions.
        cached: cache the normalised adjacency (transductive full-graph training only).

    Shapes: ``x (|V|, F_in)``, ``edge_index (2, |E|)``, optional ``edge_weight (|E|,)`` ->
    ``(|V|, out)`` (node level) or ``(num_graphs, out)`` (graph level).
    """

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: Annotated[int, Range(ge=1)] = 16,
                 num_layers: Annotated[int, Range(ge=1)] = 2, dropout: Annotated[float, Range(ge=0, lt=1)] = 0.5, norm: str = "none",
                 pool: str = "mean", task_level: str = "node", node_encoder: str = "linear",
                 cached: bool = False):
        super().__init__()
        check_common(task_level, pool, norm, num_layers)
        self.task_level, self.pool, self.dropout = task_level, pool, dropout
        self.encoder = None if node_encoder == "linear" else \
            FeatureEncoder(node_encoder, in_channels, hidden_channels)
        dims = [in_channels if self.encoder is None else hidden_channels]
        dims += [hidden_channels] * (num_layers - 1)
        node_out = task_level == "node"
        dims += [out_channels if node_out else hidden_channels]
        # self-loops are added once per forward without data-dependent sizes
        # (graphlab.nn.self_loops; the same convolution as PyG's own loops)
        self.convs = nn.ModuleList(GCNConv(a, b, cached=cached, add_self_loops=False)
                                   for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(make_norm(norm, d) for d in dims[1:-1])
        self.head = None if node_out else nn.Linear(hidden_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, data) -> Tensor:
        x = data.x if self.encoder is None else self.encoder(getattr(data, "x", None), data.num_nodes)
        x = x.to(self.convs[0].lin.weight.dtype)  # integer / float64 features -> model dtype
        ei, ew = gcn_self_loops(data.edge_index, getattr(data, "edge_weight", None), x.size(0),
                                dtype=x.dtype)
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = conv(x, ei, ew)
            if i < len(self.convs) - 1:
                x = F.relu(self.norms[i](x))
        if self.head is None:
            return x
        return self.head(readout(F.relu(x), data, self.task_level, self.pool))


@register_model("gin")
class GIN(_GNN):
    r"""Graph isomorphism network (Xu et al., ICLR 2019, https://arxiv.org/abs/1810.00826), with
    edge features through GINE (Hu et al., ICLR 2020) when ``edge_dim`` is given, and an optional
    virtual node (Gilmer et al. 2017; the OGB ``gin-virtual`` baseline).

    .. math::
        \mathbf{x}_i' = \mathrm{MLP}\Big((1+\epsilon)\mathbf{x}_i +
        \sum_{j\in\mathcal N(i)} \mathrm{ReLU}(\mathbf{x}_j + \mathbf{e}_{ji})\Big)

    With ``virtual_node=True``, before each layer but the first every node adds the virtual
    node's state, and the virtual node is updated by an MLP of the pooled (summed) node states.
    Defaults follow OGB's molecule baselines (``snap-stanford/ogb`` examples/graphproppred/mol:
    5 layers, 300 hidden, dropout 0.5, BatchNorm, mean pooling).

    ``pe`` / ``pe_dim`` / ``pe_kwargs`` add a positional encoding (:mod:`graphlab.nn.pe`),
    concatenated to the input embedding.

    Shapes: ``x (|V|, F_in)``, ``edge_index (2, |E|)``, ``edge_attr (|E|, D)`` ->
    ``(num_graphs, out)`` (graph level) or ``(|V|, out)`` (node level).
    """

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: Annotated[int, Range(ge=1)] = 300,
                 num_layers: Annotated[int, Range(ge=1)] = 5, dropout: Annotated[float, Range(ge=0, lt=1)] = 0.5, norm: str = "batch",
                 residual: bool = False, pool: str = "mean", virtual_node: bool = False,
                 train_eps: bool = False, task_level: str = "graph", node_encoder: str = "linear",
                 edge_dim: Optional[int] = None, edge_encoder: str = "linear", pe: str = "none",
                 pe_dim: Annotated[int, Range(ge=1)] = 16, pe_kwargs: Optional[dict] = None):
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, dropout, norm,
                         residual, pool, task_level, node_encoder, edge_dim, edge_encoder,
                         pe, pe_dim, pe_kwargs)
        self.virtual_node = virtual_node
        H = hidden_channels
        for _ in range(num_layers):
            mlp = nn.Sequential(nn.Linear(H, 2 * H), nn.BatchNorm1d(2 * H), nn.ReLU(),
                                nn.Linear(2 * H, H))
            if edge_dim is not None:
                self.convs.append(GINEConv(mlp, train_eps=train_eps))
                self.edge_encoders.append(EdgeEncoder(edge_encoder, edge_dim, H))
            else:
                self.convs.append(GINConv(mlp, train_eps=train_eps))
        if virtual_node:
            self.vn_emb = nn.Embedding(1, H)
            self.vn_mlps = nn.ModuleList(
                nn.Sequential(nn.Linear(H, 2 * H), nn.BatchNorm1d(2 * H), nn.ReLU(),
                              nn.Linear(2 * H, H), nn.BatchNorm1d(H), nn.ReLU())
                for _ in range(num_layers - 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.virtual_node:
            nn.init.zeros_(self.vn_emb.weight)

    def conv(self, i: int, x: Tensor, data) -> Tensor:
        if self.edge_dim is not None:
            e = self.edge_encoders[i](getattr(data, "edge_attr", None), data.edge_index.size(1))
            return self.convs[i](x, data.edge_index, e)
        return self.convs[i](x, data.edge_index)

    def between_layers(self, i: int, x: Tensor, data, state: dict) -> Tensor:
        if not self.virtual_node:
            return x
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
        num_graphs = int(getattr(data, "num_graphs", 1) or 1)
        if i == 0:
            state["vn"] = self.vn_emb.weight.expand(num_graphs, -1)
        else:
            pooled = global_add_pool(x, batch, size=num_graphs) + state["vn"]
            state["vn"] = F.dropout(self.vn_mlps[i - 1](pooled), self.dropout, self.training)
        # index_select, not [batch]: its backward is one index_add, where advanced indexing
        # backpropagates through a sorting index_put (54 µs per layer for 10 seeds on an H200)
        return x + state["vn"].index_select(0, batch)


@register_model("gat")
class GAT(_GNN):
    r"""Graph attention network (Veličković et al., ICLR 2018, https://arxiv.org/abs/1710.10903).

    .. math::
        \mathbf{x}_i' = \Big\Vert_{h=1}^{H} \sum_{j \in \mathcal{N}(i)\cup\{i\}}
        \alpha^{h}_{ij}\mathbf{W}^{h}\mathbf{x}_j

    ``hidden_channels`` is the total width (``heads`` × per-head width). Shapes as :class:`GCN`.

    Args:
        layout: ``stack`` (default: ``stack``): graphlab's shared skeleton (input encoder, every
            layer ``hidden -> hidden`` with ReLU, a linear head), for any task level and edge
            features; ``paper``: the paper's node classifier, dropout on every layer's input,
            concatenated heads with ELU in the hidden layers and an output attention layer of
            ``out_heads`` heads averaged into the classes (node-level tasks, continuous node
            features, no edge features).
        out_heads: heads of the ``paper`` layout's output layer (paper: 1 on Cora / CiteSeer,
            8 on PubMed; default: ``1``).
    """

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: Annotated[int, Range(ge=1)] = 64,
                 num_layers: Annotated[int, Range(ge=1)] = 2, heads: Annotated[int, Range(ge=1)] = 8, dropout: Annotated[float, Range(ge=0, lt=1)] = 0.6,
                 attn_dropout: Annotated[float, Range(ge=0, lt=1)] = 0.6, norm: str = "none", residual: bool = False,
                 pool: str = "mean", task_level: str = "node", node_encoder: str = "linear",
                 edge_dim: Optional[int] = None, edge_encoder: str = "linear", v2: bool = False,
                 pe: str = "none", pe_dim: Annotated[int, Range(ge=1)] = 16, pe_kwargs: Optional[dict] = None,
                 layout: Annotated[str, Choice("stack", "paper")] = "stack",
                 out_heads: Annotated[int, Range(ge=1)] = 1):
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, dropout, norm,
                         residual, pool, task_level, node_encoder, edge_dim, edge_encoder,
                         pe, pe_dim, pe_kwargs)
        if hidden_channels % heads:
            raise ValueError(f"hidden_channels={hidden_channels} must be divisible by heads={heads}")
        from torch_geometric.nn import GATv2Conv
        Conv = GATv2Conv if v2 else GATConv
        self.layout = layout
        if layout == "paper":
            if task_level != "node" or node_encoder != "linear" or edge_dim is not None or \
                    pe != "none":
                raise ValueError("layout='paper' is the paper's node classifier: it needs "
                                 "task_level='node', node_encoder='linear', no edge features and "
                                 "pe='none'")
            dims = [in_channels] + [hidden_channels] * (num_layers - 1)
            self.encoder, self.head = nn.Identity(), nn.Identity()
            self.convs.extend(Conv(d, hidden_channels // heads, heads=heads, dropout=attn_dropout,
                                   add_self_loops=False) for d in dims[:-1])
            self.convs.append(Conv(dims[-1], out_channels, heads=out_heads, concat=False,
                                   dropout=attn_dropout, add_self_loops=False))
            self.reset_parameters()
            return
        for _ in range(num_layers):
            # self-loops come from graphlab.nn.self_loops (no data-dependent sizes; the same
            # convolution as PyG's own loops with fill_value='mean')
            self.convs.append(Conv(hidden_channels, hidden_channels // heads, heads=heads,
                                   dropout=attn_dropout, add_self_loops=False,
                                   edge_dim=hidden_channels if edge_dim is not None else None))
            if edge_dim is not None:
                self.edge_encoders.append(EdgeEncoder(edge_encoder, edge_dim, hidden_channels))
        self.reset_parameters()

    def forward(self, data) -> Tensor:
        if self.layout != "paper":
            return super().forward(data)
        x = data.x.to(next(self.parameters()).dtype)
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = gat_conv_with_self_loops(conv, x, data.edge_index, None)
            if i < len(self.convs) - 1:
                x = F.elu(x)
        return x

    def conv(self, i: int, x: Tensor, data) -> Tensor:
        e = None
        if self.edge_dim is not None:
            e = self.edge_encoders[i](getattr(data, "edge_attr", None), data.edge_index.size(1))
        return gat_conv_with_self_loops(self.convs[i], x, data.edge_index, e)
