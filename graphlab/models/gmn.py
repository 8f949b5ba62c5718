"""Graph Mamba Networks (GMN): subgraph tokens from random walks, read by a bidirectional SSM."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from graphlab.models.gps import GPSLayer, LocalMPNN, NORMS, _HybridBase, reset_children
from graphlab.models.basic import _check_choice
from graphlab.registry import LOCAL_MPNNS, register_model
from graphlab.schema import Range

TOKEN_ENCODERS = ("mpnn", "mean")


def build_csr(edge_index: Tensor, num_nodes: int) -> Tuple[Tensor, Tensor, Tensor]:
    """``(rowptr, col, perm)``: the out-neighbours of each node in CSR form, sorted by
    ``(source, target)``; ``perm`` maps CSR slots back to columns of ``edge_index``.

    Sorting by target index makes a node's neighbour list the same whether its graph is alone
    or inside a PyG batch (batching adds the same offset to every index of a graph)."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, num_edges], "
                         f"got {tuple(edge_index.shape)}")
    row, col = edge_index
    perm = torch.argsort(row * num_nodes + col, stable=True)
    counts = torch.bincount(row, minlength=num_nodes)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
    rowptr[1:] = torch.cumsum(counts, 0)
    return rowptr, col[perm], perm


def random_walk(rowptr: Tensor, col: Tensor, start: Tensor, walk_length: int,
                seed: Tensor | int, *keys: Tensor) -> Tensor:
    r"""Uniform random walks over a CSR graph, all walkers at once (no loop over walkers).

    Step :math:`t` of walker :math:`w` at node :math:`u` moves to the
    :math:`\lfloor U \deg(u)\rfloor`-th out-neighbour of :math:`u`, with
    :math:`U = \mathrm{hash}(\text{seed}, \text{keys}_w, t) \in [0, 1)` from
    :func:`graphlab.nn.mixers.hash_uniform`; a node without out-edges keeps the walker. The
    numbers depend only on ``(seed, keys, t)``, so keys built from graph-local indices give
    every graph the same walks alone or in any batch. (PyG's ``random_walk`` needs pyg-lib or
    torch-cluster; this is plain torch.)

    Args:
        rowptr (Tensor): ``[N + 1]`` CSR offsets (:func:`build_csr`).
        col (Tensor): ``[E]`` CSR column indices.
        start (Tensor): ``[W]`` start node of each walker.
        walk_length (int): Number of steps :math:`m`.
        seed (int or Tensor): Seed of the walk.
        *keys (Tensor): Integer tensors broadcastable to ``[W]`` naming each walker.

    Returns:
        ``[W, walk_length + 1]`` visited nodes (column 0 is ``start``).
    """
    if walk_length < 0:
        raise ValueError(f"walk_length must be >= 0, got {walk_length}")
    from graphlab.nn.mixers import hash_uniform
    keys = keys or (torch.arange(start.numel(), device=start.device),)
    pos, path = start, [start]
    last = max(col.numel() - 1, 0)
    for t in range(1, walk_length + 1):
        lo = rowptr[pos]
        deg = rowptr[pos + 1] - lo
        u = hash_uniform(seed, *keys, torch.full_like(start, t))
        off = torch.minimum((u * deg).long(), (deg - 1).clamp_min(0))
        nxt = col[(lo + off).clamp_max(last)] if col.numel() else pos
        pos = torch.where(deg > 0, nxt, pos)
        path.append(pos)
    return torch.stack(path, dim=1)


@dataclass
class SubgraphTokens:
    """Random-walk subgraph tokens of every node (see :func:`sample_subgraph_tokens`).

    ``N * m * s`` tokens; token ``(v, \\hat m, r)`` has id
    ``(v * m + \\hat m - 1) * s + r``. Its nodes are the pairs ``(pair_token, pair_node)``
    (sorted, unique); ``edge_index`` links pairs of one token (the induced subgraph) and
    ``edge_id`` names the original edge of each."""

    pair_token: Tensor
    pair_node: Tensor
    edge_index: Tensor
    edge_id: Tensor
    num_nodes: int
    m: int
    num_samples: int

    @property
    def num_tokens(self) -> int:
        return self.num_nodes * self.m * self.num_samples


def sample_subgraph_tokens(edge_index: Tensor, batch: Tensor, num_nodes: int, m: int,
                           num_walks: int, num_samples: int, seed: Tensor | int) -> SubgraphTokens:
    r"""GMN's neighbourhood tokenization, vectorised over all nodes of a batch.

    For every node :math:`v`, every walk length :math:`\hat m = 1..m` and every repetition
    :math:`r = 1..s`, ``num_walks`` (:math:`M`) random walks of length :math:`\hat m` start at
    :math:`v`; the token :math:`T_{\hat m, r}(v)` is the subgraph induced by the visited
    nodes. Walks are keyed by graph-local node indices (batch-independent).
    """
    from graphlab.nn.mixers import graph_ptr
    device = edge_index.device
    N, s, M = num_nodes, num_samples, num_walks
    rowptr, col, perm = build_csr(edge_index, N)
    local = graph_ptr(batch)[1]
    v = torch.arange(N, device=device).view(N, 1, 1, 1)
    mh = torch.arange(1, m + 1, device=device).view(1, m, 1, 1)
    r = torch.arange(s, device=device).view(1, 1, s, 1)
    j = torch.arange(M, device=device).view(1, 1, 1, M)
    shape = (N, m, s, M)
    start = v.expand(shape).reshape(-1)
    keys = [local.view(N, 1, 1, 1), mh, r, j]
    keys = [k.expand(shape).reshape(-1) for k in keys]
    walks = random_walk(rowptr, col, start, m, seed, *keys)               # [W, m + 1]
    step = torch.arange(m + 1, device=device).view(1, -1)
    valid = step <= keys[1].view(-1, 1)                                   # step t <= \hat m
    token = (start * m + keys[1] - 1) * s + keys[2]
    pair_key = (token.view(-1, 1) * N + walks)[valid]
    pair_key = torch.unique(pair_key)                                     # sorted
    pair_token, pair_node = pair_key // N, pair_key % N

    # induced edges: every out-edge of every pair whose head is in the same token
    deg = (rowptr[1:] - rowptr[:-1])[pair_node]
    src = torch.repeat_interleave(torch.arange(pair_key.numel(), device=device), deg)
    first = torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
    slot = rowptr[pair_node[src]] + torch.arange(src.numel(), device=device) - first
    target = pair_token[src] * N + col[slot]
    dst = torch.searchsorted(pair_key, target).clamp_max(max(pair_key.numel() - 1, 0))
    hit = pair_key[dst] == target if pair_key.numel() else target.new_zeros(0, dtype=torch.bool)
    return SubgraphTokens(pair_token, pair_node, torch.stack([src[hit], dst[hit]]),
                          perm[slot[hit]], N, m, s)


class SubgraphTokenMixer(nn.Module):
    r"""GMN's steps (2)-(4) for subgraph tokens (:math:`m \ge 1`).

    Each token :math:`T` is encoded by a local MPNN on its induced subgraph and mean-pooled
    (``token_encoder='mpnn'``; ``'mean'`` pools the node states without message passing). The
    tokens of node :math:`v` form the sequence

    .. math::
        \big(\phi(T_{m,1}), \dots, \phi(T_{m,s}), \ \phi(T_{m-1,1}), \dots,
        \phi(T_{1,s}), \ \mathbf{x}_v\big)

    from the widest neighbourhood to the node itself (GMN's hierarchical order: the token
    nearest to :math:`v` comes last, where a causal scan has seen all the others), which a
    bidirectional sequence core reads; the output at the last position is the new state of
    :math:`v`. The order of tokens is implied by :math:`\hat m`; the :math:`s` repetitions of
    one length are exchangeable samples.
    """

    def __init__(self, channels: int, edge_channels: Optional[int], mpnn: str,
                 token_encoder: str, seq_core: str, seq_core_kwargs: Optional[Dict[str, Any]],
                 bidirectional: bool, heads: int, dropout: float, norm: str):
        super().__init__()
        _check_choice("token_encoder", token_encoder, TOKEN_ENCODERS)
        from graphlab.nn.seq import build_seq_core
        self.token_encoder = token_encoder
        self.mpnn = (LocalMPNN(mpnn, channels, edge_channels, heads, dropout, norm)
                     if token_encoder == "mpnn" else None)
        self.core = build_seq_core(seq_core, channels, bidirectional,
                                   **dict(seq_core_kwargs or {}))

    def reset_parameters(self) -> None:
        reset_children(self)

    def _encode(self, x: Tensor, edge_attr: Optional[Tensor], tok: SubgraphTokens) -> Tensor:
        h = x[tok.pair_node]
        if self.mpnn is not None:
            e = edge_attr[tok.edge_id] if edge_attr is not None else None
            h = self.mpnn(h, tok.edge_index, e)[0]
        return scatter(h, tok.pair_token, 0, dim_size=tok.num_tokens, reduce="mean")

    def forward(self, x: Tensor, batch: Tensor, edge_index: Tensor, *,
                tokens: List[SubgraphTokens], edge_features: Optional[Tensor] = None) -> Tensor:
        N, D = x.shape
        out = 0
        for tok in tokens:  # one sample in training; eval averages several (fixed seeds)
            t = self._encode(x, edge_features, tok).view(N, tok.m, tok.num_samples, D)
            seq = t.flip(1).reshape(N, tok.m * tok.num_samples, D)       # widest first
            seq = torch.cat([seq, x.unsqueeze(1)], dim=1)                  # node token last
            out = out + self.core(seq, None)[:, -1]
        return out / len(tokens)


@register_model("gmn")
class GMN(_HybridBase):
    r"""Graph Mamba Networks (Behrouz & Hashemi, KDD 2024, `"Graph Mamba: Towards Learning on
    Graphs with State Space Models" <https://arxiv.org/abs/2402.08678>`_), with each of the
    paper's steps chosen by config:

    1. **Neighbourhood tokenization.** ``m = 0``: node tokens. ``m >= 1``: for each node and
       each :math:`\hat m \le m`, ``num_samples`` (:math:`s`) subgraph tokens, each induced by
       ``num_walks`` (:math:`M`) random walks of length :math:`\hat m`
       (:func:`sample_subgraph_tokens`; resampled at every training step, averaged over
       ``eval_orders`` fixed samples at evaluation).
    2. **Token ordering.** ``m = 0``: the nodes of each graph sorted by ``order`` (degree) with
       ``tie_break`` (random noise in training, ``eval_orders`` orderings averaged at
       evaluation; ``'state'`` gives a canonical order). ``m >= 1``: tokens from the widest
       neighbourhood to the node itself.
    3. **Bidirectional selective SSM encoder**: ``seq_core`` (Mamba by default; any core of
       :data:`graphlab.SEQ_CORES`) wrapped in :class:`graphlab.nn.seq.Bidirectional`.
    4. **Local encoding**: ``mpnn`` (GatedGCN by default) on the whole graph in every layer
       and, with ``token_encoder='mpnn'``, on each subgraph token.
    5. **PE/SE** (optional): ``pe``, concatenated to the node embedding.

    Each layer combines the branches as a GPS layer does (:class:`GPSLayer`:
    :math:`\mathbf{X}' = \mathrm{FFN}(\mathrm{norm}(\mathbf{X} + \mathrm{MPNN}(\mathbf{X})) +
    \mathrm{norm}(\mathbf{X} + \mathrm{BiSSM}(\mathrm{tokens}(\mathbf{X}))))`). The paper's
    code was not released (``GraphMamba/GMN`` holds only a README), so layer details follow the
    paper's description and GraphGPS's block; defaults follow GraphGPS/Graph-Mamba's
    Peptides-func setup (96 hidden, BatchNorm, dropout 0) where the paper gives no value.

    Args:
        in_channels (int), out_channels (int): filled by the trainer.
        hidden_channels (int): Width. (default: ``96``)
        num_layers (int): Layers. (default: ``4``)
        m (int): Longest walk (``0``: node tokens). (default: ``0``)
        num_walks (int): Walks per token :math:`M`. (default: ``2``)
        num_samples (int): Tokens per walk length :math:`s`. (default: ``1``)
        token_encoder (str): ``'mpnn'`` | ``'mean'``. (default: ``'mpnn'``)
        mpnn (str): Local MPNN, as in :class:`GPS`; ``'none'`` drops the whole-graph branch
            (and, with ``token_encoder='mpnn'``, is not allowed). (default: ``'gatedgcn'``)
        seq_core (str): Sequence core. (default: ``'mamba'``)
        seq_core_kwargs (dict, optional): Its keyword arguments.
        bidirectional (bool): Step 3's two directions. (default: ``True``)
        order (str), tie_break (str): Node ordering for ``m = 0``
            (:class:`graphlab.nn.mixers.SequenceMixer`). (default: ``'degree'``, ``'noise'``)
        eval_orders (int): Orderings / token samples averaged at evaluation. (default: ``5``)
        heads (int): GAT heads when ``mpnn='gat'``. (default: ``4``)
        dropout (float), norm (str), ffn_ratio (int), pool (str), head_layers (int), pe (str),
            pe_dim (int), pe_kwargs (dict): as in :class:`GPS`.
        task_level, node_encoder, edge_dim, edge_encoder: filled by the trainer.

    Shapes:
        - **input:** PyG ``Data``/``Batch`` (``x``, ``edge_index``, optional ``edge_attr``,
          ``batch``)
        - **output:** :math:`(\text{num\_graphs}, \text{out})` or :math:`(|\mathcal{V}|,
          \text{out})` with ``task_level='node'``
    """

    def __init__(self, in_channels: int, out_channels: int, *, hidden_channels: Annotated[int, Range(ge=1)] = 96,
                 num_layers: Annotated[int, Range(ge=1)] = 4, m: int = 0, num_walks: int = 2, num_samples: int = 1,
                 token_encoder: str = "mpnn", mpnn: str = "gatedgcn", seq_core: str = "mamba",
                 seq_core_kwargs: Optional[Dict[str, Any]] = None, bidirectional: bool = True,
                 order: str = "degree", tie_break: str = "noise", eval_orders: int = 5,
                 heads: Annotated[int, Range(ge=1)] = 4, dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0, norm: str = "batch", ffn_ratio: int = 2,
                 pool: str = "mean", head_layers: int = 1, pe: str = "none", pe_dim: Annotated[int, Range(ge=1)] = 16,
                 pe_kwargs: Optional[Dict[str, Any]] = None, task_level: str = "graph",
                 node_encoder: str = "linear", edge_dim: Optional[int] = None,
                 edge_encoder: str = "linear"):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        for name, value, low in (("m", m, 0), ("num_walks", num_walks, 1),
                                 ("num_samples", num_samples, 1), ("eval_orders", eval_orders, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        _check_choice("mpnn", mpnn, tuple(LOCAL_MPNNS.names()))
        _check_choice("norm", norm, NORMS)
        _check_choice("token_encoder", token_encoder, TOKEN_ENCODERS)
        if m >= 1 and token_encoder == "mpnn" and mpnn == "none":
            raise ValueError("token_encoder='mpnn' needs an mpnn (got mpnn='none'); use "
                             "token_encoder='mean'")
        self._init_io(in_channels, out_channels, hidden_channels, pe, pe_dim, pe_kwargs, pool,
                      head_layers, task_level, node_encoder, edge_dim, edge_encoder)
        self.num_layers, self.m = num_layers, m
        self.num_walks, self.num_samples = num_walks, num_samples
        self.eval_orders = eval_orders
        H = hidden_channels
        E = H if edge_dim is not None else None
        from graphlab.nn.mixers import SequenceMixer
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            local = LocalMPNN(mpnn, H, E, heads, dropout, norm) if mpnn != "none" else None
            if m == 0:
                mixer = SequenceMixer(H, seq_core, seq_core_kwargs, bidirectional, order,
                                      tie_break, eval_orders)
            else:
                mixer = SubgraphTokenMixer(H, E, mpnn, token_encoder, seq_core, seq_core_kwargs,
                                           bidirectional, heads, dropout, norm)
            self.layers.append(GPSLayer(local, mixer, H, dropout, norm, ffn_ratio))
        self.reset_parameters()

    def tokenize(self, data, num_nodes: int, batch: Tensor) -> List[SubgraphTokens]:
        """Subgraph tokens for this forward pass: one fresh sample in training, ``eval_orders``
        fixed samples (seeds ``0..eval_orders-1``) in evaluation."""
        if self.training:
            seeds = [torch.randint(0, 2 ** 31 - 1, (), device=batch.device)]
        else:
            seeds = list(range(self.eval_orders))
        return [sample_subgraph_tokens(data.edge_index, batch, num_nodes, self.m, self.num_walks,
                                       self.num_samples, sd) for sd in seeds]

    def forward(self, data) -> Tensor:
        x, e, batch = self.encode_inputs(data)
        kwargs = {}
        if self.m >= 1:
            kwargs = {"tokens": self.tokenize(data, x.size(0), batch)}
        for layer in self.layers:
            if self.m >= 1:
                kwargs["edge_features"] = e
            x, e = layer(x, data.edge_index, e, batch, **kwargs)
        return self.finish(x, data)
