"""What is fed: a ``LightningDataModule`` over a dataset, its split and its task family.

The task decides which loaders a run gets (:meth:`graphlab.tasks.Task.loaders`); this module
supplies the building blocks: mini-batches of graphs (PyG's ``DataLoader``, or batches
gathered on the device from packed tensors, :mod:`graphlab.data.packed`), one whole graph per
step, and the full graph with its split masks. Every sample carries ``sample_idx`` so that
evaluation under DDP can drop the duplicates a distributed sampler pads in.
"""
from __future__ import annotations

from typing import Dict, Optional

import lightning as L
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from graphlab.data.loaders import (EpochSeededSampler, IndexedSubset, SingleGraph,
                                   set_split_masks)
from graphlab.data.packed import PackedGraphs, PackedLoader, describe_choice, packing_problem


class GraphDataModule(L.LightningDataModule):
    """Loaders for one run.

    Args:
        dataset, split: the dataset and its split (``{'train', 'valid', 'test'}``).
        task: the :class:`graphlab.tasks.Task` whose :meth:`~graphlab.tasks.Task.loaders` are
            used.
        batch_size, eval_batch_size: training / evaluation batch sizes (evaluation default:
            ``batch_size``).
        num_workers: loader worker processes (PyG's loader only).
        seed: seeds the training order, per epoch (:class:`EpochSeededSampler`).
        loader: ``auto`` packs graph datasets that fit in ``packed_fraction`` of the device's
            memory; ``pyg`` keeps PyG's ``DataLoader``; ``packed`` insists.
        device: where to pack when no Trainer is attached (the seed ensemble drives the
            loaders itself).
    """

    def __init__(self, dataset, split: Dict, task, batch_size: int = 32,
                 eval_batch_size: Optional[int] = None, num_workers: int = 0, seed: int = 0,
                 loader: str = "auto", packed_fraction: float = 0.25,
                 device: Optional[torch.device] = None):
        super().__init__()
        self.dataset, self.split, self.task = dataset, split, task
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.eval_batch_size = eval_batch_size or batch_size
        self.loader, self.packed_fraction = loader, packed_fraction
        self._packed: Dict[str, PackedGraphs] = {}
        self._pack_on: Optional[torch.device] = None
        self._pack_decided = False
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        self._loaders = None

    # -- what the task asks for ------------------------------------------------------------
    def _pack_device(self) -> Optional[torch.device]:
        """The device that batches are packed on, or ``None`` for PyG's loader (decided once,
        when the first loader is asked for; the choice is printed)."""
        if self._pack_decided:
            return self._pack_on
        self._pack_decided = True
        if self.loader == "pyg":
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

    def graph_loader(self, key: str, train: bool):
        """Mini-batches of the graphs of split ``key`` (shuffled per epoch when ``train``)."""
        device = self._pack_device()
        if device is None:
            ds = IndexedSubset(self.dataset, torch.as_tensor(self.split[key]))
            kw = dict(num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
            if train:
                return DataLoader(ds, batch_size=self.batch_size,
                                  sampler=EpochSeededSampler(len(ds), self.seed), **kw)
            return DataLoader(ds, batch_size=self.eval_batch_size, shuffle=False, **kw)
        if key not in self._packed:
            self._packed[key] = PackedGraphs(self.dataset, torch.as_tensor(self.split[key]),
                                             device=device)
        return PackedLoader(self._packed[key], self.batch_size if train else self.eval_batch_size,
                            shuffle=train, seed=self.seed)

    @staticmethod
    def whole_graph_loader(data: Data) -> DataLoader:
        """One step per epoch over the whole graph ``data``."""
        return DataLoader(SingleGraph(data), batch_size=1)

    def full_graph(self) -> Data:
        """The dataset's one graph with ``train_mask`` / ``valid_mask`` / ``test_mask`` and
        ``sample_idx`` (transductive node tasks)."""
        if not hasattr(self, "_full"):
            data = self.dataset[0]
            set_split_masks(data, self.split, data.num_nodes)
            data.sample_idx = torch.arange(data.num_nodes)
            self._full = data
        return self._full

    # -- Lightning's hooks -------------------------------------------------------------------
    def _task_loaders(self):
        if self._loaders is None:
            self._loaders = self.task.loaders(self)
        return self._loaders

    def train_dataloader(self):
        return self._task_loaders()[0]

    def val_dataloader(self):
        return self._task_loaders()[1]
