r"""Permutation-equivariant linear layers of order 1 and 2 on batches of sets / subgraphs.

Maron, Ben-Hamu, Shamir, Lipman, "Invariant and Equivariant Graph Networks", ICLR 2019,
https://arxiv.org/abs/1812.09902. A linear map between order-:math:`k` and order-:math:`l`
tensors over :math:`n` elements that commutes with every permutation of the elements is a
combination of :math:`\mathrm{bell}(k+l)` basis maps: 2 maps 1→1, 5 maps 1→2, 5 maps 2→1 and
15 maps 2→2 (plus ``bell(l)`` constant biases: 1 for order 1, 2 for order 2).

Ragged, block-diagonal layout. A batch holds ``S`` sets ("subgraphs") of different sizes
:math:`n_s`, without padding:

* an order-1 tensor is ``[M1, C]`` with one row per *slot* :math:`(s, i)`,
  :math:`M_1 = \sum_s n_s`, slots of a set contiguous and in position order;
* an order-2 tensor is ``[M2, C]`` with one row per *pair* :math:`(s, i, j)`,
  :math:`M_2 = \sum_s n_s^2`, row-major inside each set.

:class:`SetLayout` holds the index vectors that link the two. Memory is
:math:`O(\sum_s n_s^2 C)`, i.e. each set costs what its own dense tensor costs.

The pooling maps (row/column sums, totals) use ``reduce='sum'`` or ``'mean'``; the mean divides
by :math:`n_s` per pooled axis, which keeps activations comparable across set sizes and spans the
same space for any fixed :math:`n` (the count :math:`n_s` is itself invariant).

:func:`equivariant_basis_dense` lists every basis map explicitly on one dense tensor (float64
reference and the source of the span test); :class:`EquivariantLinear` is the grouped fast path.
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

NUM_BASIS = {(1, 1): 2, (1, 2): 5, (2, 1): 5, (2, 2): 15}
NUM_BIAS = {1: 1, 2: 2}
REDUCES = ("sum", "mean")


class SetLayout:
    r"""Index vectors of a batch of ``S`` sets of sizes ``sizes`` in the ragged layout.

    Args:
        sizes (Tensor): ``[S]`` set sizes :math:`n_s \ge 0` (long).

    Attributes (all long, on ``sizes.device``): ``slot_set [M1]``, ``slot_pos [M1]``,
    ``slot_ptr [S+1]``, ``pair_set [M2]``, ``pair_row [M2]`` / ``pair_col [M2]`` (slot of
    :math:`i` / :math:`j`), ``pair_t [M2]`` (index of the transposed pair :math:`(s, j, i)`),
    ``diag [M1]`` (pair index of :math:`(s, i, i)`), ``pair_ptr [S+1]``.
    """

    def __init__(self, sizes: Tensor):
        if sizes.dim() != 1:
            raise ValueError(f"sizes must be 1-D, got shape {tuple(sizes.shape)}")
        if bool((sizes < 0).any()):
            raise ValueError("sizes must be non-negative")
        sizes = sizes.long()
        dev = sizes.device
        self.sizes = sizes
        self.num_sets = S = sizes.numel()
        zero = sizes.new_zeros(1)
        self.slot_ptr = torch.cat([zero, sizes.cumsum(0)])
        self.num_slots = M1 = int(self.slot_ptr[-1])
        self.slot_set = torch.repeat_interleave(torch.arange(S, device=dev), sizes)
        self.slot_pos = torch.arange(M1, device=dev) - self.slot_ptr[self.slot_set]
        sq = sizes * sizes
        self.pair_ptr = torch.cat([zero, sq.cumsum(0)])
        self.num_pairs = M2 = int(self.pair_ptr[-1])
        # Pair (s, i, j): row slot repeats n_s times, column runs over the set's slots.
        n_of_slot = sizes[self.slot_set]
        self.pair_row = torch.repeat_interleave(torch.arange(M1, device=dev), n_of_slot)
        self.pair_set = self.slot_set[self.pair_row]
        start = torch.repeat_interleave(torch.cumsum(n_of_slot, 0) - n_of_slot, n_of_slot)
        col_pos = torch.arange(M2, device=dev) - start
        self.pair_col = self.slot_ptr[self.pair_set] + col_pos
        row_pos = self.slot_pos[self.pair_row]
        n_pair = sizes[self.pair_set]
        base = self.pair_ptr[self.pair_set]
        self.pair_t = base + col_pos * n_pair + row_pos
        self.diag = self.pair_ptr[self.slot_set] + self.slot_pos * n_of_slot + self.slot_pos

    def pair_index(self, slot_i: Tensor, slot_j: Tensor) -> Tensor:
        """Pair index of ``(s, i, j)`` from two slots of the same set."""
        s = self.slot_set[slot_i]
        return self.pair_ptr[s] + self.slot_pos[slot_i] * self.sizes[s] + self.slot_pos[slot_j]


def _pool(x: Tensor, index: Tensor, size: int, denom: Optional[Tensor]) -> Tensor:
    out = scatter(x, index, dim=0, dim_size=size, reduce="sum")
    return out if denom is None else out / denom.clamp(min=1).to(out.dtype).unsqueeze(-1)


class EquivariantLinear(nn.Module):
    r"""Linear layer equivariant to permutations of each set, order ``in_order`` →
    ``out_order`` (1 or 2), spanning the full basis of Maron et al. (2019).

    .. math::
        \mathbf{Y} = \sum_{\mu=1}^{\mathrm{bell}(k+l)} L_\mu(\mathbf{X})\,\mathbf{W}_\mu
        + \sum_{\nu=1}^{\mathrm{bell}(l)} C_\nu\,\mathbf{b}_\nu

    where :math:`L_\mu` are the basis maps of :func:`equivariant_basis_dense` (e.g. for 2→2:
    identity, transpose, diagonal extraction, row/column/total pooling, each broadcast to the
    diagonal, rows, columns or all entries) and :math:`C_\nu` the constant equivariant tensors
    (all-ones and, for order 2, the identity).

    Args:
        in_order (int): order of the input tensor (1 or 2).
        out_order (int): order of the output tensor (1 or 2).
        in_channels (int): input channels :math:`C_{in}`.
        out_channels (int): output channels :math:`C_{out}`.
        reduce (str, optional): ``'mean'`` or ``'sum'`` for the pooling maps (default: ``'mean'``).
        bias (bool, optional): learn the constant equivariant biases (default: ``True``).

    Shapes:
        - input: ``x [M1, C_in]`` (order 1) or ``[M2, C_in]`` (order 2), and a
          :class:`SetLayout`
        - output: ``[M1, C_out]`` or ``[M2, C_out]``
    """

    def __init__(self, in_order: int, out_order: int, in_channels: int, out_channels: int,
                 reduce: str = "mean", bias: bool = True):
        super().__init__()
        if (in_order, out_order) not in NUM_BASIS:
            raise ValueError(f"in_order/out_order must be 1 or 2, got {in_order}/{out_order}")
        if reduce not in REDUCES:
            raise ValueError(f"reduce={reduce!r} is not one of {REDUCES}")
        self.in_order, self.out_order = in_order, out_order
        self.in_channels, self.out_channels, self.reduce = in_channels, out_channels, reduce
        self.num_basis = NUM_BASIS[(in_order, out_order)]
        self.weight = nn.Parameter(torch.empty(self.num_basis, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(NUM_BIAS[out_order], out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Each output entry sums num_basis terms of in_channels inputs: scale as fan-in.
        bound = 1.0 / math.sqrt(self.in_channels * self.num_basis)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, layout: SetLayout) -> Tensor:
        rows = layout.num_pairs if self.in_order == 2 else layout.num_slots
        if x.dim() != 2 or x.size(0) != rows or x.size(1) != self.in_channels:
            raise ValueError(f"x must have shape [{rows}, {self.in_channels}] for an order-"
                             f"{self.in_order} input, got {tuple(x.shape)}")
        W = self.weight
        n = layout.sizes if self.reduce == "mean" else None
        n2 = layout.sizes * layout.sizes if self.reduce == "mean" else None
        S, M1 = layout.num_sets, layout.num_slots
        if self.in_order == 1:
            tot = _pool(x, layout.slot_set, S, n)                      # [S, C]
            if self.out_order == 1:
                out = x @ W[0] + (tot @ W[1])[layout.slot_set]
            else:
                diag = x @ W[0] + (tot @ W[3])[layout.slot_set]
                out = ((x @ W[1])[layout.pair_row] + (x @ W[2])[layout.pair_col]
                       + (tot @ W[4])[layout.pair_set])
                out.index_add_(0, layout.diag, diag)
        else:
            d = x[layout.diag]                                         # [M1, C]
            r = _pool(x, layout.pair_row, M1, n[layout.slot_set] if n is not None else None)
            c = _pool(x, layout.pair_col, M1, n[layout.slot_set] if n is not None else None)
            s = _pool(x, layout.pair_set, S, n2)
            t = _pool(d, layout.slot_set, S, n)
            if self.out_order == 1:
                out = d @ W[0] + r @ W[1] + c @ W[2] + (s @ W[3] + t @ W[4])[layout.slot_set]
            else:
                # Few large matmuls: per pair [W0 | W1], per slot (d, r, c) -> (diag, row, col),
                # per set (s, t) -> (diag, const); the transpose is gathered on the output side.
                C = self.out_channels
                y = x @ torch.cat([W[0], W[1]], dim=1)
                dr = torch.cat([d, r, c], dim=1) @ torch.cat(
                    [torch.cat([W[2], W[3], W[4]], 0), torch.cat([W[7], W[9], W[11]], 0),
                     torch.cat([W[8], W[10], W[12]], 0)], dim=1)
                st = torch.cat([s, t], dim=1) @ torch.cat(
                    [torch.cat([W[5], W[6]], 0), torch.cat([W[13], W[14]], 0)], dim=1)
                diag = dr[:, :C] + st[layout.slot_set, :C]
                out = (y[:, :C] + y[layout.pair_t, C:] + dr[layout.pair_row, C:2 * C]
                       + dr[layout.pair_col, 2 * C:] + st[layout.pair_set, C:])
                out.index_add_(0, layout.diag, diag)
        if self.bias is not None:
            if self.out_order == 1:
                out = out + self.bias[0]
            else:
                out = out + self.bias[0]
                out.index_add_(0, layout.diag, self.bias[1].expand(M1, -1))
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_order}->{self.out_order}, {self.in_channels}, "
                f"{self.out_channels}, basis={self.num_basis}, reduce={self.reduce})")


def equivariant_basis_dense(x: Tensor, in_order: int, out_order: int,
                            reduce: str = "mean") -> List[Tensor]:
    r"""Every basis map of :class:`EquivariantLinear` applied to one dense tensor, in the order
    of the layer's weight slots (the naive reference).

    Args:
        x (Tensor): ``[n, C]`` (order 1) or ``[n, n, C]`` (order 2).
        in_order, out_order (int): 1 or 2.
        reduce (str): ``'mean'`` or ``'sum'``.

    Returns:
        list of ``[n, C]`` or ``[n, n, C]`` tensors (``len == NUM_BASIS[(in_order, out_order)]``).
    """
    if (in_order, out_order) not in NUM_BASIS:
        raise ValueError(f"in_order/out_order must be 1 or 2, got {in_order}/{out_order}")
    n = x.size(0)
    m = float(max(n, 1)) if reduce == "mean" else 1.0
    eye = torch.eye(n, dtype=x.dtype, device=x.device).unsqueeze(-1)

    def on_diag(v):                       # [n, C] -> [n, n, C]
        return eye * v.unsqueeze(1)

    def rows(v):                          # out_ij = v_i
        return v.unsqueeze(1).expand(n, n, -1)

    def cols(v):                          # out_ij = v_j
        return v.unsqueeze(0).expand(n, n, -1)

    def const(v, k):                      # v: [C] broadcast to order k
        return v.expand(n, -1) if k == 1 else v.expand(n, n, -1)

    if in_order == 1:
        tot = x.sum(0) / m
        if out_order == 1:
            return [x, const(tot, 1)]
        return [on_diag(x), rows(x), cols(x), on_diag(const(tot, 1)), const(tot, 2)]
    d = torch.diagonal(x, dim1=0, dim2=1).T
    r, c = x.sum(1) / m, x.sum(0) / m
    s, t = x.sum((0, 1)) / (m * m), d.sum(0) / m
    if out_order == 1:
        return [d, r, c, const(s, 1), const(t, 1)]
    return [x, x.transpose(0, 1), on_diag(d), on_diag(r), on_diag(c), on_diag(const(s, 1)),
            on_diag(const(t, 1)), rows(d), cols(d), rows(r), cols(r), rows(c), cols(c),
            const(s, 2), const(t, 2)]


def equivariant_linear_dense(x: Tensor, layer: EquivariantLinear) -> Tensor:
    """Naive reference of ``layer`` on one dense set tensor ``[n, C]`` / ``[n, n, C]``."""
    maps = equivariant_basis_dense(x, layer.in_order, layer.out_order, layer.reduce)
    out = sum(L @ layer.weight[k] for k, L in enumerate(maps))
    if layer.bias is not None:
        n = x.size(0)
        out = out + layer.bias[0]
        if layer.out_order == 2:
            out = out + torch.eye(n, dtype=x.dtype, device=x.device).unsqueeze(-1) * layer.bias[1]
    return out
