"""Real benchmark files from $GRAPHLAB_MIRROR load with their published counts.

Every test here takes the ``mirror`` fixture: without $GRAPHLAB_MIRROR they skip with the
reason; with it, a dataset the mirror should hold but does not is a failure. Datasets are
processed once per session under the session data root and shared between tests.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

import graphlab.data as gd
from graphlab.data import catalog, mirror as gm

pytestmark = pytest.mark.realdata

# What shared/data holds (its MANIFEST.md); each must be found in the configured mirror.
HELD = ["cora", "citeseer", "cora-link", "citeseer-link", "mutag", "proteins", "nci1", "enzymes",
        "ptc_mr", "imdb-binary", "imdb-multi", "ogbg-molhiv", "ogbg-molbace", "ogbg-molbbbp",
        "ogbg-molesol", "ogbg-molfreesolv", "dblp", "imdb", "hgb-acm", "hgb-dblp", "hgb-imdb",
        "peptides-func", "email-eu-core", "wiki-vote", "p2p-gnutella08", "lastfm", "gowalla",
        "mutag-ehgnn", "proteins-ehgnn", "ptc_mr-ehgnn", "imdb-binary-ehgnn", "imdb-multi-ehgnn"]


@pytest.fixture(scope="session")
def loaded(mirror, data_root):
    """``loaded(name)``: the dataset, loaded (and processed) at most once per session."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = gd.load(name)
        return cache[name]
    return get


def test_mirror_holds_what_it_should(mirror):
    for name in HELD:
        assert gm.find_mirror(list(catalog.spec(name).mirror)), \
            f"{name}: no mirror in {mirror} holds {gd.info(name).mirror_subdir}"
    # every registered dataset a configured mirror holds is checked below
    held = {r["name"].lower() for r in gd.list_datasets() if r["in_mirror"]}
    assert held <= set(HELD), sorted(held - set(HELD))


@pytest.mark.parametrize("name", ["cora", "citeseer"])
def test_planetoid_counts(loaded, name):
    exp, d = gd.info(name).expected, loaded(name)[0]
    assert (d.num_nodes, d.edge_index.size(1), d.num_features) == \
        (exp["num_nodes"], exp["num_edges"], exp["num_features"])
    assert int(d.y.max()) + 1 == exp["num_classes"]
    split = gd.get_split(name, loaded(name))
    assert tuple(int(split[k].sum()) for k in ("train", "valid", "test")) == exp["split"]


@pytest.mark.parametrize("name", ["mutag", "proteins", "nci1", "enzymes", "ptc_mr",
                                  "imdb-binary", "imdb-multi"])
def test_tu_counts_and_folds(loaded, name):
    exp, ds = gd.info(name).expected, loaded(name)
    assert len(ds) == exp["num_graphs"] and ds.num_classes == exp["num_classes"]
    num_nodes = ds._data.x.size(0) if ds._data.x is not None else sum(g.num_nodes for g in ds)
    assert num_nodes == exp["num_nodes"]
    assert ds._data.edge_index.size(1) == exp["num_edges"]
    assert ds.num_node_features == exp["num_features"]
    if "num_edge_features" in exp:
        assert ds.num_edge_features == exp["num_edge_features"]
    # the committed folds were made from exactly these labels
    with open(osp.join(osp.dirname(gd.__file__), "folds", f"{gd.info(name).name}.json")) as f:
        folds = json.load(f)
    y = np.ascontiguousarray(ds.y.numpy(), dtype=np.int64)
    assert hashlib.sha256(y.tobytes()).hexdigest() == folds["labels_sha256"]
    split = gd.get_split(name, ds, fold=0)
    assert sum(len(v) for v in split.values()) == len(ds)
    # stratified: every class keeps its share in the test fold (within one graph per class)
    for c in range(exp["num_classes"]):
        share = (ds.y == c).float().mean() * len(split["test"])
        assert abs(int((ds.y[split["test"]] == c).sum()) - share) <= 1.0 + 1e-6


def test_ogbg_molhiv_counts(molhiv):  # the session fixture in conftest.py (one load per session)
    exp = gd.info("ogbg-molhiv").expected
    assert len(molhiv) == exp["num_graphs"]
    assert molhiv._data.x.shape == (exp["num_nodes"], 9)
    assert molhiv._data.edge_attr.shape == (exp["num_edges"], 3)
    assert molhiv.num_tasks == 1
    split = gd.get_split("ogbg-molhiv", molhiv)
    assert tuple(len(split[k]) for k in ("train", "valid", "test")) == exp["split"]
    # a second load reads the processed file (the weights_only fix) instead of re-processing
    again = gd.load("ogbg-molhiv")
    assert torch.equal(again._data.y, molhiv._data.y)


@pytest.mark.parametrize("name", ["ogbg-molbace", "ogbg-molbbbp", "ogbg-molesol",
                                  "ogbg-molfreesolv"])
def test_small_ogb_counts(loaded, name):
    exp, ds = gd.info(name).expected, loaded(name)
    assert len(ds) == exp["num_graphs"]
    split = gd.get_split(name, ds)
    assert tuple(len(split[k]) for k in ("train", "valid", "test")) == exp["split"]


@pytest.mark.parametrize("name", ["dblp", "imdb"])
def test_magnn_heterographs(loaded, name):
    inf, d = gd.info(name), loaded(name)[0]
    exp = inf.expected
    assert {t: d[t].num_nodes for t in exp["num_nodes"]} == exp["num_nodes"]
    assert {e: d[e].edge_index.size(1) for e in exp["num_edges"]} == exp["num_edges"]
    assert int(d[inf.target].y.max()) + 1 == exp["num_classes"]
    split = gd.get_split(name, loaded(name))
    assert tuple(int(split[k].sum()) for k in ("train", "valid", "test")) == exp["split"]


@pytest.mark.parametrize("name", ["hgb-acm", "hgb-dblp", "hgb-imdb"])
def test_hgb_raw_counts(mirror, data_root, name):
    """The unpacked HGB files hold the published counts (the full PyG load is slow: below)."""
    s = catalog.spec(name)
    m = gm.find_mirror(list(s.mirror))
    gm.fetch(m, list(s.mirror), data_root)
    raw = osp.join(data_root, "HGB", name[4:], "raw", {"acm": "ACM", "dblp": "DBLP",
                                                       "imdb": "IMDB"}[name[4:]])
    exp = gd.info(name).expected
    counts = {}
    with open(osp.join(raw, "node.dat"), "rb") as f:
        for line in f:
            t = line.split(b"\t", 3)[2]
            counts[t] = counts.get(t, 0) + 1
    assert sorted(counts.values()) == sorted(exp["num_nodes"].values())
    with open(osp.join(raw, "link.dat"), "rb") as f:
        num_links = sum(1 for _ in f)
    with open(osp.join(raw, "label.dat"), "rb") as f:
        num_train = sum(1 for _ in f)
    with open(osp.join(raw, "label.dat.test"), "rb") as f:
        num_test = sum(1 for _ in f)
    assert (num_train, num_test) == exp["split"]
    # PyG adds the reverse of every relation that has no reverse of its own
    assert num_links <= exp["num_edges_total"] <= 2 * num_links


@pytest.mark.slow  # 30-60 s each on 2 cores (PyG parses node.dat in Python); test_hgb_raw_counts covers the files
@pytest.mark.parametrize("name", ["hgb-acm", "hgb-dblp", "hgb-imdb"])
def test_hgb_full_load(loaded, name):
    inf, d = gd.info(name), loaded(name)[0]
    exp = inf.expected
    assert {t: d[t].num_nodes for t in exp["num_nodes"]} == exp["num_nodes"]
    assert sum(s.edge_index.size(1) for s in d.edge_stores) == exp["num_edges_total"]
    split = gd.get_split(name, loaded(name), seed=0)
    n_train, n_test = exp["split"]
    assert int(split["test"].sum()) == n_test
    assert int(split["train"].sum()) + int(split["valid"].sum()) == n_train
    assert int(split["valid"].sum()) == int(n_train * 0.2)


@pytest.mark.slow  # about 2-4 min of RDKit on 2 cores; test_data.py::test_peptides_from_raw_csv covers the code
def test_peptides_func(loaded):
    pytest.importorskip("rdkit", reason="Peptides needs RDKit: pip install graphlab[chem]")
    exp, ds = gd.info("peptides-func").expected, loaded("peptides-func")
    assert len(ds) == exp["num_graphs"]
    assert ds._data.y.shape == (exp["num_graphs"], 10)
    assert abs(ds._data.x.size(0) / len(ds) - exp["avg_num_nodes"]) < 0.01
    split = gd.get_split("peptides-func", ds)
    assert tuple(len(split[k]) for k in ("train", "valid", "test")) == exp["split"]


def test_peptides_raw_counts_without_rdkit(mirror, data_root):
    """The raw CSV and split pickle hold the published counts (checked even without RDKit)."""
    import pickle

    import pandas as pd
    s = catalog.spec("peptides-func")
    gm.fetch(gm.find_mirror(list(s.mirror)), list(s.mirror), data_root)
    folder = osp.join(data_root, "LRGB", "peptides-functional")
    df = pd.read_csv(osp.join(folder, "raw", "peptide_multi_class_dataset.csv.gz"))
    with open(osp.join(folder, "splits_random_stratified_peptide.pickle"), "rb") as f:
        split = pickle.load(f)
    assert len(df) == 15535
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (10873, 2331, 2331)


@pytest.mark.parametrize("name", ["email-eu-core", "wiki-vote", "p2p-gnutella08"])
def test_snap_counts(loaded, name):
    exp, d = gd.info(name).expected, loaded(name)[0]
    assert (d.num_nodes, d.edge_index.size(1)) == (exp["num_nodes"], exp["num_edges"])
    split = gd.get_split(name, loaded(name), seed=0)
    n_val, n_test = int(0.05 * exp["num_edges"]), int(0.1 * exp["num_edges"])
    assert split["valid"].edge_label_index.size(1) == 2 * n_val  # positives + as many negatives
    assert split["test"].edge_label_index.size(1) == 2 * n_test
    assert split["train"].edge_index.size(1) == exp["num_edges"] - n_val - n_test


def test_cora_link_prediction_standin(loaded):
    ds = loaded("cora-link")
    assert gd.info("cora-link").task == "link_prediction"
    a = gd.get_split("cora-link", ds, seed=0)
    b = gd.get_split("cora-link", ds, seed=0)
    c = gd.get_split("cora-link", ds, seed=1)
    undirected = 10556 // 2
    n_val, n_test = int(0.05 * undirected), int(0.1 * undirected)
    assert a["valid"].edge_label.numel() == 2 * n_val and a["test"].edge_label.numel() == 2 * n_test
    assert a["train"].edge_index.size(1) == 2 * (undirected - n_val - n_test)
    assert torch.equal(a["test"].edge_label_index, b["test"].edge_label_index)
    assert not torch.equal(a["test"].edge_label_index, c["test"].edge_label_index)
    # test positives never appear among the message-passing edges
    pos = a["test"].edge_label_index[:, a["test"].edge_label == 1]
    train = set(map(tuple, a["train"].edge_index.t().tolist()))
    assert not any(tuple(e) in train for e in pos.t().tolist())


@pytest.mark.parametrize("name", ["lastfm", "gowalla"])
def test_lightgcn_counts(loaded, name):
    exp, d = gd.info(name).expected, loaded(name)[0]
    rel = d["user", "rates", "item"]
    assert (d["user"].num_nodes, d["item"].num_nodes) == (exp["num_users"], exp["num_items"])
    assert (rel.edge_index.size(1), rel.edge_label_index.size(1)) == (exp["num_train"], exp["num_test"])
    if name == "lastfm":
        assert d["user", "trusts", "user"].edge_index.size(1) == exp["num_trust"]
    split = gd.get_split(name, loaded(name), seed=0)
    assert split["train"].size(1) + split["valid"].size(1) == exp["num_train"]


def test_mirror_is_unchanged(mirror):
    """Runs last in this file: every mirror file still matches SHA256SUMS; nothing was added."""
    for m in mirror:
        sums = gm.read_sums(m)
        assert sums, f"{m} has no SHA256SUMS"
        bad = [rel for rel, digest in sums.items()
               if gm.sha256_file(osp.join(m, *rel.split("/"))) != digest]
        assert not bad, f"mirror files changed: {bad}"
        present = {osp.relpath(osp.join(d, f), m).replace(os.sep, "/")
                   for d, _, fs in os.walk(m) for f in fs}
        extra = present - set(sums) - {"SHA256SUMS", "MANIFEST.md"}
        assert not extra, f"files written into the mirror: {sorted(extra)[:5]}"
