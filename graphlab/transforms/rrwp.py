r"""Random-walk encodings: RRWP (relative, pairwise) and RWSE (diagonal, per node).

Both are built from the random-walk matrix :math:`\mathbf{M} = \mathbf{D}^{-1}\mathbf{A}`
(:math:`\mathbf{A}_{uv}` = 1, or the edge weight, for every edge ``u -> v`` of ``edge_index``;
:math:`\mathbf{D}` = row sums). A node without out-going edges has a row of zeros in
:math:`\mathbf{M}` (it has nowhere to walk), so all its powers beyond :math:`\mathbf{M}^0` are zero.

* :class:`AddRRWP` -- relative random-walk probabilities of GRIT
  (Ma et al., "Graph Inductive Biases in Transformers without Message Passing", ICML 2023,
  https://arxiv.org/abs/2305.17589):
  :math:`\mathbf{P}_{uv} = [\mathbf{I}, \mathbf{M}, \dots, \mathbf{M}^{K-1}]_{uv} \in \mathbb{R}^K`.
* :class:`AddRWSE` -- random-walk structural encoding (Dwivedi et al., ICLR 2022,
  https://arxiv.org/abs/2110.07875): :math:`[\mathbf{M}_{uu}, \mathbf{M}^2_{uu}, \dots,
  \mathbf{M}^K_{uu}]`, the convention of PyG's ``AddRandomWalkPE`` and GraphGPS.

Both are exact (dense float64 matrix powers, cast to ``dtype`` at the end); their cost per graph
is :math:`O(K n^3)` time and :math:`O(K n^2)` memory, fine for molecules and peptides
(hundreds of nodes) and meant to run per graph, e.g. on the fly as a ``DataLoader`` transform
(``dataset.transform = AddRRWP(17)``) so the dataset in memory never holds the pair features.
Graphs above ``max_nodes`` get a ``ValueError`` instead of an out-of-memory crash.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

__all__ = ["AddRRWP", "AddRWSE", "random_walk_matrix"]


def random_walk_matrix(edge_index: Tensor, num_nodes: int,
                       edge_weight: Optional[Tensor] = None,
                       dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Dense :math:`\mathbf{M} = \mathbf{D}^{-1}\mathbf{A}` of shape ``[n, n]``.

    ``A[u, v]`` sums the weights of all edges ``u -> v`` (duplicates add up); rows with zero
    out-degree stay zero.
    """
    row, col = edge_index
    w = (torch.ones(row.numel(), dtype=dtype, device=row.device) if edge_weight is None
         else edge_weight.to(dtype).view(-1))
    if w.numel() != row.numel():
        raise ValueError(f"edge_weight has {w.numel()} entries but edge_index has {row.numel()} "
                         "edges")
    if w.numel() and (w < 0).any():
        raise ValueError("edge_weight must be non-negative for a random walk")
    adj = torch.zeros(num_nodes, num_nodes, dtype=dtype, device=row.device)
    adj.index_put_((row, col), w, accumulate=True)
    deg = adj.sum(dim=1, keepdim=True)
    return torch.where(deg > 0, adj / deg.clamp_min(torch.finfo(dtype).tiny), adj)


def _check(data: Data, max_nodes: Optional[int], name: str) -> int:
    if data.edge_index is None:
        raise ValueError(f"{name} needs data.edge_index")
    n = data.num_nodes
    if n is None:
        raise ValueError(f"{name} needs data.num_nodes (or x) to know the graph size")
    if max_nodes is not None and n > max_nodes:
        raise ValueError(f"{name}: graph has {n} nodes > max_nodes={max_nodes}; the exact dense "
                         f"computation needs O(walk_length * n^2) memory. Raise max_nodes if "
                         "that fits, or use an approximate encoding for large graphs")
    return n


def _init_walk(t, walk_length: int, attr_name: str, weight_attr: Optional[str],
               max_nodes: Optional[int], dtype: torch.dtype) -> None:
    """Checks and stores the arguments shared by the random-walk transforms."""
    if not isinstance(walk_length, int) or walk_length < 1:
        raise ValueError(f"walk_length must be an int >= 1, got {walk_length!r}")
    if not attr_name:
        raise ValueError("attr_name must be a non-empty string")
    t.walk_length, t.attr_name = walk_length, attr_name
    t.weight_attr, t.max_nodes, t.dtype = weight_attr, max_nodes, dtype


class AddRRWP(BaseTransform):
    r"""Adds GRIT's relative random-walk probabilities (RRWP) to a graph.

    .. math::
        \mathbf{P}_{uv} = \big[\mathbf{I}, \mathbf{M}, \mathbf{M}^2, \dots,
        \mathbf{M}^{K-1}\big]_{uv} \in \mathbb{R}^{K}, \qquad
        \mathbf{M} = \mathbf{D}^{-1}\mathbf{A}

    with :math:`K` = ``walk_length``. Writes

    * ``data[attr_name]`` ``[N, K]``: the diagonal :math:`\mathbf{P}_{uu}` (node PE; channel 0 is 1);
    * ``data[attr_name + '_index']`` ``[2, P]``: every pair ``(u, v)`` with a walk of length
      :math:`\le K-1` from ``u`` to ``v`` (i.e. ``v`` within :math:`K-1` hops of ``u``), self pairs
      included, sorted by ``u`` then ``v``;
    * ``data[attr_name + '_val']`` ``[P, K]``: :math:`\mathbf{P}_{uv}` for those pairs.

    Pairs beyond :math:`K-1` hops have :math:`\mathbf{P}_{uv} = 0` and are not stored. The
    ``_index`` name makes PyG offset the pairs by the node count when batching. Row ``u`` of
    :math:`\mathbf{P}_{u\cdot}` is a distribution of walks *from* ``u``; GRIT uses
    :math:`\mathbf{P}_{ij}` as the feature of query ``i`` attending to key ``j``.

    Args:
        walk_length (int): :math:`K`, the number of channels (powers :math:`0, \dots, K-1`).
        attr_name (str): base name of the three attributes. (default: ``'rrwp'``)
        weight_attr (str, optional): edge attribute with non-negative edge weights for
            :math:`\mathbf{A}`; unweighted when ``None``. (default: ``None``)
        max_nodes (int, optional): largest graph accepted (memory is
            :math:`\approx (24 + 4K) n^2` bytes). ``None`` disables the check. (default: ``2000``)
        dtype (torch.dtype): dtype of the stored values (computed in float64).
            (default: ``torch.float32``)

    Shapes:
        input ``edge_index (2, |E|)``; output ``rrwp (N, K)``, ``rrwp_index (2, P)``,
        ``rrwp_val (P, K)`` with :math:`N \le P \le N^2`.
    """

    def __init__(self, walk_length: int, attr_name: str = "rrwp", *,
                 weight_attr: Optional[str] = None, max_nodes: Optional[int] = 2000,
                 dtype: torch.dtype = torch.float32):
        _init_walk(self, walk_length, attr_name, weight_attr, max_nodes, dtype)

    def forward(self, data: Data) -> Data:
        n = _check(data, self.max_nodes, "AddRRWP")
        w = data[self.weight_attr] if self.weight_attr is not None else None
        m = random_walk_matrix(data.edge_index, n, w)
        power = torch.eye(n, dtype=m.dtype, device=m.device)
        powers = [power.to(self.dtype)]
        reach = power.clone()  # sum of non-negative powers: > 0 exactly where some walk exists
        for _ in range(self.walk_length - 1):
            power = power @ m
            powers.append(power.to(self.dtype))
            reach += power
        row, col = (reach > 0).nonzero(as_tuple=True)
        data[self.attr_name] = torch.stack([p.diagonal() for p in powers], dim=-1)
        data[f"{self.attr_name}_index"] = torch.stack([row, col], dim=0)
        data[f"{self.attr_name}_val"] = torch.stack([p[row, col] for p in powers], dim=-1)
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(walk_length={self.walk_length}, attr_name={self.attr_name!r})"


class AddRWSE(BaseTransform):
    r"""Adds the random-walk structural encoding (return probabilities) to every node.

    .. math::
        \mathrm{RWSE}_u = \big[\mathbf{M}_{uu}, \mathbf{M}^2_{uu}, \dots,
        \mathbf{M}^{K}_{uu}\big] \in \mathbb{R}^{K}

    (steps :math:`1..K`, as PyG's ``AddRandomWalkPE`` and GraphGPS's RWSE; note that RRWP's
    diagonal starts at :math:`\mathbf{M}^0 = \mathbf{I}` instead). Isolated nodes get zeros.

    Args:
        walk_length (int): :math:`K`, the number of steps.
        attr_name (str): attribute written, ``[N, K]``. (default: ``'rwse'``)
        weight_attr (str, optional): edge attribute with non-negative weights. (default: ``None``)
        max_nodes (int, optional): largest graph accepted (dense :math:`n \times n` float64
            powers). ``None`` disables the check. (default: ``5000``)
        dtype (torch.dtype): dtype of the stored values. (default: ``torch.float32``)

    Shapes:
        input ``edge_index (2, |E|)``; output ``rwse (N, K)``.
    """

    def __init__(self, walk_length: int, attr_name: str = "rwse", *,
                 weight_attr: Optional[str] = None, max_nodes: Optional[int] = 5000,
                 dtype: torch.dtype = torch.float32):
        _init_walk(self, walk_length, attr_name, weight_attr, max_nodes, dtype)

    def forward(self, data: Data) -> Data:
        n = _check(data, self.max_nodes, "AddRWSE")
        w = data[self.weight_attr] if self.weight_attr is not None else None
        m = random_walk_matrix(data.edge_index, n, w)
        power, diags = m, [m.diagonal()]
        for _ in range(self.walk_length - 1):
            power = power @ m
            diags.append(power.diagonal())
        data[self.attr_name] = torch.stack(diags, dim=-1).to(self.dtype)
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(walk_length={self.walk_length}, attr_name={self.attr_name!r})"
