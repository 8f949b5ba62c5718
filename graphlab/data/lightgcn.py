"""Recommendation sets in the LightGCN text formats (LastFM, Gowalla, Yelp2018).

PyG has no loader for these files (its ``AmazonBook`` class reads the Gowalla-style format but
downloads Amazon-Book only), so :class:`LightGCNDataset` reads both layouts of the LightGCN
PyTorch release (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020, https://arxiv.org/abs/2002.02126; data from
https://github.com/gusye1234/LightGCN-PyTorch):

* ``gowalla`` / ``yelp2018`` / ``amazon-book``: ``train.txt`` and ``test.txt`` with one line
  ``user item item ...`` per user, 0-based ids, plus ``user_list.txt`` / ``item_list.txt``
  (``org_id remap_id``, with a header line).
* ``lastfm``: ``data1.txt`` (train) and ``test1.txt`` with tab-separated ``user item weight``
  rows, 1-based ids (some values in float notation, e.g. ``3.2466e+05``), and
  ``trustnetwork.txt`` (user-user trust pairs, 1-based).

The result mirrors PyG's ``AmazonBook``: one :class:`~torch_geometric.data.HeteroData` with
``data['user'].num_nodes``, ``data['item'].num_nodes``, training interactions in
``data['user', 'rates', 'item'].edge_index`` (and the reverse relation ``rated_by``), test
interactions in ``data['user', 'rates', 'item'].edge_label_index``, and for LastFM the social
graph in ``data['user', 'trusts', 'user'].edge_index``. All ids are 0-based.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import HeteroData, InMemoryDataset, download_url

from graphlab.errors import DataError

URL = "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data"
FILES = {
    "lastfm": ["data1.txt", "test1.txt", "trustnetwork.txt"],
    "gowalla": ["user_list.txt", "item_list.txt", "train.txt", "test.txt"],
    "yelp2018": ["user_list.txt", "item_list.txt", "train.txt", "test.txt"],
    "amazon-book": ["user_list.txt", "item_list.txt", "train.txt", "test.txt"],
}


def _int_ids(values: np.ndarray, path: str) -> np.ndarray:
    """Integer ids from numbers that may be written in float notation; non-integers are errors."""
    as_int = np.rint(values).astype(np.int64)
    if not np.array_equal(as_int, values):
        raise DataError(f"{path}: non-integer id {values[as_int != values][0]!r}; the file is corrupt "
                        f"(delete it and load again)")
    return as_int


def read_pairs(path: str, one_based: bool) -> np.ndarray:
    """``[2, E]`` (user, item) ids from tab/space-separated ``user item [weight]`` rows."""
    import pandas as pd
    df = pd.read_csv(path, sep=r"\s+", header=None, usecols=[0, 1], dtype=np.float64,
                     engine="c")
    ids = _int_ids(df.to_numpy().T, path)
    return ids - 1 if one_based else ids


def read_adjacency_lists(path: str) -> np.ndarray:
    """``[2, E]`` (user, item) ids from ``user item item ...`` lines (0-based)."""
    rows: List[int] = []
    cols: List[int] = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                ids = [int(p) for p in parts]
            except ValueError:
                raise DataError(f"{path}, line {lineno}: expected integer ids, got {line.strip()[:60]!r}; "
                                f"the file is corrupt (delete it and load again)") from None
            rows.extend([ids[0]] * (len(ids) - 1))
            cols.extend(ids[1:])
    return np.array([rows, cols], dtype=np.int64).reshape(2, -1)


def _count_list(path: str) -> int:
    with open(path) as f:
        return sum(1 for line in f if line.strip()) - 1  # header line "org_id remap_id"


class LightGCNDataset(InMemoryDataset):
    r"""User-item interaction sets in the LightGCN release format.

    Args:
        root: dataset folder, with the text files in ``root/raw/``.
        name: ``'lastfm'``, ``'gowalla'``, ``'yelp2018'`` or ``'amazon-book'``.
        transform, pre_transform: as in PyG.
    """

    def __init__(self, root: str, name: str, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None, force_reload: bool = False) -> None:
        name = name.lower()
        if name not in FILES:
            raise ValueError(f"name must be one of {sorted(FILES)}, got {name!r}")
        self.name = name
        super().__init__(root, transform, pre_transform, force_reload=force_reload)
        self.load(self.processed_paths[0], data_cls=HeteroData)

    @property
    def raw_file_names(self) -> List[str]:
        return FILES[self.name]

    @property
    def processed_file_names(self) -> str:
        return "data.pt"

    def download(self) -> None:
        for fn in self.raw_file_names:
            download_url(f"{URL}/{self.name}/{fn}", self.raw_dir)

    def _read(self) -> Tuple[np.ndarray, np.ndarray, int, int, Optional[np.ndarray]]:
        p = dict(zip(self.raw_file_names, self.raw_paths))
        if self.name == "lastfm":
            train = read_pairs(p["data1.txt"], one_based=True)
            test = read_pairs(p["test1.txt"], one_based=True)
            trust = read_pairs(p["trustnetwork.txt"], one_based=True)
            num_users = int(max(train[0].max(), test[0].max(), trust.max())) + 1
            num_items = int(max(train[1].max(), test[1].max())) + 1
            return train, test, num_users, num_items, trust
        train = read_adjacency_lists(p["train.txt"])
        test = read_adjacency_lists(p["test.txt"])
        num_users = max(_count_list(p["user_list.txt"]), int(max(train[0].max(), test[0].max())) + 1)
        num_items = max(_count_list(p["item_list.txt"]), int(max(train[1].max(), test[1].max())) + 1)
        return train, test, num_users, num_items, None

    def process(self) -> None:
        train, test, num_users, num_items, trust = self._read()
        if min(train.min(), test.min()) < 0:
            raise DataError(f"{self.raw_dir}: negative ids after conversion; are 1-based files in a "
                            f"0-based layout (or the reverse)?")
        data = HeteroData()
        data["user"].num_nodes = num_users
        data["item"].num_nodes = num_items
        train_t = torch.from_numpy(train)
        data["user", "rates", "item"].edge_index = train_t
        data["user", "rates", "item"].edge_label_index = torch.from_numpy(test)
        data["item", "rated_by", "user"].edge_index = train_t.flip(0)
        if trust is not None:
            data["user", "trusts", "user"].edge_index = torch.from_numpy(trust)
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        self.save([data], self.processed_paths[0])

    def __repr__(self) -> str:
        return f"LightGCN-{self.name}()"
