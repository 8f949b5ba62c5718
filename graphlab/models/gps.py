"""GPS: local message passing x global token mixing x positional encoding, any combination."""
from __future__ import annotations

from typing import Annotated, Any, Dict, Optional, Tuple

import torch
from torch import Tensor, nn
import torch.nn.functional as F

from graphlab.models.basic import POOLS, TASK_LEVELS, _check_choice, readout
from graphlab.nn.checks import check_no_nan
from graphlab.nn.encoders import EdgeEncoder, FeatureEncoder
from graphlab.nn.self_loops import gat_conv_with_self_loops, gcn_self_loops
from graphlab.registry import LOCAL_MPNNS, register_local_mpnn, register_model
from graphlab.schema import Range

NORMS = ("batch", "layer", "none")


def reset_children(module: nn.Module) -> None:
    """Re-initialise every child: a child with ``reset_parameters`` owns its whole subtree (so a
    sequence core keeps its own special initialisation); containers are walked into."""
    for child in module.children():
        if hasattr(child, "reset_parameters"):
            child.reset_parameters()
        else:
            reset_children(child)


def _norm(kind: str, channels: int) -> nn.Module:
    return (nn.BatchNorm1d(channels) if kind == "batch" else
            nn.LayerNorm(channels) if kind == "layer" else nn.Identity())


class LocalMPNN(nn.Module):
    """One local message-passing layer of a hybrid block, with its residual and norm.

    ``mpnn`` names a kind registered in :data:`graphlab.registry.LOCAL_MPNNS` (below:
    ``gatedgcn``, ``gine``, ``gin``, ``gcn``, ``gat``, ``none``). ``mpnn='gatedgcn'`` reproduces
    the LRGB/GraphGPS GatedGCN block (the conv, BatchNorm, ReLU, dropout, residual, on nodes and
    on edges); every other kind is ``x + dropout(conv(x))``. The block's norm comes after the
    residual, as in GraphGPS. Returns ``(x, edge_attr)``, with the edge states updated by
    GatedGCN and passed through otherwise.

    A new kind is a class with ``uses_edges`` (whether it reads edge features), ``build(block,
    channels, edge_channels, heads)`` (sets ``block.conv`` and any other modules) and
    ``apply(block, x, edge_index, edge_feats, edge_attr) -> (h, edge_attr)`` (the branch
    before dropout / residual / norm for all but GatedGCN, which applies its own), registered
    with ``@register_local_mpnn("name")``.
    """

    def __init__(self, mpnn: str, channels: int, edge_channels: Optional[int], heads: Annotated[int, Range(ge=1)] = 4,
                 dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0, norm: str = "batch"):
        super().__init__()
        _check_choice("mpnn", mpnn, tuple(LOCAL_MPNNS.names()))
        _check_choice("norm", norm, NORMS)
        self.kind, self.dropout = mpnn, dropout
        self.spec = LOCAL_MPNNS.get(mpnn)
        self.uses_edges = edge_channels is not None and self.spec.uses_edges
        self.conv = None
        self.spec.build(self, channels, edge_channels if self.uses_edges else None, heads)
        self.norm = _norm(norm, channels) if self.conv is not None else nn.Identity()

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, x: Tensor, edge_index: Tensor,
                edge_attr: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        if self.conv is None:
            return x, edge_attr
        e_in = edge_attr if self.uses_edges else None
        h, edge_attr = self.spec.apply(self, x, edge_index, e_in, edge_attr)
        return self.norm(x + h), edge_attr


def _dropped(block: nn.Module, h: Tensor) -> Tensor:
    return F.dropout(h, block.dropout, block.training)


@register_local_mpnn("gatedgcn")
class _GatedGCNKind:
    uses_edges = True

    @staticmethod
    def build(block, H, E, heads):
        from graphlab.nn.gated_gcn import GatedGCNConv
        block.conv = GatedGCNConv(H, H, edge_dim=E)
        block.bn_x = nn.BatchNorm1d(H)
        block.bn_e = nn.BatchNorm1d(H) if E is not None else None

    @staticmethod
    def apply(block, x, edge_index, e_in, edge_attr):
        h, e = block.conv(x, edge_index, e_in, return_edge_attr=True)
        h = _dropped(block, F.relu(block.bn_x(h)))
        if block.bn_e is not None and edge_attr is not None:
            edge_attr = edge_attr + _dropped(block, F.relu(block.bn_e(e)))
        return h, edge_attr


class _GINKind:
    uses_edges = True

    @staticmethod
    def build(block, H, E, heads):
        from torch_geometric.nn import GINConv, GINEConv
        mlp = nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.Linear(H, H))
        block.conv = GINEConv(mlp, edge_dim=E) if E is not None else GINConv(mlp)

    @staticmethod
    def apply(block, x, edge_index, e_in, edge_attr):
        h = block.conv(x, edge_index, e_in) if e_in is not None else block.conv(x, edge_index)
        return _dropped(block, h), edge_attr


@register_local_mpnn("gine")
class _GINEKind(_GINKind):
    pass


@register_local_mpnn("gin")
class _GINOnlyKind(_GINKind):
    uses_edges = False


@register_local_mpnn("gcn")
class _GCNKind:
    """Self-loops from graphlab.nn.self_loops (fixed sizes)."""

    uses_edges = False

    @staticmethod
    def build(block, H, E, heads):
        from torch_geometric.nn import GCNConv
        block.conv = GCNConv(H, H, add_self_loops=False)

    @staticmethod
    def apply(block, x, edge_index, e_in, edge_attr):
        index, weight = gcn_self_loops(edge_index, None, x.size(0), dtype=x.dtype)
        return _dropped(block, block.conv(x, index, weight)), edge_attr


@register_local_mpnn("gat")
class _GATKind:
    uses_edges = True

    @staticmethod
    def build(block, H, E, heads):
        from torch_geometric.nn import GATConv
        if H % heads:
            raise ValueError(f"hidden_channels={H} must be divisible by heads={heads}")
        block.conv = GATConv(H, H // heads, heads=heads, edge_dim=E, add_self_loops=False)

    @staticmethod
    def apply(block, x, edge_index, e_in, edge_attr):
        return _dropped(block, gat_conv_with_self_loops(block.conv, x, edge_index, e_in)), \
            edge_attr


@register_local_mpnn("none")
class _NoMPNN:
    uses_edges = False

    @staticmethod
    def build(block, H, E, heads):
        block.conv = None

    @staticmethod
    def apply(block, x, edge_index, e_in, edge_attr):
        return x, edge_attr


class FeedForward(nn.Module):
    """``norm(x + dropout(W2 dropout(relu(W1 x))))``: the position-wise block of GPS layers."""

    def __init__(self, channels: int, ratio: int = 2, dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0, norm: str = "batch"):
        super().__init__()
        self.lin1 = nn.Linear(channels, ratio * channels)
        self.lin2 = nn.Linear(ratio * channels, channels)
        self.dropout = dropout
        self.norm = _norm(norm, channels)

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, x: Tensor) -> Tensor:
        h = F.dropout(F.relu(self.lin1(x)), self.dropout, self.training)
        return self.norm(x + F.dropout(self.lin2(h), self.dropout, self.training))


class GPSLayer(nn.Module):
    r"""One GPS layer (Rampášek et al., NeurIPS 2022):

    .. math::
        \mathbf{X}_M, \mathbf{E}' &= \mathrm{norm}\big(\mathbf{X} +
            \mathrm{MPNN}(\mathbf{X}, \mathbf{E}, \mathbf{A})\big), \qquad
        \mathbf{X}_T = \mathrm{norm}\big(\mathbf{X} + \mathrm{Mixer}(\mathbf{X})\big),

        \mathbf{X}' &= \mathrm{norm}\big(\mathbf{X}_M + \mathbf{X}_T +
            \mathrm{FFN}(\mathbf{X}_M + \mathbf{X}_T)\big)

    with dropout on each branch; a missing MPNN or mixer drops its term. ``mixer`` is any module
    of :mod:`graphlab.nn.mixers` (or ``None``).
    """

    def __init__(self, local: Optional[LocalMPNN], mixer: Optional[nn.Module], channels: int,
                 dropout: float, norm: str, ffn_ratio: int):
        super().__init__()
        if local is None and mixer is None:
            raise ValueError("a GPS layer needs an MPNN, a mixer or both (got mpnn='none', "
                             "mixer='none')")
        self.local, self.mixer, self.dropout = local, mixer, dropout
        self.norm_mix = _norm(norm, channels) if mixer is not None else None
        self.ffn = FeedForward(channels, ffn_ratio, dropout, norm)

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Optional[Tensor],
                batch: Tensor, **mixer_kwargs) -> Tuple[Tensor, Optional[Tensor]]:
        out = 0
        if self.local is not None:
            h, edge_attr = self.local(x, edge_index, edge_attr)
            out = out + h
        if self.mixer is not None:
            h = self.mixer(x, batch, edge_index, **mixer_kwargs)
            out = out + self.norm_mix(x + F.dropout(h, self.dropout, self.training))
        return self.ffn(out), edge_attr


class PredictionHead(nn.Module):
    """MLP head: ``layers - 1`` hidden layers halving the width (GraphGPS's ``san_graph`` head),
    then a linear map to the outputs; ``layers=1`` is a single linear map."""

    def __init__(self, channels: int, out_channels: int, layers: int = 1):
        super().__init__()
        if layers < 1:
            raise ValueError(f"head_layers must be >= 1, got {layers}")
        dims = [max(channels // 2 ** i, 1) for i in range(layers)]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], out_channels)

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, x: Tensor) -> Tensor:
        for lin in self.lins:
            x = F.relu(lin(x))
        return self.out(x)


def build_pe(pe: str, pe_dim: int, pe_kwargs: Optional[Dict[str, Any]],
             hidden_channels: int) -> Optional[nn.Module]:
    """The positional-encoding encoder of :mod:`graphlab.nn.pe` (``None`` for ``'none'``); its
    pre-transform is ``graphlab.transforms.pe.pe_transform(pe, **pe_kwargs)``."""
    if str(pe).lower() == "none":
        return None
    if not 0 < pe_dim < hidden_channels:
        raise ValueError(f"pe_dim must be in (0, hidden_channels={hidden_channels}) so the node "
                         f"encoder keeps some width, got {pe_dim}")
    from graphlab.nn.pe import build_pe_encoder
    return build_pe_encoder(pe, pe_dim, **dict(pe_kwargs or {}))


class _HybridBase(nn.Module):
    """Encoders (node features ‖ PE, edges), the head and the readout shared by GPS and GMN."""

    def _init_io(self, in_channels: int, out_channels: int, hidden_channels: int, pe: str,
                 pe_dim: int, pe_kwargs: Optional[Dict[str, Any]], pool: str, head_layers: int,
                 task_level: str, node_encoder: str, edge_dim: Optional[int],
                 edge_encoder: str) -> None:
        _check_choice("task_level", task_level, TASK_LEVELS)
        _check_choice("pool", pool, tuple(POOLS))
        self.in_channels, self.out_channels = in_channels, out_channels
        self.hidden_channels, self.task_level, self.pool = hidden_channels, task_level, pool
        self.pe_name = pe
        self.pe = build_pe(pe, pe_dim, pe_kwargs, hidden_channels)
        node_width = hidden_channels - (pe_dim if self.pe is not None else 0)
        self.encoder = FeatureEncoder(node_encoder, in_channels, node_width)
        self.edge_dim = edge_dim
        self.edge_encoder = (EdgeEncoder(edge_encoder, edge_dim, hidden_channels)
                             if edge_dim is not None else None)
        self.head = PredictionHead(hidden_channels, out_channels, head_layers)

    def reset_parameters(self) -> None:
        reset_children(self)

    def encode_inputs(self, data) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        x = getattr(data, "x", None)
        check_no_nan(x, "data.x")
        h = self.encoder(x, data.num_nodes)
        if self.pe is not None:  # GraphGPS style: [node embedding || PE]
            from graphlab.nn.pe import add_pe
            h = add_pe(h, data, self.pe, mode="concat")
        e = None
        if self.edge_encoder is not None:
            e = self.edge_encoder(getattr(data, "edge_attr", None), data.edge_index.size(1))
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = h.new_zeros(h.size(0), dtype=torch.long)
        return h, e, batch

    def finish(self, x: Tensor, data) -> Tensor:
        return self.head(readout(x, data, self.task_level, self.pool))


@register_model("gps")
class GPS(_HybridBase):
    r"""General, powerful, scalable graph transformer (Rampášek et al., NeurIPS 2022,
    https://arxiv.org/abs/2205.12454) with every part chosen by config: a local MPNN
    (``mpnn``: GatedGCN with edge gates, GINE, GIN, GCN, GAT or none), a global mixer
    (``mixer``: softmax attention, Performer linear attention, any sequence core of
    :data:`graphlab.SEQ_CORES` over a node ordering, or none) and a positional / structural
    encoding (``pe``: any encoder of :mod:`graphlab.nn.pe`, concatenated to the node
    embedding as in GraphGPS). Each layer is a :class:`GPSLayer`:

    .. math::
        \mathbf{X}^{\ell+1}, \mathbf{E}^{\ell+1} = \mathrm{GPS}^{\ell}\big(\mathbf{X}^{\ell},
        \mathbf{E}^{\ell}, \mathbf{A}\big), \qquad
        \mathbf{X}^{0} = [\,\mathrm{Enc}(\mathbf{X}) \,\Vert\, \mathrm{PE}(\mathbf{A})\,]

    ``mixer='seq'`` with ``seq_core='mamba'``, ``order='degree'``, ``tie_break='noise'`` is
    Graph-Mamba (Wang et al. 2024, https://arxiv.org/abs/2402.00789; its default
    ``Mamba_Hybrid_Degree_Noise``): nodes sorted by degree with random tie-breaking in training,
    an average over ``eval_orders`` orderings at evaluation.

    Defaults follow GraphGPS's Peptides-func config (``configs/GPS/peptides-func-GPS.yaml``:
    GatedGCN + Transformer, 4 layers, 96 hidden, 4 heads, dropout 0, attention dropout 0.5,
    BatchNorm, mean pooling).

    Args:
        in_channels (int), out_channels (int): filled by the trainer.
        hidden_channels (int): Width :math:`D`. (default: ``96``)
        num_layers (int): GPS layers. (default: ``4``)
        mpnn (str): ``'gatedgcn'`` | ``'gine'`` | ``'gin'`` | ``'gcn'`` | ``'gat'`` |
            ``'none'``. (default: ``'gatedgcn'``)
        mixer (str): ``'multihead'`` | ``'performer'`` | ``'seq'`` | ``'none'``, or a
            sequence-core name (short for ``'seq'`` with that core). (default: ``'multihead'``)
        heads (int): Attention heads (mixer and GAT). (default: ``4``)
        dropout (float): Dropout of every branch. (default: ``0.0``)
        attn_dropout (float): Dropout on attention weights (``'multihead'``) or on the
            Performer output. (default: ``0.5``)
        norm (str): ``'batch'`` | ``'layer'`` | ``'none'``. (default: ``'batch'``)
        ffn_ratio (int): FFN width multiplier. (default: ``2``)
        pool (str): Graph readout ``'mean'`` | ``'sum'`` | ``'max'``. (default: ``'mean'``)
        head_layers (int): Layers of the prediction head. (default: ``1``)
        pe (str): Positional encoding name of :mod:`graphlab.nn.pe`, or ``'none'``.
        pe_dim (int): PE width (taken out of ``hidden_channels``). (default: ``16``)
        pe_kwargs (dict, optional): Extra arguments of the PE encoder.
        seq_core (str), seq_core_kwargs (dict, optional), bidirectional (bool), order (str),
            tie_break (str), eval_orders (int): the sequence mixer (see
            :class:`graphlab.nn.mixers.SequenceMixer`).
        num_features (int, optional): Performer random features per head.
        task_level, node_encoder, edge_dim, edge_encoder: filled by the trainer.

    Shapes:
        - **input:** PyG ``Data``/``Batch`` with ``x`` :math:`(|\mathcal{V}|, F)`,
          ``edge_index`` :math:`(2, |\mathcal{E}|)`, optional ``edge_attr``, ``batch``
        - **output:** :math:`(\text{num\_graphs}, \text{out})` or
          :math:`(|\mathcal{V}|, \text{out})` with ``task_level='node'``
    """

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: Annotated[int, Range(ge=1)] = 96,
                 num_layers: Annotated[int, Range(ge=1)] = 4, mpnn: str = "gatedgcn", mixer: str = "multihead",
                 heads: Annotated[int, Range(ge=1)] = 4, dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0, attn_dropout: Annotated[float, Range(ge=0, lt=1)] = 0.5,
                 norm: str = "batch", ffn_ratio: int = 2, pool: str = "mean",
                 head_layers: int = 1, pe: str = "none", pe_dim: Annotated[int, Range(ge=1)] = 16,
                 pe_kwargs: Optional[Dict[str, Any]] = None, seq_core: str = "mamba",
                 seq_core_kwargs: Optional[Dict[str, Any]] = None, bidirectional: bool = False,
                 order: str = "degree", tie_break: str = "noise", eval_orders: int = 5,
                 num_features: Optional[int] = None, task_level: str = "graph",
                 node_encoder: str = "linear", edge_dim: Optional[int] = None,
                 edge_encoder: str = "linear"):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        _check_choice("norm", norm, NORMS)
        from graphlab.nn.mixers import build_mixer
        self._init_io(in_channels, out_channels, hidden_channels, pe, pe_dim, pe_kwargs, pool,
                      head_layers, task_level, node_encoder, edge_dim, edge_encoder)
        self.num_layers, self.mpnn, self.mixer = num_layers, mpnn, mixer
        H = hidden_channels
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            local = (LocalMPNN(mpnn, H, H if edge_dim is not None else None, heads, dropout,
                               norm) if mpnn != "none" else None)
            mix = build_mixer(mixer, H, heads=heads, dropout=attn_dropout,
                              num_features=num_features, seq_core=seq_core,
                              seq_core_kwargs=seq_core_kwargs, bidirectional=bidirectional,
                              order=order, tie_break=tie_break, eval_orders=eval_orders)
            self.layers.append(GPSLayer(local, mix, H, dropout, norm, ffn_ratio))
        self.reset_parameters()

    def forward(self, data) -> Tensor:
        x, e, batch = self.encode_inputs(data)
        kw = {}
        if self.mixer in ("multihead", "performer"):
            # one dense layout for all layers: the batch's sizes are read back once per forward
            from graphlab.nn.mixers import dense_layout, graph_count
            # static batches (task.cuda_graphs) fix the dense width: no read-back at all
            kw["layout"] = dense_layout(x, batch, graph_count(data),
                                        getattr(data, "max_graph_nodes", None))
        for layer in self.layers:
            x, e = layer(x, data.edge_index, e, batch, **kw)
        return self.finish(x, data)
