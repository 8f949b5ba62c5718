"""Evaluation metrics: the official ``ogb`` Evaluator for OGB datasets, torchmetrics otherwise.

All functions take CPU tensors of predictions and targets for a whole split and return a float.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

import torch
from torch import Tensor
import torchmetrics.functional as tmf

os.environ.setdefault("OUTDATED_IGNORE", "1")

#: metrics where smaller is better
LOWER_IS_BETTER = {"mae", "rmse", "mse", "mae_normalized"}


def lrgb_average_precision(y_pred: Tensor, y_true: Tensor) -> float:
    """Peptides-func AP as defined by LRGB / GraphGPS: the mean over classes of per-class average
    precision, over the labelled (non-NaN) entries, skipping classes without both a positive and
    a negative label."""
    y_pred, y_true = y_pred.double(), y_true.double()
    if y_true.dim() == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    aps = []
    for c in range(y_true.size(1)):
        labelled = ~torch.isnan(y_true[:, c])
        t = y_true[labelled, c]
        if (t == 1).sum() == 0 or (t == 0).sum() == 0:
            continue
        aps.append(float(tmf.classification.binary_average_precision(y_pred[labelled, c],
                                                                     t.long())))
    if not aps:
        raise ValueError("no class has both positive and negative labels: AP is undefined")
    return sum(aps) / len(aps)


def mean_rocauc(y_pred: Tensor, y_true: Tensor) -> float:
    """Mean ROC-AUC over tasks with both classes present (OGB's convention), NaN labels ignored."""
    if y_true.dim() == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    aucs = []
    for c in range(y_true.size(1)):
        labelled = ~torch.isnan(y_true[:, c].double())
        t = y_true[labelled, c]
        if (t == 1).sum() == 0 or (t == 0).sum() == 0:
            continue
        aucs.append(float(tmf.classification.binary_auroc(y_pred[labelled, c].double(), t.long())))
    if not aucs:
        raise ValueError("no task has both positive and negative labels: ROC-AUC is undefined")
    return sum(aucs) / len(aucs)


def mae_normalized_per_target(y_pred: Tensor, y_true: Tensor, scale: Tensor) -> Tensor:
    r"""Per-target MAE divided by that target's scale: :math:`\frac{1}{N}\sum_i |\hat y_{it} -
    y_{it}| / s_t` for every target column :math:`t` (float64, shape ``[T]``).

    ``scale`` is the standard deviation of each target over the *training* nodes (computed once
    by the trainer, :func:`graphlab.train.run.target_std`), so the value is comparable across
    targets of different magnitude and across models, and does not depend on the evaluated
    split; 1.0 means "as bad as predicting the training mean would be for a Gaussian target"
    only roughly, 0 is exact."""
    y_true = y_true.double()
    y_pred = y_pred.double().view_as(y_true)
    if y_true.dim() == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    scale = torch.as_tensor(scale, dtype=torch.float64).view(-1)
    if scale.numel() != y_true.size(1):
        raise ValueError(f"scale has {scale.numel()} entries for {y_true.size(1)} targets")
    if not bool(torch.isfinite(scale).all()) or bool((scale <= 0).any()):
        raise ValueError(f"scale must be finite and positive, got {scale.tolist()}")
    return (y_pred - y_true).abs().mean(0) / scale


def ogb_eval(ogb_name: str, y_pred: Tensor, y_true: Tensor, metric: str) -> float:
    """Call the official ``ogb`` Evaluator with the input format its task family expects."""
    if ogb_name.startswith("ogbg"):
        from ogb.graphproppred import Evaluator
        ev = Evaluator(ogb_name)
        yt = y_true.view(y_true.size(0), -1)
        yp = y_pred.view(y_pred.size(0), -1)
        if ev.eval_metric == "acc":  # multiclass graph task: predicted labels
            yp = y_pred.argmax(-1, keepdim=True)
        out = ev.eval({"y_true": yt.numpy(), "y_pred": yp.numpy()})
    elif ogb_name.startswith("ogbn"):
        from ogb.nodeproppred import Evaluator
        ev = Evaluator(ogb_name)
        yp = y_pred.argmax(-1, keepdim=True) if y_pred.dim() == 2 and ev.eval_metric == "acc" \
            else y_pred
        out = ev.eval({"y_true": y_true.view(-1, 1) if ev.eval_metric == "acc" else y_true,
                       "y_pred": yp})
    else:
        raise ValueError(f"use ogb_link_eval for link datasets, got {ogb_name}")
    key = {"accuracy": "acc"}.get(metric, metric)
    return float(out[key])


def ogb_link_eval(ogb_name: str, pos: Tensor, neg: Tensor, metric: str) -> float:
    from ogb.linkproppred import Evaluator
    ev = Evaluator(ogb_name)
    if metric.startswith("hits@"):
        ev.K = int(metric.split("@")[1])
        return float(ev.eval({"y_pred_pos": pos, "y_pred_neg": neg})[metric])
    out = ev.eval({"y_pred_pos": pos, "y_pred_neg": neg.view(pos.size(0), -1)})
    return float(out[metric].mean() if hasattr(out[metric], "mean") else out[metric])


def compute(metric: str, y_pred: Tensor, y_true: Tensor, ogb_name: Optional[str] = None,
            scale: Optional[Tensor] = None) -> float:
    """Compute ``metric`` on whole-split predictions (logits / scores) and targets.
    ``mae_normalized`` needs ``scale`` (per-target training std, see
    :func:`mae_normalized_per_target`) and averages the per-target values."""
    y_pred, y_true = y_pred.detach().cpu(), y_true.detach().cpu()
    if metric == "mae_normalized":
        if scale is None:
            raise ValueError("metric 'mae_normalized' needs scale (the per-target training std)")
        return float(mae_normalized_per_target(y_pred, y_true, scale).mean())
    if ogb_name is not None and not ogb_name.startswith("ogbl"):
        return ogb_eval(ogb_name, y_pred, y_true, metric)
    if metric == "accuracy":
        if y_pred.dim() == 1 or y_pred.size(-1) == 1:  # binary logits
            return float(((y_pred.view(-1) > 0).long() == y_true.view(-1).long()).double().mean())
        return float((y_pred.argmax(-1) == y_true.view(-1)).double().mean())
    if metric == "balanced_accuracy":  # mean per-class recall
        if y_pred.dim() == 1 or y_pred.size(-1) == 1:
            y_pred = torch.stack([-y_pred.view(-1), y_pred.view(-1)], -1)
        return float(tmf.classification.multiclass_accuracy(
            y_pred.argmax(-1), y_true.view(-1).long(), num_classes=y_pred.size(-1),
            average="macro"))
    if metric in ("f1_macro", "f1_micro"):
        return float(tmf.classification.multiclass_f1_score(
            y_pred.argmax(-1), y_true.view(-1).long(), num_classes=y_pred.size(-1),
            average=metric.split("_")[1]))
    if metric == "ap":
        return lrgb_average_precision(y_pred, y_true)
    if metric == "rocauc":
        return mean_rocauc(y_pred, y_true)
    if metric == "mae":
        return float((y_pred.double().view_as(y_true) - y_true.double()).abs().mean())
    if metric == "rmse":
        return float(((y_pred.double().view_as(y_true) - y_true.double()) ** 2).mean().sqrt())
    if metric.startswith("hits@"):
        raise ValueError("hits@K needs positive/negative scores: use the link-prediction task")
    raise ValueError(f"unknown metric '{metric}'")


def per_target(metric: str, y_pred: Tensor, y_true: Tensor,
               scale: Optional[Tensor] = None) -> Dict[str, float]:
    """Per-target parts of ``metric`` as ``{'t0': ..., 't1': ...}`` (empty where the metric has
    none; only ``mae_normalized`` so far)."""
    if metric != "mae_normalized":
        return {}
    v = mae_normalized_per_target(y_pred.detach().cpu(), y_true.detach().cpu(), scale)
    return {f"t{i}": float(x) for i, x in enumerate(v)}


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def summarize(values: Dict[str, list]) -> Dict[str, Dict[str, float]]:
    """Mean and unbiased std (``torch.std``, as the OGB leaderboard asks) per metric."""
    out = {}
    for k, v in values.items():
        t = torch.tensor(v, dtype=torch.float64)
        out[k] = {"mean": float(t.mean()), "std": float(t.std()) if t.numel() > 1 else 0.0,
                  "n": int(t.numel())}
    return out
