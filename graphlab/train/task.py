"""How a model is trained and evaluated: one ``LightningModule`` for every supported task.

The module owns the loss for its task family, gathers whole-split predictions at the end of
every validation epoch (the validation and test splits are both evaluated every epoch, so the
test metric of the best-validation epoch can be reported, as the OGB protocol asks), selects the
best epoch on validation only, and keeps that epoch's test predictions. The history, the best
epoch and the RNG states travel in every checkpoint, so a resumed run continues exactly.
"""
from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Optional

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.train import metrics as M
from graphlab.train.config import MONITORS
from graphlab.train.datamodule import GRAPH_TASKS, LINK_TASKS, NODE_TASKS

SPLITS = ("valid", "test")


def _rng_state() -> Dict[str, Any]:
    """RNG streams as tensors and plain Python values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                      float(gauss)],
            "python": random.getstate()}


def _set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])


class GraphTask(L.LightningModule):
    """Wraps a graphlab model for one task family.

    Args:
        model: a module following the model contract (``forward(data) -> Tensor``).
        task: ``node_classification``, ``graph_classification``, ``graph_multilabel``,
            ``graph_regression`` or ``link_prediction``.
        metric: the model-selection metric (``accuracy``, ``rocauc``, ``ap``, ``mae`` ...).
        ogb_name: when set, metrics come from the official ``ogb`` Evaluator.
        optim, scheduler: the validated config sections.
        loss: ``auto`` (task default), ``l1`` or ``mse`` for regression.
        target_scale: per-target scale ``[T]`` (training std) for ``mae_normalized``; the
            regression loss is then computed on ``(pred - y) / target_scale`` (with ``auto``
            and ``mae_normalized`` it is the metric itself, an L1 loss).
        select_on: ``metric`` (default): the best epoch is the one with the best validation
            metric; ``loss``: the lowest validation loss (the training loss function on the
            validation split, ``valid_loss`` in the history), as some reference code reports.
            Either way the choice reads the validation split only.

    Node- and graph-level tasks also record ``valid_loss`` / ``test_loss`` every epoch. The
    ``plateau`` scheduler watches ``scheduler.monitor`` (``metric`` or ``loss``) and, with
    ``warmup_epochs: W``, first ramps the rate linearly: epoch ``e < W`` trains at
    ``lr * (e + 1) / W`` (a decay the plateau rule made during the ramp is overwritten, as in
    reference code that sets the rate by hand before each epoch).
    """

    def __init__(self, model: nn.Module, task: str, metric: str, ogb_name: Optional[str] = None,
                 optim: Optional[dict] = None, scheduler: Optional[dict] = None,
                 loss: str = "auto", max_epochs: int = 1, rec_data: Optional[dict] = None,
                 target_scale: Optional[Tensor] = None, select_on: str = "metric"):
        super().__init__()
        if select_on not in MONITORS:
            raise ValueError(f"select_on must be one of {', '.join(MONITORS)}, got "
                             f"{select_on!r}")
        self.select_on = select_on
        self.target_scale = None if target_scale is None else \
            torch.as_tensor(target_scale, dtype=torch.float32).view(-1)
        self.rec = rec_data  # recommendation: graph, train/valid/test pairs, user/item counts
        self.model, self.task, self.metric, self.ogb_name = model, task, metric, ogb_name
        self.optim_cfg = dict(optim or {"name": "adam", "lr": 1e-3})
        self.sched_cfg = dict(scheduler or {"name": "none"})
        self.loss_name, self.max_epochs = loss, max_epochs
        self.higher_is_better = M.higher_is_better(metric)
        self.history: List[Dict[str, float]] = []
        self.best: Optional[Dict[str, Any]] = None
        self.best_test_pred: Optional[Dict[str, Tensor]] = None
        self._outs: Dict[int, List] = {}
        self.train_samples = 0
        self.train_time = 0.0
        self._epoch_loss = [0.0, 0]  # (sum of loss x samples, samples) of the current epoch
        self._rec_scores: Dict[str, Dict[str, float]] = {}

    def on_train_epoch_start(self) -> None:
        s = self.sched_cfg
        warm = int(s.get("warmup_epochs", 0)) if s.get("name") == "plateau" else 0
        trainer = getattr(self, "_trainer", None)  # None when driven without a Trainer
        if warm and trainer is not None and trainer.optimizers and self.current_epoch < warm:
            lr = float(self.optim_cfg.get("lr", 1e-3)) * (self.current_epoch + 1) / warm
            for opt in trainer.optimizers:
                for g in opt.param_groups:
                    g["lr"] = lr
        self._epoch_loss = [0.0, 0]
        self._pending_loss = None
        if getattr(self, "_loss_acc", None) is not None:
            self._loss_acc.zero_()

    def on_train_epoch_end(self) -> None:
        self._flush_loss()

    # -- the running training loss, without a host sync per step on CUDA -------------------
    # Reading the loss back after every forward (float(loss), `if not isfinite(loss)`) makes the
    # CPU wait for the GPU before it can queue the backward pass, so a launch-bound model leaves
    # the GPU idle for that time. On CUDA the loss is summed on the device and a copy of it goes
    # to pinned host memory asynchronously; it is checked one step later (or at epoch end), when
    # the copy is long done, so a non-finite loss still stops training at the step it appeared.
    def _raise_non_finite(self, value: float, epoch: int, step: int) -> None:
        raise FloatingPointError(f"non-finite training loss {value} at epoch {epoch}, step "
                                 f"{step}: check the inputs for NaN features or lower the "
                                 "learning rate")

    def _accumulate_loss(self, loss: Tensor, n: int, batch_idx: int) -> None:
        if loss.device.type != "cuda":
            v = float(loss)
            if not math.isfinite(v):
                self._raise_non_finite(v, self.current_epoch, batch_idx)
            self._epoch_loss[0] += v * n
            return
        self._check_pending_loss()
        acc = getattr(self, "_loss_acc", None)
        if acc is None or acc.device != loss.device:
            self._loss_acc = acc = torch.zeros((), dtype=torch.float64, device=loss.device)
            self._loss_host = torch.empty((), dtype=torch.float32, pin_memory=True)
        acc.add_(loss.double() * n)
        self._loss_host.copy_(loss.float(), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending_loss = (event, self.current_epoch, batch_idx)

    def _check_pending_loss(self) -> None:
        pending = getattr(self, "_pending_loss", None)
        if pending is None:
            return
        self._pending_loss = None
        event, epoch, step = pending
        event.synchronize()
        v = float(self._loss_host)
        if not math.isfinite(v):
            self._raise_non_finite(v, epoch, step)

    def _flush_loss(self) -> None:
        """Check the last step's loss and move the device sum into ``_epoch_loss``."""
        self._check_pending_loss()
        acc = getattr(self, "_loss_acc", None)
        if acc is not None:
            self._epoch_loss[0] += float(acc)
            acc.zero_()

    # -- loss --------------------------------------------------------------------------------
    def _loss(self, pred: Tensor, y: Tensor) -> Tensor:
        if self.task in ("node_classification", "graph_classification"):
            return F.cross_entropy(pred, y.view(-1).long())
        if self.task == "graph_multilabel":
            y = y.view(pred.shape).float()
            labelled = ~torch.isnan(y)
            return F.binary_cross_entropy_with_logits(pred[labelled], y[labelled])
        if self.task in ("graph_regression", "node_regression"):
            y = y.view(pred.shape).float()
            if self.target_scale is not None:
                s = self.target_scale.to(pred.device, pred.dtype)
                pred, y = pred / s, y / s
            kind = "l1" if self.loss_name == "auto" and self.metric in ("mae", "mae_normalized") \
                else ("mse" if self.loss_name == "auto" else self.loss_name)
            return F.l1_loss(pred, y) if kind == "l1" else F.mse_loss(pred, y)
        raise ValueError(self.task)

    def _masked_loss(self, pred: Tensor, y: Tensor, graph_mask: Tensor) -> Tensor:
        """:meth:`_loss` over the graphs where ``graph_mask`` is True, computed with fixed
        shapes (weights instead of boolean indexing: no data-dependent sizes, no device sync),
        for padded static batches (graphlab.data.static_batch). Graph-level tasks only."""
        w = graph_mask.to(pred.dtype)
        if self.task == "graph_classification":
            per = F.cross_entropy(pred, y.view(-1).long().clamp_min(0), reduction="none")
            return (per * w).sum() / w.sum().clamp_min(1)
        if self.task == "graph_multilabel":
            y = y.view(pred.shape).to(pred.dtype)
            labelled = ~torch.isnan(y)
            wt = w.view(-1, *([1] * (pred.dim() - 1))) * labelled.to(pred.dtype)
            per = F.binary_cross_entropy_with_logits(pred, torch.where(labelled, y, 0.0),
                                                     reduction="none")
            return (per * wt).sum() / wt.sum().clamp_min(1)
        if self.task == "graph_regression":
            y = y.view(pred.shape).to(pred.dtype)
            if self.target_scale is not None:
                s = self.target_scale.to(pred.device, pred.dtype)
                pred, y = pred / s, y / s
            kind = "l1" if self.loss_name == "auto" and self.metric in ("mae", "mae_normalized") \
                else ("mse" if self.loss_name == "auto" else self.loss_name)
            per = (pred - y).abs() if kind == "l1" else (pred - y).square()
            wt = w.view(-1, *([1] * (pred.dim() - 1))).expand_as(per)
            return (per * wt).sum() / wt.sum().clamp_min(1)
        raise ValueError(f"padded (static-shape) batches support graph-level tasks, not "
                         f"{self.task}")

    @staticmethod
    def _node_mask(batch, split: str) -> Tensor:
        """Transductive tasks carry split masks; in inductive ones (many graphs, split by
        graph) every node of a batch belongs to the batch's split."""
        m = getattr(batch, f"{split}_mask", None)
        return m if m is not None else torch.ones(batch.num_nodes, dtype=torch.bool,
                                                  device=batch.y.device)

    @staticmethod
    def _node_ids(batch) -> Tensor:
        """Unique node ids across a split: the node index itself in a single graph, and
        (graph index, position in graph) in batches of graphs."""
        if getattr(batch, "ptr", None) is None or batch.sample_idx.numel() == batch.num_nodes:
            return batch.sample_idx
        local = torch.arange(batch.num_nodes, device=batch.ptr.device) - batch.ptr[batch.batch]
        return batch.sample_idx[batch.batch] * (1 << 24) + local

    def _link_scores(self, data, edge_label_index: Tensor) -> Tensor:
        z = self.model(data)
        return (z[edge_label_index[0]] * z[edge_label_index[1]]).sum(-1)

    # -- steps -------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        if self.task == "recommendation":
            from graphlab.train.ranking import bpr_loss
            r = self.rec
            graph = r["graph"].to(self.device)
            pairs = r["train"][:, batch.cpu()].to(self.device)
            loss = bpr_loss(self.model(graph), pairs, r["num_users"], r["num_items"])
            n = pairs.size(1)
        elif self.task in LINK_TASKS:
            from torch_geometric.utils import negative_sampling
            pos = batch.edge_label_index
            neg = negative_sampling(batch.edge_index, num_nodes=batch.num_nodes,
                                    num_neg_samples=pos.size(1))
            s = self._link_scores(batch, torch.cat([pos, neg], 1))
            y = torch.cat([s.new_ones(pos.size(1)), s.new_zeros(neg.size(1))])
            loss = F.binary_cross_entropy_with_logits(s, y)
            n = pos.size(1)
        else:
            pred = self.model(batch)
            if self.task in NODE_TASKS:
                m = self._node_mask(batch, "train")
                loss, n = self._loss(pred[m], batch.y[m]), int(m.sum())
            else:
                loss, n = self._loss(pred, batch.y), int(batch.num_graphs)
        self._accumulate_loss(loss.detach(), n, batch_idx)
        self.train_samples += n
        self._epoch_loss[1] += n
        self.log("train/loss", loss.detach(), batch_size=max(n, 1), on_step=False, on_epoch=True,
                 sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        split = SPLITS[dataloader_idx]
        if self.task == "recommendation":
            from graphlab.train.ranking import rank_metrics
            r = self.rec
            emb = self.model(r["graph"].to(self.device)).detach().cpu()
            k = int(self.metric.split("@")[1])
            exclude = r["train"] if split == "valid" else torch.cat([r["train"], r["valid"]], 1)
            self._rec_scores[split] = rank_metrics(emb, r["num_users"], r["num_items"],
                                                   r[split], exclude, k=k)
            return
        if self.task in LINK_TASKS:
            s = self._link_scores(batch, batch.edge_label_index)
            out = (torch.arange(s.numel(), device=s.device), s, batch.edge_label.float())
        else:
            pred = self.model(batch)
            if self.task in NODE_TASKS:
                m = self._node_mask(batch, split)
                out = (self._node_ids(batch)[m], pred[m], batch.y[m])
            else:
                out = (batch.sample_idx, pred, batch.y.view(pred.size(0), -1)
                       if self.task != "graph_classification" else batch.y.view(-1))
        self._outs.setdefault(dataloader_idx, []).append(tuple(t.detach() for t in out))

    def _gather(self, dataloader_idx: int):
        idx, pred, y = (torch.cat(t) for t in zip(*self._outs.get(dataloader_idx, [])))
        if self.trainer is not None and self.trainer.world_size > 1:
            # all_gather needs equal shapes: the distributed sampler pads ranks to equal counts,
            # so every rank holds the same number of samples; duplicates are dropped by index.
            idx, pred, y = (self.all_gather(t).flatten(0, 1) for t in (idx, pred, y))
            order = torch.argsort(idx, stable=True)
            idx, pred, y = idx[order], pred[order], y[order]
            keep = torch.ones_like(idx, dtype=torch.bool)
            keep[1:] = idx[1:] != idx[:-1]
            idx, pred, y = idx[keep], pred[keep], y[keep]
        else:
            order = torch.argsort(idx, stable=True)
            idx, pred, y = idx[order], pred[order], y[order]
        return idx.cpu(), pred.float().cpu(), y.cpu()

    def _score(self, pred: Tensor, y: Tensor) -> float:
        if self.task in LINK_TASKS:
            if self.ogb_name is not None and self.metric.startswith("hits@"):
                return M.ogb_link_eval(self.ogb_name, pred[y == 1], pred[y == 0], self.metric)
            return M.compute("rocauc" if self.metric == "auc" else self.metric, pred, y)
        return M.compute(self.metric, pred, y, self.ogb_name, scale=self.target_scale)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._outs.clear()
            return
        row: Dict[str, float] = {"epoch": int(self.current_epoch)}
        preds = {}
        for split, scores in self._rec_scores.items():
            row[f"{split}_{self.metric}"] = scores[self.metric]
            for name, v in scores.items():
                if name != self.metric:
                    row[f"{split}_{name}"] = v
        self._rec_scores = {}
        for i, split in enumerate(SPLITS):
            if i not in self._outs:
                continue
            idx, pred, y = self._gather(i)
            row[f"{split}_{self.metric}"] = self._score(pred, y)
            if self.task not in LINK_TASKS and len(y):
                with torch.no_grad():
                    row[f"{split}_loss"] = float(self._loss(pred, y.to(pred.device)))
            if self.task not in LINK_TASKS:
                for name, v in M.per_target(self.metric, pred, y, self.target_scale).items():
                    row[f"{split}_{self.metric}_{name}"] = v
            preds[split] = (idx, pred, y)
        self._outs.clear()
        # Lightning reduces epoch-level training logs only after this validation; use our own
        # running mean of the epoch that just trained (rank 0's samples under DDP).
        self._flush_loss()
        s, n = self._epoch_loss
        row["train_loss"] = s / n if n else math.nan
        row["lr"] = float(self.trainer.optimizers[0].param_groups[0]["lr"]) \
            if self.trainer.optimizers else math.nan
        self.history.append(row)
        key = f"valid_{self.metric}"
        v = row[key]
        if self.select_on == "loss":
            if "valid_loss" not in row:
                raise ValueError(f"select_on: loss needs a validation loss; task {self.task} "
                                 "records none")
            better = self.best is None or row["valid_loss"] < self.best["valid_loss"]
        else:
            better = self.best is None or (v > self.best[key] if self.higher_is_better
                                           else v < self.best[key])
        if better:
            self.best = dict(row)
            if "test" in preds:
                idx, pred, y = preds["test"]
                self.best_test_pred = {"index": idx, "y_pred": pred, "y_true": y}
        self.log(f"val/{self.metric}", v, sync_dist=False, rank_zero_only=False)
        if "valid_loss" in row:
            self.log("val/loss", row["valid_loss"], sync_dist=False, rank_zero_only=False)
        if "test" in preds:
            self.log(f"test/{self.metric}", row[f"test_{self.metric}"], rank_zero_only=False)

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self):
        cfg = dict(self.optim_cfg)
        name = cfg.pop("name", "adam")
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[name]
        opt = cls(self.model.parameters(), **cfg)
        s = dict(self.sched_cfg)
        kind = s.pop("name", "none")
        if kind == "none":
            return opt
        if kind == "cosine":
            warm, min_lr = int(s.get("warmup_epochs", 0)), float(s.get("min_lr", 0.0))
            base = cfg.get("lr", 1e-3)
            total = max(self.max_epochs, 1)

            def factor(epoch: int) -> float:
                if epoch < warm:
                    return (epoch + 1) / (warm + 1)
                t = (epoch - warm) / max(1, total - warm)
                return (min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * t))) / base
            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        if kind == "plateau":
            on_loss = s.get("monitor", "metric") == "loss"
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min" if on_loss or not self.higher_is_better else "max",
                factor=s.get("factor", 0.5), patience=s.get("patience", 10),
                min_lr=s.get("min_lr", 0.0))
            return {"optimizer": opt, "lr_scheduler": {
                "scheduler": sched, "monitor": "val/loss" if on_loss else f"val/{self.metric}"}}
        if kind == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=s.get("step_size", 50),
                                                    gamma=s.get("gamma", 0.5))
            return {"optimizer": opt, "lr_scheduler": sched}
        raise ValueError(f"unknown scheduler {kind}")

    def plateau_value(self) -> float:
        """The last validation epoch's value of what the plateau scheduler watches."""
        on_loss = self.sched_cfg.get("monitor", "metric") == "loss"
        return self.history[-1]["valid_loss" if on_loss else f"valid_{self.metric}"]

    # -- checkpoint state --------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        checkpoint["graphlab"] = {"history": self.history, "best": self.best,
                                  "best_test_pred": self.best_test_pred, "rng": _rng_state(),
                                  "train_samples": self.train_samples,
                                  "train_time": self.train_time}

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        st = checkpoint.get("graphlab")
        if st is None:
            return
        self.history, self.best = st["history"], st["best"]
        self.best_test_pred = st["best_test_pred"]
        self.train_samples, self.train_time = st["train_samples"], st["train_time"]
        self._resume_rng = st["rng"]

    def on_train_start(self) -> None:
        # Restore the RNG streams after Lightning's own setup so that dropout and negative
        # sampling continue exactly where the checkpoint left them.
        rng = getattr(self, "_resume_rng", None)
        if rng is not None:
            _set_rng_state(rng)
            self._resume_rng = None
