r"""SINC-GCN convolution (neighbourhood-contextualised message passing)."""
from __future__ import annotations

from typing import Callable, Optional, Union

from torch import Tensor, nn
import torch.nn.functional as F
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.resolver import activation_resolver
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import degree, is_sparse, scatter, to_edge_index

AGGRS = ("sum", "mean", "sym", "max")
_PYG_AGGR = {"sum": "sum", "sym": "sum", "mean": "mean", "max": "max"}


def _edge_norm(kind: str, src: Tensor, dst: Tensor, num_nodes: int, dtype) -> Optional[Tensor]:
    """Per-edge factor of the 'sym' aggregator, out-deg(src)^-1/2 * in-deg(dst)^-1/2."""
    if kind != "sym":
        return None
    out_deg = degree(src, num_nodes, dtype=dtype).clamp(min=1)
    in_deg = degree(dst, num_nodes, dtype=dtype).clamp(min=1)
    return out_deg[src].rsqrt() * in_deg[dst].rsqrt()


class SINCConv(MessagePassing):
    r"""The soft-isomorphic neighbourhood-contextualised graph convolution from
    `"Enhancing Graph Representations with Neighborhood-Contextualized Message-Passing"
    <https://arxiv.org/abs/2511.11046>`_ (Lim et al., 2025), an instance of
    neighbourhood-contextualised message passing (NCMP):

    .. math::
        \mathbf{h}'_u = \bigoplus_{v \in \mathcal{N}(u)} \mathbf{W}_R\,
        \sigma\Big(\mathbf{W}_Q \mathbf{h}_u + \mathbf{W}_K \mathbf{h}_v
        + \bigotimes_{w \in \mathcal{N}(u)} \mathbf{W}_N \mathbf{h}_w
        \;[+\,\mathbf{W}_E \mathbf{e}_{vu}]\Big)

    with :math:`\bigoplus, \bigotimes \in \{` sum, mean, sym, max :math:`\}`
    ("sym" weights edge :math:`v \to u` by :math:`(d^{out}_v d^{in}_u)^{-1/2}`), where
    :math:`\mathcal{N}(u)` are the sources of the edges into :math:`u` (PyG's
    ``source_to_target`` flow). In matrix form for sum aggregators, with
    :math:`A_{uv} = 1` for an edge :math:`v \to u` and, per hidden channel :math:`c`,
    :math:`\mathbf{q}_c, \mathbf{k}_c, \mathbf{n}_c` the columns of
    :math:`\mathbf{H}\mathbf{W}_Q^\top, \mathbf{H}\mathbf{W}_K^\top, \mathbf{H}\mathbf{W}_N^\top`:

    .. math::
        \mathbf{m}_c = \big(\mathbf{A} \odot \sigma(\mathbf{q}_c\mathbf{1}^\top
        + \mathbf{1}\mathbf{k}_c^\top + (\mathbf{A}\mathbf{n}_c)\mathbf{1}^\top)\big)
        \mathbf{1}, \qquad
        \mathbf{H}' = [\mathbf{m}_1 \cdots \mathbf{m}_{d_h}]\,\mathbf{W}_R^\top

    Cost. :math:`\mathbf{W}_Q\mathbf{h}`, :math:`\mathbf{W}_K\mathbf{h}` and
    :math:`\mathbf{W}_N\mathbf{h}` are computed once per node and the neighbourhood term once
    per node (one scatter); only the addition and :math:`\sigma` run per edge. For the linear
    aggregators (sum, mean, sym) :math:`\mathbf{W}_R` commutes with the aggregation and is
    applied once per node *after* it, so a layer costs
    :math:`O(|V| d_{in} d_h + |E| d_h + |V| d_h d_{out})`. For ``aggr='max'`` the projection
    must precede the max, costing :math:`O(|E| d_h d_{out})`.

    Choices (documented because the equation leaves them open):

    * :math:`\mathbf{W}_N` is applied *before* :math:`\bigotimes` as in the equation. This is
      the same as the reference code for sum/mean/sym (linear), but differs for a ``max``
      neighbourhood aggregator, where the reference DGL code maxes raw features first.
    * The bias of :math:`\mathbf{W}_R` is added once per node (after aggregation), not once per
      edge; :math:`\mathbf{W}_Q` has a bias, :math:`\mathbf{W}_K`, :math:`\mathbf{W}_N`,
      :math:`\mathbf{W}_E` do not (as in the reference code, ``inner_bias``/``outer_bias``).
    * Edge features (``edge_dim`` set) enter the per-edge term only, through
      :math:`\mathbf{W}_E \mathbf{e}_{vu}` inside :math:`\sigma`; they do not enter the
      neighbourhood context :math:`\bigotimes`. This adds :math:`O(|E| d_e d_h)`.
    * A node with no in-neighbours receives an empty aggregation (zero), i.e. the bias of
      :math:`\mathbf{W}_R` for linear aggregators and zero for ``max``.

    Args:
        in_channels (int): input features :math:`d_{in}`.
        out_channels (int): output features :math:`d_{out}`.
        hidden_channels (int, optional): width :math:`d_h` of the per-edge term
            (default: ``out_channels``).
        aggr (str, optional): outer aggregator :math:`\bigoplus`: ``'sum'``, ``'mean'``, ``'sym'``
            or ``'max'`` (default: ``'sum'``).
        neigh_aggr (str, optional): neighbourhood aggregator :math:`\bigotimes`
            (default: ``'sum'``).
        act (str or callable, optional): :math:`\sigma` (default: ``'relu'``; any PyG activation
            name, e.g. ``'leaky_relu'`` with ``act_kwargs={'negative_slope': 0.2}``).
        act_kwargs (dict, optional): arguments of the activation.
        dropout (float, optional): dropout on :math:`\mathbf{W}_Q\mathbf{h}_u`,
            :math:`\mathbf{W}_K\mathbf{h}_v` and on the aggregated context
            :math:`\bigotimes_w \mathbf{W}_N\mathbf{h}_w` (one mask per node, as the reference
            code's ``feat_dropout``, which drops the context after aggregating it; default: ``0``).
        edge_dim (int, optional): edge feature size; ``None`` ignores edge features (default: ``None``).
        inner_bias (bool, optional): bias of :math:`\mathbf{W}_Q` (default: ``True``).
        outer_bias (bool, optional): bias of :math:`\mathbf{W}_R` (default: ``True``).

    Shapes:
        - input: node features ``(|V|, d_in)``, ``edge_index (2, |E|)`` as a ``Tensor``,
          PyG ``EdgeIndex``, or a (transposed) sparse adjacency ``adj_t (|V|, |V|)``
          (``torch.sparse`` or ``SparseTensor``); optional ``edge_attr (|E|, edge_dim)``
          (only with an edge-list ``edge_index``)
        - output: ``(|V|, d_out)``
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: Optional[int] = None,
                 aggr: str = "sum", neigh_aggr: str = "sum", act: Union[str, Callable] = "relu",
                 act_kwargs: Optional[dict] = None, dropout: float = 0.0,
                 edge_dim: Optional[int] = None, inner_bias: bool = True,
                 outer_bias: bool = True, **kwargs):
        for name, value in (("aggr", aggr), ("neigh_aggr", neigh_aggr)):
            if value not in AGGRS:
                raise ValueError(f"{name}={value!r} is not one of {', '.join(AGGRS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        super().__init__(aggr=_PYG_AGGR[aggr], **kwargs)
        hidden_channels = out_channels if hidden_channels is None else hidden_channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hidden_channels = hidden_channels
        self.sinc_aggr, self.neigh_aggr = aggr, neigh_aggr
        self.dropout, self.edge_dim = dropout, edge_dim
        self.act = activation_resolver(act, **(act_kwargs or {}))
        self.lin_q = nn.Linear(in_channels, hidden_channels, bias=inner_bias)
        self.lin_k = nn.Linear(in_channels, hidden_channels, bias=False)
        self.lin_n = nn.Linear(in_channels, hidden_channels, bias=False)
        self.lin_e = nn.Linear(edge_dim, hidden_channels, bias=False) if edge_dim else None
        self.lin_r = nn.Linear(hidden_channels, out_channels, bias=outer_bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in (self.lin_q, self.lin_k, self.lin_n, self.lin_e, self.lin_r):
            if lin is not None:
                lin.reset_parameters()

    def _edge_list(self, edge_index: Adj) -> Tensor:
        if is_sparse(edge_index):
            # adj_t[i, j] != 0 means an edge j -> i; back to (source, target) rows.
            ei, _ = to_edge_index(edge_index)
            return ei.flip(0)
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError("edge_index must be a [2, |E|] tensor, an EdgeIndex or a sparse "
                             "adjacency")
        return edge_index.as_subclass(Tensor) if type(edge_index) is not Tensor else edge_index

    def forward(self, x: Tensor, edge_index: Adj, edge_attr: OptTensor = None) -> Tensor:
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(f"x must have shape [num_nodes, {self.in_channels}], "
                             f"got {tuple(x.shape)}")
        if is_sparse(edge_index) and edge_attr is not None:
            raise ValueError("edge_attr is only supported with an edge-list edge_index")
        ei = self._edge_list(edge_index)
        N = x.size(0)
        src, dst = ei[0], ei[1]
        q = F.dropout(self.lin_q(x), self.dropout, self.training)
        k = F.dropout(self.lin_k(x), self.dropout, self.training)
        # Neighbourhood context: one aggregation per node, reused by all of u's edges; dropout
        # acts on the aggregated context (as the reference code does), not per neighbour.
        msg_n = self.lin_n(x)[src]
        w_n = _edge_norm(self.neigh_aggr, src, dst, N, x.dtype)
        if w_n is not None:
            msg_n = msg_n * w_n.unsqueeze(-1)
        ctx = scatter(msg_n, dst, dim=0, dim_size=N, reduce=_PYG_AGGR[self.neigh_aggr])
        ctx = F.dropout(ctx, self.dropout, self.training)
        e = None
        if self.lin_e is not None:
            if edge_attr is None:
                raise ValueError("edge_attr is required: the layer was built with edge_dim="
                                 f"{self.edge_dim}")
            if edge_attr.size(0) != ei.size(1):
                raise ValueError(f"edge_attr has {edge_attr.size(0)} rows for {ei.size(1)} edges")
            e = self.lin_e(edge_attr.to(x.dtype))
        norm = _edge_norm(self.sinc_aggr, src, dst, N, x.dtype)
        out = self.propagate(ei, q=q + ctx, k=k, e=e, norm=norm, size=(N, N))
        return out if self.sinc_aggr == "max" else self.lin_r(out)

    def message(self, q_i: Tensor, k_j: Tensor, e: OptTensor, norm: OptTensor) -> Tensor:
        h = q_i + k_j if e is None else q_i + k_j + e
        h = self.act(h)
        if self.sinc_aggr == "max":
            return self.lin_r(h)
        return h if norm is None else h * norm.unsqueeze(-1)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"hidden={self.hidden_channels}, aggr={self.sinc_aggr}, "
                f"neigh_aggr={self.neigh_aggr})")
