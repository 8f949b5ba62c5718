r"""The synthetic binary node-classification problem of NCMP / SINC-GCN (Lim et al., arXiv
2511.11046; reference repository ``briangodwinlim/SINC-GCN``,
``synthetic-datasets/unique-signature``).

Each graph is an Erdős–Rényi graph :math:`G(n, p)` with
:math:`n \sim U\{n_{min}, …, n_{max}\}`.
Every node carries one integer feature :math:`x_u \in \{-\lfloor m/2 \rfloor, …, m - 1 -
\lfloor m/2\rfloor\}` (``m = num_values``; symmetric around 0 for odd ``m``), drawn uniformly.
A node is positive iff one of its neighbours carries the sum of its whole neighbourhood:

.. math::
    y_u = \mathbb{1}\Big[\exists v \in \mathcal{N}(u):\;
    x_v = \sum_{w \in \mathcal{N}(u)} x_w\Big]

(an isolated node is negative). The label needs, per edge, a comparison between a neighbour
and the *whole* neighbourhood, which is exactly what neighbourhood-contextualised messages
:math:`\sigma(W_Q h_u + W_K h_v + W_N \sum_w h_w)` provide in one layer.

Protocol of the reference code: 5000 graphs, 30–70 nodes, the first 80% of graphs train and
the rest test, one layer of width 16, balanced accuracy, 500 epochs, batch 256, AdamW lr 1e-3,
ReduceLROnPlateau(0.5, patience 10), 10 runs. Its README table (test balanced accuracy,
:data:`EXPECTED`) shows SINC-GCN (352 parameters) at 0.996–1.000 and PNA at 0.98–1.00, while
GraphSAGE and SIR-GCN stay at chance (0.500), GCN at 0.50–0.67, GATv2 at 0.50–0.84 and GIN at
0.80–0.86 (GIN's sum cannot compare one neighbour with the neighbourhood sum inside a single
layer).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import scatter

# (p_edge, num_values) -> positive-node share and test balanced accuracy (mean, std) from the
# reference README ("Summary" table, synthetic-datasets/unique-signature).
EXPECTED: Dict[tuple, dict] = {
    (0.3, 3): {"positive": 0.3710, "sincgcn": (1.000000, 0.000000), "gin": (0.835910, 0.0),
               "gcn": (0.500000, 0.000000), "gatv2": (0.837841, 0.168924), "sage": (0.5, 0.0)},
    (0.3, 5): {"positive": 0.3457, "sincgcn": (0.999245, 0.000836), "gin": (0.816901, 0.0),
               "gcn": (0.539572, 0.118715), "gatv2": (0.621967, 0.186309), "sage": (0.5, 0.0)},
    (0.3, 7): {"positive": 0.3190, "sincgcn": (0.995926, 0.005433), "gin": (0.803817, 0.0),
               "gcn": (0.538068, 0.114205), "gatv2": (0.655412, 0.190341), "sage": (0.5, 0.0)},
    (0.5, 3): {"positive": 0.2887, "sincgcn": (1.000000, 0.000000), "gin": (0.850106, 0.0),
               "gcn": (0.543475, 0.130424), "gatv2": (0.810389, 0.203198), "sage": (0.5, 0.0)},
    (0.5, 5): {"positive": 0.2810, "sincgcn": (0.999061, 0.000204), "gin": (0.836853, 0.0),
               "gcn": (0.626042, 0.192533), "gatv2": (0.673882, 0.207529), "sage": (0.5, 0.0)},
    (0.5, 7): {"positive": 0.2696, "sincgcn": (0.995695, 0.000303), "gin": (0.835118, 0.0),
               "gcn": (0.666073, 0.203397), "gatv2": (0.639540, 0.190053), "sage": (0.5, 0.0)},
    (0.7, 3): {"positive": 0.2461, "sincgcn": (1.000000, 0.000000), "gin": (0.855652, 0.0),
               "gcn": (0.589276, 0.178553), "gatv2": (0.726848, 0.226848), "sage": (0.5, 0.0)},
    (0.7, 5): {"positive": 0.2431, "sincgcn": (0.999974, 0.000000), "gin": (0.846908, 0.0),
               "gcn": (0.586235, 0.172469), "gatv2": (0.543613, 0.130838), "sage": (0.5, 0.0)},
    (0.7, 7): {"positive": 0.2349, "sincgcn": (0.998690, 0.000019), "gin": (0.840679, 0.0),
               "gcn": (0.671110, 0.209567), "gatv2": (0.500000, 0.000000), "sage": (0.5, 0.0)},
}


def ncmp_labels(x: Tensor, edge_index: Tensor, num_nodes: int) -> Tensor:
    """``y_u = 1`` iff some in-neighbour ``v`` of ``u`` has ``x_v == sum_{w in N(u)} x_w``."""
    src, dst = edge_index
    total = scatter(x[src], dst, dim=0, dim_size=num_nodes, reduce="sum")
    match = (x[src] == total[dst]).to(torch.long)
    return scatter(match, dst, dim=0, dim_size=num_nodes, reduce="max").view(-1)


def erdos_renyi(num_nodes: int, p: float, generator: torch.Generator) -> Tensor:
    """Undirected G(n, p) without self-loops as a symmetric ``edge_index``."""
    iu = torch.triu_indices(num_nodes, num_nodes, offset=1)
    keep = torch.rand(iu.size(1), generator=generator) < p
    e = iu[:, keep]
    return torch.cat([e, e.flip(0)], dim=1)


class NCMPSynthetic(InMemoryDataset):
    r"""The NCMP synthetic node-classification graphs, generated in memory (no files).

    Args:
        num_graphs (int): number of graphs (reference: 5000).
        min_nodes (int): fewest nodes per graph (reference: 30).
        max_nodes (int): most nodes per graph, inclusive (reference: 70).
        p_edge (float): Erdős–Rényi edge probability (reference runs 0.3, 0.5, 0.7).
        num_values (int): number of distinct integer feature values (reference runs 3, 5, 7).
        train_fraction (float): leading share of graphs in the training split (0.8).
        seed (int): generator seed; graph ``i`` only depends on ``(seed, i)``.
        transform (callable, optional): PyG transform applied on access.

    Each graph has ``x [n, 1]`` (float), ``edge_index``, ``y [n]`` (long 0/1).
    :meth:`get_idx_split` returns ``{'train', 'test'}`` graph indices (reference protocol has no
    validation split; take one from the training graphs when selecting models).
    """

    def __init__(self, num_graphs: int = 5000, min_nodes: int = 30, max_nodes: int = 70,
                 p_edge: float = 0.5, num_values: int = 5, train_fraction: float = 0.8,
                 seed: int = 0, transform: Optional[Callable] = None):
        if num_graphs < 1:
            raise ValueError(f"num_graphs must be >= 1, got {num_graphs}")
        if not 1 <= min_nodes <= max_nodes:
            raise ValueError(f"need 1 <= min_nodes <= max_nodes, got {min_nodes}, {max_nodes}")
        if not 0.0 <= p_edge <= 1.0:
            raise ValueError(f"p_edge must be in [0, 1], got {p_edge}")
        if num_values < 1:
            raise ValueError(f"num_values must be >= 1, got {num_values}")
        if not 0.0 < train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
        super().__init__(None, transform)
        self.num_graphs, self.min_nodes, self.max_nodes = num_graphs, min_nodes, max_nodes
        self.p_edge, self.num_values, self.seed = p_edge, num_values, seed
        self.train_fraction = train_fraction
        graphs = [self._graph(i) for i in range(num_graphs)]
        self._data, self.slices = self.collate(graphs)

    def _graph(self, i: int) -> Data:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        n = int(torch.randint(self.min_nodes, self.max_nodes + 1, (1,), generator=g))
        edge_index = erdos_renyi(n, self.p_edge, g)
        x = torch.randint(0, self.num_values, (n, 1), generator=g) - self.num_values // 2
        y = ncmp_labels(x, edge_index, n)
        return Data(x=x.float(), edge_index=edge_index, y=y, num_nodes=n)

    def get_idx_split(self) -> Dict[str, Tensor]:
        cut = int(self.train_fraction * self.num_graphs)
        return {"train": torch.arange(cut), "test": torch.arange(cut, self.num_graphs)}

    @property
    def positive_fraction(self) -> float:
        return float(self._data.y.float().mean())

    @property
    def num_classes(self) -> int:
        return 2

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.num_graphs}, nodes={self.min_nodes}-"
                f"{self.max_nodes}, p_edge={self.p_edge}, num_values={self.num_values})")
