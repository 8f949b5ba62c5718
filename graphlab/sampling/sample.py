r"""One entry point for every directed sampler: :func:`sample_directed` and :class:`DirectedSample`.

Methods (``method=``):

* ``'jdm'``: the sample is *constructed*: the graph's JDM and DCM are rescaled linearly to
  ``round(ratio * N)`` nodes and repaired (:func:`~graphlab.sampling.rescale.rescale`), then a
  simple directed graph with exactly those matrices is built
  (:func:`~graphlab.sampling.construct.construct`). Its in- and out-degree distributions
  equal the rescaled targets exactly whenever the repaired target is realisable, which
  :func:`rescale` checks (the conditions are in its docstring).
* ``'nx2k'``: the same targets, built by NetworkX's ``directed_joint_degree_graph`` (Tillman et
  al., "Construction of Directed 2K Graphs", KDD 2017): the closest published construction.
* ``'random_node'``, ``'random_edge'``, ``'random_walk'``, ``'forest_fire'``: subgraphs of the
  original (:mod:`graphlab.sampling.baselines`); their result also carries ``n_id``, the
  original ids of the sampled nodes.

The input graph is read as a simple directed graph: self-loops are dropped and parallel edges
merged (:func:`~graphlab.sampling.degree_matrices.simple_directed`). Node and edge features
are not carried over: a constructed sample's nodes are new, and a subgraph's are named by
``n_id``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from graphlab.sampling.baselines import SAMPLERS
from graphlab.sampling.construct import construct, construct_networkx, target_nodes
from graphlab.sampling.degree_matrices import degree_matrices, simple_directed
from graphlab.sampling.rescale import rescale

METHODS = ("jdm", "nx2k") + tuple(SAMPLERS)


def _graph(data) -> tuple:
    ei = getattr(data, "edge_index", None)
    if ei is None:
        raise ValueError("sample_directed needs a graph with an edge_index of shape [2, E]")
    n = data.num_nodes
    if n is None:
        raise ValueError("sample_directed needs data.num_nodes (or node features to infer it)")
    if isinstance(ei, torch.Tensor):
        ei = ei.as_subclass(torch.Tensor).detach().cpu().numpy()
    return ei, int(n)


def _check(ratio: float, method: str) -> float:
    if method not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}; expected one of {list(METHODS)}")
    ratio = float(ratio)
    if not np.isfinite(ratio) or ratio <= 0:
        raise ValueError(f"ratio must be a positive finite number, got {ratio}")
    if ratio > 1 and method in SAMPLERS:
        raise ValueError(f"method {method!r} samples a subgraph: ratio must be at most 1, "
                         f"got {ratio} (only 'jdm' and 'nx2k' scale up)")
    return ratio


def sample_directed(data: Data, ratio: float, method: str = "jdm", seed: int = 0) -> Data:
    r"""A sample of ``round(ratio * N)`` nodes of the directed graph ``data``.

    Args:
        data: a PyG ``Data`` with a directed ``edge_index`` ``[2, E]`` (``Tensor`` or
            ``EdgeIndex``) and ``num_nodes``.
        ratio: sample size as a fraction of ``N``; above 1 only for ``'jdm'`` and ``'nx2k'``.
        method: one of :data:`METHODS` (module docstring).
        seed: every random choice is drawn from ``numpy.random.default_rng(seed)`` (or, for
            ``'nx2k'``, NetworkX's ``seed``): the same seed gives the same sample.

    Returns:
        ``Data(edge_index=[2, E'], num_nodes=N')``, a simple directed graph; subgraph methods
        add ``n_id`` ``[N']``.

    Shapes:
        **input:** ``edge_index`` :math:`(2, |E|)`; **output:** ``edge_index`` :math:`(2, |E'|)`,
        ``n_id`` :math:`(N')`.
    """
    ratio = _check(ratio, method)
    ei, n = _graph(data)
    if method in SAMPLERS:
        ei = simple_directed(ei, n)
        n_new = int(round(ratio * n))
        if n_new < 1:
            raise ValueError(f"ratio {ratio} of {n} nodes rounds to {n_new} nodes; "
                             f"a sample needs at least 1")
        edges, nodes = SAMPLERS[method](ei, n, n_new, np.random.default_rng(seed))
        order = np.lexsort((edges[1], edges[0]))
        return Data(edge_index=torch.from_numpy(edges[:, order].copy()), num_nodes=n_new,
                    n_id=torch.from_numpy(nodes.copy()))
    target = rescale(degree_matrices(ei, n), ratio)
    if method == "jdm":
        edges = construct(target, seed=seed).edge_index
    else:
        out_deg, in_deg = target_nodes(target, np.random.default_rng(seed))
        edges = construct_networkx(target, out_deg, in_deg, seed=seed)
        edges = edges[:, np.lexsort((edges[1], edges[0]))]
    return Data(edge_index=torch.from_numpy(np.ascontiguousarray(edges)),
                num_nodes=target.num_nodes)


class DirectedSample(BaseTransform):
    r""":func:`sample_directed` as a PyG transform.

    Args:
        ratio (float): sample size as a fraction of the graph's nodes.
        method (str, optional): sampler (default: ``'jdm'``), see :data:`METHODS`.
        seed (int, optional): seed of every draw (default: ``0``); one transform gives the same
            sample of the same graph every time.
    """

    def __init__(self, ratio: float, method: str = "jdm", seed: int = 0) -> None:
        self.ratio = _check(ratio, method)
        self.method = method
        self.seed = int(seed)

    def forward(self, data: Data) -> Data:
        return sample_directed(data, self.ratio, self.method, self.seed)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(ratio={self.ratio}, method={self.method!r}, "
                f"seed={self.seed})")
