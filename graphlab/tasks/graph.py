"""Graph-level task families: one prediction per graph, mini-batches of graphs."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlab.registry import register_task
from graphlab.tasks.base import Task
from graphlab.tasks.regression import RegressionTask

__all__ = ["GraphClassification", "GraphMultilabel", "GraphRegression"]


def _graph_weights(graph_mask: Tensor, like: Tensor) -> Tensor:
    """The real-graph mask ``[B]`` as weights broadcastable against ``like`` ``[B, ...]``."""
    return graph_mask.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


class _GraphTask(Task):
    level = "graph"
    supports_ensemble = True
    supports_padding = True

    def eval_outputs(self, pred: Tensor, batch, split: str):
        return batch.sample_idx, pred, batch.y.view(pred.size(0), -1)


@register_task("graph_classification")
class GraphClassification(_GraphTask):
    """One class per graph; cross-entropy over ``[num_graphs, num_classes]`` logits."""

    name = "graph_classification"

    def out_channels(self, dataset, data0) -> Optional[int]:
        return int(dataset.num_classes)

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(pred, y.view(-1).long())

    def masked_loss(self, pred: Tensor, y: Tensor, graph_mask: Tensor) -> Tensor:
        w = graph_mask.to(pred.dtype)
        per = F.cross_entropy(pred, y.view(-1).long().clamp_min(0), reduction="none")
        return (per * w).sum() / w.sum().clamp_min(1)

    def eval_outputs(self, pred: Tensor, batch, split: str):
        return batch.sample_idx, pred, batch.y.view(-1)


@register_task("graph_multilabel")
class GraphMultilabel(_GraphTask):
    """Several binary labels per graph (NaN: unlabelled, left out of loss and metric)."""

    name = "graph_multilabel"

    def out_channels(self, dataset, data0) -> Optional[int]:
        return int(getattr(dataset, "num_tasks", 0) or data0.y.view(1, -1).size(1))

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        y = y.view(pred.shape).float()
        labelled = ~torch.isnan(y)
        return F.binary_cross_entropy_with_logits(pred[labelled], y[labelled])

    def masked_loss(self, pred: Tensor, y: Tensor, graph_mask: Tensor) -> Tensor:
        y = y.view(pred.shape).to(pred.dtype)
        labelled = ~torch.isnan(y)
        wt = _graph_weights(graph_mask, pred) * labelled.to(pred.dtype)
        per = F.binary_cross_entropy_with_logits(pred, torch.where(labelled, y, 0.0),
                                                 reduction="none")
        return (per * wt).sum() / wt.sum().clamp_min(1)


@register_task("graph_regression")
class GraphRegression(RegressionTask, _GraphTask):
    """One or more real targets per graph (see :class:`RegressionTask` for ``task.loss``)."""

    name = "graph_regression"

    def out_channels(self, dataset, data0) -> Optional[int]:
        return int(data0.y.view(1, -1).size(1)) if data0 is not None and data0.y is not None \
            else 1

    def masked_loss(self, pred: Tensor, y: Tensor, graph_mask: Tensor) -> Tensor:
        per = self.per_sample_error(pred, y)
        wt = _graph_weights(graph_mask, pred).expand_as(per)
        return (per * wt).sum() / wt.sum().clamp_min(1)
