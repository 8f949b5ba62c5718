"""UltraGCN for recommendation (Mao et al., CIKM 2021, https://arxiv.org/abs/2110.15114)."""
from __future__ import annotations

import hashlib
from typing import Annotated, Dict, Tuple

import torch
from torch import Tensor, nn

from graphlab.nn.ultragcn import degree_betas, item_neighbours, ultragcn_loss
from graphlab.registry import register_model
from graphlab.schema import Range

#: item-item neighbours by (training pairs' digest, counts, K): one computation per split
_NEIGHBOUR_CACHE: Dict[Tuple[str, int, int, int], Tuple[Tensor, Tensor]] = {}


def _digest(train: Tensor) -> str:
    return hashlib.sha1(train.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


@register_model("ultragcn")
class UltraGCN(nn.Module):
    r"""UltraGCN: free user and item embeddings trained with a constraint loss that stands for
    infinitely many LightGCN layers, with no message passing (equations and choices:
    :mod:`graphlab.nn.ultragcn`).

    ``forward`` returns the embeddings ``(num_users + num_items, hidden_channels)`` (items
    offset by ``num_users``, scored by dot product) and ignores the graph. The recommendation
    task calls :meth:`fit_interactions` with the training pairs before training (degrees and
    item-item neighbours), and :meth:`training_loss` replaces its BPR loss by UltraGCN's.

    Args:
        hidden_channels: embedding size (reference: 64).
        w1, w2, w3, w4: positive weight :math:`w_1 + w_2\beta`, negative :math:`w_3 + w_4\beta`
            (reference Gowalla: 1e-6, 1, 1e-6, 1).
        negative_weight: :math:`\nu`, the weight of the negatives' mean (Gowalla: 300).
        gamma: L2 weight :math:`\gamma` on all embeddings (1e-4).
        lambda_i: item-item constraint weight :math:`\lambda` (Gowalla: 5e-4).
        num_neighbours: K item-item neighbours (10).
        init_std: standard deviation of the normal initialisation (reference: 1e-4).
        num_users, num_items: filled in by the trainer from the dataset.

    Shapes:
        output ``(num_users + num_items, hidden_channels)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *,
                 hidden_channels: Annotated[int, Range(ge=1)] = 64,
                 w1: Annotated[float, Range(ge=0)] = 1e-6, w2: Annotated[float, Range(ge=0)] = 1.0,
                 w3: Annotated[float, Range(ge=0)] = 1e-6, w4: Annotated[float, Range(ge=0)] = 1.0,
                 negative_weight: Annotated[float, Range(ge=0)] = 300.0,
                 gamma: Annotated[float, Range(ge=0)] = 1e-4,
                 lambda_i: Annotated[float, Range(ge=0)] = 5e-4,
                 num_neighbours: Annotated[int, Range(ge=1)] = 10,
                 init_std: Annotated[float, Range(gt=0)] = 1e-4,
                 num_users: int = 0, num_items: int = 0, task_level: str = "node"):
        super().__init__()
        if num_users <= 0 or num_items <= 0:
            raise ValueError(f"UltraGCN needs num_users and num_items > 0, got {num_users}, "
                             f"{num_items} (the trainer sets them from a recommendation dataset)")
        if not 1 <= num_neighbours < num_items:
            raise ValueError(f"num_neighbours must be in [1, {num_items - 1}] (the other "
                             f"items), got {num_neighbours}")
        self.num_users, self.num_items = num_users, num_items
        self.w = (float(w1), float(w2), float(w3), float(w4))
        self.negative_weight, self.gamma = float(negative_weight), float(gamma)
        self.lambda_i, self.num_neighbours = float(lambda_i), int(num_neighbours)
        self.init_std = float(init_std)
        self.user_emb = nn.Embedding(num_users, hidden_channels)
        self.item_emb = nn.Embedding(num_items, hidden_channels)
        self.register_buffer("beta_user", torch.zeros(num_users), persistent=False)
        self.register_buffer("beta_item", torch.zeros(num_items), persistent=False)
        self.register_buffer("nbr_index", torch.zeros(num_items, num_neighbours,
                                                      dtype=torch.long), persistent=False)
        self.register_buffer("nbr_weight", torch.zeros(num_items, num_neighbours),
                             persistent=False)
        self.fitted = False
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_emb.weight, std=self.init_std)
        nn.init.normal_(self.item_emb.weight, std=self.init_std)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.num_users} users, {self.num_items} items, "
                f"{self.user_emb.embedding_dim}, K={self.num_neighbours})")

    @torch.no_grad()
    def fit_interactions(self, train: Tensor, num_users: int, num_items: int) -> None:
        """Degree weights and item-item neighbours from the ``(2, P)`` training pairs."""
        if (num_users, num_items) != (self.num_users, self.num_items):
            raise ValueError(f"fit_interactions got {num_users} users x {num_items} items, the "
                             f"model has {self.num_users} x {self.num_items}")
        train = train.to(self.beta_user.device).unique(dim=1)  # A is binary
        bu, bi = degree_betas(train, num_users, num_items)
        key = (_digest(train), num_users, num_items, self.num_neighbours)
        if key not in _NEIGHBOUR_CACHE:
            idx, w = item_neighbours(train, num_users, num_items, self.num_neighbours)
            _NEIGHBOUR_CACHE[key] = (idx.cpu(), w.cpu())
        idx, w = _NEIGHBOUR_CACHE[key]
        self.beta_user.copy_(bu)
        self.beta_item.copy_(bi)
        self.nbr_index.copy_(idx)
        self.nbr_weight.copy_(w)
        self.fitted = True

    def forward(self, data=None) -> Tensor:
        return torch.cat([self.user_emb.weight, self.item_emb.weight], 0)

    def training_loss(self, batch, out: Tensor, loss: Tensor) -> Tensor:
        """UltraGCN's loss of a :class:`graphlab.tasks.recommendation.RecBatch` (the task's
        BPR ``loss`` is not used)."""
        if not self.fitted:
            raise ValueError("UltraGCN.training_loss before fit_interactions: the degree "
                             "weights and item-item neighbours come from the training pairs")
        return ultragcn_loss(out[:self.num_users], out[self.num_users:], batch.pairs,
                             batch.negatives, self.beta_user, self.beta_item, self.nbr_index,
                             self.nbr_weight, self.w, self.negative_weight, self.lambda_i,
                             self.gamma)
