"""Samplers and dataset views the trainer's loaders are built from."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, Sampler
from torch_geometric.data import Data

__all__ = ["EpochSeededSampler", "IndexedSubset", "SingleGraph", "set_split_masks"]


class EpochSeededSampler(Sampler):
    """Shuffles with a generator seeded by ``(seed, epoch)``: the order of epoch ``e`` does not
    depend on how many epochs ran in this process, so a resumed run sees the same batches."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this at every epoch start
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class IndexedSubset(Dataset):
    """``dataset[indices[i]]`` with ``sample_idx`` set to the dataset index (evaluation under
    DDP drops the duplicates a distributed sampler pads in by this index)."""

    def __init__(self, dataset, indices: torch.Tensor, transform=None):
        self.dataset, self.indices, self.transform = dataset, indices.view(-1).long(), transform

    def __len__(self) -> int:
        return self.indices.numel()

    def __getitem__(self, i: int) -> Data:
        idx = int(self.indices[i])
        data = self.dataset[idx]
        data.sample_idx = torch.tensor([idx])
        return self.transform(data) if self.transform is not None else data


class SingleGraph(Dataset):
    """A dataset holding one graph (full-batch node and link tasks)."""

    def __init__(self, data: Data):
        self.data = data

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> Data:
        return self.data


def set_split_masks(store, split, num_nodes: int) -> None:
    """``store.train_mask`` / ``valid_mask`` / ``test_mask`` from a split of masks or node
    indices (a node store of ``Data`` or of one ``HeteroData`` type)."""
    for key in ("train", "valid", "test"):
        mask = torch.as_tensor(split[key])
        if mask.dtype != torch.bool:
            m = torch.zeros(num_nodes, dtype=torch.bool)
            m[mask.long()] = True
            mask = m
        store[f"{key}_mask"] = mask.view(-1)
