"""Top-K recommendation from user-item interactions: BPR training, full-ranking evaluation.

The data is not a PyG dataset of graphs: the split holds ``(user, item)`` pair tensors
``[2, P]`` for train / valid / test and the user and item counts; the model embeds the
user-item graph built from the training pairs and returns ``[num_users + num_items, d]``.

**Models with their own statistics of the interactions.** A model that defines
``fit_interactions(train, num_users, num_items)`` (UltraGCN's degrees and item-item
neighbours) gets the training pairs ``(2, P)`` on its device once per process, before its
first training step; its ``training_loss(batch, out, loss)`` receives a
:class:`RecBatch` (pairs and sampled negatives) and the BPR loss.
"""
from __future__ import annotations

from typing import Annotated, Any, Dict, NamedTuple, Optional

import torch
from torch import Tensor

from graphlab.data.loaders import EpochSeededSampler
from graphlab.registry import register_task
from graphlab.schema import Choice, Range
from graphlab.tasks.base import Task, model_loss
from graphlab.tasks.ranking import (bipartite_graph, bpr_loss, pair_ids, rank_metrics,
                                    sample_negatives)

__all__ = ["Recommendation", "RecBatch"]


class RecBatch(NamedTuple):
    """One training step's input to a model-owned loss."""
    pairs: Tensor       #: ``(2, B)`` (user, item) training pairs
    negatives: Tensor   #: ``(B, n)`` sampled item ids


@register_task("recommendation")
class Recommendation(Task):
    """BPR loss over mini-batches of training pairs with sampled negative items;
    ``recall@K`` / ``ndcg@K`` over all items, the user's training (and, for test, validation)
    items excluded, as LightGCN's protocol (He et al., SIGIR 2020).

    Args:
        protocol: ``'heldout'`` (graphlab's): train on the split's training pairs, select the
            epoch on the seeded validation pairs held out of them. ``'paper'``: the LightGCN /
            UltraGCN papers' protocol on releases with only train and test: the held-out pairs
            go back into training and the epoch is selected on the test set (``valid_*`` in
            the history is then the test set too).
        negatives: sampled negative items per training pair (LightGCN: 1; UltraGCN: 1500 on
            Gowalla).
        exclude_positives: redraw negatives that are one of the user's training items
            (LightGCN's sampler); off draws uniformly with replacement (UltraGCN's
            ``sampling_sift_pos = False``).
        l2: weight of LightGCN's L2 term on the batch's layer-0 embeddings (its
            ``--decay 1e-4``); needs a model with ``base_embedding()``.

    Negatives are drawn on the training device by a generator seeded with ``(seed, epoch)``:
    the draws of an epoch do not depend on how many epochs ran in the process.
    """

    name = "recommendation"
    level = "node"
    records_loss = False

    def __init__(self, metric: str, ogb_name: Optional[str] = None, *,
                 protocol: Annotated[str, Choice("heldout", "paper")] = "heldout",
                 negatives: Annotated[int, Range(ge=1)] = 1,
                 exclude_positives: bool = False,
                 l2: Annotated[float, Range(ge=0)] = 0.0):
        super().__init__(metric, ogb_name)
        if negatives < 1:
            raise ValueError(f"task.negatives must be >= 1, got {negatives}")
        self.protocol, self.negatives = protocol, int(negatives)
        self.exclude_positives, self.l2 = bool(exclude_positives), float(l2)
        self.rec: Dict[str, Any] = {}
        self._dev: Dict[str, Any] = {}
        self._sampler: Optional[EpochSeededSampler] = None
        self._gen: Optional[torch.Generator] = None
        self._gen_epoch = -1
        self._fitted: Optional[int] = None

    def prepare(self, dataset, info, split) -> None:
        nu, ni = int(split["num_users"]), int(split["num_items"])
        train, valid = split["train"], split["valid"]
        if self.protocol == "paper":
            train = torch.cat([train, valid], 1)
            train = train[:, pair_ids(train, ni).argsort()]
            valid = split["test"]
        if train.size(1) == 0:
            raise ValueError("the recommendation split has no training interactions")
        if self.exclude_positives:
            full = torch.bincount(train[0], minlength=nu) >= ni
            if full.any():
                raise ValueError(f"task.exclude_positives: user(s) "
                                 f"{full.nonzero().view(-1)[:5].tolist()} interacted with every "
                                 f"item, no negative item is left to sample")
        self.rec = {"train": train, "valid": valid, "test": split["test"],
                    "num_users": nu, "num_items": ni,
                    "graph": bipartite_graph(train, nu, ni)}
        self._dev, self._fitted = {}, None

    def dims(self, dataset, info, split):
        nu, ni = int(split["num_users"]), int(split["num_items"])
        return {"num_users": nu, "num_items": ni, "in_channels": nu + ni, "out_channels": 1,
                "edge_dim": None, "node_encoder": "embedding", "edge_encoder": "linear",
                "task_level": "node"}

    def loaders(self, dm):
        n = self.rec["train"].size(1)
        self._sampler = EpochSeededSampler(n, dm.seed)
        train = torch.utils.data.DataLoader(range(n), batch_size=dm.batch_size,
                                            sampler=self._sampler)
        one = [torch.utils.data.DataLoader([0], batch_size=1) for _ in range(2)]
        return train, one  # one step per split: the task ranks all items itself

    def _on(self, device) -> Dict[str, Any]:
        """The split's tensors on ``device``, moved once."""
        if self._dev.get("device") != device:
            r = self.rec
            self._dev = {"device": device, "graph": r["graph"].to(device),
                         "train": r["train"].to(device)}
            if self.exclude_positives:
                self._dev["train_ids"] = pair_ids(self._dev["train"], r["num_items"]).sort().values
        return self._dev

    def _generator(self, device) -> torch.Generator:
        epoch = self._sampler.epoch if self._sampler is not None else 0
        seed = self._sampler.seed if self._sampler is not None else 0
        if self._gen is None or self._gen_epoch != epoch or self._gen.device != device:
            self._gen = torch.Generator(device=device).manual_seed(seed * 100003 + epoch + 7)
            self._gen_epoch = epoch
        return self._gen

    def train_step(self, model, batch):
        r, dev = self.rec, batch.device
        d = self._on(dev)
        fit = getattr(model, "fit_interactions", None)
        if fit is not None and self._fitted != id(model):
            fit(d["train"], r["num_users"], r["num_items"])
            self._fitted = id(model)
        pairs = d["train"][:, batch]
        neg = sample_negatives(pairs[0], r["num_items"], self.negatives, self._generator(dev),
                               d.get("train_ids"))
        emb = model(d["graph"])
        base = None
        if self.l2 > 0:
            get = getattr(model, "base_embedding", None)
            if get is None:
                raise ValueError(f"task.l2 > 0 needs a model with base_embedding() (the "
                                 f"layer-0 table); {type(model).__name__} has none")
            base = get()
        loss = bpr_loss(emb, pairs, neg, r["num_users"], self.l2, base)
        return model_loss(model, RecBatch(pairs, neg), emb, loss), pairs.size(1)

    def eval_step(self, model, batch, split: str):
        r = self.rec
        emb = model(self._on(batch.device)["graph"]).detach()
        k = int(self.metric.split("@")[1])
        exclude = r["train"] if split == "valid" or self.protocol == "paper" else \
            torch.cat([r["train"], r["valid"]], 1)
        return rank_metrics(emb, r["num_users"], r["num_items"], r[split], exclude, k=k)

    def evaluate(self, split, outputs, gather):
        scores = outputs[-1]
        row = {f"{split}_{self.metric}": scores[self.metric]}
        row.update({f"{split}_{name}": v for name, v in scores.items() if name != self.metric})
        return row, None
