"""``Bidirectional``: any causal sequence core made bidirectional by a second core that reads
each sequence reversed within its own length."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from graphlab.nn.seq.base import check_inputs, reverse_within_length

MERGES = ("add", "concat_proj")


class Bidirectional(nn.Module):
    r"""Makes any causal core bidirectional, as in GMN's bidirectional Mamba
    (`Behrouz & Hashemi, KDD 2024 <https://arxiv.org/abs/2402.08678>`_).

    .. math::
        y = \mathrm{merge}\big(f(x),\; R\, g(R x)\big),

    where :math:`R` reverses each sequence *within its own length* (padding stays at the end, so
    the backward core sees the last real token first) and merge is a sum (``'add'``) or a linear
    map of the concatenation (``'concat_proj'``). Padded outputs are zero.

    Args:
        core_fwd (nn.Module): the forward-direction core (a :class:`SequenceCore`).
        core_bwd (nn.Module): the backward-direction core (same ``d_model``).
        merge (str): ``'add'`` or ``'concat_proj'``. (default: ``'add'``)

    Shapes:
        - **input:** ``x`` :math:`(B, L, D)`, ``mask`` :math:`(B, L)` bool or ``None``
        - **output:** :math:`(B, L, D)`
    """

    def __init__(self, core_fwd: nn.Module, core_bwd: nn.Module, merge: str = "add"):
        super().__init__()
        if merge not in MERGES:
            raise ValueError(f"Bidirectional: unknown merge '{merge}'; choose from {', '.join(MERGES)}")
        d_f, d_b = getattr(core_fwd, "d_model", None), getattr(core_bwd, "d_model", None)
        if d_f is None or d_f != d_b:
            raise ValueError(f"Bidirectional: cores must share d_model, got {d_f} and {d_b}")
        self.core_fwd, self.core_bwd, self.merge, self.d_model = core_fwd, core_bwd, merge, d_f
        self.proj = nn.Linear(2 * d_f, d_f) if merge == "concat_proj" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for core in (self.core_fwd, self.core_bwd):
            if hasattr(core, "reset_parameters"):
                core.reset_parameters()
        if self.proj is not None:
            self.proj.reset_parameters()

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        x, mask = check_inputs(x, mask, self.d_model, type(self).__name__)
        y_f = self.core_fwd(x, mask)
        y_b = reverse_within_length(self.core_bwd(reverse_within_length(x, mask), mask), mask)
        if self.proj is None:
            return y_f + y_b
        y = self.proj(torch.cat([y_f, y_b], -1))
        if mask is not None:
            y = torch.where(mask.unsqueeze(-1), y, torch.zeros((), dtype=y.dtype, device=y.device))
        return y

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core_fwd}, {self.core_bwd}, merge={self.merge})"
