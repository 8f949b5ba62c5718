r"""``cycles``: node-level substructure counting on generated random graphs.

Every node carries 4 regression targets: the exact number of simple cycles of length 3, 4, 5
and 6 that pass through it. Node features are a constant (``x = 1``), so a model can only
succeed through the structure it sees (message passing, positional encodings). A 1-WL
message-passing network cannot count cycles of length >= 3 in general (Chen et al., "Can Graph
Neural Networks Count Substructures?", NeurIPS 2020), which is what makes the set a test of
positional encodings.

Recipe (fixed; ``gen_seed`` 0 by default, so every machine builds the same graphs):

* ``num_graphs`` = 7000 graphs, split by index: 0..4999 train, 5000..5999 valid, 6000..6999
  test: the 5000/1000/1000 train/val/test split of the random-graph counting set that the SPE
  paper's counting runs read (``Graph-COM/SPE`` ``count/dataset.py``, a ``data.mat`` with
  ``train_idx``/``val_idx``/``test_idx``; its config points to a README attached to a PyG
  GitHub thread for the data). Those graphs are not in the mirror, so this is a recipe of our
  own with the same split sizes; note that the SPE runner sums the per-node counts into one
  graph-level target per run, while this set keeps the 4 node-level targets.
* Graph ``i`` draws ``n`` uniformly from ``[min_nodes, max_nodes]`` = [10, 30] and a family
  uniformly from three, each tuned to average degree about 3 so that cycles of every length
  3..6 occur: Erdős–Rényi ``G(n, 3/(n-1))``; random 3-regular (``n`` rounded up to even);
  random geometric in the unit square with radius :math:`\sqrt{3/(\pi n)}`.
  Random draws come from ``numpy.random.default_rng(gen_seed)``; each networkx generator gets
  an integer seed drawn from it.
* Targets: ``networkx.simple_cycles(G, length_bound=6)`` on the undirected graph (networkx
  >= 3.1 enumerates each undirected cycle once); a cycle of length ``L`` adds 1 to column
  ``L - 3`` of each of its ``L`` nodes. ``tests/test_cycles.py`` checks this against a
  brute-force enumeration of node sequences on small graphs.

Each graph: ``x [n, 1]`` (ones), ``edge_index`` (both directions), ``y [n, 4]`` (float32 counts).
The metric is ``mae_normalized`` (see :mod:`graphlab.tasks.metrics`).
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict, Sequence

import networkx as nx
import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import from_networkx

from graphlab.data.generated import GeneratedDataset

#: cycle lengths counted, in target-column order
CYCLE_LENGTHS = (3, 4, 5, 6)


def node_cycle_counts(G: nx.Graph, lengths: Sequence[int] = CYCLE_LENGTHS) -> Tensor:
    """``[n, len(lengths)]`` counts of simple cycles of each length through each node of the
    undirected graph ``G`` (nodes must be ``0..n-1``)."""
    if G.is_directed():
        raise ValueError("G must be undirected")
    lengths = tuple(int(L) for L in lengths)
    if not lengths or min(lengths) < 3:
        raise ValueError(f"lengths must be >= 3, got {lengths}")
    n = G.number_of_nodes()
    if sorted(G.nodes()) != list(range(n)):
        raise ValueError("G's nodes must be labelled 0..n-1")
    col = {L: i for i, L in enumerate(lengths)}
    out = torch.zeros(n, len(lengths), dtype=torch.float64)
    simple = nx.Graph(G)  # drop parallel edges; self-loops are not cycles of length >= 3
    simple.remove_edges_from(nx.selfloop_edges(simple))
    for cyc in nx.simple_cycles(simple, length_bound=max(lengths)):
        i = col.get(len(cyc))
        if i is not None:
            out[cyc, i] += 1
    return out


def random_graph(rng: np.random.Generator, min_nodes: int = 10, max_nodes: int = 30) -> nx.Graph:
    """One graph of the recipe in the module docstring."""
    n = int(rng.integers(min_nodes, max_nodes + 1))
    family = int(rng.integers(0, 3))
    seed = int(rng.integers(0, 2**31 - 1))
    if family == 0:
        G = nx.gnp_random_graph(n, min(1.0, 3.0 / max(n - 1, 1)), seed=seed)
    elif family == 1:
        G = nx.random_regular_graph(3, n + (n % 2), seed=seed)
    else:
        G = nx.random_geometric_graph(n, float(np.sqrt(3.0 / (np.pi * n))), seed=seed)
    H = nx.Graph()
    H.add_nodes_from(range(G.number_of_nodes()))
    H.add_edges_from(G.edges())
    return H


class CycleCounts(GeneratedDataset):
    """The ``cycles`` dataset (see module docstring).

    Args:
        root (str): directory; processed files go to ``processed_n{num_graphs}_s{gen_seed}``.
        num_graphs (int): graphs generated (default: ``7000``; split 5000/1000/1000 by index,
            scaled proportionally for other sizes).
        gen_seed (int): generator seed (default: ``0``).
        min_nodes, max_nodes (int): graph size range (default: ``10``..``30``).
    """

    def __init__(self, root: str, num_graphs: int = 7000, gen_seed: int = 0,
                 min_nodes: int = 10, max_nodes: int = 30, transform=None, pre_transform=None,
                 **kwargs: Any):
        if num_graphs < 3:
            raise ValueError(f"num_graphs must be >= 3 (train/valid/test), got {num_graphs}")
        if not 3 <= min_nodes <= max_nodes:
            raise ValueError(f"need 3 <= min_nodes <= max_nodes, got {min_nodes}, {max_nodes}")
        self.num_graphs_, self.gen_seed = int(num_graphs), int(gen_seed)
        self.min_nodes, self.max_nodes = int(min_nodes), int(max_nodes)
        super().__init__(root, transform, pre_transform, **kwargs)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, f"processed_n{self.num_graphs_}_s{self.gen_seed}_"
                                   f"v{self.min_nodes}-{self.max_nodes}")

    def process(self) -> None:
        rng = np.random.default_rng(self.gen_seed)
        graphs = []
        for _ in range(self.num_graphs_):
            G = random_graph(rng, self.min_nodes, self.max_nodes)
            n = G.number_of_nodes()
            ei = from_networkx(G).edge_index if G.number_of_edges() else \
                torch.empty(2, 0, dtype=torch.long)
            data = Data(x=torch.ones(n, 1), edge_index=ei,
                        y=node_cycle_counts(G).float(), num_nodes=n)
            graphs.append(self.pre_transform(data) if self.pre_transform else data)
        self.save(graphs, self.processed_paths[0])

    def get_idx_split(self) -> Dict[str, Tensor]:
        """Graph indices: the first 5/7 train, the next 1/7 valid, the rest test."""
        n = self.num_graphs_
        a, b = (n * 5) // 7, (n * 6) // 7
        return {"train": torch.arange(a), "valid": torch.arange(a, b), "test": torch.arange(b, n)}
