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

from graphlab.nn.checks import exact_fp32_products

os.environ.setdefault("OUTDATED_IGNORE", "1")

KINDS = ("linear", "atom", "bond", "embedding", "none")


def sum_embeddings_onehot(x: Tensor, weights: list, meta: dict | None = None) -> Tensor:
    r"""``sum_j weights[j][x[:, j]]`` (OGB's Atom/BondEncoder) as one matrix product
    ``onehot(x) @ cat(weights)``.

    Same value as the per-column lookups (each output is a sum of the same ``F`` table rows),
    but its backward is one dense product ``onehot^T @ grad`` instead of ``F`` embedding
    backward kernels: on a GPU those cost ~70 us each for molecule-sized batches (profiled on an
    H200: 24 of them were 13% of a GIN-virtual step's kernel time, scripts/profile_step.py;
    with this product and the leaner masked BatchNorm the step's kernel time fell from 13.6 to
    9.9 ms). An index outside its column's vocabulary raises on CPU and trips a device-side assert on
    CUDA (as ``nn.Embedding`` does); it never reads another column's table.

    Args:
        x: ``[N, F]`` integer categories.
        weights: ``F`` tables ``[V_j, H]``.
        meta: a dict that caches the vocabulary sizes and offsets per device (so a call
            inside CUDA-graph capture copies nothing from the host).
    """
    if x.dim() != 2 or x.size(1) != len(weights):
        raise ValueError(f"expected [N, {len(weights)}] integer features, got {tuple(x.shape)}")
    meta = {} if meta is None else meta
    key = (x.device, tuple(int(w.size(-2)) for w in weights))
    if key not in meta:
        sizes = torch.tensor(key[1], device=x.device)
        meta[key] = (sizes, torch.cumsum(sizes, 0) - sizes)
    sizes, offsets = meta[key]
    x = x.long()
    ok = ((x >= 0) & (x < sizes)).all()
    if x.is_cuda:
        torch._assert_async(ok, "encoder: a feature category is outside its vocabulary")
    elif not bool(ok):
        bad = int(((x < 0) | (x >= sizes)).any(0).nonzero()[0])
        raise IndexError(f"encoder: column {bad} has a category outside "
                         f"0..{int(sizes[bad]) - 1}")
    table = torch.cat(list(weights), 0)
    onehot = torch.zeros(x.size(0), table.size(0), dtype=table.dtype, device=x.device)
    onehot.scatter_(1, x + offsets, 1.0)
    with exact_fp32_products():  # an exact lookup also under TF32 (task.matmul_precision)
        return onehot @ table


class _Encoder(nn.Module):
    def __init__(self, kind: str, in_channels: int | None, out_channels: int):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown encoder kind '{kind}'; choose from {', '.join(KINDS)}")
        self.kind, self.in_channels, self.out_channels = kind, in_channels, out_channels
        #: atom / bond: sum the embeddings as one one-hot product (see sum_embeddings_onehot);
        #: None = on CUDA (where it saves kernels), the per-column lookups on CPU
        self.onehot: bool | None = None
        self._onehot_meta: dict = {}
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
        onehot = self.onehot
        if onehot is None:
            onehot = x.is_cuda
        if onehot:
            tables = [m.weight for m in self.enc.modules() if isinstance(m, nn.Embedding)]
            return sum_embeddings_onehot(x, tables, self._onehot_meta)
        return self.enc(x.long())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind}, {self.in_channels}, {self.out_channels})"


class FeatureEncoder(_Encoder):
    """Encodes node features ``x [N, F]`` into ``[N, H]`` (see module docstring for kinds)."""


class EdgeEncoder(_Encoder):
    """Encodes edge features ``edge_attr [E, F]`` into ``[E, H]`` (see module docstring for kinds)."""
