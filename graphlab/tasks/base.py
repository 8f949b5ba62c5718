"""The task contract: what a task family owns, so that a new one is a new file, not an edit.

A task family (graph classification, node regression, link prediction, ...) is a subclass of
:class:`Task` registered in :data:`graphlab.registry.TASKS`::

    from graphlab.tasks import Task, register_task

    @register_task("my_task")
    class MyTask(Task):
        level = "graph"
        def out_channels(self, dataset, data0): return 1
        def loss(self, pred, y): return (pred.view(-1) - y.view(-1)).abs().mean()

A dataset names its family (``DatasetInfo.task``); a config may name another one
(``task.name``). The trainer (:class:`graphlab.train.task.GraphTask` for Lightning, the seed
ensemble for ``--ensemble``) only calls the hooks below, in this order:

1. ``Task(metric, ogb_name=..., **options)``: ``options`` are the family's own config keys
   (``task.loss``, ``task.embed_dim``, ...): the keyword parameters of ``__init__``, validated
   against its signature like a model's.
2. :meth:`prepare` (state taken from the data: target scales, the user-item graph, ...), then
   :meth:`dims`: the model arguments injected from the dataset (``in_channels``,
   ``out_channels``, ``task_level``, encoders; :data:`INJECTED_MODEL_ARGS`).
3. :meth:`loaders`: the training loader and the (validation, test) loaders.
4. Every training batch: :meth:`train_step` -> ``(loss, samples)``; it calls :meth:`forward`,
   :meth:`training_loss` and a model-owned loss where the model has one (below).
5. Every evaluation batch: :meth:`eval_step` -> an output (``(index, prediction, target)`` by
   default) or ``None``; at the epoch's end :meth:`evaluate` turns a split's outputs into the
   history row's entries (``<split>_<metric>``, ``<split>_loss``, per-target parts).

**Model-owned losses.** A model that defines ``training_loss(batch, out, loss) -> Tensor``
gets the task's loss of its output and returns the one to minimise (add a regulariser, or
replace it: UltraGCN's constraint loss).

**Gradients during evaluation.** A family with ``eval_needs_grad = True`` (forces as
:math:`-\\nabla E`) has :meth:`eval_step` run under ``torch.enable_grad()``, and the Lightning
trainer leaves inference mode off.

**Seed ensembles.** ``supports_ensemble`` families also implement :meth:`member_losses` (every
member's loss from stacked outputs ``[K, ...]`` with fixed-shape ops) and
:meth:`train_samples`; ``supports_padding`` ones :meth:`masked_loss` (padded static batches,
``task.cuda_graphs``).
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from graphlab.schema import INJECTED_MODEL_ARGS
from graphlab.tasks import metrics as M

__all__ = ["Task", "INJECTED_MODEL_ARGS", "node_ids", "split_mask"]


class Task:
    """Base class of task families (see the module docstring for the contract).

    Args:
        metric: the model-selection metric (``accuracy``, ``rocauc``, ``ap``, ``mae`` ...).
        ogb_name: when set, metrics come from the official ``ogb`` Evaluator.
    """

    #: registry name (set by :func:`graphlab.registry.register_task`'s caller for messages)
    name: ClassVar[str] = ""
    #: the ``task_level`` injected into models: ``'graph'`` or ``'node'``
    level: ClassVar[str] = "graph"
    #: whether the vmapped seed ensemble can train this family (``member_losses``)
    supports_ensemble: ClassVar[bool] = False
    #: whether padded static batches work (``masked_loss``; ``task.cuda_graphs``)
    supports_padding: ClassVar[bool] = False
    #: evaluation needs autograd (inputs' gradients, e.g. forces)
    eval_needs_grad: ClassVar[bool] = False
    #: whether the task records ``<split>_loss`` every epoch (``select_on: loss`` needs it)
    records_loss: ClassVar[bool] = True

    def __init__(self, metric: str, ogb_name: Optional[str] = None):
        self.metric = metric
        self.ogb_name = ogb_name
        self.higher_is_better = M.higher_is_better(metric)
        self.target_scale: Optional[Tensor] = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(metric={self.metric!r})"

    # -- data side ---------------------------------------------------------------------------
    def prepare(self, dataset, info, split) -> None:
        """Take what the task needs from the data before the model is built (default:
        nothing)."""

    def batched(self, dataset) -> bool:
        """Mini-batches of graphs (``True``) or one whole graph per step."""
        return self.level == "graph" or len(dataset) > 1

    def out_channels(self, dataset, data0) -> Optional[int]:
        """The model's output width (``None``: the model outputs embeddings)."""
        raise NotImplementedError

    def dims(self, dataset, info, split) -> Dict[str, Any]:
        """The model arguments that come from the dataset (:data:`INJECTED_MODEL_ARGS`)."""
        data0 = dataset[0] if len(dataset) else None
        in_channels = int(getattr(dataset, "num_node_features", 0) or 0)
        edge_dim = None
        if info.edge_encoder is not None and data0 is not None and \
                getattr(data0, "edge_attr", None) is not None:
            edge_dim = int(data0.edge_attr.view(data0.edge_attr.size(0), -1).size(1))
            if info.edge_encoder == "embedding":  # categories: the vocabulary size
                edge_dim = int(getattr(dataset, "_data", data0).edge_attr.max()) + 1
        if info.node_encoder == "embedding":
            in_channels = int(getattr(dataset, "num_node_types", 0) or
                              int(dataset._data.x.max()) + 1)
        return {"in_channels": in_channels, "out_channels": self.out_channels(dataset, data0),
                "edge_dim": edge_dim, "node_encoder": info.node_encoder,
                "edge_encoder": info.edge_encoder or "linear", "task_level": self.level}

    def loaders(self, dm) -> Tuple[Any, List[Any]]:
        """``(training loader, [validation loader, test loader])`` from the data module's
        helpers (:class:`graphlab.train.datamodule.GraphDataModule`)."""
        if self.batched(dm.dataset):
            return (dm.graph_loader("train", train=True),
                    [dm.graph_loader("valid", train=False), dm.graph_loader("test", train=False)])
        g = dm.whole_graph_loader(dm.full_graph())
        return g, [g, g]

    # -- training ----------------------------------------------------------------------------
    def forward(self, model, batch) -> Tensor:
        """The model's output for a batch (override for other input conventions, e.g.
        per-type inputs of ``HeteroData``)."""
        return model(batch)

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        """The training loss of predictions against targets (one split's rows)."""
        raise NotImplementedError

    def train_rows(self, batch) -> Optional[Tensor]:
        """Boolean mask of the rows the training loss reads (``None``: all rows)."""
        return None

    def train_samples(self, batch) -> int:
        """Samples a training batch counts (the running mean's weight)."""
        m = self.train_rows(batch)
        return int(m.sum()) if m is not None else int(batch.num_graphs)

    def training_loss(self, pred: Tensor, batch) -> Tensor:
        m = self.train_rows(batch)
        if m is None:
            return self.loss(pred, batch.y)
        return self.loss(pred[m], batch.y[m])

    def train_step(self, model, batch) -> Tuple[Tensor, int]:
        """``(loss, samples)`` of one training batch, the model-owned loss included."""
        pred = self.forward(model, batch)
        loss = self.training_loss(pred, batch)
        return model_loss(model, batch, pred, loss), self.train_samples(batch)

    def member_losses(self, out: Tensor, batch) -> Tensor:
        """``[K]``: every ensemble member's training loss from stacked outputs ``[K, ...]``
        (vmapped, one kernel per op; member by member where vmap cannot map the loss)."""
        m = self.train_rows(batch)
        y = batch.y if m is None else batch.y[m]
        out = out if m is None else out[:, m]
        try:
            return torch.func.vmap(self.loss, in_dims=(0, None))(out, y)
        except (RuntimeError, NotImplementedError):
            return torch.stack([self.loss(o, y) for o in out])

    def masked_loss(self, pred: Tensor, y: Tensor, graph_mask: Tensor) -> Tensor:
        """:meth:`loss` over the graphs where ``graph_mask`` is True with fixed shapes (padded
        static batches, :mod:`graphlab.data.static_batch`)."""
        raise ValueError(f"padded (static-shape) batches are not supported by task "
                         f"{self.name or type(self).__name__}")

    # -- evaluation --------------------------------------------------------------------------
    def eval_outputs(self, pred: Tensor, batch, split: str) -> Tuple[Tensor, Tensor, Tensor]:
        """``(sample index, prediction, target)`` of one evaluation batch."""
        raise NotImplementedError

    def eval_step(self, model, batch, split: str) -> Any:
        """One evaluation batch's output for :meth:`evaluate` (``None`` to keep nothing)."""
        return self.eval_outputs(self.forward(model, batch), batch, split)

    def score(self, pred: Tensor, y: Tensor) -> float:
        return M.compute(self.metric, pred, y, self.ogb_name, scale=self.target_scale)

    def evaluate(self, split: str, outputs: Sequence[Any], gather) -> Tuple[Dict[str, float],
                                                                           Optional[tuple]]:
        """One split's history entries and its ``(index, prediction, target)`` (for the test
        predictions file) from the epoch's :meth:`eval_step` outputs. ``gather`` concatenates
        ``(index, prediction, target)`` tuples over batches (and ranks), sorted by index."""
        idx, pred, y = gather(outputs)
        row = {f"{split}_{self.metric}": self.score(pred, y)}
        if self.records_loss and len(y):
            with torch.no_grad():
                row[f"{split}_loss"] = float(self.loss(pred, y.to(pred.device)))
        for name, v in M.per_target(self.metric, pred, y, self.target_scale).items():
            row[f"{split}_{self.metric}_{name}"] = v
        return row, (idx, pred, y)


def model_loss(model, batch, out: Tensor, loss: Tensor) -> Tensor:
    """``model.training_loss(batch, out, loss)`` where the model defines one, else ``loss``."""
    hook = getattr(model, "training_loss", None)
    return loss if hook is None else hook(batch, out, loss)


def split_mask(batch, split: str) -> Tensor:
    """Transductive tasks carry split masks; in inductive ones (many graphs, split by graph)
    every node of a batch belongs to the batch's split."""
    m = getattr(batch, f"{split}_mask", None)
    return m if m is not None else torch.ones(batch.num_nodes, dtype=torch.bool,
                                              device=batch.y.device)


def node_ids(batch) -> Tensor:
    """Unique node ids across a split: the node index itself in a single graph, and (graph
    index, position in graph) in batches of graphs."""
    if getattr(batch, "ptr", None) is None or batch.sample_idx.numel() == batch.num_nodes:
        return batch.sample_idx
    local = torch.arange(batch.num_nodes, device=batch.ptr.device) - batch.ptr[batch.batch]
    return batch.sample_idx[batch.batch] * (1 << 24) + local
