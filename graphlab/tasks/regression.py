"""The regression loss shared by graph- and node-level regression families."""
from __future__ import annotations

from typing import Annotated, Optional

import torch.nn.functional as F
from torch import Tensor

from graphlab.data.pipeline import target_std
from graphlab.schema import Choice
from graphlab.tasks.base import Task

__all__ = ["RegressionTask"]

#: ``task.loss`` of regression families: ``auto`` is L1 for the MAE metrics, else MSE
REGRESSION_LOSSES = ("auto", "l1", "mse")


class RegressionTask(Task):
    """Regression of one or more real targets per sample.

    Args:
        loss: ``auto`` (L1 when the metric is ``mae`` / ``mae_normalized``, else MSE), ``l1``
            or ``mse`` (default: ``auto``).

    With ``metric: mae_normalized`` the per-target scale (the training targets' unbiased std,
    :func:`graphlab.data.pipeline.target_std`) divides predictions and targets before the loss.
    """

    def __init__(self, metric: str, ogb_name: Optional[str] = None,
                 loss: Annotated[str, Choice(*REGRESSION_LOSSES)] = "auto"):
        super().__init__(metric, ogb_name)
        self.loss_name = loss

    def prepare(self, dataset, info, split) -> None:
        if self.metric == "mae_normalized":
            self.target_std = target_std(dataset, split["train"])  # float64, for the record
            self.target_scale = self.target_std.float().view(-1)

    def _kind(self) -> str:
        if self.loss_name == "auto":
            return "l1" if self.metric in ("mae", "mae_normalized") else "mse"
        return self.loss_name

    def _scaled(self, pred: Tensor, y: Tensor, masked: bool = False):
        # the unpadded loss compares in float32, as Lightning's 32-bit runs always did; the
        # padded one in the prediction's dtype (float64 ensembles are tested against it)
        y = y.view(pred.shape)
        y = y.to(pred.dtype) if masked else y.float()
        if self.target_scale is not None:
            s = self.target_scale.to(pred.device, pred.dtype)
            pred, y = pred / s, y / s
        return pred, y

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        pred, y = self._scaled(pred, y)
        return F.l1_loss(pred, y) if self._kind() == "l1" else F.mse_loss(pred, y)

    def per_sample_error(self, pred: Tensor, y: Tensor) -> Tensor:
        """Element-wise loss terms (padded static batches weight them by the graph mask)."""
        pred, y = self._scaled(pred, y, masked=True)
        return (pred - y).abs() if self._kind() == "l1" else (pred - y).square()
