"""SNAP directed graphs: a robust wiki-Vote reader and a loader for plain SNAP edge lists.

* PyG's ``SNAPDataset`` skips exactly four header lines of ``wiki-Vote.txt``. Copies with a
  three-line header (the mirror's) then lose their first edge (30 -> 1412).
  :class:`SNAPDataset` here reads the same files with the same node relabelling as PyG, but
  skips ``#`` comment lines instead of a fixed count, so all 103,689 edges load.
* PyG has no loader for ``p2p-Gnutella08`` (and the other ``p2p-*`` / ``email-*`` plain edge
  lists); :class:`SNAPEdgeListDataset` reads a SNAP ``FromNodeId ToNodeId`` text file with or
  without its ``#`` header and downloads it from https://snap.stanford.edu/data.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset, download_url, extract_gz
from torch_geometric.datasets import SNAPDataset as _PyGSNAPDataset
from torch_geometric.utils import coalesce

from graphlab.errors import DataError

SNAP_URL = "https://snap.stanford.edu/data"


def read_edge_list(path: str) -> torch.Tensor:
    """``[2, E]`` edges of a SNAP text edge list (``#`` comments, tabs or spaces, LF or CRLF)."""
    import pandas as pd
    try:
        df = pd.read_csv(path, sep=r"\s+", comment="#", header=None, dtype=np.int64, engine="c")
    except (ValueError, pd.errors.ParserError) as e:
        raise DataError(f"{path} is not a SNAP edge list ({e}); delete it and load again") from e
    if df.shape[1] != 2:
        raise DataError(f"{path}: expected 2 columns (FromNodeId ToNodeId), found {df.shape[1]}")
    return torch.from_numpy(df.to_numpy().T.copy())


class SNAPDataset(_PyGSNAPDataset):
    """PyG's ``SNAPDataset`` with a header-agnostic reader for the ``wiki-*`` graphs."""

    def process(self) -> None:
        if not self.name.startswith("wiki-"):
            return super().process()
        files = [os.path.join(self.raw_dir, f) for f in sorted(os.listdir(self.raw_dir))
                 if not f.startswith(".")]
        if not files:
            raise DataError(f"no raw file in {self.raw_dir}")
        edge_index = read_edge_list(files[0])
        # Same relabelling as PyG's read_wiki: node ids -> 0..n-1 in increasing id order.
        idx, edge_index = torch.unique(edge_index.flatten(), return_inverse=True)
        edge_index = coalesce(edge_index.view(2, -1), num_nodes=idx.numel())
        data_list = [Data(edge_index=edge_index, num_nodes=idx.numel())]
        if self.pre_transform is not None:
            data_list = [self.pre_transform(d) for d in data_list]
        self.save(data_list, self.processed_paths[0])


class SNAPEdgeListDataset(InMemoryDataset):
    """A directed SNAP graph stored as one ``FromNodeId ToNodeId`` edge list.

    Node ids are kept as they are (SNAP's ``p2p-Gnutella*`` ids are already ``0..n-1``);
    duplicate edges are merged.

    Args:
        root: dataset folder (``root/raw/<name>.txt``).
        name: SNAP file stem, e.g. ``'p2p-Gnutella08'``.
        transform, pre_transform: as in PyG.
    """

    def __init__(self, root: str, name: str, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None, force_reload: bool = False) -> None:
        self.name = name
        super().__init__(root, transform, pre_transform, force_reload=force_reload)
        self.load(self.processed_paths[0])

    @property
    def raw_file_names(self) -> List[str]:
        return [f"{self.name}.txt"]

    @property
    def processed_file_names(self) -> str:
        return "data.pt"

    def download(self) -> None:
        path = download_url(f"{SNAP_URL}/{self.name}.txt.gz", self.raw_dir)
        extract_gz(path, self.raw_dir)
        os.unlink(path)

    def process(self) -> None:
        edge_index = read_edge_list(self.raw_paths[0])
        num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
        data = Data(edge_index=coalesce(edge_index, num_nodes=num_nodes), num_nodes=num_nodes)
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        self.save([data], self.processed_paths[0])

    def __repr__(self) -> str:
        return f"SNAP-{self.name}()"
