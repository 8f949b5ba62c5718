"""Registration of every dataset graphlab knows (see :mod:`graphlab.data.catalog`)."""
from __future__ import annotations

import os
import os.path as osp
from typing import Callable

os.environ.setdefault("OUTDATED_IGNORE", "1")

from graphlab.data.catalog import DatasetInfo, DatasetSpec, LOWER_IS_BETTER, _classes, _register
from graphlab.data.compat import ogb_torch_load
from graphlab.errors import DataError
from graphlab.data.mirror import MirrorItem as MI


def _j(root: str, sub: str) -> str:
    return osp.join(root, *sub.split("/"))


# --------------------------------------------------------------------------- Planetoid
_PLANETOID = {
    "Cora": dict(num_nodes=2708, num_edges=10556, num_features=1433, num_classes=7,
                 split=(140, 500, 1000)),
    "CiteSeer": dict(num_nodes=3327, num_edges=9104, num_features=3703, num_classes=6,
                     split=(120, 500, 1000)),
    "PubMed": dict(num_nodes=19717, num_edges=88648, num_features=500, num_classes=3,
                   split=(60, 500, 1000)),
}
_PLANETOID_SRC = ("Planetoid (Yang, Cohen & Salakhutdinov, ICML 2016), public split; {0}; "
                  "files of kimiyoung/planetoid, PyG Planetoid loader")


def _planetoid(name: str) -> Callable:
    def build(root, transform, pre_transform, key, **opts):
        return _classes()["Planetoid"](_j(root, "Planetoid"), name, transform=transform,
                                       pre_transform=pre_transform, cache_key=key, **opts)
    return build


for _n, _exp in _PLANETOID.items():
    _cite = {"Cora": "Sen et al. 2008", "CiteSeer": "Giles et al. 1998",
             "PubMed": "Namata et al. 2012"}[_n]
    _items = () if _n == "PubMed" else (MI(f"Planetoid/{_n}", f"Planetoid/{_n}"),)
    _register(DatasetSpec(DatasetInfo(
        name=_n, task="node_classification", metric="accuracy", higher_is_better=True,
        ogb_name=None, node_encoder="linear", edge_encoder=None, protocol="planetoid",
        source=_PLANETOID_SRC.format(_cite), mirror_subdir=_items[0].src if _items else None,
        url="https://github.com/kimiyoung/planetoid/raw/master/data", expected=_exp,
        num_tasks=_exp["num_classes"]), _planetoid(_n), f"Planetoid/{_n}", _items))
    if _n != "PubMed":
        # Offline stand-in for ogbl-* link prediction: the same graph, RandomLinkSplit edges.
        _register(DatasetSpec(DatasetInfo(
            name=f"{_n}-link", task="link_prediction", metric="rocauc", higher_is_better=True,
            ogb_name=None, node_encoder="linear", edge_encoder=None, protocol="random",
            source=_PLANETOID_SRC.format(_cite) + "; link split as in GAE (Kipf & Welling 2016): "
                   "PyG RandomLinkSplit, 5% validation / 10% test edges, undirected",
            mirror_subdir=_items[0].src, url="https://github.com/kimiyoung/planetoid/raw/master/data",
            expected=dict(num_nodes=_exp["num_nodes"], num_edges=_exp["num_edges"])),
            _planetoid(_n), f"Planetoid/{_n}", _items))

# --------------------------------------------------------------------------- TU
_TU = {
    "MUTAG": dict(num_graphs=188, num_classes=2, num_nodes=3371, num_edges=7442, num_features=7,
                  num_edge_features=4),
    "PROTEINS": dict(num_graphs=1113, num_classes=2, num_nodes=43471, num_edges=162088,
                     num_features=3),
    "NCI1": dict(num_graphs=4110, num_classes=2, num_nodes=122747, num_edges=265506,
                 num_features=37),
    "ENZYMES": dict(num_graphs=600, num_classes=6, num_nodes=19580, num_edges=74564,
                    num_features=3),
    "PTC_MR": dict(num_graphs=344, num_classes=2, num_nodes=4915, num_edges=10108,
                   num_features=18, num_edge_features=4),
    "IMDB-BINARY": dict(num_graphs=1000, num_classes=2, num_nodes=19773, num_edges=193062,
                        num_features=0),
    "IMDB-MULTI": dict(num_graphs=1500, num_classes=3, num_nodes=19502, num_edges=197806,
                       num_features=0),
}


def _tu(name: str) -> Callable:
    def build(root, transform, pre_transform, key, **opts):
        return _classes()["TUDataset"](_j(root, "TUDataset"), name, transform=transform,
                                       pre_transform=pre_transform, cache_key=key, **opts)
    return build


for _n, _exp in _TU.items():
    _register(DatasetSpec(DatasetInfo(
        name=_n, task="graph_classification", metric="accuracy", higher_is_better=True,
        ogb_name=None, node_encoder="linear" if _exp["num_features"] else "none",
        edge_encoder="linear" if _exp.get("num_edge_features") else None, protocol="tu_cv",
        source=f"TUDataset (Morris et al. 2020), {_n}; 10-fold CV of Errica et al. 2020 "
               f"(folds in graphlab/data/folds/); PyG TUDataset loader",
        mirror_subdir=f"TUDataset/{_n}", url="https://www.chrsmrrs.com/graphkerneldatasets",
        expected=_exp, num_tasks=_exp["num_classes"]),
        _tu(_n), f"TUDataset/{_n}", (MI(f"TUDataset/{_n}", f"TUDataset/{_n}"),)))

# The same sets as the EHGNN reference code reads them (Jo et al., NeurIPS 2021;
# harryjo97/EHGNN utils/data.py, loader_TU.py): its shipped 10-fold indices (imported by
# scripts/import_ehgnn_folds.py), node attributes kept (use_node_attr=True: PROTEINS gets its
# continuous attribute) and, for the featureless IMDB sets, PyG's OneHotDegree up to the
# set's largest degree as node features. Same raw files as the plain sets.
_EHGNN_MAX_DEGREE = {"IMDB-BINARY": 135, "IMDB-MULTI": 88}


def _tu_ehgnn(name: str) -> Callable:
    max_degree = _EHGNN_MAX_DEGREE.get(name)

    def build(root, transform, pre_transform, key, **opts):
        if max_degree is not None:
            from torch_geometric.transforms import Compose, OneHotDegree
            degree = OneHotDegree(max_degree)
            transform = degree if transform is None else Compose([degree, transform])
        return _classes()["TUDataset"](_j(root, "TUDataset"), name, transform=transform,
                                       pre_transform=pre_transform, cache_key=key,
                                       **{"use_node_attr": True, **opts})
    return build


for _n in ("MUTAG", "PROTEINS", "PTC_MR", "IMDB-BINARY", "IMDB-MULTI"):
    _exp = dict(_TU[_n])
    if _n == "PROTEINS":
        _exp["num_features"] = 4  # + the continuous node attribute
    if _n in _EHGNN_MAX_DEGREE:
        _exp["num_features"] = _EHGNN_MAX_DEGREE[_n] + 1
    _register(DatasetSpec(DatasetInfo(
        name=f"{_n}-ehgnn", task="graph_classification", metric="accuracy",
        higher_is_better=True, ogb_name=None, node_encoder="linear",
        edge_encoder="linear" if _exp.get("num_edge_features") else None, protocol="tu_cv",
        source=f"TUDataset (Morris et al. 2020), {_n}, read as the EHGNN reference code reads "
               f"it (harryjo97/EHGNN: use_node_attr, one-hot degree for IMDB) with its 10-fold "
               f"indices (the GIN fold files; validation = the previous fold's test part); "
               f"PyG TUDataset loader",
        mirror_subdir=f"TUDataset/{_n}", url="https://www.chrsmrrs.com/graphkerneldatasets",
        expected=_exp, num_tasks=_exp["num_classes"]),
        _tu_ehgnn(_n), f"TUDataset/{_n}", (MI(f"TUDataset/{_n}", f"TUDataset/{_n}"),)))

# --------------------------------------------------------------------------- OGB
_OGB_EXPECTED = {
    "ogbg-molhiv": dict(num_graphs=41127, num_nodes=1049163, num_edges=2259376,
                        split=(32901, 4113, 4113)),
    "ogbg-molbace": dict(num_graphs=1513, split=(1210, 151, 152)),
    "ogbg-molbbbp": dict(num_graphs=2039, split=(1631, 204, 204)),
    "ogbg-molesol": dict(num_graphs=1128, split=(902, 113, 113)),
    "ogbg-molfreesolv": dict(num_graphs=642, split=(513, 64, 65)),
}
_OGB_METRIC = {"acc": "accuracy", "F1": "f1"}


def _ogb_master(kind: str):
    """ogb's own table of its datasets (read from the package without importing ogb)."""
    import importlib.util

    import pandas as pd
    found = importlib.util.find_spec("ogb")
    if found is None or not found.submodule_search_locations:
        return pd.DataFrame()
    path = osp.join(list(found.submodule_search_locations)[0], kind, "master.csv")
    return pd.read_csv(path, index_col=0, keep_default_na=False)


def _ogb(name: str, cls: str) -> Callable:
    def build(root, transform, pre_transform, key, **opts):
        base = _j(root, "ogb")
        folder = osp.join(base, name.replace("-", "_"))
        if osp.isdir(folder) and os.listdir(folder) and not any(
                f.startswith("RELEASE_v") for f in os.listdir(folder)):
            raise DataError(f"{name}: {folder} exists but has no RELEASE_v*.txt, so it is an "
                            f"incomplete download or copy; delete {folder} and load again")
        with ogb_torch_load():
            return _classes()[cls](name, root=base, transform=transform,
                                   pre_transform=pre_transform, cache_key=key, **opts)
    return build


def _register_ogb() -> None:
    for kind, cls in [("graphproppred", "PygGraphPropPredDataset"),
                      ("nodeproppred", "PygNodePropPredDataset"),
                      ("linkproppred", "PygLinkPropPredDataset")]:
        master = _ogb_master(kind)
        for name in master.columns:
            m = master[name]
            metric = _OGB_METRIC.get(m["eval metric"], m["eval metric"])
            ttype = m["task type"]
            hetero = str(m.get("is hetero", "False")) == "True"
            has_x = str(m["has_node_attr"]) == "True"
            has_e = str(m["has_edge_attr"]) == "True"
            num_tasks = int(m["num tasks"]) if "num tasks" in m.index else 1
            node_enc, edge_enc = ("linear" if has_x else "none"), ("linear" if has_e else None)
            if kind == "graphproppred":
                if name.startswith("ogbg-mol"):
                    node_enc, edge_enc = "atom", "bond"
                elif name == "ogbg-code2":
                    node_enc = "embedding"
                task = {"binary classification": "graph_multilabel",
                        "multiclass classification": "graph_classification",
                        "regression": "graph_regression"}.get(ttype, "graph_sequence")
            elif kind == "nodeproppred":
                task = "hetero_node_classification" if hetero else "node_classification"
            else:
                task = "link_prediction"
            folder = name.replace("-", "_")
            _register(DatasetSpec(DatasetInfo(
                name=name, task=task, metric=metric,
                higher_is_better=metric not in LOWER_IS_BETTER, ogb_name=name,
                node_encoder=node_enc, edge_encoder=edge_enc, protocol="ogb",
                source=f"Open Graph Benchmark (Hu et al., NeurIPS 2020), {name}; ogb "
                       f"{cls.replace('Pyg', 'Pyg')} loader",
                mirror_subdir=f"ogb/{folder}", url=m["url"],
                expected=_OGB_EXPECTED.get(name, {}),
                target="paper" if name == "ogbn-mag" else None,
                multilabel=ttype == "binary classification" and num_tasks > 1,
                num_tasks=num_tasks),
                _ogb(name, cls), f"ogb/{folder}", (MI(f"ogb/{folder}", f"ogb/{folder}"),)))


_register_ogb()

# --------------------------------------------------------------------------- LRGB Peptides
_PEPTIDES = {
    "func": ("Peptides-func", "peptides-functional", "graph_multilabel", "ap", 10,
             "peptide_multi_class_dataset.csv.gz"),
    "struct": ("Peptides-struct", "peptides-structural", "graph_regression", "mae", 11,
               "peptide_structure_dataset.csv.gz"),
}


def _peptides(variant: str, folder: str) -> Callable:
    def build(root, transform, pre_transform, key, **opts):
        return _classes()["PeptidesDataset"](_j(root, f"LRGB/{folder}"), variant,
                                             transform=transform, pre_transform=pre_transform,
                                             cache_key=key, **opts)
    return build


for _v, (_n, _folder, _task, _metric, _nt, _csv) in _PEPTIDES.items():
    _register(DatasetSpec(DatasetInfo(
        name=_n, task=_task, metric=_metric, higher_is_better=_metric not in LOWER_IS_BETTER,
        ogb_name=None, node_encoder="atom", edge_encoder="bond", protocol="lrgb", num_seeds=4,
        source="Long Range Graph Benchmark (Dwivedi et al., NeurIPS 2022 D&B), raw CSV of SMILES "
               "+ official split pickle, graphs from ogb.utils.smiles2graph (needs graphlab[chem])",
        mirror_subdir=f"LRGB/{_folder}", url="https://www.dropbox.com/s (LRGB release links)",
        expected=dict(num_graphs=15535, split=(10873, 2331, 2331), num_tasks=_nt,
                      avg_num_nodes=150.94),
        multilabel=_v == "func", num_tasks=_nt),
        _peptides(_v, _folder), f"LRGB/{_folder}", (MI(f"LRGB/{_folder}", f"LRGB/{_folder}"),),
        volatile_opts=("num_workers",)))

# --------------------------------------------------------------------------- ZINC
def _zinc(root, transform, pre_transform, key, subset: bool = True, **opts):
    """PyG's ZINC keeps the official train/val/test splits in three datasets; graphlab joins
    them into one (graphs in that order) with ``get_idx_split``, as for OGB."""
    import torch
    from torch_geometric.data import InMemoryDataset

    parts = [_classes()["ZINC"](_j(root, "ZINC"), subset=subset, split=s,
                                pre_transform=pre_transform, cache_key=key, **opts)
             for s in ("train", "val", "test")]
    sizes = [len(p) for p in parts]

    class ZINCSplits(InMemoryDataset):
        def __init__(self):
            super().__init__(None, transform)
            self._data, self.slices = self.collate([d for p in parts for d in p])

        def get_idx_split(self):
            edges = torch.tensor([0, *sizes]).cumsum(0)
            return {k: torch.arange(int(edges[i]), int(edges[i + 1]))
                    for i, k in enumerate(("train", "valid", "test"))}

    return ZINCSplits()


_register(DatasetSpec(DatasetInfo(
    name="zinc", task="graph_regression", metric="mae", higher_is_better=False, ogb_name=None,
    node_encoder="embedding", edge_encoder="embedding", protocol="fixed",
    source="ZINC-12k subset (Dwivedi et al., Benchmarking GNNs, 2020; Irwin et al. 2012), "
           "PyG ZINC(subset=True); download only (not in the mirror)",
    mirror_subdir=None, url="https://www.dropbox.com/s/feo9qle74kg48gy/molecules.zip",
    expected=dict(num_graphs=12000, split=(10000, 1000, 1000)), num_tasks=1),
    _zinc, "ZINC", ()))

# --------------------------------------------------------------------------- heterographs
_MAGNN = {
    "DBLP": ("author", dict(num_nodes={"author": 4057, "paper": 14328, "term": 7723,
                                        "conference": 20},
                            num_edges={("author", "to", "paper"): 19645,
                                       ("paper", "to", "term"): 85810,
                                       ("paper", "to", "conference"): 14328},
                            num_classes=4, split=(400, 400, 3257))),
    "IMDB": ("movie", dict(num_nodes={"movie": 4278, "director": 2081, "actor": 5257},
                           num_edges={("movie", "to", "director"): 4278,
                                      ("movie", "to", "actor"): 12828},
                           num_classes=3, split=(400, 400, 3478))),
}


def _magnn(name: str) -> Callable:
    def build(root, transform, pre_transform, key, **opts):
        return _classes()[name](_j(root, name), transform=transform, pre_transform=pre_transform,
                                cache_key=key, **opts)
    return build


for _n, (_target, _exp) in _MAGNN.items():
    _register(DatasetSpec(DatasetInfo(
        name=_n.lower(), task="hetero_node_classification",
        metric="f1_macro", higher_is_better=True, ogb_name=None, node_encoder="linear",
        edge_encoder=None, protocol="fixed",
        source=f"{_n} heterograph as processed for MAGNN (Fu et al., WWW 2020); PyG {_n} loader",
        mirror_subdir=_n, url="https://www.dropbox.com (PyG's MAGNN archive)", expected=_exp,
        target=_target, num_tasks=_exp["num_classes"]),
        _magnn(_n), _n, (MI(_n, _n),)))

_HGB = {
    "acm": ("paper", "ACM", dict(num_nodes={"paper": 3025, "author": 5959, "subject": 56,
                                            "term": 1902}, num_edges_total=547872,
                                 num_classes=3, split=(907, 2118)), False),
    "dblp": ("author", "DBLP", dict(num_nodes={"author": 4057, "paper": 14328, "term": 7723,
                                               "venue": 20}, num_edges_total=239566,
                                    num_classes=4, split=(1217, 2840)), False),
    "imdb": ("movie", "IMDB", dict(num_nodes={"movie": 4932, "director": 2393, "actor": 6124,
                                              "keyword": 7971}, num_edges_total=86642,
                                   num_classes=5, split=(1371, 3202)), True),
    "freebase": ("book", "Freebase", dict(), False),
}


def _hgb(name: str) -> Callable:
    def build(root, transform, pre_transform, key, **opts):
        return _classes()["HGBDataset"](_j(root, "HGB"), name, transform=transform,
                                        pre_transform=pre_transform, cache_key=key, **opts)
    return build


for _n, (_target, _zip, _exp, _ml) in _HGB.items():
    # ACM.zip holds an ACM/ folder; DBLP.zip and IMDB.zip hold bare files (see MANIFEST.md).
    _dst = f"HGB/{_n}/raw" if _n == "acm" else f"HGB/{_n}/raw/{_zip}"
    _items = () if _n == "freebase" else (MI(f"HGB/{_zip}.zip", _dst, unzip=True),)
    _register(DatasetSpec(DatasetInfo(
        name=f"hgb-{_n}", task="hetero_node_classification", metric="f1_macro",
        higher_is_better=True, ogb_name=None, node_encoder="linear", edge_encoder=None,
        protocol="fixed",
        source="Heterogeneous Graph Benchmark (Lv et al., KDD 2021); PyG HGBDataset loader; "
               "validation = a seeded 20% of the training nodes, as in HGB's reference code",
        mirror_subdir=_items[0].src if _items else None,
        url="https://drive.google.com (HGB release, via PyG)", expected=_exp, target=_target,
        multilabel=_ml, num_tasks=_exp.get("num_classes", 1)),
        _hgb(_n), f"HGB/{_n}", _items))

# --------------------------------------------------------------------------- SNAP


def _email(root, transform, pre_transform, key, **opts):
    return _classes()["EmailEUCore"](_j(root, "SNAP/EmailEUCore"), transform=transform,
                                     pre_transform=pre_transform, cache_key=key, **opts)


def _wiki(root, transform, pre_transform, key, **opts):
    return _classes()["SNAPDataset"](_j(root, "SNAP"), "wiki-vote", transform=transform,
                                     pre_transform=pre_transform, cache_key=key, **opts)


def _p2p(root, transform, pre_transform, key, **opts):
    return _classes()["SNAPEdgeListDataset"](_j(root, "SNAP/p2p-Gnutella08"), "p2p-Gnutella08",
                                             transform=transform, pre_transform=pre_transform,
                                             cache_key=key, **opts)


_SNAP_SRC = "SNAP (Leskovec & Krevl); directed graph, link prediction with a seeded " \
            "PyG RandomLinkSplit (5% validation / 10% test edges, directed)"
for _n, _build, _sub, _items, _exp, _cite in [
    ("email-Eu-core", _email, "SNAP/EmailEUCore", (MI("SNAP/EmailEUCore", "SNAP/EmailEUCore"),),
     dict(num_nodes=1005, num_edges=25571, num_classes=42),
     "Leskovec et al. 2007, Yin et al. 2017; PyG EmailEUCore loader"),
    ("wiki-Vote", _wiki, "SNAP/wiki-vote", (MI("SNAP/wiki-vote", "SNAP/wiki-vote"),),
     dict(num_nodes=7115, num_edges=103689),
     "Leskovec et al. 2010; PyG SNAPDataset with a header-agnostic reader"),
    ("p2p-Gnutella08", _p2p, "SNAP/p2p-Gnutella08",
     (MI("SNAP/p2p-Gnutella08", "SNAP/p2p-Gnutella08/raw"),),
     dict(num_nodes=6301, num_edges=20777),
     "Leskovec et al. 2007, Ripeanu et al. 2002; graphlab SNAPEdgeListDataset"),
]:
    _register(DatasetSpec(DatasetInfo(
        name=_n, task="link_prediction", metric="rocauc", higher_is_better=True, ogb_name=None,
        node_encoder="none", edge_encoder=None, protocol="random", source=f"{_SNAP_SRC}; {_cite}",
        mirror_subdir=_items[0].src, url="https://snap.stanford.edu/data", expected=_exp),
        _build, _sub, _items))

# --------------------------------------------------------------------------- LightGCN sets
_LIGHTGCN = {
    "lastfm": ("LastFM", dict(num_users=1892, num_items=4489, num_train=42135, num_test=10533,
                              num_trust=25434), "HetRec 2011 Last.fm (Cantador et al. 2011)"),
    "gowalla": ("Gowalla", dict(num_users=29858, num_items=40981, num_train=810128,
                                num_test=217242, num_interactions=1027370),
                "Cho, Myers & Leskovec, KDD 2011"),
    "yelp2018": ("Yelp2018", dict(num_users=31668, num_items=38048, num_interactions=1561406),
                 "Yelp challenge 2018 (Wang et al., NGCF, SIGIR 2019)"),
    "amazon-book": ("Amazon-Book", dict(num_users=52643, num_items=91599,
                                        num_interactions=2984108),
                    "Amazon review data (He & McAuley 2016)"),
}


def _lightgcn(name: str) -> Callable:
    def build(root, transform, pre_transform, key, **opts):
        folder = _j(root, f"LightGCN/{name}")
        if name == "amazon-book":  # PyG's standard loader reads this set
            return _classes()["AmazonBook"](folder, transform=transform,
                                            pre_transform=pre_transform, cache_key=key, **opts)
        return _classes()["LightGCNDataset"](folder, name, transform=transform,
                                             pre_transform=pre_transform, cache_key=key, **opts)
    return build


for _n, (_display, _exp, _cite) in _LIGHTGCN.items():
    _register(DatasetSpec(DatasetInfo(
        name=_n, task="recommendation", metric="recall@20", higher_is_better=True, ogb_name=None,
        node_encoder="embedding", edge_encoder=None, protocol="fixed",
        source=f"{_display} in the LightGCN release format (He et al., SIGIR 2020, "
               f"gusye1234/LightGCN-PyTorch); {_cite}",
        mirror_subdir=f"LightGCN/{_n}",
        url=f"https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data/{_n}",
        expected=_exp, target="book" if _n == "amazon-book" else "item"),
        _lightgcn(_n), f"LightGCN/{_n}",
        (MI(f"LightGCN/{_n}", f"LightGCN/{_n}/raw", gunzip=True),)))
