"""Link prediction: node embeddings scored by inner products, trained against sampled
negatives, one whole graph per step (GAE's protocol, Kipf & Welling 2016)."""
from __future__ import annotations

from typing import Annotated, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlab.registry import register_task
from graphlab.schema import Range
from graphlab.tasks import metrics as M
from graphlab.tasks.base import Task, model_loss

__all__ = ["LinkPrediction"]


@register_task("link_prediction")
class LinkPrediction(Task):
    r"""Score :math:`s_{uv} = \langle z_u, z_v \rangle` of the model's node embeddings
    :math:`z = f(G_\text{train})`; binary cross-entropy over the split's positive edges and as
    many negatives drawn per step (:func:`torch_geometric.utils.negative_sampling`).

    Args:
        embed_dim: width of the embeddings (the model's ``out_channels``; default: the model's
            ``hidden_channels``, else 64).

    The splits are graphs with ``edge_label_index`` / ``edge_label`` (PyG ``RandomLinkSplit``).
    ``hits@K`` on OGB sets uses the official ``ogb`` link Evaluator.
    """

    name = "link_prediction"
    level = "node"
    records_loss = False

    def __init__(self, metric: str, ogb_name: Optional[str] = None,
                 embed_dim: Annotated[Optional[int], Range(ge=1)] = None):
        super().__init__(metric, ogb_name)
        self.embed_dim = embed_dim

    def batched(self, dataset) -> bool:
        return False

    def out_channels(self, dataset, data0) -> Optional[int]:
        return self.embed_dim

    def loaders(self, dm):
        return (dm.whole_graph_loader(dm.split["train"]),
                [dm.whole_graph_loader(dm.split["valid"]), dm.whole_graph_loader(dm.split["test"])])

    @staticmethod
    def scores(z: Tensor, edge_label_index: Tensor) -> Tensor:
        return (z[edge_label_index[0]] * z[edge_label_index[1]]).sum(-1)

    def train_step(self, model, batch):
        from torch_geometric.utils import negative_sampling
        pos = batch.edge_label_index
        neg = negative_sampling(batch.edge_index, num_nodes=batch.num_nodes,
                                num_neg_samples=pos.size(1))
        z = self.forward(model, batch)
        s = self.scores(z, torch.cat([pos, neg], 1))
        y = torch.cat([s.new_ones(pos.size(1)), s.new_zeros(neg.size(1))])
        loss = F.binary_cross_entropy_with_logits(s, y)
        return model_loss(model, batch, z, loss), pos.size(1)

    def eval_step(self, model, batch, split: str):
        s = self.scores(self.forward(model, batch), batch.edge_label_index)
        return torch.arange(s.numel(), device=s.device), s, batch.edge_label.float()

    def score(self, pred: Tensor, y: Tensor) -> float:
        if self.ogb_name is not None and self.metric.startswith("hits@"):
            return M.ogb_link_eval(self.ogb_name, pred[y == 1], pred[y == 0], self.metric)
        return M.compute("rocauc" if self.metric == "auc" else self.metric, pred, y)
