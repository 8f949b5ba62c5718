r"""Global token mixers over the nodes of each graph, for GPS-style hybrids.

A mixer lets every node of a graph read every other node of the *same* graph. All mixers share
one call: ``mixer(x, batch, edge_index=None) -> [N, D]`` with ``x [N, D]`` node states of a PyG
mini-batch and ``batch [N]`` the graph of each node (``None``: one graph). Graphs are turned into
right-padded dense sequences with :func:`torch_geometric.utils.to_dense_batch`; padded slots
never reach a real node, so a graph's output does not depend on the graphs it is batched with.

* ``'multihead'`` :class:`MultiheadMixer`: softmax self-attention (Vaswani et al. 2017), as in
  GraphGPS.
* ``'performer'`` :class:`PerformerMixer`: FAVOR+ linear attention with positive orthogonal
  random features (Choromanski et al., ICLR 2021, https://arxiv.org/abs/2009.14794). PyG's
  ``PerformerAttention`` uses a ReLU kernel and lets padded keys enter its normaliser (a padded
  key maps to ``kernel(0) + 1e-3``), so a graph's output changes with the padding of its batch;
  this one masks padded keys exactly.
* ``'seq'`` :class:`SequenceMixer`: any sequence core of :data:`graphlab.SEQ_CORES` (Mamba, S4D,
  DeltaNet, ...) run over the nodes of each graph in a chosen order (Graph-Mamba, Wang et al.
  2024, https://arxiv.org/abs/2402.00789: nodes sorted by degree with random tie-breaking in
  training and an average over several orderings at evaluation), optionally bidirectional.
* ``'none'``: no global mixing (:func:`build_mixer` returns ``None``).

Each is a factory registered in :data:`graphlab.registry.MIXERS`; a new mixer is one more
``@register_mixer("name")`` factory with the shared call above.
"""
from __future__ import annotations

import math
from typing import Any, Dict, NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.utils import cumsum, degree, to_dense_batch

from graphlab.nn import checks as _checks
from graphlab.registry import register_mixer

ORDERS = ("degree", "index", "random")
TIE_BREAKS = ("noise", "state", "index")

_M32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    # (x * c) mod 2**32 for x < 2**32 without int64 overflow: split c into 16-bit halves.
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _M32


def _mix32(x: Tensor) -> Tensor:
    # A 32-bit integer finaliser (xor-shift-multiply), a bijection with good avalanche.
    x = x & _M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def hash_uniform(seed: Tensor | int, *keys: Tensor) -> Tensor:
    r"""Counter-based uniform numbers in :math:`[0, 1)`: a hash of ``(seed, *keys)``.

    The value for one key tuple never depends on the other entries of the tensors, which is
    what makes random orderings and random walks *seeded per graph*: keyed by graph-local node
    indices, a graph draws the same numbers alone or inside any batch. ``keys`` are integer
    tensors broadcast together; the result is ``float64``.
    """
    h = torch.as_tensor(seed, dtype=torch.long, device=keys[0].device if keys else None)
    h = _mix32(h + 0x9E3779B9)
    for k in keys:
        h = _mix32(h ^ _mix32(k.long() + 0x632BE5AB))
    return h.double() / 4294967296.0


def graph_count(data) -> Optional[int]:
    """The number of graphs of a PyG ``Batch`` as the host knows it (1 for a single ``Data``),
    or None when it would have to be read from the device."""
    return getattr(data, "num_graphs", None) if getattr(data, "batch", None) is not None else 1


def graph_ptr(batch: Tensor, num_graphs: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """``(ptr, local)``: CSR offsets of the graphs (``batch`` sorted) and each node's index
    inside its own graph. Reads nothing back from the device when ``num_graphs`` is given."""
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    counts = torch.zeros(num_graphs, dtype=torch.long, device=batch.device)
    counts.scatter_add_(0, batch, torch.ones_like(batch))  # bincount would read its size back
    ptr = cumsum(counts)
    local = torch.arange(batch.numel(), device=batch.device) - ptr[batch]
    return ptr, local


def sort_within_graphs(key: Tensor, batch: Tensor) -> Tensor:
    """Permutation that sorts nodes by ``key`` inside each graph, keeping graphs contiguous and
    in batch order (two stable sorts; no loop over graphs). Ties keep node order."""
    perm = torch.argsort(key, stable=True)
    return perm[torch.argsort(batch[perm], stable=True)]


def _check_batch(x: Tensor, batch: Optional[Tensor]) -> Tensor:
    if x.dim() != 2:
        raise ValueError(f"x must have shape [num_nodes, channels], got {tuple(x.shape)}")
    if batch is None:
        return x.new_zeros(x.size(0), dtype=torch.long)
    if batch.shape != (x.size(0),):
        raise ValueError(f"batch must have shape [{x.size(0)}], got {tuple(batch.shape)}")
    if batch.numel() > 1 and not _checks._tracing() and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be sorted (nodes of one graph contiguous), as in PyG Batch")
    return batch


class DenseLayout(NamedTuple):
    """Where each node sits in the right-padded dense batch ``[B, M, D]``: ``idx[i]`` is node
    ``i``'s row in the flattened ``[B * M]`` view and ``mask`` ``[B, M]`` marks real slots.
    Computed once per forward (:func:`dense_layout`) and shared by the mixers of all layers, so
    the host reads the batch's sizes once instead of in every layer. With ``overflow`` set,
    nodes beyond slot ``M`` of their graph (only the padding graph of a static batch) have
    ``idx = B * M``: a spare row that :func:`to_dense` drops and :func:`from_dense` reads as
    zeros."""
    idx: Tensor
    mask: Tensor
    overflow: bool = False


def dense_layout(x: Tensor, batch: Optional[Tensor], num_graphs: Optional[int] = None,
                 max_nodes: Optional[int] = None) -> DenseLayout:
    """The :class:`DenseLayout` of ``batch`` (sorted, as in PyG ``Batch``); the same slots as
    :func:`torch_geometric.utils.to_dense_batch`. Reads the sortedness check, the number of
    graphs (unless ``num_graphs`` is given) and the largest graph (unless ``max_nodes`` is
    given) back from the device.

    ``max_nodes`` fixes ``M`` (static shapes, e.g. for CUDA graphs): it must bound every graph
    but the last, whose extra nodes (padding) go to the spare row (see :class:`DenseLayout`);
    checked unless a graph is being traced or recorded."""
    batch = _check_batch(x, batch)
    ptr, local = graph_ptr(batch, num_graphs)
    num_graphs = ptr.numel() - 1
    if max_nodes is None:
        M = int(ptr.diff().max()) if num_graphs else 0
        idx = batch * M + local
        mask = torch.zeros(num_graphs * M, dtype=torch.bool, device=batch.device)
        mask.index_fill_(0, idx, True)
        return DenseLayout(idx, mask.view(num_graphs, M))
    M = int(max_nodes)
    over = local >= M
    if not _checks._tracing() and num_graphs and bool((over & (batch != num_graphs - 1)).any()):
        raise ValueError(f"dense_layout: a graph other than the last has more than max_nodes="
                         f"{M} nodes")
    idx = torch.where(over, num_graphs * M, batch * M + local)
    # index_fill_ takes the value as a kernel argument; ``mask[idx] = True`` would copy a host
    # tensor to the device, which a CUDA-graph recording refuses
    mask = torch.zeros(num_graphs * M + 1, dtype=torch.bool, device=batch.device)
    mask.index_fill_(0, idx, True)
    return DenseLayout(idx, mask[:-1].view(num_graphs, M), overflow=True)


def to_dense(x: Tensor, layout: DenseLayout) -> Tensor:
    """``[N, D]`` -> ``[B, M, D]``, zeros in padded slots (as ``to_dense_batch``)."""
    B, M = layout.mask.shape
    out = x.new_zeros(B * M + int(layout.overflow), x.size(-1))
    out = out.index_copy(0, layout.idx, x)
    return out[:B * M].view(B, M, x.size(-1))


def from_dense(h: Tensor, layout: DenseLayout) -> Tensor:
    """``[B, M, D]`` -> ``[N, D]``: the real slots in node order (as ``h[mask]``)."""
    flat = h.reshape(-1, h.size(-1))
    if layout.overflow:
        flat = torch.cat([flat, flat.new_zeros(1, flat.size(-1))])
    return flat.index_select(0, layout.idx)


class MultiheadMixer(nn.Module):
    r"""Softmax self-attention among the nodes of each graph.

    .. math::
        \mathbf{x}_i' = \mathbf{W}_O \Big\Vert_{h=1}^{H} \sum_{j \in G(i)}
        \operatorname{softmax}_j\!\Big(\tfrac{\langle \mathbf{W}^h_Q\mathbf{x}_i,
        \mathbf{W}^h_K\mathbf{x}_j\rangle}{\sqrt{d_h}}\Big)\mathbf{W}^h_V\mathbf{x}_j

    Args:
        channels (int): Node feature size :math:`D` (divisible by ``heads``).
        heads (int): Number of heads :math:`H`. (default: ``4``)
        dropout (float): Dropout on the attention weights. (default: ``0.0``)

    Shapes:
        - **input:** ``x`` :math:`(|\mathcal{V}|, D)`, ``batch`` :math:`(|\mathcal{V}|)`
        - **output:** :math:`(|\mathcal{V}|, D)`
    """

    def __init__(self, channels: int, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} must be divisible by heads={heads}")
        self.channels, self.heads = channels, heads
        self.attn = nn.MultiheadAttention(channels, heads, dropout=dropout, batch_first=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.attn._reset_parameters()

    def forward(self, x: Tensor, batch: Optional[Tensor] = None,
                edge_index: Optional[Tensor] = None,
                layout: Optional[DenseLayout] = None) -> Tensor:
        if layout is None:
            layout = dense_layout(x, batch)
        h = to_dense(x, layout)
        h = self.attn(h, h, h, key_padding_mask=~layout.mask, need_weights=False)[0]
        return from_dense(h, layout)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, heads={self.heads})"


def orthogonal_random_features(num_features: int, dim: int,
                               generator: Optional[torch.Generator] = None) -> Tensor:
    """``[num_features, dim]`` Gaussian directions, orthogonal within blocks of ``dim`` rows,
    each row rescaled to the norm of a Gaussian vector (Performer's ORF construction)."""
    blocks = []
    for _ in range(math.ceil(num_features / dim)):
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
        blocks.append(q.T)
    w = torch.cat(blocks)[:num_features]
    norms = torch.randn(num_features, dim, generator=generator).norm(dim=1, keepdim=True)
    return w * norms


class PerformerMixer(nn.Module):
    r"""FAVOR+ linear attention (Performer) among the nodes of each graph.

    With positive random features :math:`\phi(\mathbf{u}) = m^{-1/2}\exp(\mathbf{W}\mathbf{u}
    - \lVert\mathbf{u}\rVert^2/2)` (:math:`\mathbf{W} \in \mathbb{R}^{m \times d_h}` orthogonal
    random features), :math:`\mathbb{E}[\phi(\mathbf{q})^\top\phi(\mathbf{k})] =
    \exp(\mathbf{q}^\top\mathbf{k})`, and per head

    .. math::
        \mathbf{x}_i' = \frac{\phi(\mathbf{q}_i)^\top \sum_{j \in G(i)} \phi(\mathbf{k}_j)
        \mathbf{v}_j^\top}{\phi(\mathbf{q}_i)^\top \sum_{j \in G(i)} \phi(\mathbf{k}_j)},
        \qquad \mathbf{q} = d_h^{-1/4}\mathbf{W}_Q\mathbf{x}, \ \mathbf{k} =
        d_h^{-1/4}\mathbf{W}_K\mathbf{x}

    costing :math:`O(|\mathcal{V}| m d_h)` instead of :math:`O(|\mathcal{V}|^2 d_h)`. The
    exponent is stabilised by its maximum over each query's features and over each graph's keys;
    both cancel between numerator and denominator, so padding and batching leave the result
    unchanged. The features are drawn at construction (and by :meth:`reset_parameters` /
    :meth:`redraw_projection`); they are a buffer, saved with the model.

    Args:
        channels (int): Node feature size :math:`D` (divisible by ``heads``).
        heads (int): Number of heads. (default: ``4``)
        num_features (int, optional): Random features per head :math:`m`; default
            :math:`\lceil d_h \ln d_h \rceil` (the Performer paper's choice).
        dropout (float): Dropout on the output. (default: ``0.0``)

    Shapes:
        - **input:** ``x`` :math:`(|\mathcal{V}|, D)`, ``batch`` :math:`(|\mathcal{V}|)`
        - **output:** :math:`(|\mathcal{V}|, D)`
    """

    def __init__(self, channels: int, heads: int = 4, num_features: Optional[int] = None,
                 dropout: float = 0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} must be divisible by heads={heads}")
        self.channels, self.heads = channels, heads
        self.head_dim = channels // heads
        if num_features is None:
            num_features = max(1, math.ceil(self.head_dim * math.log(max(self.head_dim, 2))))
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        self.num_features = num_features
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("projection", torch.empty(heads, num_features, self.head_dim))
        self.reset_parameters()

    @torch.no_grad()
    def redraw_projection(self) -> None:
        """Draw fresh orthogonal random features (one set per head)."""
        w = torch.stack([orthogonal_random_features(self.num_features, self.head_dim)
                         for _ in range(self.heads)])
        self.projection.copy_(w)

    def reset_parameters(self) -> None:
        self.qkv.reset_parameters()
        self.out.reset_parameters()
        self.redraw_projection()

    def _features(self, u: Tensor, valid: Tensor, per_token: bool) -> Tensor:
        # u [B, H, L, d] -> phi(u) [B, H, L, m]; invalid positions give exactly zero features.
        proj = torch.einsum("bhld,hmd->bhlm", u, self.projection.to(u.dtype))
        expo = proj - 0.5 * (u * u).sum(-1, keepdim=True)
        expo = expo.masked_fill(~valid, float("-inf"))
        if per_token:
            stab = expo.amax(dim=-1, keepdim=True)
        else:
            stab = expo.amax(dim=(-2, -1), keepdim=True)
        stab = torch.where(torch.isfinite(stab), stab, torch.zeros_like(stab)).detach()
        return torch.exp(expo - stab) / math.sqrt(self.num_features)

    def forward(self, x: Tensor, batch: Optional[Tensor] = None,
                edge_index: Optional[Tensor] = None,
                layout: Optional[DenseLayout] = None) -> Tensor:
        if layout is None:
            layout = dense_layout(x, batch)
        h, mask = to_dense(x, layout), layout.mask
        B, L, _ = h.shape
        q, k, v = self.qkv(h).view(B, L, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        scale = self.head_dim ** -0.25
        valid = mask[:, None, :, None]
        phi_q = self._features(q * scale, valid, per_token=True)
        phi_k = self._features(k * scale, valid, per_token=False)
        v = v.masked_fill(~valid, 0.0)
        kv = torch.einsum("bhlm,bhld->bhmd", phi_k, v)
        num = torch.einsum("bhlm,bhmd->bhld", phi_q, kv)
        den = torch.einsum("bhlm,bhm->bhl", phi_q, phi_k.sum(dim=2)).unsqueeze(-1)
        o = (num / den.clamp_min(torch.finfo(den.dtype).tiny)).transpose(1, 2).reshape(B, L, -1)
        return from_dense(self.dropout(self.out(o)), layout)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, heads={self.heads}, "
                f"num_features={self.num_features})")


class SequenceMixer(nn.Module):
    r"""A sequence core run over the nodes of each graph, in a chosen order.

    The nodes of each graph are sorted by a key (``order``), laid out as one right-padded
    sequence per graph, passed through the core (causal, or both directions with
    ``bidirectional=True``) and scattered back to their nodes:

    .. math::
        \mathbf{X}'_{G} = \pi^{-1}\big(\mathrm{Core}(\pi(\mathbf{X}_G))\big), \qquad
        \pi = \operatorname{argsort}_{v \in G}\big(\kappa(v) + \epsilon_v\big)

    with :math:`\kappa(v)` the in-degree (``order='degree'``), the node index (``'index'``) or
    zero (``'random'``) and :math:`\epsilon_v \in [0, 1)` the tie-break: ``'noise'`` (uniform
    noise, fresh at each training step; at evaluation the output is averaged over
    ``eval_orders`` fixed orderings, as Graph-Mamba does), ``'state'`` (a fixed random projection
    of the node state, squashed into :math:`(0, 1)`: a canonical, relabelling-invariant order
    whenever the projections differ) or ``'index'`` (node order: deterministic, not invariant).
    Random numbers are hashed from graph-local indices, so a graph's ordering never depends on
    its batch. Degree-ascending order puts hubs last, where a causal core has seen the most
    context (Graph-Mamba's choice).

    Args:
        channels (int): Node feature size :math:`D`.
        seq_core (str): Name in :data:`graphlab.SEQ_CORES` (``'mamba'``, ``'s4d'``, ...).
            (default: ``'mamba'``)
        seq_core_kwargs (dict, optional): Keyword arguments of the core.
        bidirectional (bool): Wrap two cores in :class:`graphlab.nn.seq.Bidirectional`.
            (default: ``False``, Graph-Mamba's single direction)
        order (str): ``'degree'`` | ``'index'`` | ``'random'``. (default: ``'degree'``)
        tie_break (str): ``'noise'`` | ``'state'`` | ``'index'``. (default: ``'noise'``)
        eval_orders (int): Orderings averaged at evaluation with ``tie_break='noise'``.
            (default: ``5``)

    Shapes:
        - **input:** ``x`` :math:`(|\mathcal{V}|, D)`, ``batch`` :math:`(|\mathcal{V}|)`,
          ``edge_index`` :math:`(2, |\mathcal{E}|)` (needed for ``order='degree'``)
        - **output:** :math:`(|\mathcal{V}|, D)`
    """

    def __init__(self, channels: int, seq_core: str = "mamba",
                 seq_core_kwargs: Optional[Dict[str, Any]] = None, bidirectional: bool = False,
                 order: str = "degree", tie_break: str = "noise", eval_orders: int = 5):
        super().__init__()
        if order not in ORDERS:
            raise ValueError(f"order={order!r} is not one of {', '.join(ORDERS)}")
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break={tie_break!r} is not one of {', '.join(TIE_BREAKS)}")
        if eval_orders < 1:
            raise ValueError(f"eval_orders must be >= 1, got {eval_orders}")
        self.channels, self.seq_core, self.bidirectional = channels, seq_core, bidirectional
        self.order, self.tie_break, self.eval_orders = order, tie_break, eval_orders
        from graphlab.nn.seq import build_seq_core
        self.core = build_seq_core(seq_core, channels, bidirectional,
                                   **dict(seq_core_kwargs or {}))
        self.register_buffer("tie_direction", torch.empty(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # A core initialises itself (Mamba's dt/A inits are not Linear defaults), so only its
        # own reset_parameters is called, when it has one.
        if hasattr(self.core, "reset_parameters"):
            self.core.reset_parameters()
        with torch.no_grad():
            self.tie_direction.normal_()

    def sort_key(self, x: Tensor, batch: Tensor, edge_index: Optional[Tensor],
                 seed: Tensor | int) -> Tensor:
        """The ``float64`` key whose within-graph argsort is the node order."""
        n = x.size(0)
        if self.order == "degree":
            if edge_index is None:
                raise ValueError("order='degree' needs edge_index")
            key = degree(edge_index[1], n, dtype=torch.float64)
        elif self.order == "index":
            key = graph_ptr(batch)[1].double()
        else:
            key = x.new_zeros(n, dtype=torch.float64)
        if self.tie_break == "noise":
            key = key + hash_uniform(seed, graph_ptr(batch)[1])
        elif self.tie_break == "state":
            key = key + torch.sigmoid(x.detach().double() @ self.tie_direction.double()) * 0.999
        return key

    def _mix_once(self, x: Tensor, batch: Tensor, edge_index: Optional[Tensor],
                  seed: Tensor | int) -> Tensor:
        perm = sort_within_graphs(self.sort_key(x, batch, edge_index, seed), batch)
        h, mask = to_dense_batch(x[perm], batch[perm])
        h = self.core(h, mask)
        out = h.new_empty(x.size(0), h.size(-1))
        out[perm] = h[mask]
        return out

    def forward(self, x: Tensor, batch: Optional[Tensor] = None,
                edge_index: Optional[Tensor] = None) -> Tensor:
        batch = _check_batch(x, batch)
        if self.tie_break != "noise" or self.order == "index":  # deterministic order
            return self._mix_once(x, batch, edge_index, 0)
        if self.training:
            seed = torch.randint(0, 2 ** 31 - 1, (), device=x.device)
            return self._mix_once(x, batch, edge_index, seed)
        out = self._mix_once(x, batch, edge_index, 0)
        for k in range(1, self.eval_orders):
            out = out + self._mix_once(x, batch, edge_index, k)
        return out / self.eval_orders

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, seq_core={self.seq_core!r}, "
                f"bidirectional={self.bidirectional}, order={self.order!r}, "
                f"tie_break={self.tie_break!r})")


def build_mixer(name: str, channels: int, *, heads: int = 4, dropout: float = 0.0,
                num_features: Optional[int] = None, seq_core: str = "mamba",
                seq_core_kwargs: Optional[Dict[str, Any]] = None, bidirectional: bool = False,
                order: str = "degree", tie_break: str = "noise",
                eval_orders: int = 5) -> Optional[nn.Module]:
    """The global mixer registered as ``name`` in :data:`graphlab.registry.MIXERS` (see the
    module docstring); ``None`` for ``'none'``. A mixer factory takes ``(channels, options)``,
    ``options`` holding every keyword argument of this function.

    ``name`` may also be a sequence-core name directly (``'mamba'``, ``'s4d'``, ...), short for
    ``name='seq', seq_core=name``."""
    from graphlab.registry import MIXERS, SEQ_CORES
    name = str(name).lower()
    if name not in MIXERS:
        if name not in SEQ_CORES:
            raise ValueError(f"mixer={name!r} is not one of {', '.join(MIXERS.names())} nor a "
                             f"sequence core ({', '.join(SEQ_CORES.names()) or 'none registered'})")
        seq_core, name = name, "seq"
    options = dict(heads=heads, dropout=dropout, num_features=num_features, seq_core=seq_core,
                   seq_core_kwargs=seq_core_kwargs, bidirectional=bidirectional, order=order,
                   tie_break=tie_break, eval_orders=eval_orders)
    return MIXERS.get(name)(channels, options)


@register_mixer("none")
def _no_mixer(channels: int, o: Dict[str, Any]) -> None:
    return None


@register_mixer("multihead")
def _multihead(channels: int, o: Dict[str, Any]) -> MultiheadMixer:
    return MultiheadMixer(channels, o["heads"], o["dropout"])


@register_mixer("performer")
def _performer(channels: int, o: Dict[str, Any]) -> PerformerMixer:
    return PerformerMixer(channels, o["heads"], o["num_features"], o["dropout"])


@register_mixer("seq")
def _sequence(channels: int, o: Dict[str, Any]) -> SequenceMixer:
    return SequenceMixer(channels, o["seq_core"], o["seq_core_kwargs"], o["bidirectional"],
                         o["order"], o["tie_break"], o["eval_orders"])
