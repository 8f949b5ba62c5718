r"""GRIT: Graph Inductive bias Transformer (Ma et al., ICML 2023, https://arxiv.org/abs/2305.17589).

Pipeline: node states :math:`\mathbf{x}_i = \mathrm{Enc}(\text{features}_i) + \mathbf{W}_n\mathbf{P}_{ii}`,
pair states :math:`\mathbf{e}_{ij} = \mathbf{W}_p\mathbf{P}_{ij} + \mathrm{Enc}(\text{edge}_{j\to i})`
(the edge term only on edges, the RRWP term only within :math:`K-1` hops, zero otherwise), then
``num_layers`` :class:`graphlab.nn.GRITLayer`, readout, MLP head. RRWP comes from the
:class:`graphlab.transforms.AddRRWP` transform (``data.rrwp``, ``data.rrwp_index``,
``data.rrwp_val``).

Attention sets (``full_attention``):

* ``True`` (paper): every node attends to every node of its own graph; pairs beyond
  :math:`K-1` hops carry zero RRWP features. Pairs per batch :math:`= \sum_g n_g^2`.
* ``False``: only the pairs within :math:`K-1` hops (plus the input edges), i.e. the sparse pair
  set stored by ``AddRRWP``; cheaper, and it never looks beyond :math:`K-1` hops per layer.
"""
from __future__ import annotations

from typing import Annotated, Optional, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.utils import coalesce, degree, to_dense_adj, to_dense_batch

from graphlab.models.basic import POOLS, TASK_LEVELS, _check_choice, readout
from graphlab.nn.checks import check_no_nan
from graphlab.nn.encoders import EdgeEncoder, FeatureEncoder
from graphlab.nn.grit_layer import GRITLayer
from graphlab.registry import register_model
from graphlab.schema import Range

__all__ = ["GRIT", "grit_pairs"]


def _exclusive_cumsum(t: Tensor) -> Tensor:
    return torch.cumsum(t, 0) - t


def grit_pairs(batch: Tensor, num_graphs: int, rrwp_index: Tensor, rrwp_attr: Tensor,
               edge_index: Optional[Tensor] = None, edge_attr: Optional[Tensor] = None,
               full: bool = True) -> Tuple[Tensor, Tensor]:
    r"""The attention pairs of GRIT and their initial states.

    Args:
        batch (Tensor): graph of every node ``[N]``, sorted (as in a PyG ``Batch``).
        num_graphs (int): number of graphs.
        rrwp_index (Tensor): ``[2, P0]`` RRWP pairs ``(i, j)`` (``AddRRWP``'s row ``i`` is the
            query).
        rrwp_attr (Tensor): ``[P0, C]`` encoded RRWP of those pairs.
        edge_index (Tensor, optional): ``[2, E]`` input edges ``j -> i``.
        edge_attr (Tensor, optional): ``[E, C]`` encoded edge features, added to pair
            ``(i, j)``; zeros when ``None``.
        full (bool): all pairs of each graph (zero states where neither term applies) or only
            the union of the RRWP pairs and the edges.

    Returns:
        ``pair_index [2, P]`` (row 0 key :math:`j`, row 1 query :math:`i`, sorted by query) and
        ``pair_attr [P, C]``. With ``full=True``, :math:`P = \sum_g n_g^2`, built in
        :math:`O(P)` without sorting.
    """
    query, key, attr = rrwp_index[0], rrwp_index[1], rrwp_attr
    if edge_index is not None:  # edges are pairs too (only matters for walk_length 1)
        if edge_attr is None:
            edge_attr = attr.new_zeros(edge_index.size(1), attr.size(-1))
        query = torch.cat([query, edge_index[1]])
        key = torch.cat([key, edge_index[0]])
        attr = torch.cat([attr, edge_attr.to(attr.dtype)], dim=0)
    N = batch.numel()
    if not full:
        idx, attr = coalesce(torch.stack([query, key]), attr, num_nodes=N, reduce="sum")
        return idx.flip(0), attr
    if not torch.compiler.is_compiling() and query.numel() and \
            bool((batch[query] != batch[key]).any()):
        raise ValueError("rrwp_index/edge_index pair nodes of different graphs; is `batch` the "
                         "batch vector of the same Batch?")
    counts = torch.bincount(batch, minlength=num_graphs)        # nodes per graph
    node_start = _exclusive_cumsum(counts)[batch]               # first node of i's graph
    block = counts[batch]                                       # keys of query i
    block_start = _exclusive_cumsum(block)                      # where i's keys begin
    total = int(block.sum())
    q_all = torch.repeat_interleave(torch.arange(N, device=batch.device), block,
                                    output_size=total)
    k_all = node_start[q_all] + torch.arange(total, device=batch.device) - block_start[q_all]
    pos = block_start[query] + key - node_start[query]
    out = attr.new_zeros(total, attr.size(-1)).index_add_(0, pos, attr)
    return torch.stack([k_all, q_all]), out


@register_model("grit")
class GRIT(nn.Module):
    r"""Graph Inductive bias Transformer (`"Graph Inductive Biases in Transformers without
    Message Passing" <https://arxiv.org/abs/2305.17589>`_, Ma et al., ICML 2023).

    .. math::
        \mathbf{x}^{(0)}_i = \mathrm{Enc}(\mathbf{f}_i) + \mathbf{W}_n\mathbf{P}_{ii},\quad
        \mathbf{e}^{(0)}_{ij} = \mathbf{W}_p\mathbf{P}_{ij} + \mathrm{Enc}(\mathbf{f}_{j\to i}),
        \quad (\mathbf{x}^{(\ell+1)}, \mathbf{e}^{(\ell+1)}) =
        \mathrm{GRITLayer}(\mathbf{x}^{(\ell)}, \mathbf{e}^{(\ell)})

    with :math:`\mathbf{P} = [\mathbf{I}, \mathbf{M}, \dots, \mathbf{M}^{K-1}]` from
    :class:`graphlab.transforms.AddRRWP` (apply it as ``pre_transform`` or, to bound memory, as
    an on-the-fly ``transform``). Defaults are the authors' Peptides-func setup
    (``LiamMa/GRIT`` ``configs/GRIT/peptides-func-GRIT-RRWP.yaml``).

    Args:
        in_channels (int): node feature size (filled by the trainer).
        out_channels (int): outputs per graph (or node).
        hidden_channels (int): :math:`C`. (default: ``96``)
        num_layers (int): GRIT layers. (default: ``4``)
        heads (int): attention heads. (default: ``4``)
        dropout (float): dropout inside the layers. (default: ``0.0``)
        attn_dropout (float): dropout on attention weights. (default: ``0.5``)
        walk_length (int): :math:`K`, must equal ``AddRRWP``'s. (default: ``17``)
        full_attention (bool): attend to all pairs of a graph (paper) or only within
            :math:`K-1` hops; see the module docstring. (default: ``True``)
        transpose_rrwp (bool): ``False``: query :math:`i` attending to key :math:`j` reads
            :math:`\mathbf{P}_{ij}` (walks from query to key, the paper's Eq.); ``True``: it reads
            :math:`\mathbf{P}_{ji}`, which is what the authors' code does (its pair
            ``(row, col)`` feeds query ``col``). On undirected graphs
            :math:`\mathbf{P}_{ji} = \mathbf{P}_{ij} d_i / d_j`. (default: ``False``)
        clamp (float, optional): attention logit clamp. (default: ``5.0``)
        deg_scaler (bool): degree scaler in every layer. (default: ``True``)
        norm (str): ``'batch'``, ``'layer'`` or ``'none'``. (default: ``'batch'``)
        bn_momentum (float): BatchNorm momentum. (default: ``0.1``)
        pool (str): graph readout ``'mean'``, ``'sum'``/``'add'`` or ``'max'``. (default: ``'mean'``)
        head_layers (int): linear layers of the head; hidden widths halve each layer
            (``C -> C/2 -> ... -> out``, ReLU between), so ``1`` is a single linear map and
            ``3`` is SAN/GraphGPS's ``san_graph`` head. (default: ``1``)
        rrwp_attr (str): ``attr_name`` used with ``AddRRWP``. (default: ``'rrwp'``)
        task_level, node_encoder, edge_dim, edge_encoder: see :mod:`graphlab.models.basic`.

    Shapes:
        ``x (|V|, F)``, ``edge_index (2, |E|)``, ``edge_attr (|E|, D)``, ``rrwp (|V|, K)``,
        ``rrwp_index (2, P0)``, ``rrwp_val (P0, K)`` -> ``(num_graphs, out)`` or ``(|V|, out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: Annotated[int, Range(ge=1)] = 96,
                 num_layers: Annotated[int, Range(ge=1)] = 4, heads: Annotated[int, Range(ge=1)] = 4, dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0,
                 attn_dropout: Annotated[float, Range(ge=0, lt=1)] = 0.5, walk_length: int = 17, full_attention: bool = True,
                 transpose_rrwp: bool = False,
                 clamp: Optional[float] = 5.0, deg_scaler: bool = True, norm: str = "batch",
                 bn_momentum: float = 0.1, pool: str = "mean", head_layers: int = 1,
                 rrwp_attr: str = "rrwp", task_level: str = "graph",
                 node_encoder: str = "linear", edge_dim: Optional[int] = None,
                 edge_encoder: str = "linear"):
        super().__init__()
        _check_choice("task_level", task_level, TASK_LEVELS)
        _check_choice("pool", pool, tuple(POOLS))
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if walk_length < 1:
            raise ValueError(f"walk_length must be >= 1, got {walk_length}")
        if head_layers < 1 or hidden_channels // 2 ** (head_layers - 1) < 1:
            raise ValueError(f"head_layers={head_layers} must be >= 1 and leave a hidden width "
                             f">= 1 (hidden_channels={hidden_channels})")
        C = hidden_channels
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, C
        self.walk_length, self.full_attention = walk_length, full_attention
        self.transpose_rrwp = transpose_rrwp
        self.pool, self.task_level, self.rrwp_attr = pool, task_level, rrwp_attr
        self.node_encoder = FeatureEncoder(node_encoder, in_channels, C)
        self.edge_encoder = (EdgeEncoder(edge_encoder, edge_dim, C) if edge_dim is not None
                             else None)
        self.rrwp_node = nn.Linear(walk_length, C, bias=False)
        self.rrwp_pair = nn.Linear(walk_length, C, bias=False)
        self.layers = nn.ModuleList(
            GRITLayer(C, heads=heads, dropout=dropout, attn_dropout=attn_dropout, clamp=clamp,
                      deg_scaler=deg_scaler, norm=norm, bn_momentum=bn_momentum)
            for _ in range(num_layers))
        dims = [C // 2 ** i for i in range(head_layers)] + [out_channels]
        head = []
        for i in range(head_layers):
            head.append(nn.Linear(dims[i], dims[i + 1]))
            if i < head_layers - 1:
                head.append(nn.ReLU())
        self.head = nn.Sequential(*head)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        mods = [self.node_encoder, self.edge_encoder, *self.layers, *self.head]
        for m in mods:
            if m is not None and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        nn.init.xavier_uniform_(self.rrwp_node.weight)
        nn.init.xavier_uniform_(self.rrwp_pair.weight)

    def _encode(self, data) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, int]:
        name = self.rrwp_attr
        missing = [k for k in (name, f"{name}_index", f"{name}_val")
                   if getattr(data, k, None) is None]
        if missing:
            raise ValueError(f"GRIT needs data.{', data.'.join(missing)}: add "
                             f"graphlab.transforms.AddRRWP({self.walk_length}, attr_name="
                             f"'{name}') to the dataset's transform (data.pe in the config)")
        rrwp, rrwp_index, rrwp_val = data[name], data[f"{name}_index"], data[f"{name}_val"]
        if rrwp.size(-1) != self.walk_length or rrwp_val.size(-1) != self.walk_length:
            raise ValueError(f"data.{name} has {rrwp.size(-1)} channels but the model was built "
                             f"with walk_length={self.walk_length}; use the same walk_length "
                             "in AddRRWP and the model")
        x_in = getattr(data, "x", None)
        check_no_nan(x_in, "data.x")
        N = data.num_nodes
        x = self.node_encoder(x_in, N) + self.rrwp_node(rrwp.to(self.rrwp_node.weight.dtype))
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(N, dtype=torch.long, device=x.device)
        num_graphs = int(getattr(data, "num_graphs", None) or (int(batch.max()) + 1 if N else 1))
        edge_attr = None
        if self.edge_encoder is not None:
            edge_attr = self.edge_encoder(getattr(data, "edge_attr", None),
                                          data.edge_index.size(1))
        if self.transpose_rrwp:
            rrwp_index = rrwp_index.flip(0)
        pair_index, pair_attr = grit_pairs(
            batch, num_graphs, rrwp_index,
            self.rrwp_pair(rrwp_val.to(self.rrwp_pair.weight.dtype)),
            data.edge_index, edge_attr, full=self.full_attention)
        deg = degree(data.edge_index[0], N, dtype=x.dtype)
        return x, pair_index, pair_attr, deg, batch, num_graphs

    def forward(self, data) -> Tensor:
        x, pair_index, pair_attr, deg, _, _ = self._encode(data)
        for layer in self.layers:
            x, pair_attr = layer(x, pair_index, pair_attr, deg)
        return self.head(readout(x, data, self.task_level, self.pool))

    def forward_dense(self, data) -> Tensor:
        """Same model, same weights, on padded tensors (``to_dense_batch``): node states
        ``[B, n_max, C]`` and pair states ``[B, n_max, n_max, C]``. For comparisons only; memory
        grows with ``B * n_max^2`` instead of the number of pairs."""
        x, pair_index, pair_attr, deg, batch, B = self._encode(data)
        x, mask = to_dense_batch(x, batch, batch_size=B)
        n = x.size(1)
        qk = pair_index.flip(0)  # [b, i, j] = query i, key j
        pair_attr = to_dense_adj(qk, batch, pair_attr, max_num_nodes=n, batch_size=B)
        pair_mask = to_dense_adj(qk, batch, max_num_nodes=n, batch_size=B) > 0
        deg, _ = to_dense_batch(deg, batch, batch_size=B, max_num_nodes=n)
        for layer in self.layers:
            x, pair_attr = layer.forward_dense(x, mask, pair_attr, pair_mask, deg)
        return self.head(readout(x[mask], data, self.task_level, self.pool))
