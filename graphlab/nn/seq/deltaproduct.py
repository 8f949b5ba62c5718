"""DeltaProduct (``DeltaProduct``): ``n_h`` generalised Householder updates of a matrix state
per token, trained in the chunked WY form of :mod:`graphlab.nn.seq.delta.chunk` (twin:
:mod:`graphlab.nn.seq.delta.naive`) or with fla's kernels on CUDA."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn.seq.base import SequenceCore, causal_depthwise_conv, conv_step
from graphlab.nn.seq.delta.chunk import delta_product
from graphlab.registry import register_seq_core


@register_seq_core("deltaproduct")
class DeltaProduct(SequenceCore):
    r"""DeltaProduct core from `"DeltaProduct: Improving State-Tracking in Linear RNNs via Householder
    Products" <https://arxiv.org/abs/2502.10297>`_ (Siems et al., 2025); with ``num_householder=1``
    it is DeltaNet (:class:`DeltaNet`).

    Per head, :math:`n_h` generalised Householder updates per token (fla's state layout
    :math:`S \in \mathbb{R}^{K\times V}`):

    .. math::
        S_{t,0} = \alpha_t S_{t-1},\quad
        S_{t,j} = (I - \beta_{t,j} k_{t,j} k_{t,j}^\top) S_{t,j-1} + \beta_{t,j} k_{t,j} v_{t,j}^\top,\quad
        S_t = S_{t,n_h},\quad o_t = S_t^\top q_t,

    so the transition is :math:`\alpha_t\prod_j (I - \beta_{t,j}k_{t,j}k_{t,j}^\top)` (identity plus
    rank :math:`n_h`). :math:`q, k, v` come from linear maps followed by a short causal depthwise
    convolution and SiLU; :math:`\|k\| = \|q\| = 1` (L2 norm), :math:`q` is scaled by
    :math:`K^{-1/2}`; :math:`\beta = \sigma(W_\beta x)`, times 2 with ``allow_neg_eigval`` so that
    :math:`\beta \in (0, 2)` and each factor has eigenvalue :math:`1 - \beta \in (-1, 1)`
    (`Grazzi et al., ICLR 2025 <https://arxiv.org/abs/2411.12537>`_). The optional gate is
    :math:`\alpha_t = \exp(-e^{A_{\log}}\,\mathrm{softplus}(W_a x_t + b_{dt}))` (Gated DeltaNet).
    Output: per-head RMSNorm, then a linear map.

    Training uses the chunked WY form (:mod:`graphlab.nn.seq.delta.chunk`); on CUDA it dispatches
    to ``fla`` when importable.

    Args:
        d_model (int): token width :math:`D`.
        num_heads (int): number of heads; must divide ``d_model``. (default: ``4``)
        num_householder (int): :math:`n_h`. (default: ``2``)
        allow_neg_eigval (bool): :math:`\beta \in (0, 2)`. (default: ``True``, as fla's GatedDeltaProduct)
        use_gate (bool): the forget gate :math:`\alpha_t`. (default: ``True``, as fla's GatedDeltaProduct)
        use_short_conv (bool): short convolution on :math:`q, k, v`. (default: ``True``)
        conv_size (int): its width. (default: ``4``)
        chunk_size (int): chunk length of the WY form. (default: ``64``)
        norm_eps (float): RMSNorm epsilon. (default: ``1e-5``)
        use_fla (bool): dispatch to fla on CUDA when importable. (default: ``True``)

    Shapes:
        - **input:** ``x`` :math:`(B, L, D)`, ``mask`` :math:`(B, L)` or ``None``
        - **output:** :math:`(B, L, D)`
    """

    def __init__(self, d_model: int, num_heads: int = 4, num_householder: int = 2,
                 allow_neg_eigval: bool = True, use_gate: bool = True, use_short_conv: bool = True,
                 conv_size: int = 4, chunk_size: int = 64, norm_eps: float = 1e-5, use_fla: bool = True):
        super().__init__(d_model)
        name = type(self).__name__
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"{name}: num_heads={num_heads} must be >= 1 and divide d_model={d_model}")
        if num_householder < 1:
            raise ValueError(f"{name}: num_householder must be >= 1, got {num_householder}")
        if conv_size < 1 or chunk_size < 1:
            raise ValueError(f"{name}: conv_size and chunk_size must be >= 1")
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.num_householder, self.allow_neg_eigval, self.use_gate = num_householder, allow_neg_eigval, use_gate
        self.use_short_conv, self.conv_size, self.chunk_size = use_short_conv, conv_size, chunk_size
        self.norm_eps, self.use_fla = norm_eps, use_fla
        D, H, n_h = d_model, num_heads, num_householder
        self.q_proj = nn.Linear(D, D, bias=False)
        self.k_proj = nn.Linear(D, n_h * D, bias=False)
        self.v_proj = nn.Linear(D, n_h * D, bias=False)
        self.b_proj = nn.Linear(D, n_h * H, bias=False)
        width = (1 + 2 * n_h) * D
        if use_short_conv:
            self.conv_weight = nn.Parameter(torch.empty(width, conv_size))
        if use_gate:
            self.a_proj = nn.Linear(D, H, bias=False)
            self.A_log = nn.Parameter(torch.empty(H))
            self.dt_bias = nn.Parameter(torch.empty(H))
        self.norm_weight = nn.Parameter(torch.empty(self.head_dim))
        self.o_proj = nn.Linear(D, D, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.b_proj, self.o_proj):
            lin.reset_parameters()
        if self.use_short_conv:
            bound = 1.0 / math.sqrt(self.conv_size)
            nn.init.uniform_(self.conv_weight, -bound, bound)
        if self.use_gate:
            self.a_proj.reset_parameters()
            with torch.no_grad():  # Gated DeltaNet / Mamba2 init: A ~ U(0, 16), dt ~ logU(1e-3, 1e-1)
                self.A_log.copy_(torch.log(torch.empty(self.num_heads).uniform_(1e-4, 16)))
                dt = torch.exp(torch.rand(self.num_heads) * (math.log(0.1) - math.log(1e-3))
                               + math.log(1e-3)).clamp_min(1e-4)
                self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        nn.init.ones_(self.norm_weight)

    def _repr_keys(self):
        return ("num_heads", "num_householder", "allow_neg_eigval", "use_gate")

    def _qkv(self, x: Tensor) -> Tensor:
        return torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], -1)

    def _heads(self, qkv: Tensor, x: Tensor):
        """Splits the (convolved) projections into normalised q, k, v, beta and the log-gate."""
        lead = qkv.shape[:-1]
        D, H, Kd, n_h = self.d_model, self.num_heads, self.head_dim, self.num_householder
        q, k, v = qkv.split([D, n_h * D, n_h * D], -1)
        q = F.normalize(q.reshape(*lead, H, Kd), dim=-1) * Kd ** -0.5
        k = F.normalize(k.reshape(*lead, n_h, H, Kd), dim=-1)
        v = v.reshape(*lead, n_h, H, Kd)
        beta = torch.sigmoid(self.b_proj(x)).reshape(*lead, n_h, H)
        if self.allow_neg_eigval:
            beta = 2.0 * beta
        g = None
        if self.use_gate:
            g = -torch.exp(self.A_log) * F.softplus(self.a_proj(x) + self.dt_bias)
        return q, k, v, beta, g

    def _out(self, o: Tensor) -> Tensor:
        o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + self.norm_eps) * self.norm_weight
        return self.o_proj(o.flatten(-2))

    def _forward(self, x: Tensor) -> Tensor:
        qkv = self._qkv(x)
        if self.use_short_conv:
            qkv = F.silu(causal_depthwise_conv(qkv, self.conv_weight, None))
        q, k, v, beta, g = self._heads(qkv, x)
        o = delta_product(q, k, v, beta, g, chunk_size=self.chunk_size, use_fla=self.use_fla)
        return self._out(o)

    def init_state(self, batch_size: int) -> Tuple[Optional[Tensor], Tensor]:
        p = self._param()
        buf = None
        if self.use_short_conv:
            buf = p.new_zeros(batch_size, self.conv_weight.size(0), self.conv_size - 1)
        return buf, p.new_zeros(batch_size, self.num_heads, self.head_dim, self.head_dim)

    def step(self, x_t: Tensor, state) -> Tuple[Tensor, Tuple[Optional[Tensor], Tensor]]:
        buf, S = state
        qkv = self._qkv(x_t)
        if self.use_short_conv:
            qkv, buf = conv_step(qkv, buf, self.conv_weight, None)
            qkv = F.silu(qkv)
        q, k, v, beta, g = self._heads(qkv, x_t)
        if g is not None:
            S = S * torch.exp(g)[..., None, None]
        for j in range(self.num_householder):
            err = v[:, j] - torch.einsum("bhkv,bhk->bhv", S, k[:, j])
            S = S + beta[:, j, :, None, None] * k[:, j].unsqueeze(-1) * err.unsqueeze(-2)
        o = torch.einsum("bhkv,bhk->bhv", S, q)
        return self._out(o), (buf, S)
