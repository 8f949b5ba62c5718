"""Top-K recommendation from user-item interactions: BPR training, full-ranking evaluation.

The data is not a PyG dataset of graphs: the split holds ``(user, item)`` pair tensors
``[2, P]`` for train / valid / test and the user and item counts; the model embeds the
user-item graph built from the training pairs and returns ``[num_users + num_items, d]``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from graphlab.data.loaders import EpochSeededSampler
from graphlab.registry import register_task
from graphlab.tasks.base import Task, model_loss
from graphlab.tasks.ranking import bipartite_graph, bpr_loss, rank_metrics

__all__ = ["Recommendation"]


@register_task("recommendation")
class Recommendation(Task):
    """BPR loss over mini-batches of training pairs (one sampled negative item each);
    ``recall@K`` / ``ndcg@K`` over all items, the user's training (and, for test, validation)
    items excluded, as LightGCN's protocol (He et al., SIGIR 2020)."""

    name = "recommendation"
    level = "node"
    records_loss = False

    def __init__(self, metric: str, ogb_name: Optional[str] = None):
        super().__init__(metric, ogb_name)
        self.rec: Dict[str, Any] = {}

    def prepare(self, dataset, info, split) -> None:
        self.rec = {k: split[k] for k in ("train", "valid", "test", "num_users", "num_items")}
        self.rec["graph"] = bipartite_graph(split["train"], split["num_users"],
                                            split["num_items"])

    def dims(self, dataset, info, split):
        nu, ni = int(split["num_users"]), int(split["num_items"])
        return {"num_users": nu, "num_items": ni, "in_channels": nu + ni, "out_channels": 1,
                "edge_dim": None, "node_encoder": "embedding", "edge_encoder": "linear",
                "task_level": "node"}

    def loaders(self, dm):
        n = self.rec["train"].size(1)
        train = torch.utils.data.DataLoader(range(n), batch_size=dm.batch_size,
                                            sampler=EpochSeededSampler(n, dm.seed))
        one = [torch.utils.data.DataLoader([0], batch_size=1) for _ in range(2)]
        return train, one  # one step per split: the task ranks all items itself

    def train_step(self, model, batch):
        r = self.rec
        graph = r["graph"].to(batch.device)
        pairs = r["train"][:, batch.cpu()].to(batch.device)
        emb = model(graph)
        loss = bpr_loss(emb, pairs, r["num_users"], r["num_items"])
        return model_loss(model, pairs, emb, loss), pairs.size(1)

    def eval_step(self, model, batch, split: str):
        r = self.rec
        emb = model(r["graph"].to(batch.device)).detach().cpu()
        k = int(self.metric.split("@")[1])
        exclude = r["train"] if split == "valid" else torch.cat([r["train"], r["valid"]], 1)
        return rank_metrics(emb, r["num_users"], r["num_items"], r[split], exclude, k=k)

    def evaluate(self, split, outputs, gather):
        scores = outputs[-1]
        row = {f"{split}_{self.metric}": scores[self.metric]}
        row.update({f"{split}_{name}": v for name, v in scores.items() if name != self.metric})
        return row, None
