r"""Laplacian eigenpairs as stored inputs for spectral positional encodings (SPE, SignNet, LapPE).

Unlike PyG's :class:`~torch_geometric.transforms.AddLaplacianEigenvectorPE`, this transform keeps
the eigenvalues, keeps the trivial eigenvector(s), applies no random sign flip, pads graphs with
fewer than ``k`` nodes and says which entries are padding.

Solver. The graph is split into connected components (``scipy.sparse.csgraph``); every
component is solved on its own and the ``k`` smallest eigenpairs over all components are kept.
This makes the null space of a disconnected graph exact and canonical (one
:math:`D^{1/2}\mathbf{1}` indicator per component) and lets a large graph of small pieces use
the dense solver. A component with at most ``dense_max_nodes`` nodes (default: ``500``, see
:data:`DENSE_MAX_NODES`) is solved densely with LAPACK (``numpy.linalg.eigh``, float64);
a larger one with ARPACK (``scipy.sparse.linalg.eigsh``, tolerance 0 = machine precision,
fixed start vector): first plain Lanczos for the smallest algebraic eigenvalues (fast on
expander-like graphs, where a sparse LU fills in), and when that has not converged after
:data:`SA_MAXITER` restarts, shift-invert around a small negative shift (fast on paths and
meshes, whose small eigenvalues cluster). If ARPACK still fails, components with at most
:data:`DENSE_FALLBACK_MAX_NODES` nodes are solved densely. Lanczos methods can miss copies of
an exactly repeated eigenvalue inside one connected component (highly symmetric graphs); use a
larger ``dense_max_nodes`` for such graphs.
"""
from __future__ import annotations

import warnings
from typing import List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import remove_self_loops, to_undirected

#: Components with at most this many nodes use the dense LAPACK solver (chosen from timings on
#: the 2-core CI CPU: dense ``eigh`` and ARPACK for k <= 40 cost about the same at 300-600
#: nodes; dense is exact on repeated eigenvalues, so the threshold sits at the upper end).
DENSE_MAX_NODES = 500
#: When ARPACK fails to converge, components up to this size are solved densely instead.
DENSE_FALLBACK_MAX_NODES = 8000
#: Restarts of plain Lanczos before switching to shift-invert.
SA_MAXITER = 300
NORMALIZATIONS = ("sym", None)


def laplacian_matrix(edge_index: Tensor, num_nodes: int, normalization: Optional[str] = "sym",
                     edge_weight: Optional[Tensor] = None) -> sp.csr_matrix:
    r"""The graph Laplacian as a float64 scipy CSR matrix.

    Edges are made undirected (``max`` of the two directions, so an edge listed once or twice
    has the same weight), duplicate edges are merged with ``max`` and self-loops are dropped.
    ``normalization=None``: :math:`L = D - A`; ``'sym'``:
    :math:`L = I - D^{-1/2} A D^{-1/2}` on non-isolated nodes and :math:`L_{ii} = 0` on isolated
    nodes (Chung's convention, so the multiplicity of eigenvalue 0 is the number of connected
    components, isolated nodes included).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r} is not one of 'sym', None")
    n = int(num_nodes)
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise ValueError(f"edge_index has entries outside [0, num_nodes={n})")
    ei = edge_index.long().cpu()
    w = None
    if edge_weight is not None:
        w = edge_weight.detach().double().cpu().view(-1)
        if w.numel() != ei.size(1):
            raise ValueError(f"edge_weight has {w.numel()} entries for {ei.size(1)} edges")
        if not torch.isfinite(w).all() or (w < 0).any():
            raise ValueError("edge_weight must be finite and non-negative")
    ei, w = remove_self_loops(ei, w)
    if w is None:
        w = torch.ones(ei.size(1), dtype=torch.float64)
    ei, w = to_undirected(ei, w, num_nodes=n, reduce="max")
    A = sp.csr_matrix((w.numpy(), (ei[0].numpy(), ei[1].numpy())), shape=(n, n))
    deg = np.asarray(A.sum(axis=1)).ravel()
    if normalization is None:
        return (sp.diags(deg) - A).tocsr()
    inv_sqrt = np.zeros_like(deg)
    nz = deg > 0
    inv_sqrt[nz] = deg[nz] ** -0.5
    S = sp.diags(inv_sqrt) @ A @ sp.diags(inv_sqrt)
    return (sp.diags(nz.astype(np.float64)) - S).tocsr()


def _dense_eigh(L: sp.spmatrix, m: int) -> Tuple[np.ndarray, np.ndarray]:
    lam, vec = np.linalg.eigh(L.toarray())
    return lam[:m], vec[:, :m]


def _sparse_eigh(L: sp.spmatrix, m: int) -> Tuple[np.ndarray, np.ndarray]:
    n = L.shape[0]
    v0 = np.random.default_rng(0).standard_normal(n)
    try:
        # Plain Lanczos is fast on expanders (an LU of L there fills in badly) ...
        lam, vec = eigsh(L, k=m, which="SA", tol=0.0, v0=v0, maxiter=SA_MAXITER)
    except ArpackNoConvergence:
        # ... shift-invert is fast where the small eigenvalues cluster (paths, meshes).
        scale = max(1.0, float(L.diagonal().max()))
        try:
            lam, vec = eigsh(L, k=m, sigma=-1e-2 * scale, which="LM", tol=0.0, v0=v0)
        except ArpackNoConvergence:
            if n > DENSE_FALLBACK_MAX_NODES:
                raise RuntimeError(
                    f"ARPACK did not converge on a connected component of {n} nodes and it is "
                    f"too large for the dense fallback (> {DENSE_FALLBACK_MAX_NODES} nodes)"
                ) from None
            return _dense_eigh(L, m)
    order = np.argsort(lam, kind="stable")
    return lam[order], vec[:, order]


def laplacian_eigen(edge_index: Tensor, num_nodes: int, k: int,
                    normalization: Optional[str] = "sym", edge_weight: Optional[Tensor] = None,
                    dense_max_nodes: int = DENSE_MAX_NODES) -> Tuple[np.ndarray, np.ndarray]:
    r"""The ``min(k, n)`` smallest Laplacian eigenpairs, in float64 (see module docstring).

    Returns ``(eigenvalues [m], eigenvectors [n, m])`` with ``m = min(k, n)``, eigenvalues in
    ascending order, orthonormal eigenvectors with the sign fixed so that the entry of largest
    magnitude is positive. Also used with ``k + 1`` to test whether ``k`` splits an eigenspace.
    """
    n = int(num_nodes)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    L = laplacian_matrix(edge_index, n, normalization, edge_weight)
    if n == 0:
        return np.zeros(0), np.zeros((0, 0))
    ncomp, labels = connected_components(L, directed=False)
    vals: List[np.ndarray] = []
    vecs: List[Tuple[np.ndarray, np.ndarray]] = []  # (node ids, local eigenvectors)
    order_nodes = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=ncomp))[:-1]
    for idx in np.split(order_nodes, bounds):
        nc = idx.size
        m = min(k, nc)
        if nc == 1:
            lam, vec = np.zeros(1), np.ones((1, 1))
        elif nc <= dense_max_nodes or m >= nc - 1:
            lam, vec = _dense_eigh(L[idx][:, idx], m)
        else:
            lam, vec = _sparse_eigh(L[idx][:, idx], m)
        vals.append(lam)
        vecs.extend((idx, vec[:, j]) for j in range(vec.shape[1]))
    lam_all = np.concatenate(vals)
    order = np.argsort(lam_all, kind="stable")[:min(k, n)]
    V = np.zeros((n, order.size))
    for col, i in enumerate(order):
        idx, v = vecs[i]
        v = v / np.linalg.norm(v)
        if v[np.argmax(np.abs(v))] < 0:
            v = -v
        V[idx, col] = v
    # eigenvalues of a disconnected graph's null space come out as +-1e-16; report them as 0
    lam = np.where(np.abs(lam_all[order]) < 1e-12, 0.0, lam_all[order])
    return lam, V


class AddLaplacianEigen(BaseTransform):
    r"""Stores the ``k`` smallest eigenpairs of the graph Laplacian (for SPE, SignNet, LapPE).

    .. math::
        L = I - D^{-1/2} A D^{-1/2} = V \operatorname{diag}(\lambda) V^\top,
        \qquad 0 = \lambda_1 \le \lambda_2 \le \dots

    Writes three node-level attributes, so that PyG's collate concatenates them correctly:

    * ``data.eigvals`` ``[N, k]``: every row is the graph's eigenvalue vector (per-node copy);
    * ``data.eigvecs`` ``[N, k]``: column ``j`` is the eigenvector of ``eigvals[:, j]``;
    * ``data.eig_mask`` ``[N, k]`` (bool): ``False`` in the padding columns ``j >= N`` of a
      graph with fewer than ``k`` nodes (those columns of ``eigvals``/``eigvecs`` are zero).

    Eigenvectors have a deterministic sign (largest-magnitude entry positive), never a random one.
    When :math:`\lambda_k` and :math:`\lambda_{k+1}` agree within ``split_tol`` (relative),
    ``k`` splits an eigenspace, so no encoder can be basis invariant on that graph: a warning
    is issued (the first time per transform instance; :attr:`num_split` counts them all).

    Args:
        k (int): number of eigenpairs.
        normalization (str, optional): ``'sym'`` for the symmetric normalised Laplacian,
            ``None`` for :math:`D - A` (default: ``'sym'``). Isolated nodes get :math:`L_{ii} = 0`.
        edge_weight_attr (str, optional): name of a ``[E]`` edge-weight attribute; unweighted
            when ``None`` (default: ``None``).
        dense_max_nodes (int): connected components up to this size use the dense solver,
            larger ones ARPACK shift-invert (default: :data:`DENSE_MAX_NODES` = ``500``).
        split_tol (float): relative tolerance of the eigenspace-split warning (default: ``1e-6``).
        dtype (torch.dtype): storage dtype (default: ``torch.float32``; computed in float64).

    Shapes:
        - input: ``Data`` with ``edge_index (2, |E|)`` and ``num_nodes = N``
        - output: adds ``eigvals (N, k)``, ``eigvecs (N, k)``, ``eig_mask (N, k)``
    """

    def __init__(self, k: int, normalization: Optional[str] = "sym", *,
                 edge_weight_attr: Optional[str] = None, dense_max_nodes: int = DENSE_MAX_NODES,
                 split_tol: float = 1e-6, dtype: torch.dtype = torch.float32):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization={normalization!r} is not one of 'sym', None")
        if dense_max_nodes < 1:
            raise ValueError(f"dense_max_nodes must be >= 1, got {dense_max_nodes}")
        self.k, self.normalization = k, normalization
        self.edge_weight_attr, self.dense_max_nodes = edge_weight_attr, dense_max_nodes
        self.split_tol, self.dtype = split_tol, dtype
        self.num_split = 0

    def forward(self, data: Data) -> Data:
        if not isinstance(data, Data):
            raise ValueError(f"AddLaplacianEigen expects a homogeneous Data object, "
                             f"got {type(data).__name__}")
        n = data.num_nodes
        if n is None:
            raise ValueError("data.num_nodes is unknown; set data.num_nodes or data.x")
        w = None
        if self.edge_weight_attr is not None:
            w = getattr(data, self.edge_weight_attr, None)
            if w is None:
                raise ValueError(f"edge_weight_attr={self.edge_weight_attr!r} is not on data")
        lam, vec = laplacian_eigen(data.edge_index, n, self.k + 1, self.normalization, w,
                                   self.dense_max_nodes)
        if lam.size > self.k:
            gap = lam[self.k] - lam[self.k - 1]
            if gap <= self.split_tol * max(1.0, abs(lam[self.k])):
                self.num_split += 1
                if self.num_split == 1:
                    warnings.warn(
                        f"AddLaplacianEigen(k={self.k}): lambda_k={lam[self.k - 1]:.6g} and "
                        f"lambda_(k+1)={lam[self.k]:.6g} coincide, so k splits an eigenspace and "
                        f"the encoding cannot be basis invariant on this graph (further cases "
                        f"are counted in .num_split, not warned)", stacklevel=2)
            lam, vec = lam[:self.k], vec[:, :self.k]
        m = lam.size
        vals = torch.zeros(n, self.k, dtype=self.dtype)
        vecs = torch.zeros(n, self.k, dtype=self.dtype)
        mask = torch.zeros(n, self.k, dtype=torch.bool)
        vals[:, :m] = torch.from_numpy(lam).to(self.dtype)
        vecs[:, :m] = torch.from_numpy(vec).to(self.dtype)
        mask[:, :m] = True
        data.eigvals, data.eigvecs, data.eig_mask = vals, vecs, mask
        return data

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(k={self.k}, normalization={self.normalization!r}, "
                f"dense_max_nodes={self.dense_max_nodes})")
