"""Input checks that models run at the start of ``forward``.

They read the raw batch (never a tensor that depends on parameters), so they also work inside a
``vmap``-ed seed ensemble, and they are skipped while ``torch.compile`` traces or a CUDA graph is
recorded, where reading a value back to the host is not allowed (the trainer checks a dataset's
features once when it builds the data, ``graphlab.train.run.build_data``)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

__all__ = ["check_no_nan", "exact_fp32_matmul"]


def exact_fp32_matmul() -> bool:
    """True when float32 matrix products run at full precision (matmul precision
    ``highest``); with TF32 (``high`` / ``medium``) they round their inputs, so layers that
    rewrite a sum as a product (one-hot embeddings, masked BatchNorm statistics) keep the
    plain sum instead."""
    return torch.get_float32_matmul_precision() == "highest"


def _tracing() -> bool:
    if torch.compiler.is_compiling():
        return True
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def check_no_nan(x: Optional[Tensor], what: str = "data.x") -> None:
    """Raise ``ValueError`` if the floating tensor ``x`` holds a NaN (no-op for None, integer
    tensors, and while compiling or recording a CUDA graph)."""
    if x is None or not isinstance(x, Tensor) or not x.is_floating_point() or _tracing():
        return
    if bool(torch.isnan(x).any()):
        raise ValueError(f"{what} contains NaN")
