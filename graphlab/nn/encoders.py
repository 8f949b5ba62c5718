"""Input feature encoders shared by every model.

The trainer tells a model what its inputs are through ``node_encoder`` / ``edge_encoder``
(taken from the dataset, never from the user's config):

* ``"linear"``: continuous features ``x [N, F]`` -> ``Linear(F, H)``;
* ``"atom"`` / ``"bond"``: OGB molecule features (integer columns) -> ogb ``AtomEncoder`` /
  ``BondEncoder`` (sum of per-column embeddings);
* ``"embedding"``: one integer category per node/edge (``[N]`` or ``[N, 1]``) -> ``Embedding(F, H)``;
* ``"none"``: no features; a single learned vector for every node (or edge).
"""
from __future__ import annotations

import os

import torch
from torch import Tensor, nn

os.environ.setdefault("OUTDATED_IGNORE", "1")

KINDS = ("linear", "atom", "bond", "embedding", "none")


class _Encoder(nn.Module):
    def __init__(self, kind: str, in_channels: int | None, out_channels: int):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown encoder kind '{kind}'; choose from {', '.join(KINDS)}")
        self.kind, self.in_channels, self.out_channels = kind, in_channels, out_channels
        if kind == "linear":
            self.enc = nn.Linear(int(in_channels), out_channels)
        elif kind == "atom":
            from ogb.graphproppred.mol_encoder import AtomEncoder
            self.enc = AtomEncoder(out_channels)
        elif kind == "bond":
            from ogb.graphproppred.mol_encoder import BondEncoder
            self.enc = BondEncoder(out_channels)
        elif kind == "embedding":
            self.enc = nn.Embedding(int(in_channels), out_channels)
        else:
            self.enc = nn.Embedding(1, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.kind in ("atom", "bond"):
            for emb in self.enc.modules():
                if isinstance(emb, nn.Embedding):
                    nn.init.xavier_uniform_(emb.weight.data)
        else:
            self.enc.reset_parameters()

    def forward(self, x: Tensor | None, num: int | None = None) -> Tensor:
        if self.kind == "none":
            n = num if x is None else x.size(0)
            return self.enc.weight.expand(n, -1)
        if x is None:
            raise ValueError(f"{type(self).__name__}('{self.kind}') needs input features, got None")
        if self.kind == "linear":
            return self.enc(x.to(self.enc.weight.dtype))
        if self.kind == "embedding":
            return self.enc(x.view(-1).long())
        return self.enc(x.long())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind}, {self.in_channels}, {self.out_channels})"


class FeatureEncoder(_Encoder):
    """Encodes node features ``x [N, F]`` into ``[N, H]`` (see module docstring for kinds)."""


class EdgeEncoder(_Encoder):
    """Encodes edge features ``edge_attr [E, F]`` into ``[E, H]`` (see module docstring for kinds)."""
