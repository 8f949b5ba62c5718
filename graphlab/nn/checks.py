"""Input checks that models run at the start of ``forward``.

They read the raw batch (never a tensor that depends on parameters), so they also work inside a
``vmap``-ed seed ensemble, and they are skipped while ``torch.compile`` traces or a CUDA graph is
recorded, where reading a value back to the host is not allowed (the trainer checks a dataset's
features once when it builds the data, ``graphlab.train.run.build_data``)."""
from __future__ import annotations

import contextlib
from typing import Optional

import torch
from torch import Tensor

__all__ = ["check_no_nan", "exact_fp32_products", "float32_matmul_precision"]


@contextlib.contextmanager
def float32_matmul_precision(precision: str):
    """:func:`torch.set_float32_matmul_precision` inside the block, the previous setting
    restored after it. A no-op when the setting already holds, and while ``torch.compile``
    traces (reading the setting would break the graph; a compiled region runs at the
    precision in force outside it)."""
    if torch.compiler.is_compiling():
        yield
        return
    old = torch.get_float32_matmul_precision()
    if old == precision:
        yield
        return
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def exact_fp32_products():
    """Float32 matrix products at full precision inside the block (matmul precision
    ``highest``) whatever the run's ``task.matmul_precision``. For layers that rewrite an exact
    sum as a product (one-hot embedding sums, masked BatchNorm statistics, the hand-written
    bias and BatchNorm gradient sums of :mod:`graphlab.nn.row_sums`): such a sum must not round
    its inputs to TF32 / bfloat16. Products that autograd derives for their backward run at the
    run's precision, as every layer's do."""
    return float32_matmul_precision("highest")


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
