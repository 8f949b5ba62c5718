r"""GRIT transformer layer: attention over node pairs that updates node and pair states."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

__all__ = ["GRITLayer", "signed_sqrt"]

_ACTS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}
_NORMS = ("batch", "layer", "none")


class _SignedSqrt(torch.autograd.Function):
    # Saves only the input for backward (the composed form would keep |s|, its clamp and sqrt),
    # which matters because it runs on every pair of every layer.
    @staticmethod
    def forward(ctx, s: Tensor, eps: float) -> Tensor:
        ctx.save_for_backward(s)
        ctx.eps = eps
        return s / s.abs().clamp_min(eps).sqrt()

    @staticmethod
    def backward(ctx, grad: Tensor):
        (s,) = ctx.saved_tensors
        a = s.abs()
        slope = torch.where(a >= ctx.eps, 0.5 * a.clamp_min(ctx.eps).rsqrt(),
                            torch.full_like(a, ctx.eps ** -0.5))
        return grad * slope, None


def signed_sqrt(s: Tensor, eps: float = 1e-12) -> Tensor:
    r""":math:`\rho(s) = \operatorname{sign}(s)\sqrt{|s|}`, written as
    :math:`s / \sqrt{\max(|s|, \epsilon)}`.

    Equal to the exact value for :math:`|s| \ge \epsilon`; below it the function is linear
    (error :math:`\le \sqrt{\epsilon} = 10^{-6}`), so the gradient is bounded by
    :math:`1/\sqrt{\epsilon}` instead of infinite at 0 (the plain form
    :math:`\sqrt{\mathrm{relu}(s)} - \sqrt{\mathrm{relu}(-s)}` gives NaN gradients at :math:`s = 0`).
    First derivatives only.
    """
    return _SignedSqrt.apply(s, eps)


def _norm(norm: nn.Module, t: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Applies ``norm`` to the valid rows only (``mask``), so padding never enters BatchNorm."""
    if mask is None:
        return norm(t)
    out = t.new_zeros(t.shape)
    out[mask] = norm(t[mask])
    return out


class GRITLayer(nn.Module):
    r"""The GRIT transformer layer from `"Graph Inductive Biases in Transformers without Message
    Passing" <https://arxiv.org/abs/2305.17589>`_ (Ma et al., ICML 2023).

    Every node :math:`i` attends to a set of keys :math:`j` (all nodes of its graph, or the pairs
    within :math:`K` hops) through pair states :math:`\mathbf{e}_{ij}`; per head,

    .. math::
        \hat{\mathbf{e}}_{ij} &= \sigma\Big(\rho\big((\mathbf{W}_Q\mathbf{x}_i +
            \mathbf{W}_K\mathbf{x}_j) \odot \mathbf{W}_{Ew}\mathbf{e}_{ij}\big) +
            \mathbf{W}_{Eb}\mathbf{e}_{ij}\Big), \qquad
            \rho(s) = \operatorname{sign}(s)\sqrt{|s|}

        \alpha_{ij} &= \operatorname{softmax}_j\big(\operatorname{clamp}_{\pm c}
            (\mathbf{W}_A\hat{\mathbf{e}}_{ij})\big)

        \hat{\mathbf{x}}_i &= \sum_j \alpha_{ij}\,\big(\mathbf{W}_V\mathbf{x}_j +
            \mathbf{W}_{Ev}\hat{\mathbf{e}}_{ij}\big)

    then heads are concatenated, the degree scaler injects
    :math:`\hat{\mathbf{x}}_i \leftarrow \hat{\mathbf{x}}_i\odot\boldsymbol\theta_1 +
    \log(1+d_i)\,\hat{\mathbf{x}}_i\odot\boldsymbol\theta_2`, and

    .. math::
        \mathbf{x}_i' &= \mathrm{N}_2\big(\mathbf{h}_i + \mathrm{FFN}(\mathbf{h}_i)\big),\quad
            \mathbf{h}_i = \mathrm{N}_1\big(\mathbf{x}_i + \mathbf{O}_x\hat{\mathbf{x}}_i\big)

        \mathbf{e}_{ij}' &= \mathrm{N}_e\big(\mathbf{e}_{ij} + \mathbf{O}_e\hat{\mathbf{e}}_{ij}\big)

    with :math:`\mathrm{FFN}(\mathbf{h}) = \mathbf{W}_2\,\sigma(\mathbf{W}_1\mathbf{h})` (width
    :math:`2C`) and :math:`\mathrm{N}` BatchNorm by default. Shapes of the weights follow the
    typo correction in the authors' README: :math:`\mathbf{W}_A \in \mathbb{R}^{1\times d'}` and
    :math:`\mathbf{W}_{Ev} \in \mathbb{R}^{d\times d'}` per head.

    The sparse :meth:`forward` works on a list of pairs (``pair_index``) and PyG's segment
    softmax, so time and memory grow with the number of pairs (:math:`\sum_g n_g^2` for full
    attention), not with a padded batch. :meth:`forward_dense` is the same layer (same weights)
    on padded ``[B, n, n, C]`` pair tensors, kept for comparison and testing. The layer is not
    a ``MessagePassing`` subclass because it returns a new pair tensor as well as node states.

    Args:
        channels (int): :math:`C`, width of node and pair states.
        heads (int): number of heads; ``channels`` must be divisible by it. (default: ``4``)
        dropout (float): dropout on the attention output, the FFN and the pair update.
            (default: ``0.0``)
        attn_dropout (float): dropout on the attention weights :math:`\alpha_{ij}`.
            (default: ``0.0``)
        clamp (float, optional): clamp of the attention logits, :math:`c`; ``None`` for none.
            (default: ``5.0``)
        deg_scaler (bool): use the degree scaler; then ``deg`` must be passed. (default: ``True``)
        norm (str): ``'batch'`` (paper), ``'layer'`` or ``'none'``. (default: ``'batch'``)
        bn_momentum (float): BatchNorm momentum. (default: ``0.1``)
        act (str): :math:`\sigma`, ``'relu'`` (paper), ``'gelu'`` or ``'silu'``. (default: ``'relu'``)
        update_pairs (bool): return the updated pair states :math:`\mathbf{e}'`; otherwise the
            input pair states are returned unchanged. (default: ``True``)

    Shapes:
        - **input:** node states ``x (|V|, C)``, ``pair_index (2, P)`` with row 0 the key
          :math:`j` and row 1 the query :math:`i` (PyG's source -> target), pair states
          ``pair_attr (P, C)``, node degrees ``deg (|V|,)``
        - **output:** ``x' (|V|, C)``, ``pair_attr' (P, C)``
    """

    def __init__(self, channels: int, heads: int = 4, dropout: float = 0.0,
                 attn_dropout: float = 0.0, clamp: Optional[float] = 5.0,
                 deg_scaler: bool = True, norm: str = "batch", bn_momentum: float = 0.1,
                 act: str = "relu", update_pairs: bool = True):
        super().__init__()
        if heads < 1 or channels % heads:
            raise ValueError(f"channels={channels} must be divisible by heads={heads} (>= 1)")
        if norm not in _NORMS:
            raise ValueError(f"norm={norm!r} is not one of {', '.join(_NORMS)}")
        if act not in _ACTS:
            raise ValueError(f"act={act!r} is not one of {', '.join(_ACTS)}")
        if clamp is not None and clamp <= 0:
            raise ValueError(f"clamp must be positive or None, got {clamp}")
        self.channels, self.heads, self.head_dim = channels, heads, channels // heads
        self.dropout, self.attn_dropout = dropout, attn_dropout
        self.clamp, self.deg_scaler, self.norm = clamp, deg_scaler, norm
        self.act_name, self.update_pairs = act, update_pairs
        self.act = _ACTS[act]
        C, H, d = channels, heads, self.head_dim

        self.lin_q = nn.Linear(C, C, bias=True)
        self.lin_k = nn.Linear(C, C, bias=False)
        self.lin_v = nn.Linear(C, C, bias=False)
        self.lin_e = nn.Linear(C, 2 * C, bias=True)   # [W_Ew; W_Eb]
        self.att = nn.Parameter(torch.empty(H, d))     # W_A per head
        self.lin_ev = nn.Parameter(torch.empty(H, d, d))  # W_Ev per head
        self.deg_coef = nn.Parameter(torch.empty(C, 2)) if deg_scaler else None
        self.out_x = nn.Linear(C, C)
        self.out_e = nn.Linear(C, C)
        self.ffn1 = nn.Linear(C, 2 * C)
        self.ffn2 = nn.Linear(2 * C, C)

        def make_norm() -> nn.Module:
            if norm == "batch":
                return nn.BatchNorm1d(C, momentum=bn_momentum)
            return nn.LayerNorm(C) if norm == "layer" else nn.Identity()
        self.norm_x1, self.norm_x2, self.norm_e = make_norm(), make_norm(), make_norm()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin_q, self.lin_k, self.lin_v, self.lin_e):
            lin.reset_parameters()  # PyTorch's uniform bias; a zero bias of W_Ew would put the
            nn.init.xavier_normal_(lin.weight)  # zero-feature pairs at rho's singular point 0
        nn.init.xavier_normal_(self.att)
        nn.init.xavier_normal_(self.lin_ev)
        if self.deg_coef is not None:
            # xavier-scaled random init of (theta_1, theta_2), as the reference implementation
            nn.init.normal_(self.deg_coef, std=math.sqrt(2.0 / (self.channels + 2)))
        for m in (self.out_x, self.out_e, self.ffn1, self.ffn2, self.norm_x1, self.norm_x2,
                  self.norm_e):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    # ------------------------------------------------------------------ shared pieces
    def _pair_scores(self, qk: Tensor, e: Tensor) -> Tuple[Tensor, Tensor]:
        """``qk = W_Q x_i + W_K x_j`` ``[..., H, d]``, ``e`` ``[..., C]`` -> ``(ê [..., H, d],
        logits [..., H])``."""
        ew, eb = self.lin_e(e).unflatten(-1, (2, self.heads, self.head_dim)).unbind(-3)
        e_hat = self.act(signed_sqrt(qk * ew) + eb)
        logits = (e_hat * self.att).sum(-1)
        if self.clamp is not None:
            logits = logits.clamp(-self.clamp, self.clamp)
        return e_hat, logits

    def _node_update(self, x: Tensor, x_hat: Tensor, deg: Optional[Tensor],
                     mask: Optional[Tensor]) -> Tensor:
        h = F.dropout(x_hat, self.dropout, self.training)
        if self.deg_coef is not None:
            log_deg = torch.log1p(deg.to(h.dtype)).unsqueeze(-1)
            h = h * self.deg_coef[:, 0] + h * log_deg * self.deg_coef[:, 1]
        h = _norm(self.norm_x1, x + self.out_x(h), mask)
        f = self.ffn2(F.dropout(self.act(self.ffn1(h)), self.dropout, self.training))
        return _norm(self.norm_x2, h + f, mask)

    def _pair_update(self, e: Tensor, e_hat: Tensor, mask: Optional[Tensor]) -> Tensor:
        if not self.update_pairs:
            return e
        o = self.out_e(F.dropout(e_hat, self.dropout, self.training))
        return _norm(self.norm_e, e + o, mask)

    def _check(self, x: Tensor, pair_attr: Tensor, deg: Optional[Tensor]) -> None:
        if x.size(-1) != self.channels or pair_attr.size(-1) != self.channels:
            raise ValueError(f"x and pair_attr must have {self.channels} channels, got "
                             f"{x.size(-1)} and {pair_attr.size(-1)}")
        if self.deg_coef is not None and deg is None:
            raise ValueError("deg (node degrees) is required when deg_scaler=True")

    # ------------------------------------------------------------------ sparse (pairs as a list)
    def forward(self, x: Tensor, pair_index: Tensor, pair_attr: Tensor,
                deg: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        self._check(x, pair_attr, deg)
        if pair_index.dim() != 2 or pair_index.size(0) != 2 or \
                pair_index.size(1) != pair_attr.size(0):
            raise ValueError(f"pair_index must be [2, P] with P = pair_attr.size(0) = "
                             f"{pair_attr.size(0)}, got {tuple(pair_index.shape)}")
        N, H, d = x.size(0), self.heads, self.head_dim
        src, dst = pair_index[0], pair_index[1]
        q = self.lin_q(x).view(N, H, d)
        k = self.lin_k(x).view(N, H, d)
        v = self.lin_v(x).view(N, H, d)
        e_hat, logits = self._pair_scores(q[dst] + k[src], pair_attr)
        alpha = softmax(logits, dst, num_nodes=N)                      # [P, H]
        alpha = F.dropout(alpha, self.attn_dropout, self.training).unsqueeze(-1)
        msg = torch.cat([v[src] * alpha, e_hat * alpha], dim=-1)       # [P, H, 2d]
        agg_v, agg_e = scatter(msg, dst, 0, dim_size=N, reduce="sum").split(d, dim=-1)
        x_hat = agg_v + torch.einsum("nhd,hdc->nhc", agg_e, self.lin_ev)
        x_out = self._node_update(x, x_hat.reshape(N, -1), deg, None)
        e_out = self._pair_update(pair_attr, e_hat.reshape(-1, self.channels), None)
        return x_out, e_out

    # ------------------------------------------------------------------ padded dense twin
    def forward_dense(self, x: Tensor, mask: Tensor, pair_attr: Tensor, pair_mask: Tensor,
                      deg: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        r"""The same layer on padded tensors: ``x (B, n, C)``, ``mask (B, n)``,
        ``pair_attr (B, n, n, C)`` with ``[b, i, j]`` = query ``i``, key ``j``,
        ``pair_mask (B, n, n)`` (which pairs exist), ``deg (B, n)``. Memory is
        :math:`O(B n_{max}^2 C)`. Padded entries of the outputs are zero."""
        self._check(x, pair_attr, deg)
        B, n, _ = x.shape
        H, d = self.heads, self.head_dim
        q = self.lin_q(x).view(B, n, H, d)
        k = self.lin_k(x).view(B, n, H, d)
        v = self.lin_v(x).view(B, n, H, d)
        e_hat, logits = self._pair_scores(q.unsqueeze(2) + k.unsqueeze(1), pair_attr)
        logits = logits.masked_fill(~pair_mask.unsqueeze(-1), torch.finfo(logits.dtype).min)
        alpha = torch.softmax(logits, dim=2).masked_fill(~pair_mask.unsqueeze(-1), 0.0)
        alpha = F.dropout(alpha, self.attn_dropout, self.training)   # [B, i, j, H]
        agg_v = torch.einsum("bijh,bjhd->bihd", alpha, v)
        agg_e = torch.einsum("bijh,bijhd->bihd", alpha, e_hat)
        x_hat = agg_v + torch.einsum("bihd,hdc->bihc", agg_e, self.lin_ev)
        x_out = self._node_update(x, x_hat.reshape(B, n, -1), deg, mask)
        e_out = self._pair_update(pair_attr, e_hat.reshape(B, n, n, -1), pair_mask)
        return x_out, e_out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.channels}, heads={self.heads}, norm={self.norm}, "
                f"deg_scaler={self.deg_scaler})")
