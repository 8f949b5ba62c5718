"""DeltaNet (``DeltaNet``): the delta rule with one Householder factor per token, as a
:class:`~graphlab.nn.seq.deltaproduct.DeltaProduct` with ``num_householder=1``."""
from __future__ import annotations

from graphlab.nn.seq.deltaproduct import DeltaProduct
from graphlab.registry import register_seq_core


@register_seq_core("deltanet")
class DeltaNet(DeltaProduct):
    r"""DeltaNet core from `"Parallelizing Linear Transformers with the Delta Rule over Sequence
    Length" <https://arxiv.org/abs/2406.06484>`_ (Yang et al., NeurIPS 2024), with the negative
    eigenvalue option of `"Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues"
    <https://arxiv.org/abs/2411.12537>`_ and the optional gate of Gated DeltaNet
    (`arXiv 2412.06464 <https://arxiv.org/abs/2412.06464>`_).

    .. math::
        S_t = \alpha_t S_{t-1}(I - \beta_t k_t k_t^\top) + \beta_t v_t k_t^\top,\qquad
        o_t = S_t q_t,\qquad \|k_t\| = 1,

    :math:`\beta_t = \sigma(W_\beta x_t) \in (0, 1)`, or :math:`2\sigma(\cdot) \in (0, 2)` with
    ``allow_neg_eigval`` (the factor :math:`I - \beta kk^\top` then has eigenvalue down to
    :math:`-1`). Everything else (short convolution, L2-normalised :math:`q, k`, RMSNorm output,
    chunked WY form, fla dispatch) is :class:`DeltaProduct` with one Householder factor per token.

    Args:
        d_model (int): token width :math:`D`.
        num_heads (int): number of heads; must divide ``d_model``. (default: ``4``)
        allow_neg_eigval (bool): :math:`\beta \in (0, 2)`. (default: ``False``, as fla's DeltaNet)
        use_gate (bool): forget gate :math:`\alpha_t`; off means :math:`\alpha_t = 1`. (default: ``False``)
        use_short_conv (bool): short convolution on :math:`q, k, v`. (default: ``True``)
        conv_size (int): its width. (default: ``4``)
        chunk_size (int): chunk length of the WY form. (default: ``64``)
        norm_eps (float): RMSNorm epsilon. (default: ``1e-5``)
        use_fla (bool): dispatch to fla on CUDA when importable. (default: ``True``)

    Shapes:
        - **input:** ``x`` :math:`(B, L, D)`, ``mask`` :math:`(B, L)` or ``None``
        - **output:** :math:`(B, L, D)`
    """

    def __init__(self, d_model: int, num_heads: int = 4, allow_neg_eigval: bool = False,
                 use_gate: bool = False, use_short_conv: bool = True, conv_size: int = 4,
                 chunk_size: int = 64, norm_eps: float = 1e-5, use_fla: bool = True):
        super().__init__(d_model, num_heads, 1, allow_neg_eigval, use_gate, use_short_conv,
                         conv_size, chunk_size, norm_eps, use_fla)

    def _repr_keys(self):
        return ("num_heads", "allow_neg_eigval", "use_gate")
