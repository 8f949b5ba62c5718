r"""HyperDrop: edge pooling on the dual hypergraph (Jo et al., NeurIPS 2021; harryjo97/EHGNN)."""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn

from graphlab.nn.dual_conv import DualHypergraphConv, dual_hypergraph_index

__all__ = ["HyperDrop", "HyperDropOutput", "keep_counts", "topk_per_graph"]


def keep_counts(counts: Tensor, ratio: float) -> Tensor:
    r""":math:`\lceil \mathrm{ratio} \cdot m_g \rceil` per graph, exact for decimal ratios:
    the product is rounded to 9 decimals before the ceiling, so ``0.7 * 10`` (which is
    ``7.000000000000001`` in binary floating point) keeps 7, not 8."""
    prod = torch.round(counts.to(torch.float64) * float(ratio), decimals=9)
    return torch.ceil(prod).long()


def topk_per_graph(score: Tensor, ratio: float, batch: Tensor,
                   num_graphs: Optional[int] = None) -> Tensor:
    r"""Indices of the :math:`\lceil \mathrm{ratio} \cdot m_g \rceil` highest scores of every
    graph :math:`g` (``batch`` gives each element's graph), in increasing index order.

    Ties are broken by the lower index (a stable sort), so the choice is deterministic; it is
    permutation-equivariant wherever the scores are distinct.
    """
    if not 0.0 < float(ratio) <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    if score.dim() != 1 or batch.shape != score.shape:
        raise ValueError(f"score and batch must be 1-D of the same length, got "
                         f"{tuple(score.shape)} and {tuple(batch.shape)}")
    G = int(num_graphs) if num_graphs is not None else (int(batch.max()) + 1 if batch.numel()
                                                         else 0)
    counts = torch.bincount(batch, minlength=G)
    k = keep_counts(counts, ratio)
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(batch[order], stable=True)]  # by graph, then by score
    start = torch.cumsum(counts, 0) - counts
    g = batch[order]
    rank = torch.arange(order.numel(), device=score.device) - start[g]
    return torch.sort(order[rank < k[g]]).values


class HyperDropOutput(NamedTuple):
    edge_index: Tensor   #: kept edges ``[2, m']``
    edge_attr: Tensor    #: their features ``[m', D]``
    edge_weight: Tensor  #: their scores clamped to ``[0, 1]`` ``[m']``
    perm: Tensor         #: indices of the kept edges ``[m']`` (increasing)
    score: Tensor        #: every edge's score ``[m]``


class HyperDrop(nn.Module):
    r"""HyperDrop from `"Edge Representation Learning with Hypergraphs"
    <https://arxiv.org/abs/2106.15845>`_ (Jo et al., NeurIPS 2021): score the edges with a
    hypergraph convolution on the dual hypergraph and keep the best
    :math:`\lceil r \cdot m_g \rceil` edges of every graph :math:`g`. Unlike node pooling, the
    node set is kept whole; only edges are dropped.

    .. math::
        \mathbf{s} = \tanh\big(\mathrm{HConv}(\mathbf{E}, \tilde{\mathbf{M}}^\top)\big)
        \in \mathbb{R}^{m}, \qquad
        \mathcal{I}_g = \mathrm{top}_{\lceil r\, m_g \rceil}\{ s_e : e \in g \}

    :math:`\mathrm{HConv}` is :class:`~graphlab.nn.dual_conv.DualHypergraphConv` to one
    channel. The kept edges carry :math:`\mathrm{clamp}(s_e, 0, 1)` as ``edge_weight``, the
    path by which the scorer receives gradients when the next node convolution weighs its
    messages with them (as in the reference).

    Choices (documented because the equation leaves them open):

    * :math:`\lceil r\, m_g \rceil` is computed exactly for decimal :math:`r`
      (:func:`keep_counts`); a graph with no edges keeps none, one with a single edge keeps it
      (:math:`\lceil r \rceil = 1`).
    * Kept edges stay in their original order (not in score order), ties go to the lower
      index.

    Args:
        in_channels (int): edge feature size.
        ratio (float): kept fraction :math:`r \in (0, 1]` (reference default 0.8).
        self_loops (bool): loops in the dual for the scoring convolution (default ``True``).

    Shapes: ``edge_attr (|E|, D)``, ``edge_index (2, |E|)``, ``edge_batch (|E|,)`` (graph of
    every edge) -> :class:`HyperDropOutput` with ``|E'| = sum_g ceil(r |E_g|)`` edges.
    """

    def __init__(self, in_channels: int, ratio: float = 0.8, self_loops: bool = True):
        super().__init__()
        if not 0.0 < float(ratio) <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.in_channels, self.ratio, self.self_loops = in_channels, float(ratio), self_loops
        self.score_conv = DualHypergraphConv(in_channels, 1, self_loops=self_loops)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.score_conv.reset_parameters()

    def forward(self, edge_attr: Tensor, edge_index: Tensor, edge_batch: Tensor,
                num_nodes: int, num_graphs: Optional[int] = None,
                dual: Optional[Tuple[Tensor, int]] = None) -> HyperDropOutput:
        if edge_attr.size(0) != edge_index.size(1) or edge_batch.numel() != edge_index.size(1):
            raise ValueError(f"edge_attr ({edge_attr.size(0)}), edge_index "
                             f"({edge_index.size(1)}) and edge_batch ({edge_batch.numel()}) "
                             "must have one entry per edge")
        if dual is None:
            dual = dual_hypergraph_index(edge_index, num_nodes, self.self_loops)
        score = torch.tanh(self.score_conv(edge_attr, dual=dual).view(-1))
        perm = topk_per_graph(score, self.ratio, edge_batch, num_graphs)
        return HyperDropOutput(edge_index[:, perm], edge_attr[perm],
                               score[perm].clamp(0.0, 1.0), perm, score)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, ratio={self.ratio})"

