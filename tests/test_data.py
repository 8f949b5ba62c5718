"""Data layer tests that need no real benchmark files: tiny synthetic raw files in tmp dirs.

The real-data checks (published counts from $GRAPHLAB_MIRROR) are in test_data_real.py.
"""
from __future__ import annotations

import gzip
import json
import os
import os.path as osp
import pickle
import urllib.error
import urllib.request
import zipfile

import pytest
import torch
from torch_geometric.data import Data

import graphlab
import graphlab.data as gd
from graphlab.data import cache, catalog, mirror
from graphlab.errors import DataError

REQUIRED = ["cora", "citeseer", "pubmed", "mutag", "proteins", "nci1", "enzymes", "ptc_mr",
            "imdb-binary", "imdb-multi", "ogbg-molhiv", "ogbg-molpcba", "ogbn-arxiv",
            "ogbl-collab", "peptides-func", "peptides-struct", "dblp", "imdb", "hgb-acm",
            "hgb-dblp", "hgb-imdb", "hgb-freebase", "email-eu-core", "wiki-vote",
            "p2p-gnutella08", "lastfm", "gowalla", "yelp2018", "amazon-book", "cora-link",
            "citeseer-link"]
METRICS = {"accuracy", "rocauc", "ap", "mae", "rmse", "f1_macro", "f1", "mrr", "recall@20",
           "hits@20", "hits@50", "hits@100"}


@pytest.fixture
def no_mirror(monkeypatch):
    monkeypatch.delenv("GRAPHLAB_MIRROR", raising=False)


@pytest.fixture
def offline(monkeypatch):
    """No network: every urllib download fails at once, as on the CI machine."""
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled by the test")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def write_tu(root: str, name: str = "MUTAG", num_graphs: int = 6) -> str:
    """A tiny TU-format dataset: graph g is a path on 3 + g % 2 nodes, labels alternate."""
    raw = osp.join(root, "TUDataset", name, "raw")
    os.makedirs(raw, exist_ok=True)
    edges, indicator, node_labels, offset = [], [], [], 0
    for g in range(num_graphs):
        n = 3 + g % 2
        for i in range(n - 1):
            edges += [(offset + i + 1, offset + i + 2), (offset + i + 2, offset + i + 1)]
        indicator += [g + 1] * n
        node_labels += [(offset + i) % 3 for i in range(n)]
        offset += n
    files = {"A": [f"{a}, {b}" for a, b in edges], "graph_indicator": indicator,
             "graph_labels": [g % 2 for g in range(num_graphs)], "node_labels": node_labels}
    for suffix, lines in files.items():
        with open(osp.join(raw, f"{name}_{suffix}.txt"), "w") as f:
            f.write("\n".join(str(x) for x in lines) + "\n")
    return raw


def write_sums(mirror_dir: str) -> None:
    lines = []
    for dirpath, _, files in os.walk(mirror_dir):
        for fn in sorted(files):
            if fn == "SHA256SUMS":
                continue
            p = osp.join(dirpath, fn)
            rel = osp.relpath(p, mirror_dir).replace(os.sep, "/")
            lines.append(f"{mirror.sha256_file(p)}  {rel}")
    with open(osp.join(mirror_dir, "SHA256SUMS"), "w") as f:
        f.write("\n".join(sorted(lines, key=lambda s: s.split()[1])) + "\n")


def processed_dirs(folder: str) -> list:
    return sorted(d for d in os.listdir(folder) if d.startswith("processed"))


# ----------------------------------------------------------------------------- registry / info

def test_registry_lists_required_datasets():
    names = graphlab.DATASETS.names()
    missing = [n for n in REQUIRED if n not in names]
    assert not missing, missing
    ogb_names = [n for n in names if n.startswith(("ogbg-", "ogbn-", "ogbl-"))]
    assert len(ogb_names) >= 25  # every name in ogb's three master tables


@pytest.mark.parametrize("name", REQUIRED)
def test_info_fields_are_valid(name):
    inf = gd.info(name.upper())  # case-insensitive
    assert inf.name.lower() == name
    assert inf.task in gd.TASKS or name == "ogbg-code2"
    assert inf.metric in METRICS, inf.metric
    assert inf.higher_is_better == (inf.metric not in {"mae", "rmse"})
    assert inf.node_encoder in {"linear", "atom", "embedding", "none"}
    assert inf.edge_encoder in {"linear", "bond", "embedding", None}
    assert inf.protocol in {"ogb", "lrgb", "tu_cv", "planetoid", "random", "fixed"}
    assert (inf.ogb_name is not None) == name.startswith("ogb")
    assert inf.source


def test_info_examples():
    assert gd.info("ogbg-molhiv").task == "graph_multilabel"
    assert (gd.info("ogbg-molhiv").node_encoder, gd.info("ogbg-molhiv").edge_encoder) == ("atom", "bond")
    assert gd.info("ogbg-molpcba").metric == "ap" and gd.info("ogbg-molpcba").num_tasks == 128
    assert gd.info("ogbg-molesol").task == "graph_regression"
    assert not gd.info("ogbg-molesol").higher_is_better
    assert gd.info("Peptides-func").protocol == "lrgb" and gd.info("peptides-func").num_seeds == 4
    assert gd.info("peptides-struct").metric == "mae"
    assert gd.info("ogbn-arxiv").metric == "accuracy"
    assert gd.info("ogbl-collab").metric == "hits@50"
    assert gd.info("MUTAG").protocol == "tu_cv" and gd.info("MUTAG").edge_encoder == "linear"
    assert gd.info("IMDB-BINARY").node_encoder == "none"
    assert gd.info("hgb-imdb").multilabel and gd.info("hgb-acm").target == "paper"
    assert gd.info("Cora").mirror_subdir == "Planetoid/Cora"
    with pytest.raises(KeyError, match="did you mean 'cora'"):
        gd.info("coraa")


def test_list_datasets_reports_mirror(tmp_path, monkeypatch):
    write_tu(str(tmp_path / "m"))
    monkeypatch.setenv("GRAPHLAB_MIRROR", str(tmp_path / "m"))
    rows = {r["name"]: r for r in gd.list_datasets()}
    assert set(rows) >= {gd.info(n).name for n in REQUIRED}
    assert rows["MUTAG"]["in_mirror"] and not rows["Cora"]["in_mirror"]
    assert {"name", "task", "metric", "source", "in_mirror"} <= set(rows["MUTAG"])


# ----------------------------------------------------------------------------- cache keys

def test_fingerprint_sees_transform_arguments():
    from torch_geometric.transforms import AddRandomWalkPE, Compose, NormalizeFeatures
    a, b = AddRandomWalkPE(walk_length=4), AddRandomWalkPE(walk_length=8)
    assert cache.cache_key(a) != cache.cache_key(b)
    assert cache.cache_key(a) == cache.cache_key(AddRandomWalkPE(walk_length=4))
    assert cache.cache_key(Compose([a, NormalizeFeatures()])) != cache.cache_key(Compose([a]))
    assert cache.cache_key(None) != cache.cache_key(a)
    assert cache.cache_key(None, use_node_attr=True) != cache.cache_key(None)
    f1 = lambda d: d  # noqa: E731
    f2 = lambda d: d.clone()  # noqa: E731
    assert cache.cache_key(f1) != cache.cache_key(f2)


def test_changing_pre_transform_reprocesses(tmp_path, no_mirror):
    from torch_geometric.transforms import AddRandomWalkPE
    write_tu(str(tmp_path))
    folder = tmp_path / "TUDataset" / "MUTAG"
    ds4 = gd.load("MUTAG", root=str(tmp_path), pre_transform=AddRandomWalkPE(4, "pe"))
    assert ds4[0].pe.size(1) == 4
    ds8 = gd.load("MUTAG", root=str(tmp_path), pre_transform=AddRandomWalkPE(8, "pe"))
    assert ds8[0].pe.size(1) == 8  # not the stale 4-dim cache
    dirs = processed_dirs(folder)
    assert len(dirs) == 2
    stamp = {d: os.stat(folder / d / "data.pt").st_mtime_ns for d in dirs}
    again = gd.load("MUTAG", root=str(tmp_path), pre_transform=AddRandomWalkPE(4, "pe"))
    assert again[0].pe.size(1) == 4
    assert processed_dirs(folder) == dirs
    assert {d: os.stat(folder / d / "data.pt").st_mtime_ns for d in dirs} == stamp  # reused
    assert gd.load("MUTAG", root=str(tmp_path))[0].get("pe") is None


def test_concurrent_loads_wait_for_the_one_processing(tmp_path, no_mirror, capfd):
    """A second process (parallel seeds, two commands) waits on the dataset's lock while the
    first processes, and then reuses its cache (without the lock, five GPS processes processed
    the same Peptides-func variant at once and none finished in five minutes)."""
    import subprocess
    import sys
    import time
    write_tu(str(tmp_path))
    lock = tmp_path / ".locks" / "TUDataset_MUTAG.lock"
    marker = tmp_path / "released"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, pathlib; from filelock import FileLock\n"
        f"l = FileLock({str(lock)!r}); l.acquire(); print('held', flush=True)\n"
        f"time.sleep(1.5); pathlib.Path({str(marker)!r}).write_text('x'); l.release()")],
        stdout=subprocess.PIPE, text=True)
    lock.parent.mkdir(exist_ok=True)
    assert holder.stdout.readline().strip() == "held"
    t0 = time.perf_counter()
    ds = gd.load("MUTAG", root=str(tmp_path))
    assert marker.exists() and time.perf_counter() - t0 > 0.5  # waited for the holder
    assert "waiting for another process that is preparing TUDataset/MUTAG" in capfd.readouterr().err
    assert holder.wait(10) == 0 and len(ds) == 6
    folder = tmp_path / "TUDataset" / "MUTAG"
    dirs = processed_dirs(folder)
    assert len(dirs) == 1
    stamp = os.stat(folder / dirs[0] / "data.pt").st_mtime_ns
    assert len(gd.load("MUTAG", root=str(tmp_path))) == 6  # no wait, no reprocessing
    assert os.stat(folder / dirs[0] / "data.pt").st_mtime_ns == stamp


@pytest.mark.timeout(60)
def test_nested_load_on_the_same_thread_does_not_wait_for_itself(tmp_path, no_mirror):
    write_tu(str(tmp_path))
    with catalog.processing_lock(str(tmp_path), "TUDataset/MUTAG"):
        assert len(gd.load("MUTAG", root=str(tmp_path))) == 6


def test_cli_data_prepare_builds_the_configs_dataset(tmp_path, capsys):
    """``graphlab data prepare CONFIG`` processes the dataset with the config's pre-transform;
    a run of that config then only loads it."""
    import yaml

    from graphlab.train.cli import main
    from graphlab.train.config import load_config, validate
    from graphlab.data.pipeline import build_data
    cfg = {"data": {"name": "motifs", "root": str(tmp_path), "pe": {"name": "lap", "k": 4}},
           "model": {"name": "gin"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["data", "prepare", str(path)]) == 0
    out = capsys.readouterr().out
    assert "graph(s) ready" in out
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("processed_*/*.pt")}
    assert stamps and all(p.parent.name in out for p in stamps)
    ds = build_data(validate(load_config(str(path), []))["data"], 0)[0]
    assert ds[0].eigvecs.shape[1] == 4
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("processed_*/*.pt")} == stamps
    assert main(["data", "prepare"]) == 2 and "needs a config" in capsys.readouterr().err


def test_dataset_pickles(tmp_path, no_mirror):
    write_tu(str(tmp_path))
    ds = gd.load("mutag", root=str(tmp_path))
    back = pickle.loads(pickle.dumps(ds))  # DataLoader workers / DDP spawn pickle datasets
    assert len(back) == len(ds) and torch.equal(back[0].edge_index, ds[0].edge_index)


# ----------------------------------------------------------------------------- failures

def test_failure_mid_processing_leaves_no_cache(tmp_path, no_mirror, monkeypatch):
    write_tu(str(tmp_path))
    cls = catalog._classes()["TUDataset"]
    real = cls.process

    def broken(self):
        with open(osp.join(self.processed_dir, "data.pt"), "wb") as f:
            f.write(b"half a file")
        raise RuntimeError("injected failure")

    monkeypatch.setattr(cls, "process", broken)
    with pytest.raises(DataError, match="injected failure") as err:
        gd.load("MUTAG", root=str(tmp_path))
    assert "TUDataset" in str(err.value)
    folder = tmp_path / "TUDataset" / "MUTAG"
    assert processed_dirs(folder) == []  # neither processed_* nor its .tmp-* directory
    monkeypatch.setattr(cls, "process", real)
    assert len(gd.load("MUTAG", root=str(tmp_path))) == 6


def test_corrupt_raw_file_is_one_clear_error(tmp_path, no_mirror):
    raw = write_tu(str(tmp_path))
    with open(osp.join(raw, "MUTAG_A.txt"), "w") as f:
        f.write("1, 2\nthis is not an edge\n")
    with pytest.raises(DataError) as err:
        gd.load("MUTAG", root=str(tmp_path))
    msg = str(err.value)
    assert osp.join(str(tmp_path), "TUDataset", "MUTAG") in msg and "delete" in msg
    assert isinstance(err.value, RuntimeError)
    assert processed_dirs(tmp_path / "TUDataset" / "MUTAG") == []


def test_missing_raw_file_is_one_clear_error(tmp_path, no_mirror, offline):
    raw = tmp_path / "LightGCN" / "lastfm" / "raw"
    raw.mkdir(parents=True)
    (raw / "data1.txt").write_text("1\t2\t1\n")
    (raw / "trustnetwork.txt").write_text("1\t2\n")
    with pytest.raises(DataError) as err:
        gd.load("lastfm", root=str(tmp_path))
    msg = str(err.value)
    assert str(raw / "test1.txt") in msg and str(raw / "data1.txt") not in msg
    assert "GRAPHLAB_MIRROR" in msg


def test_offline_without_mirror(tmp_path, no_mirror, offline):
    with pytest.raises(DataError) as err:
        gd.load("lastfm", root=str(tmp_path))
    msg = str(err.value)
    assert "GRAPHLAB_MIRROR" in msg and "download" in msg and "LightGCN/lastfm" in msg
    assert not any(d.startswith("processed") for d in os.listdir(tmp_path / "LightGCN" / "lastfm"))


# ----------------------------------------------------------------------------- mirror

@pytest.fixture
def fake_mirror(tmp_path, monkeypatch):
    m = tmp_path / "mirror"
    write_tu(str(m))
    write_sums(str(m))
    for dirpath, _, files in os.walk(m):
        for fn in files:
            os.chmod(osp.join(dirpath, fn), 0o444)  # read-only, like shared/data
    monkeypatch.setenv("GRAPHLAB_MIRROR", os.pathsep.join([str(tmp_path / "absent"), str(m)]))
    return m


def _tree_sums(folder) -> dict:
    return {osp.relpath(osp.join(d, f), folder): mirror.sha256_file(osp.join(d, f))
            for d, _, fs in os.walk(folder) for f in fs}


def test_mirror_copy_is_verified_and_never_written(tmp_path, fake_mirror):
    before = _tree_sums(fake_mirror)
    root = tmp_path / "root"
    ds = gd.load("MUTAG", root=str(root))
    assert len(ds) == 6
    copied = root / "TUDataset" / "MUTAG" / "raw" / "MUTAG_A.txt"
    assert copied.read_bytes() == (fake_mirror / "TUDataset" / "MUTAG" / "raw" / "MUTAG_A.txt").read_bytes()
    # A damaged copy in the data root heals from the mirror on the next load.
    os.chmod(copied, 0o644)
    copied.write_text("garbage")
    mirror.fetch(str(fake_mirror), list(catalog.spec("MUTAG").mirror), str(root))
    assert copied.read_bytes() == (fake_mirror / "TUDataset" / "MUTAG" / "raw" / "MUTAG_A.txt").read_bytes()
    assert _tree_sums(fake_mirror) == before


def test_corrupt_mirror_file_names_the_file(tmp_path, fake_mirror):
    bad = fake_mirror / "TUDataset" / "MUTAG" / "raw" / "MUTAG_graph_labels.txt"
    os.chmod(bad, 0o644)
    bad.write_text("0\n0\n0\n0\n0\n0\n")
    with pytest.raises(DataError, match="MUTAG_graph_labels.txt") as err:
        gd.load("MUTAG", root=str(tmp_path / "root"))
    assert "SHA256SUMS" in str(err.value)
    assert not (tmp_path / "root" / "TUDataset" / "MUTAG" / "raw" / "MUTAG_graph_labels.txt").exists()


def test_hgb_zip_unpacks_per_dataset(tmp_path, monkeypatch):
    m = tmp_path / "mirror"
    (m / "HGB").mkdir(parents=True)
    with zipfile.ZipFile(m / "HGB" / "ACM.zip", "w") as z:  # ACM.zip has a top folder
        z.writestr("ACM/info.dat", "x")
        z.writestr("ACM/node.dat", "y")
    with zipfile.ZipFile(m / "HGB" / "DBLP.zip", "w") as z:  # DBLP.zip has none
        z.writestr("info.dat", "x")
        z.writestr("node.dat", "y")
    write_sums(str(m))
    monkeypatch.setenv("GRAPHLAB_MIRROR", str(m))
    root = tmp_path / "root"
    for name in ("hgb-acm", "hgb-dblp"):
        items = list(catalog.spec(name).mirror)
        assert mirror.find_mirror(items) == str(m)
        assert mirror.fetch(str(m), items, str(root))
        assert mirror.fetch(str(m), items, str(root)) == []  # unpacked once
    assert (root / "HGB" / "acm" / "raw" / "ACM" / "node.dat").read_text() == "y"
    assert (root / "HGB" / "dblp" / "raw" / "DBLP" / "node.dat").read_text() == "y"
    assert not any(".tmp-" in p for p in os.listdir(root / "HGB" / "acm"))


def test_gunzip_from_mirror(tmp_path, monkeypatch):
    m = tmp_path / "mirror" / "LightGCN" / "gowalla"
    m.mkdir(parents=True)
    (m / "user_list.txt").write_text("org_id remap_id\n10 0\n11 1\n")
    (m / "item_list.txt").write_text("org_id remap_id\n5 0\n6 1\n7 2\n")
    with gzip.open(m / "train.txt.gz", "wt") as f:
        f.write("0 0 1\n1 2\n")
    (m / "test.txt").write_text("0 2\n1 0 1\n")
    write_sums(str(tmp_path / "mirror"))
    monkeypatch.setenv("GRAPHLAB_MIRROR", str(tmp_path / "mirror"))
    ds = gd.load("gowalla", root=str(tmp_path / "root"))
    assert (tmp_path / "root" / "LightGCN" / "gowalla" / "raw" / "train.txt").read_text() == "0 0 1\n1 2\n"
    d = ds[0]
    assert d["user"].num_nodes == 2 and d["item"].num_nodes == 3
    assert d["user", "rates", "item"].edge_index.tolist() == [[0, 0, 1], [0, 1, 2]]
    assert d["user", "rates", "item"].edge_label_index.tolist() == [[0, 1, 1], [2, 0, 1]]


# ----------------------------------------------------------------------------- own loaders

def test_lastfm_one_based_float_notation(tmp_path, no_mirror):
    raw = tmp_path / "LightGCN" / "lastfm" / "raw"
    raw.mkdir(parents=True)
    (raw / "data1.txt").write_text("1\t2\t993\r\n2\t3.0e+00\t3.2466e+05\r\n")
    (raw / "test1.txt").write_text("1\t3\t5\r\n")
    (raw / "trustnetwork.txt").write_text("1\t2\r\n2\t1\r\n")
    d = gd.load("lastfm", root=str(tmp_path))[0]
    assert d["user", "rates", "item"].edge_index.tolist() == [[0, 1], [1, 2]]
    assert d["user", "rates", "item"].edge_label_index.tolist() == [[0], [2]]
    assert d["user", "trusts", "user"].edge_index.tolist() == [[0, 1], [1, 0]]
    assert d["user"].num_nodes == 2 and d["item"].num_nodes == 3
    split = gd.get_split("lastfm", [d], seed=0, valid_ratio=0.5)
    assert split["train"].size(1) == 1 and split["valid"].size(1) == 1
    assert gd.get_split("lastfm", [d], valid_ratio=0.0)["valid"].shape == (2, 0)


def test_lastfm_non_integer_id_is_clear_error(tmp_path, no_mirror):
    raw = tmp_path / "LightGCN" / "lastfm" / "raw"
    raw.mkdir(parents=True)
    (raw / "data1.txt").write_text("1\t2.5\t9\n")
    (raw / "test1.txt").write_text("1\t3\t5\n")
    (raw / "trustnetwork.txt").write_text("1\t2\n")
    with pytest.raises(DataError, match="data1.txt"):
        gd.load("lastfm", root=str(tmp_path))


def test_wiki_vote_three_line_header(tmp_path, no_mirror):
    raw = tmp_path / "SNAP" / "wiki-vote" / "raw"
    raw.mkdir(parents=True)
    (raw / "wiki-Vote.txt").write_bytes(
        b"# Directed graph: Wiki-Vote.txt\r\n# voting\r\n# FromNodeId\tToNodeId\r\n"
        b"30\t1412\r\n30\t3352\r\n3352\t30\r\n")
    d = gd.load("wiki-vote", root=str(tmp_path))[0]
    assert d.num_nodes == 3 and d.edge_index.size(1) == 3  # the first edge is kept
    assert d.edge_index.tolist() == [[0, 0, 2], [1, 2, 0]]  # ids relabelled as PyG does


def test_p2p_edge_list(tmp_path, no_mirror):
    raw = tmp_path / "SNAP" / "p2p-Gnutella08" / "raw"
    raw.mkdir(parents=True)
    (raw / "p2p-Gnutella08.txt").write_text("# Nodes: 4 Edges: 3\n0\t1\n0\t2\n3\t0\n0\t1\n")
    d = gd.load("p2p-Gnutella08", root=str(tmp_path))[0]
    assert d.num_nodes == 4 and d.edge_index.tolist() == [[0, 0, 3], [1, 2, 0]]


SMILES = ["CCO", "c1ccccc1O", "CC(=O)N[C@@H](C)C(=O)O", "N", "CCN(CC)CC", "O=C=O"]


def write_peptides(root) -> None:
    import pandas as pd
    raw = root / "LRGB" / "peptides-functional" / "raw"
    raw.mkdir(parents=True)
    labels = [str([int(i == j % 10) for j in range(10)]) for i in range(len(SMILES))]
    pd.DataFrame({"smiles": SMILES, "peptide_seq": "A", "labels": labels,
                  "identifier": range(len(SMILES))}).to_csv(raw / "peptide_multi_class_dataset.csv.gz")
    import numpy as np
    with open(root / "LRGB" / "peptides-functional" / "splits_random_stratified_peptide.pickle", "wb") as f:
        pickle.dump({"train": np.array([0, 1, 2, 3]), "val": np.array([4]), "test": np.array([5])}, f)


def test_peptides_from_raw_csv(tmp_path, no_mirror):
    pytest.importorskip("rdkit", reason="Peptides needs RDKit: pip install graphlab[chem]")
    write_peptides(tmp_path)
    ds = gd.load("peptides-func", root=str(tmp_path), num_workers=0)
    assert len(ds) == len(SMILES)
    g = ds[0]  # ethanol: 3 heavy atoms, 2 bonds in both directions
    assert g.x.shape == (3, 9) and g.x.dtype == torch.long
    assert g.edge_index.size(1) == 4 and g.edge_attr.shape == (4, 3)
    assert g.y.shape == (1, 10) and g.y[0, 0] == 1
    split = gd.get_split("peptides-func", ds)
    assert [split[k].tolist() for k in ("train", "valid", "test")] == [[0, 1, 2, 3], [4], [5]]
    # a worker pool gives the same graphs and reuses the cache (num_workers is not in the key)
    again = gd.load("peptides-func", root=str(tmp_path), num_workers=2)
    assert torch.equal(again._data.x, ds._data.x)
    assert processed_dirs(tmp_path / "LRGB" / "peptides-functional") == processed_dirs(
        tmp_path / "LRGB" / "peptides-functional")[:1]


def test_peptides_pre_transform_in_workers_equals_in_process(tmp_path, no_mirror):
    """With a worker pool the workers run the pre-transform too (the eigenpairs of a positional
    encoding took longer than the SMILES); the graphs equal the in-process ones, and an
    unpicklable pre-transform runs in the parent."""
    pytest.importorskip("rdkit", reason="Peptides needs RDKit: pip install graphlab[chem]")
    from graphlab.transforms.laplacian import AddLaplacianEigen
    roots = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for r in roots:
        write_peptides(r)
    one = gd.load("peptides-func", root=str(roots[0]), num_workers=0,
                  pre_transform=AddLaplacianEigen(2, None))
    pool = gd.load("peptides-func", root=str(roots[1]), num_workers=2,
                   pre_transform=AddLaplacianEigen(2, None))
    assert len(one) == len(pool) == len(SMILES)
    for a, b in zip(one, pool):
        assert a.keys() == b.keys() and a.num_nodes == b.num_nodes
        for k in a.keys():
            assert (torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k]), k
    local = gd.load("peptides-func", root=str(roots[2]), num_workers=2,
                    pre_transform=lambda d: AddLaplacianEigen(2, None)(d))  # not picklable
    assert all(torch.equal(a.eigvecs, b.eigvecs) for a, b in zip(one, local))


def test_peptides_without_rdkit_says_what_to_install(tmp_path, no_mirror, monkeypatch):
    import importlib.util
    write_peptides(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "rdkit" else real(n, *a))
    with pytest.raises(DataError, match=r"pip install graphlab\[chem\]"):
        gd.load("peptides-func", root=str(tmp_path))
    assert processed_dirs(tmp_path / "LRGB" / "peptides-functional") == []


# ----------------------------------------------------------------------------- splits

@pytest.mark.parametrize("name", [n for n in REQUIRED if gd.info(n).protocol == "tu_cv"])
def test_tu_fold_files_partition(name):
    path = osp.join(osp.dirname(gd.__file__), "folds", f"{gd.info(name).name}.json")
    with open(path) as f:
        folds = json.load(f)
    n = folds["num_graphs"]
    assert n == gd.info(name).expected["num_graphs"] and len(folds["folds"]) == 10
    tests = [t for fold in folds["folds"] for t in fold["test"]]
    assert sorted(tests) == list(range(n))  # the 10 test folds partition the dataset
    for k in range(10):
        s = gd.get_split(name, range(n), fold=k)
        sets = [set(s[p].tolist()) for p in ("train", "valid", "test")]
        assert sum(map(len, sets)) == n and set.union(*sets) == set(range(n))
        assert abs(len(sets[1]) - round(0.1 * (n - len(sets[2])))) <= 1
    with pytest.raises(ValueError, match="fold"):
        gd.get_split(name, range(n), fold=10)
    with pytest.raises(DataError, match="graphs"):
        gd.get_split(name, range(n + 1))


def test_link_split_is_seeded_and_keeps_global_rng():
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 50, (2, 400), generator=g)
    data = Data(edge_index=ei, num_nodes=50)
    state = torch.get_rng_state()
    a = gd.get_split("email-eu-core", [data], seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = gd.get_split("email-eu-core", [data], seed=3)
    c = gd.get_split("email-eu-core", [data], seed=4)
    assert torch.equal(a["test"].edge_label_index, b["test"].edge_label_index)
    assert not torch.equal(a["test"].edge_label_index, c["test"].edge_label_index)
    assert a["valid"].edge_label.sum() * 2 == a["valid"].edge_label.numel()  # 1:1 negatives


def test_ogb_torch_load_scope(tmp_path):
    """ogb's bare torch.load of PyG objects / numpy split dicts works inside the scope only."""
    import numpy as np
    from graphlab.data.compat import ogb_torch_load
    path = tmp_path / "split.pt"
    data = Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2)
    torch.save({"edge": np.arange(6).reshape(3, 2), "data": (data.to_dict(), data)}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # torch >= 2.6 default: weights_only=True
    with ogb_torch_load():
        out = torch.load(path)
    assert out["edge"].tolist() == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # the allow-list does not leak out of the scope
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ


def test_force_reload_and_bad_option(tmp_path, no_mirror):
    write_tu(str(tmp_path))
    folder = tmp_path / "TUDataset" / "MUTAG"
    gd.load("MUTAG", root=str(tmp_path))
    (d,) = processed_dirs(folder)
    stamp = os.stat(folder / d / "data.pt").st_mtime_ns
    gd.load("MUTAG", root=str(tmp_path), force_reload=True)
    assert processed_dirs(folder) == [d]  # same key, rebuilt in place
    assert os.stat(folder / d / "data.pt").st_mtime_ns != stamp
    with pytest.raises(ValueError, match="no_such_option"):
        gd.load("MUTAG", root=str(tmp_path), no_such_option=1)


def test_random_split_for_generated_sets():
    s = gd.get_split("motifs", range(50), seed=2)
    assert [len(s[k]) for k in ("train", "valid", "test")] == [40, 5, 5]
    assert sorted(torch.cat(list(s.values())).tolist()) == list(range(50))
    assert torch.equal(s["test"], gd.get_split("motifs", range(50), seed=2)["test"])
