"""Node classification on heterogeneous graphs (PyG ``HeteroData``): labels on one target node
type, every node and edge type as input (MAGNN DBLP / IMDB, HGB ACM / DBLP / IMDB, ogbn-mag).

The model receives the whole ``HeteroData`` (per-type inputs: ``data.x_dict``,
``data.edge_index_dict``; a type without features has only ``num_nodes``) and returns
``[num_target_nodes, num_classes]`` logits for the target type. It is built with the injected
arguments ``in_channels`` (a ``{node type: feature width}`` dict, 0 for featureless types),
``out_channels``, ``metadata`` (``(node types, edge types)``, as ``HeteroData.metadata()``)
and ``target`` (the labelled node type). HGB IMDB's labels are multi-label (several genres per
movie): binary cross-entropy and F1 over labels; the others are single-label.
"""
from __future__ import annotations

from typing import Annotated, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlab.data.loaders import set_split_masks
from graphlab.registry import register_task
from graphlab.schema import Range
from graphlab.tasks.base import Task

__all__ = ["HeteroNodeClassification"]


@register_task("hetero_node_classification")
class HeteroNodeClassification(Task):
    """Args:
        target: the labelled node type (default: the dataset's).
        threshold: multi-label decision threshold on the logits (default: ``0.0``, i.e.
            probability 0.5).
    """

    name = "hetero_node_classification"
    level = "node"

    def __init__(self, metric: str, ogb_name: Optional[str] = None,
                 target: Optional[str] = None,
                 threshold: Annotated[float, Range()] = 0.0):
        super().__init__(metric, ogb_name)
        self.target, self.threshold = target, threshold
        self.multilabel = False

    def prepare(self, dataset, info, split) -> None:
        data = dataset[0]
        self.target = self.target or info.target
        if self.target not in data.node_types:
            raise ValueError(f"target node type {self.target!r} is not one of "
                             f"{', '.join(data.node_types)}")
        y = data[self.target].y
        self.multilabel = bool(info.multilabel or (y.dim() == 2 and y.size(1) > 1))
        self.num_classes = int(y.size(1)) if self.multilabel else int(y.max()) + 1

    def batched(self, dataset) -> bool:
        return False

    def dims(self, dataset, info, split):
        data = dataset[0]
        in_channels = {t: int(data[t].x.size(-1)) if "x" in data[t] else 0
                       for t in data.node_types}
        return {"in_channels": in_channels, "out_channels": self.num_classes,
                "metadata": data.metadata(), "target": self.target, "edge_dim": None,
                "node_encoder": "linear", "edge_encoder": "linear", "task_level": "node"}

    def loaders(self, dm):
        data = dm.dataset[0]
        store = data[self.target]
        set_split_masks(store, dm.split, store.num_nodes)
        g = dm.whole_graph_loader(data)
        return g, [g, g]

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(pred, y.view(pred.shape).float())
        return F.cross_entropy(pred, y.view(-1).long())

    def _rows(self, batch, split: str) -> Tensor:
        return batch[self.target][f"{split}_mask"]

    def training_loss(self, pred: Tensor, batch) -> Tensor:
        m = self._rows(batch, "train")
        return self.loss(pred[m], batch[self.target].y[m])

    def train_samples(self, batch) -> int:
        return int(self._rows(batch, "train").sum())

    def eval_outputs(self, pred: Tensor, batch, split: str):
        m = self._rows(batch, split)
        idx = torch.arange(m.numel(), device=m.device)[m]
        return idx, pred[m], batch[self.target].y[m]

    def score(self, pred: Tensor, y: Tensor) -> float:
        if not self.multilabel:
            return super().score(pred, y)
        import torchmetrics.functional as tmf
        if self.metric not in ("f1_macro", "f1_micro"):
            raise ValueError(f"multi-label targets support f1_macro / f1_micro, not "
                             f"{self.metric!r}")
        return float(tmf.classification.multilabel_f1_score(
            (pred > self.threshold).long(), y.long(), num_labels=y.size(1),
            average=self.metric.split("_")[1]))
