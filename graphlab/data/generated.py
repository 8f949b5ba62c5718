"""Base class of graphlab's generated datasets (built from a seed, nothing to download)."""
from __future__ import annotations

from typing import Any

from torch_geometric.data import InMemoryDataset


class GeneratedDataset(InMemoryDataset):
    """An :class:`~torch_geometric.data.InMemoryDataset` generated from a seed: no raw files and
    one processed file (``data.pt``) per parameter set; subclasses set their parameters before
    calling ``super().__init__`` and implement :meth:`process`."""

    def __init__(self, root: str, transform=None, pre_transform=None, **kwargs: Any):
        super().__init__(root, transform, pre_transform, **kwargs)
        self.load(self.processed_paths[0])

    @property
    def raw_file_names(self):
        return []

    @property
    def processed_file_names(self):
        return ["data.pt"]

    def download(self) -> None:  # generated, nothing to fetch
        pass
