"""Which implementation runs: ``triton``, ``cusparse`` or ``torch``.

* ``GRAPHLAB_KERNELS=triton|cusparse|torch|auto`` (environment) or :func:`set_backend` forces a
  path (``set_backend`` wins; ``None``/``'auto'`` returns to automatic choice). A forced path that
  cannot run an op (cuSPARSE has no max reduce, no SDDMM / softmax / attention; Triton needs a
  GPU or ``TRITON_INTERPRET=1``) falls back to the automatic choice for that op.
* Automatic choice: CPU tensors use torch / PyG ops. On CUDA, the first call for a problem class
  (op, device, dtype, reduce, heads, and the power-of-two buckets of feature size and edges per
  row) times every available path (one warm-up, then the median of three runs with CUDA events)
  and remembers the fastest; :func:`choices` shows what was picked. During CUDA graph capture,
  or for a class not timed yet while capturing, Triton is used.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, Dict, Optional

import torch

BACKENDS = ("triton", "cusparse", "torch")
_FORCED: Optional[str] = None
_CHOICES: Dict[tuple, str] = {}


def set_backend(name: Optional[str]) -> None:
    """Force a path for every op (``'triton'``, ``'cusparse'``, ``'torch'``) or ``None``/``'auto'``."""
    global _FORCED
    if name is not None and name != "auto" and name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS + ('auto',)} or None, got {name!r}")
    _FORCED = None if name == "auto" else name


def forced_backend() -> Optional[str]:
    if _FORCED is not None:
        return _FORCED
    env = os.environ.get("GRAPHLAB_KERNELS", "auto").strip().lower()
    if env in ("", "auto"):
        return None
    if env not in BACKENDS:
        raise ValueError(f"GRAPHLAB_KERNELS must be one of {BACKENDS + ('auto',)}, got {env!r}")
    return env


def triton_available(device: torch.device) -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    if device.type == "cuda":
        return True
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def choices() -> Dict[tuple, str]:
    """The automatic choices made so far, keyed by problem class."""
    return dict(_CHOICES)


def clear_choices() -> None:
    _CHOICES.clear()


def _bucket(n: float) -> int:
    return max(int(n), 1).bit_length()


def _time(fn: Callable[[], object]) -> float:
    fn()
    times = []
    for _ in range(3):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[1]


def pick(op: str, device: torch.device, key: tuple, candidates: Dict[str, Callable[[], object]]) -> str:
    """Name of the path to run ``op`` with; ``candidates`` maps each runnable path to a thunk."""
    forced = forced_backend()
    if forced is not None and forced in candidates:
        return forced
    if device.type != "cuda" or len(candidates) == 1:
        return "torch" if "torch" in candidates else next(iter(candidates))
    full = (op, device.index, *key, tuple(sorted(candidates)))
    hit = _CHOICES.get(full)
    if hit is not None and hit in candidates:
        return hit
    if torch.cuda.is_current_stream_capturing():
        return "triton" if "triton" in candidates else next(iter(candidates))
    times, errors = {}, {}
    for name, thunk in candidates.items():
        try:
            times[name] = _time(thunk)
        except Exception as e:  # noqa: BLE001 - e.g. a Triton kernel this GPU / Triton cannot build
            errors[name] = e
    if not times:
        raise next(iter(errors.values()))
    for name, e in errors.items():
        warnings.warn(f"graphlab.kernels: the {name!r} path of {op} failed on {device} and is not "
                      f"used ({type(e).__name__}: {str(e)[:200]})", RuntimeWarning, stacklevel=2)
    best = min(times, key=times.get)
    _CHOICES[full] = best
    return best


def problem_key(dtype: torch.dtype, feat: int, edges: int, rows: int, *extra) -> tuple:
    return (str(dtype), _bucket(feat), _bucket(edges / max(rows, 1)), _bucket(rows) // 4, *extra)
