"""Node-level task families: one prediction per node, on one graph (transductive, split masks)
or on many (inductive, split by graph)."""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from graphlab.registry import register_task
from graphlab.tasks.base import Task, node_ids, split_mask
from graphlab.tasks.regression import RegressionTask

__all__ = ["NodeClassification", "NodeRegression"]


class _NodeTask(Task):
    level = "node"
    supports_ensemble = True

    def train_rows(self, batch) -> Tensor:
        return split_mask(batch, "train")

    def eval_outputs(self, pred: Tensor, batch, split: str):
        m = split_mask(batch, split)
        return node_ids(batch)[m], pred[m], batch.y[m]


@register_task("node_classification")
class NodeClassification(_NodeTask):
    """One class per node; cross-entropy over the split's nodes."""

    name = "node_classification"

    def out_channels(self, dataset, data0) -> Optional[int]:
        return int(dataset.num_classes)

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(pred, y.view(-1).long())


@register_task("node_regression")
class NodeRegression(RegressionTask, _NodeTask):
    """Real targets ``[num_nodes, T]`` per graph (see :class:`RegressionTask`)."""

    name = "node_regression"

    def out_channels(self, dataset, data0) -> Optional[int]:
        return int(data0.y.view(data0.y.size(0), -1).size(1)) if data0 is not None else 1
