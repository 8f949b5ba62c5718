"""What is fed: a ``LightningDataModule`` over a graphlab dataset and its split.

Graph-level tasks iterate mini-batches of graphs; node-level and link tasks feed one whole
graph per step. Every sample carries ``sample_idx`` so that evaluation under DDP can drop the
duplicates that a distributed sampler pads in.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import lightning as L
import torch
from torch.utils.data import Dataset, Sampler
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from graphlab.data.packed import PackedGraphs, PackedLoader, describe_choice, packing_problem

GRAPH_TASKS = ("graph_classification", "graph_multilabel", "graph_regression")
NODE_TASKS = ("node_classification", "node_regression")
LINK_TASKS = ("link_prediction",)
REC_TASKS = ("recommendation",)
SUPPORTED_TASKS = GRAPH_TASKS + NODE_TASKS + LINK_TASKS + REC_TASKS


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
    """``dataset[indices[i]]`` with ``sample_idx`` set to the dataset index."""

    def __init__(self, dataset, indices: torch.Tensor, transform=None):
        self.dataset, self.indices, self.transform = dataset, indices.view(-1).long(), transform

    def __len__(self) -> int:
        return self.indices.numel()

    def __getitem__(self, i: int) -> Data:
        idx = int(self.indices[i])
        data = self.dataset[idx]
        data.sample_idx = torch.tensor([idx])
        return self.transform(data) if self.transform is not None else data


class _Repeat(Dataset):
    """A dataset holding one graph (full-batch node / link tasks)."""

    def __init__(self, data: Data):
        self.data = data

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> Data:
        return self.data


class GraphDataModule(L.LightningDataModule):
    def __init__(self, dataset, split: Dict, task: str, batch_size: int = 32,
                 eval_batch_size: Optional[int] = None, num_workers: int = 0, seed: int = 0,
                 link_data: Optional[Dict[str, Data]] = None, loader: str = "auto",
                 packed_fraction: float = 0.25, device: Optional[torch.device] = None):
        super().__init__()
        if task not in SUPPORTED_TASKS:
            raise ValueError(f"task '{task}' has no trainer yet; supported: {', '.join(SUPPORTED_TASKS)}")
        self.dataset, self.split, self.task = dataset, split, task
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.eval_batch_size = eval_batch_size or batch_size
        self.link_data = link_data
        # 'auto' packs graph datasets that fit in ``packed_fraction`` of the device's memory
        # (graphlab.data.packed); 'pyg' keeps PyG's DataLoader; 'packed' insists.
        self.loader, self.packed_fraction = loader, packed_fraction
        self._packed: Dict[str, PackedGraphs] = {}
        self._pack_on: Optional[torch.device] = None
        self._pack_decided = False
        # where to pack when no Trainer is attached (the seed-ensemble runner drives the loaders)
        self._device = torch.device(device) if device is not None else torch.device("cpu")

    # -- graph tasks -------------------------------------------------------------------------
    def _subset(self, key: str) -> IndexedSubset:
        return IndexedSubset(self.dataset, torch.as_tensor(self.split[key]))

    def _pack_device(self) -> Optional[torch.device]:
        """The device that batches are packed on, or ``None`` for PyG's loader (decided once,
        when the first loader is asked for; the choice is printed)."""
        if self._pack_decided:
            return self._pack_on
        self._pack_decided = True
        if self.loader == "pyg" or not self.batched:
            return None
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else self._device
        name = getattr(self.dataset, "name", type(self.dataset).__name__)
        if self.num_workers > 0 or (trainer is not None and trainer.world_size > 1):
            if self.loader == "packed":
                raise ValueError("'data.loader': packed batches are gathered in the main process "
                                 "on one device; set 'data.num_workers: 0' and run one process")
            return None
        if self.loader == "packed":
            problem = packing_problem(self.dataset)
            if problem is not None:
                raise ValueError(f"'data.loader': {name} cannot be packed: {problem}")
            ok, msg = True, f"packed loader (data.loader: packed): {name} on {device}"
        else:
            ok, msg = describe_choice(self.dataset, device, self.packed_fraction, name=name)
        from lightning.pytorch.utilities import rank_zero_info
        rank_zero_info(msg)
        self._pack_on = device if ok else None
        return self._pack_on

    def _graph_loader(self, key: str, train: bool):
        device = self._pack_device()
        if device is None:
            return self._loader(self._subset(key), train)
        if key not in self._packed:
            self._packed[key] = PackedGraphs(self.dataset, torch.as_tensor(self.split[key]),
                                             device=device)
        return PackedLoader(self._packed[key], self.batch_size if train else self.eval_batch_size,
                            shuffle=train, seed=self.seed)

    def _loader(self, ds, train: bool) -> DataLoader:
        kw = dict(num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        if train:
            return DataLoader(ds, batch_size=self.batch_size,
                              sampler=EpochSeededSampler(len(ds), self.seed), **kw)
        return DataLoader(ds, batch_size=self.eval_batch_size, shuffle=False, **kw)

    @property
    def batched(self) -> bool:
        """Mini-batches of graphs: graph tasks, and inductive node tasks (many graphs)."""
        return self.task in GRAPH_TASKS or (self.task in NODE_TASKS and len(self.dataset) > 1)

    def train_dataloader(self):
        if self.task in REC_TASKS:  # mini-batches of training (user, item) pair indices
            n = self.split["train"].size(1)
            return torch.utils.data.DataLoader(range(n), batch_size=self.batch_size,
                                               sampler=EpochSeededSampler(n, self.seed))
        if self.batched:
            return self._graph_loader("train", train=True)
        if self.task in LINK_TASKS:
            return DataLoader(_Repeat(self.link_data["train"]), batch_size=1)
        return DataLoader(_Repeat(self.full_graph()), batch_size=1)

    def val_dataloader(self) -> List[DataLoader]:
        if self.task in REC_TASKS:  # one step per split: the task ranks all items itself
            return [torch.utils.data.DataLoader([0], batch_size=1),
                    torch.utils.data.DataLoader([0], batch_size=1)]
        if self.batched:
            return [self._graph_loader("valid", False), self._graph_loader("test", False)]
        if self.task in LINK_TASKS:
            return [DataLoader(_Repeat(self.link_data["valid"]), batch_size=1),
                    DataLoader(_Repeat(self.link_data["test"]), batch_size=1)]
        g = DataLoader(_Repeat(self.full_graph()), batch_size=1)
        return [g, g]

    def full_graph(self) -> Data:
        if not hasattr(self, "_full"):
            data = self.dataset[0]
            for key in ("train", "valid", "test"):
                mask = torch.as_tensor(self.split[key])
                if mask.dtype != torch.bool:
                    m = torch.zeros(data.num_nodes, dtype=torch.bool)
                    m[mask.long()] = True
                    mask = m
                data[f"{key}_mask"] = mask.view(-1)
            data.sample_idx = torch.arange(data.num_nodes)
            self._full = data
        return self._full
