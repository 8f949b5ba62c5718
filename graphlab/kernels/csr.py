"""Sorted CSR (rows = target nodes) and its transpose, built once per graph and cached.

Convention (PyG's ``flow='source_to_target'``): an edge ``(j, i)`` stored as
``edge_index[:, e] = (j, i)`` carries a message from source ``j`` to target ``i``.
The CSR used by the kernels has one row per *target* node, so ``out[i]`` reduces over the
row ``i``; the transposed CSR (one row per source node) gives the backward pass.

The cache is keyed on the identity and version counter of the ``edge_index`` tensor (plus
``num_nodes``), holds only a weak reference to it, and drops its entry when the tensor dies.
Under ``torch.compile`` the CSR is rebuilt inside the graph with traceable ops instead (or pass
a :class:`CSR` built ahead with :func:`to_csr`, which the compiled graph takes as input).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = ["CSR", "to_csr", "clear_csr_cache"]


@dataclass
class CSR:
    """A graph in sorted CSR form with its transpose.

    Attributes:
        rowptr: ``(num_dst + 1,)`` offsets of each target node's incoming edges.
        col: ``(E,)`` source node of each edge, CSR order (sorted by target, then source).
        row: ``(E,)`` target node of each edge, CSR order (``rowptr`` expanded).
        perm: ``(E,)`` CSR position -> original edge id (``edge_attr[perm]`` is CSR order).
        inv_perm: ``(E,)`` original edge id -> CSR position (``out_csr[inv_perm]`` is edge order).
        colptr: ``(num_src + 1,)`` offsets of each source node's outgoing edges.
        row_t: ``(E,)`` target node of each edge in transposed (CSC) order.
        col_t: ``(E,)`` source node of each edge in transposed order.
        perm_t: ``(E,)`` CSC position -> CSR position (``w_csr[perm_t]`` is CSC order).
        num_src, num_dst: node counts of the two sides.
    All index tensors are int32 when the sizes allow it (they halve index traffic in the
    kernels), int64 otherwise.
    """

    rowptr: Tensor
    col: Tensor
    row: Tensor
    perm: Tensor
    inv_perm: Tensor
    colptr: Tensor
    row_t: Tensor
    col_t: Tensor
    perm_t: Tensor
    num_src: int
    num_dst: int

    @property
    def num_edges(self) -> int:
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        return self.col.device

    def deg(self) -> Tensor:
        """In-degree of every target node (``(num_dst,)``, same dtype as ``rowptr``)."""
        return self.rowptr[1:] - self.rowptr[:-1]

    def to(self, device) -> "CSR":
        f = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        return CSR(**f)


def _ptr(sorted_idx: Tensor, size: int) -> Tensor:
    counts = torch.zeros(size, dtype=torch.long, device=sorted_idx.device)
    counts.scatter_add_(0, sorted_idx.long(), torch.ones_like(sorted_idx, dtype=torch.long))
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _build(edge_index: Tensor, num_src: int, num_dst: int) -> CSR:
    src, dst = edge_index[0].long(), edge_index[1].long()
    # Sort by (target, source): one stable argsort on a combined key keeps it to a single pass.
    key = dst * max(num_src, 1) + src
    perm = torch.argsort(key, stable=True)
    col, row = src[perm], dst[perm]
    rowptr = _ptr(row, num_dst)
    key_t = col * max(num_dst, 1) + row
    perm_t = torch.argsort(key_t, stable=True)
    row_t, col_t = row[perm_t], col[perm_t]
    colptr = _ptr(col_t, num_src)
    inv_perm = torch.empty_like(perm)
    inv_perm[perm] = torch.arange(perm.numel(), device=perm.device)
    small = max(num_src, num_dst, col.numel()) < 2 ** 31 - 1
    it = torch.int32 if small else torch.long
    return CSR(rowptr.to(it), col.to(it), row.to(it), perm, inv_perm, colptr.to(it), row_t.to(it),
               col_t.to(it), perm_t.to(it), num_src, num_dst)


_CACHE: dict = {}


def clear_csr_cache() -> None:
    """Forget every cached CSR."""
    _CACHE.clear()


def _check_edge_index(edge_index: Tensor) -> None:
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.dtype not in (torch.long, torch.int32):
        raise ValueError(f"edge_index must be int64 or int32, got {edge_index.dtype}")


def to_csr(edge_index: Union[Tensor, CSR], num_nodes: Optional[Union[int, Tuple[int, int]]] = None,
           cache: bool = True) -> CSR:
    """Return the sorted :class:`CSR` of ``edge_index`` (cached per tensor).

    Args:
        edge_index: ``(2, E)`` int tensor (a PyG ``EdgeIndex`` works too), or a :class:`CSR`
            (returned as is).
        num_nodes: number of nodes, or ``(num_src, num_dst)`` for bipartite graphs. Defaults to
            ``edge_index.max() + 1`` (or the ``sparse_size`` an ``EdgeIndex`` carries).
        cache: keep the result keyed on the tensor, so later calls with the same (unmodified)
            tensor reuse it.
    """
    if isinstance(edge_index, CSR):
        return edge_index
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"edge_index must be a Tensor or graphlab.kernels.CSR, got {type(edge_index)}")
    _check_edge_index(edge_index)
    if num_nodes is None:
        sizes = getattr(edge_index, "sparse_size", None)
        sizes = sizes() if callable(sizes) else None
        if sizes is not None and sizes[0] is not None and sizes[1] is not None:
            num_src, num_dst = int(sizes[0]), int(sizes[1])
        else:
            n = int(edge_index.max()) + 1 if edge_index.numel() > 0 else 0
            num_src = num_dst = n
    elif isinstance(num_nodes, (tuple, list)):
        num_src, num_dst = int(num_nodes[0]), int(num_nodes[1])
    else:
        num_src = num_dst = int(num_nodes)
    if num_src < 0 or num_dst < 0:
        raise ValueError(f"num_nodes must be non-negative, got {num_nodes}")
    plain = edge_index.as_subclass(Tensor) if type(edge_index) is not Tensor else edge_index
    if torch.compiler.is_compiling() or not cache:
        return _build(plain, num_src, num_dst)
    key = (id(edge_index), num_src, num_dst)
    hit = _CACHE.get(key)
    if hit is not None:
        ref, version, csr = hit
        if ref() is edge_index and version == edge_index._version:
            return csr
    if edge_index.numel() > 0:
        lo, hi = int(plain.min()), int(plain.max())
        if lo < 0 or int(plain[0].max()) >= num_src or int(plain[1].max()) >= num_dst:
            raise ValueError(f"edge_index holds node ids in [{lo}, {hi}] outside "
                             f"num_nodes=({num_src}, {num_dst})")
    csr = _build(plain, num_src, num_dst)
    try:
        ref = weakref.ref(edge_index, lambda _r, k=key: _CACHE.pop(k, None))
    except TypeError:  # pragma: no cover - tensors support weak references
        return csr
    _CACHE[key] = (ref, edge_index._version, csr)
    return csr
