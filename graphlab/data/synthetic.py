"""Generated benchmarks that need no download (README's first command and fast tests).

* ``motifs`` (graph classification, 3 classes): a random Barabási–Albert tree with one motif
  attached at a random node; the class is the motif (0: house, 1: 6-cycle, 2: 4-clique with a
  tail). Node features are a constant, so a model must read the structure. A 1-WL-powerful GNN
  (GIN) separates the classes; a mean-aggregating GCN without degree information does not
  fully. Split: random 80/10/10 fixed by ``split_seed`` (default: ``0``).
* ``ba-shapes`` (node classification, 4 classes): PyG's ``ExplainerDataset`` with a 300-node BA
  graph and 80 house motifs (Ying et al., GNNExplainer, NeurIPS 2019), constant features;
  split 80/10/10 of the nodes.

Both are generated from a fixed seed (``gen_seed``), so every machine builds the same graphs.
"""
from __future__ import annotations

import os.path as osp
from typing import Any

import networkx as nx
import torch
from torch_geometric.data import Data
from torch_geometric.utils import from_networkx

from graphlab.data.cache import AtomicProcessMixin
from graphlab.data.generated import GeneratedDataset
from graphlab.data.catalog import DatasetInfo, DatasetSpec, _register


def _motif(kind: int) -> nx.Graph:
    if kind == 0:
        return nx.house_graph()
    if kind == 1:
        return nx.cycle_graph(6)
    g = nx.complete_graph(4)
    g.add_edge(3, 4)
    return g


class MotifGraphs(GeneratedDataset):
    """Graph classification by attached motif (see module docstring)."""

    def __init__(self, root: str, num_graphs: int = 600, gen_seed: int = 0, transform=None,
                 pre_transform=None, **kwargs: Any):
        self.num_graphs_, self.gen_seed = num_graphs, gen_seed
        super().__init__(root, transform, pre_transform, **kwargs)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, f"processed_n{self.num_graphs_}_s{self.gen_seed}")

    def process(self) -> None:
        g = torch.Generator().manual_seed(self.gen_seed)
        graphs = []
        for i in range(self.num_graphs_):
            y = i % 3
            n = int(torch.randint(8, 17, (1,), generator=g))
            base = nx.barabasi_albert_graph(n, 1, seed=int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
            motif = nx.relabel_nodes(_motif(y), lambda v: v + n)
            G = nx.union(base, motif)
            G.add_edge(int(torch.randint(0, n, (1,), generator=g)), n)
            perm = torch.randperm(G.number_of_nodes(), generator=g).tolist()
            G = nx.relabel_nodes(G, dict(zip(G.nodes(), perm)))
            G = nx.convert_node_labels_to_integers(G, ordering="sorted")
            d = from_networkx(G)
            data = Data(x=torch.ones(G.number_of_nodes(), 1), edge_index=d.edge_index,
                        y=torch.tensor([y]))
            graphs.append(self.pre_transform(data) if self.pre_transform else data)
        self.save(graphs, self.processed_paths[0])


class BAShapes(GeneratedDataset):
    """BA-Shapes node classification (see module docstring)."""

    def __init__(self, root: str, gen_seed: int = 0, transform=None, pre_transform=None,
                 **kwargs: Any):
        self.gen_seed = gen_seed
        super().__init__(root, transform, pre_transform, **kwargs)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, f"processed_s{self.gen_seed}")

    def process(self) -> None:
        from torch_geometric.datasets import ExplainerDataset
        from torch_geometric.datasets.graph_generator import BAGraph
        import random

        import numpy as np
        # PyG's generators draw from torch, numpy and Python's random: seed all three, restore.
        states = torch.get_rng_state(), np.random.get_state(), random.getstate()
        torch.manual_seed(self.gen_seed)
        np.random.seed(self.gen_seed)
        random.seed(self.gen_seed)
        try:
            ds = ExplainerDataset(graph_generator=BAGraph(num_nodes=300, num_edges=5),
                                  motif_generator="house", num_motifs=80)
        finally:
            torch.set_rng_state(states[0])
            np.random.set_state(states[1])
            random.setstate(states[2])
        d = ds[0]
        data = Data(x=torch.ones(d.num_nodes, 1), edge_index=d.edge_index, y=d.y)
        data = self.pre_transform(data) if self.pre_transform else data
        self.save([data], self.processed_paths[0])


class MotifGraphsCached(AtomicProcessMixin, MotifGraphs):
    """:class:`MotifGraphs` with graphlab's keyed, atomic processed directory."""


class BAShapesCached(AtomicProcessMixin, BAShapes):
    """:class:`BAShapes` with graphlab's keyed, atomic processed directory."""


def _builder(cls: type, sub: str):
    def build(root, transform, pre_transform, key, **opts):
        return cls(osp.join(root, *sub.split("/")), transform=transform,
                   pre_transform=pre_transform, cache_key=key, **opts)
    return build


_register(DatasetSpec(DatasetInfo(
    name="motifs", task="graph_classification", metric="accuracy", higher_is_better=True,
    ogb_name=None, node_encoder="linear", edge_encoder=None, protocol="random",
    source="generated by graphlab (graphlab/data/synthetic.py): BA tree + house / 6-cycle / "
           "tailed 4-clique motif; no download", mirror_subdir=None, url=None,
    expected=dict(num_graphs=600, num_classes=3), num_tasks=3),
    _builder(MotifGraphsCached, "synthetic/motifs"), "synthetic/motifs", ()))

_register(DatasetSpec(DatasetInfo(
    name="ba-shapes", task="node_classification", metric="accuracy", higher_is_better=True,
    ogb_name=None, node_encoder="linear", edge_encoder=None, protocol="random",
    source="generated: PyG ExplainerDataset(BAGraph(300, 5), house motifs x80), Ying et al. "
           "2019; no download", mirror_subdir=None, url=None,
    expected=dict(num_nodes=700, num_classes=4), num_tasks=4),
    _builder(BAShapesCached, "synthetic/ba-shapes"), "synthetic/ba-shapes", ()))

def _ncmp(root, transform, pre_transform, key, **opts):
    import torch_geometric.transforms as T

    from graphlab.data.synthetic_ncmp import NCMPSynthetic
    # Generated in memory on every load (about a second): pre-transforms run on access.
    chain = [t for t in (pre_transform, transform) if t is not None]
    return NCMPSynthetic(transform=T.Compose(chain) if chain else None, **opts)


_register(DatasetSpec(DatasetInfo(
    name="ncmp-synthetic", task="node_classification", metric="balanced_accuracy",
    higher_is_better=True, ogb_name=None, node_encoder="linear", edge_encoder=None,
    protocol="fixed",
    source="generated: the NCMP synthetic node task (Lim, arXiv 2511.11046; reference "
           "briangodwinlim/SINC-GCN synthetic-datasets/unique-signature), "
           "graphlab/data/synthetic_ncmp.py; no download", mirror_subdir=None, url=None,
    expected=dict(num_graphs=5000, num_classes=2), num_tasks=2), _ncmp, "synthetic/ncmp", ()))


from graphlab.data.synthetic_cycles import CycleCounts  # noqa: E402


class CycleCountsCached(AtomicProcessMixin, CycleCounts):
    """:class:`~graphlab.data.synthetic_cycles.CycleCounts` with graphlab's keyed, atomic
    processed directory."""


_register(DatasetSpec(DatasetInfo(
    name="cycles", task="node_regression", metric="mae_normalized", higher_is_better=False,
    ogb_name=None, node_encoder="linear", edge_encoder=None, protocol="fixed",
    source="generated by graphlab (graphlab/data/synthetic_cycles.py): 7000 random graphs "
           "(ER / 3-regular / geometric, 10-30 nodes), per-node counts of 3-, 4-, 5-, 6-cycles; "
           "split 5000/1000/1000 as in the SPE paper's counting runs; no download",
    mirror_subdir=None, url=None,
    expected=dict(num_graphs=7000, train=5000, valid=1000, test=1000), num_tasks=4, num_seeds=3),
    _builder(CycleCountsCached, "synthetic/cycles"), "synthetic/cycles", ()))
