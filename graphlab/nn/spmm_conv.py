"""GCN-normalised graph convolution whose aggregation runs through :func:`graphlab.kernels.spmm`."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.inits import zeros

from graphlab import kernels

_AGGR = {"sum": "add", "mean": "mean", "max": "max"}


class SpMMConv(MessagePassing):
    r"""Graph convolution from `"Semi-supervised Classification with Graph Convolutional
    Networks" <https://arxiv.org/abs/1609.02907>`_ (Kipf & Welling, ICLR 2017) with the
    neighbourhood reduction done by graphlab's sparse kernels.

    .. math::
        \mathbf{X}' = \hat{\mathbf{D}}^{-1/2} \hat{\mathbf{A}} \hat{\mathbf{D}}^{-1/2}
        \mathbf{X} \mathbf{\Theta} + \mathbf{b}

    node-wise, with :math:`\hat{\mathbf{A}} = \mathbf{A} + \mathbf{I}` and
    :math:`\hat{d}_i = 1 + \sum_{j \in \mathcal{N}(i)} e_{j,i}`:

    .. math::
        \mathbf{x}'_i = \mathbf{b} + \bigoplus_{j \in \mathcal{N}(i) \cup \{ i \}}
        \frac{e_{j,i}}{\sqrt{\hat{d}_j \hat{d}_i}} \mathbf{\Theta}^{\top} \mathbf{x}_j

    where :math:`\bigoplus` is a sum by default (then the layer equals PyG's ``GCNConv``), or a
    mean / max. With ``use_kernels=True`` the reduction is one call to
    :func:`graphlab.kernels.spmm` (cached sorted CSR; Triton / cuSPARSE / torch picked per device,
    ``GRAPHLAB_KERNELS`` forces one); with ``use_kernels=False`` it is PyG's gather/scatter
    ``propagate`` (the reference path).

    Args:
        in_channels: size of each input feature.
        out_channels: size of each output feature.
        aggr: ``'sum'``, ``'mean'`` or ``'max'`` (default: ``'sum'``).
        normalize: apply the symmetric GCN normalisation (and self-loops) (default: ``True``).
        add_self_loops: add self-loops before normalising (default: ``True``).
        improved: use :math:`\hat{\mathbf{A}} = \mathbf{A} + 2\mathbf{I}` (default: ``False``).
        cached: compute the normalisation once and reuse it (transductive settings only;
            default: ``False``; without it the last graph's normalisation is still reused when
            the very same, unmodified ``edge_index`` tensor comes again).
        bias: learn an additive bias (default: ``True``).
        use_kernels: aggregate with :func:`graphlab.kernels.spmm` (default: ``True``).

    Shapes:
        - input: node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)`, optional edge weights :math:`(|\mathcal{E}|)`
        - output: node features :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, aggr: str = "sum",
                 normalize: bool = True, add_self_loops: bool = True, improved: bool = False,
                 cached: bool = False, bias: bool = True, use_kernels: bool = True):
        if aggr not in _AGGR:
            raise ValueError(f"aggr must be one of {tuple(_AGGR)}, got {aggr!r}")
        super().__init__(aggr=_AGGR[aggr])
        self.in_channels, self.out_channels = in_channels, out_channels
        self.reduce = aggr
        self.normalize, self.add_self_loops, self.improved = normalize, add_self_loops, improved
        self.cached, self.use_kernels = cached, use_kernels
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._norm_cache = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        nn.init.xavier_uniform_(self.lin.weight)
        if self.bias is not None:
            zeros(self.bias)
        self._norm_cache = None

    def _normalised(self, edge_index: Tensor, edge_weight: Optional[Tensor], n: int):
        if not self.normalize:
            return edge_index, edge_weight
        c = self._norm_cache
        if c is not None and (self.cached or (
                not torch.compiler.is_compiling() and edge_weight is None and c[0] is edge_index
                and c[1] == edge_index._version and c[2] == n)):
            return c[3], c[4]
        ei, ew = gcn_norm(edge_index, edge_weight, n, self.improved, self.add_self_loops,
                          self.flow, None)
        if self.cached or (edge_weight is None and not torch.compiler.is_compiling()):
            self._norm_cache = (edge_index, edge_index._version, n, ei, ew)
        return ei, ew

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None) -> Tensor:
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(f"x must have shape (N, {self.in_channels}), got {tuple(x.shape)}")
        n = x.size(0)
        ei, ew = self._normalised(edge_index, edge_weight, n)
        h = self.lin(x)
        if self.use_kernels:
            out = kernels.spmm(ei, h, None if ew is None else ew.to(h.dtype), self.reduce, n)
        else:
            out = self.propagate(ei, x=h, edge_weight=ew, size=(n, n))
        return out if self.bias is None else out + self.bias

    def message(self, x_j: Tensor, edge_weight: Optional[Tensor]) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"aggr={self.reduce}, use_kernels={self.use_kernels})")
