"""Work-arounds for known loader breakage, each scoped to the call that needs it."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

os.environ.setdefault("OUTDATED_IGNORE", "1")  # ogb's import otherwise asks PyPI for updates

import torch


def _pyg_safe_globals() -> list:
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import (BaseStorage, EdgeStorage, GlobalStorage,
                                              NodeStorage)
    import numpy as np
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    # ogbl-* split files (train.pt/valid.pt/test.pt) hold dicts of numpy arrays.
    return [DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage, BaseStorage,
            _reconstruct, np.ndarray, np.dtype, *dtypes]


@contextlib.contextmanager
def ogb_torch_load() -> Iterator[None]:
    """Let ogb 1.3.6 read its own processed files under torch >= 2.6.

    ogb calls ``torch.load(path)`` without ``weights_only``; since torch 2.6 that means
    ``weights_only=True``, which refuses PyG's ``DataEdgeAttr``/``DataTensorAttr``/
    ``GlobalStorage`` classes (``UnpicklingError``). Allow-listing exactly those classes for
    the duration of the call fixes it without turning weights-only loading off
    (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is never touched).
    """
    safe = getattr(torch.serialization, "safe_globals", None)
    if safe is None:  # torch < 2.5 loads with weights_only=False by default
        yield
        return
    with safe(_pyg_safe_globals()):
        yield
