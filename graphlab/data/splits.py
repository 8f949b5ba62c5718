"""Train/validation/test splits per benchmark protocol.

:func:`get_split` returns a dict with keys ``'train'``, ``'valid'``, ``'test'``; what the
values are depends on the task (``graphlab.data.info(name).task``):

* graph tasks (``graph_*``): ``LongTensor`` indices into the dataset. OGB: the official
  ``get_idx_split()``; Peptides: the LRGB split pickle; TU: fold ``fold`` (0..9) of the
  committed 10-fold stratified CV with a stratified 10% inner validation split (Errica et al.,
  "A Fair Comparison of Graph Neural Networks for Graph Classification", ICLR 2020), read from
  ``graphlab/data/folds/<NAME>.json`` (written once by ``scripts/make_tu_folds.py``).
* node tasks (``node_classification``, ``hetero_node_classification``): boolean masks over the
  (target-type) nodes. Planetoid: the public split; OGB: ``get_idx_split()`` as masks; MAGNN
  DBLP/IMDB: the shipped masks; HGB: the shipped train/test masks with a seeded 20% of the
  training nodes moved to validation (HGB's reference protocol).
* ``link_prediction``: OGB: ``get_edge_split()`` unchanged (dicts of edge tensors). Stand-ins
  (Cora-link, CiteSeer-link, email-Eu-core, wiki-Vote, p2p-Gnutella08): three ``Data`` objects
  from a seeded ``torch_geometric.transforms.RandomLinkSplit`` (5% validation, 10% test,
  undirected for Planetoid, directed for SNAP); message passing uses each object's
  ``edge_index``, supervision its ``edge_label_index``/``edge_label`` (validation and test
  carry one sampled negative per positive; training negatives are left to the trainer).
* ``protocol == 'random'`` graph / node tasks without a rule above (generated sets): a seeded
  80/10/10 split (indices for graphs, masks for nodes); a dataset with ``get_idx_split()``
  uses that instead.
* ``recommendation``: ``[2, E]`` (user, item) interaction tensors: ``train`` (the release's
  training file minus the validation part), ``valid`` (a seeded ``valid_ratio`` share of the
  training interactions, default 0.1; 0 gives an empty ``[2, 0]`` tensor and the published
  LightGCN setting), ``test`` (the release's test file); plus ``num_users`` and ``num_items``.
"""
from __future__ import annotations

import contextlib
import json
import os.path as osp
import random
from typing import Any, Dict, Iterator

import numpy as np
import torch

from graphlab.data.catalog import spec
from graphlab.data.compat import ogb_torch_load
from graphlab.errors import DataError

FOLDS_DIR = osp.join(osp.dirname(__file__), "folds")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed python, numpy and torch inside the block and restore their states afterwards."""
    py, npst = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npst)


def fold_path(name: str) -> str:
    return osp.join(FOLDS_DIR, f"{spec(name).info.name}.json")


def tu_fold(name: str, num_graphs: int, fold: int) -> Dict[str, torch.Tensor]:
    path = fold_path(name)
    if not osp.isfile(path):
        raise DataError(f"no committed folds for {name} ({path}); generate them once with "
                        f"`python scripts/make_tu_folds.py {spec(name).info.name}` and commit the file")
    with open(path) as f:
        folds = json.load(f)
    if folds["num_graphs"] != num_graphs:
        raise DataError(f"{path} was made for {folds['num_graphs']} graphs but the dataset has "
                        f"{num_graphs}; the raw files differ from the ones the folds were made for")
    n = len(folds["folds"])
    if not 0 <= fold < n:
        raise ValueError(f"fold must be in 0..{n - 1}, got {fold}")
    test = torch.tensor(folds["folds"][fold]["test"], dtype=torch.long)
    valid = torch.tensor(folds["folds"][fold]["valid"], dtype=torch.long)
    rest = torch.ones(num_graphs, dtype=torch.bool)
    rest[test] = False
    rest[valid] = False
    return {"train": rest.nonzero().view(-1), "valid": valid, "test": test}


def _mask(idx: torch.Tensor, n: int) -> torch.Tensor:
    m = torch.zeros(n, dtype=torch.bool)
    m[idx] = True
    return m


def _link_split(data, undirected: bool, seed: int) -> Dict[str, Any]:
    from torch_geometric.transforms import RandomLinkSplit
    t = RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=undirected,
                        add_negative_train_samples=False, split_labels=False)
    with seeded(seed):
        train, valid, test = t(data.clone())
    return {"train": train, "valid": valid, "test": test}


def get_split(name: str, dataset, seed: int = 0, fold: int = 0, **opts: Any) -> Dict[str, Any]:
    """The protocol's split of ``dataset`` (see the module docstring for what each task gets).

    Args:
        name: registered dataset name.
        dataset: the object :func:`graphlab.data.load` returned for ``name``.
        seed: seeds random splits (link stand-ins, HGB validation, recommendation validation);
            fixed official splits ignore it.
        fold: TU cross-validation fold (0..9); ignored elsewhere.
        **opts: ``valid_ratio`` for recommendation sets (default: ``0.1``).
    """
    s = spec(name)
    inf = s.info
    key = inf.name.lower()
    if inf.protocol == "ogb":
        with ogb_torch_load():
            if inf.task == "link_prediction":
                return dataset.get_edge_split()
            idx = dataset.get_idx_split()
        if inf.task.startswith("graph"):
            return {k: torch.as_tensor(v, dtype=torch.long) for k, v in idx.items()}
        data = dataset[0]
        if inf.target:  # ogbn-mag: splits are per node type
            n = data.num_nodes_dict[inf.target] if hasattr(data, "num_nodes_dict") else \
                int(data[inf.target].num_nodes)
            return {k: _mask(torch.as_tensor(v[inf.target]), n) for k, v in idx.items()}
        return {k: _mask(torch.as_tensor(v), data.num_nodes) for k, v in idx.items()}
    if inf.protocol == "lrgb":
        return dataset.get_idx_split()
    if inf.protocol == "tu_cv":
        return tu_fold(name, len(dataset), fold)
    if inf.protocol == "planetoid":
        d = dataset[0]
        return {"train": d.train_mask, "valid": d.val_mask, "test": d.test_mask}
    if inf.task == "link_prediction":
        return _link_split(dataset[0], undirected=key.endswith("-link"), seed=seed)
    if inf.task == "hetero_node_classification":
        store = dataset[0][inf.target]
        if hasattr(store, "val_mask"):  # MAGNN DBLP/IMDB ship all three masks
            return {"train": store.train_mask, "valid": store.val_mask, "test": store.test_mask}
        train_idx = store.train_mask.nonzero().view(-1)
        g = torch.Generator().manual_seed(seed)
        perm = train_idx[torch.randperm(train_idx.numel(), generator=g)]
        n_val = int(train_idx.numel() * 0.2)
        n = store.train_mask.numel()
        return {"train": _mask(perm[n_val:], n), "valid": _mask(perm[:n_val], n),
                "test": store.test_mask.clone()}
    if inf.task == "recommendation":
        data = dataset[0]
        rel = ("user", "rates", inf.target)
        train, test = data[rel].edge_index, data[rel].edge_label_index
        ratio = float(opts.get("valid_ratio", 0.1))
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"valid_ratio must be in [0, 1), got {ratio}")
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(train.size(1), generator=g)
        n_val = int(train.size(1) * ratio)
        return {"train": train[:, perm[n_val:].sort().values],
                "valid": train[:, perm[:n_val].sort().values], "test": test,
                "num_users": int(data["user"].num_nodes),
                "num_items": int(data[inf.target].num_nodes)}
    if inf.protocol == "random" and inf.task.startswith("graph"):
        return random_split(len(dataset), seed)
    if inf.protocol == "random" and inf.task == "node_classification":
        n = dataset[0].num_nodes
        return {k: _mask(v, n) for k, v in random_split(n, seed).items()}
    if callable(getattr(dataset, "get_idx_split", None)):
        # Sets with their own split (ZINC, NCMP synthetic). Where it has no validation part,
        # validation is a seeded 10% of the training graphs: model selection never sees test.
        idx = {k: torch.as_tensor(v, dtype=torch.long) for k, v in dataset.get_idx_split().items()}
        if "val" in idx:
            idx["valid"] = idx.pop("val")
        if "valid" not in idx:
            tr = idx["train"][torch.randperm(idx["train"].numel(),
                                             generator=torch.Generator().manual_seed(seed))]
            n_val = max(1, int(0.1 * tr.numel()))
            idx["valid"], idx["train"] = tr[:n_val].sort().values, tr[n_val:].sort().values
        return idx
    raise DataError(f"no split rule for {inf.name} (task {inf.task}, protocol {inf.protocol})")


def random_split(n: int, seed: int, train: float = 0.8, valid: float = 0.1) -> Dict[str, torch.Tensor]:
    """Seeded random ``train``/``valid``/``test`` indices of ``n`` items (default: 80/10/10)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_train, n_valid = int(train * n), int(valid * n)
    return {"train": perm[:n_train].sort().values,
            "valid": perm[n_train:n_train + n_valid].sort().values,
            "test": perm[n_train + n_valid:].sort().values}
