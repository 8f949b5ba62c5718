"""Processed-cache keys and atomic processing.

PyG keeps one ``processed/`` directory per dataset and only *warns* when the pre-transform
changes. graphlab instead keys the processed directory by a fingerprint of the pre-transform,
the pre-filter and every loader option that changes the processed tensors, so changing, e.g., a
positional-encoding size re-processes into a new directory instead of reusing stale tensors.

Processing writes into a private temporary directory that is renamed into place only when
processing finished, so an interrupted or failing run never leaves a half-written cache behind,
and parallel processes (seeds run side by side) cannot read each other's partial files.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import os.path as osp
import shutil
import uuid
from typing import Any

import torch

CACHE_VERSION = 1  # bump when graphlab's own processing changes


def fingerprint(obj: Any, _depth: int = 0) -> str:
    """A stable text description of ``obj`` that changes whenever its configuration changes.

    ``repr`` alone is not enough: many PyG transforms print as ``Name()`` whatever their
    arguments, so objects are described by their class and their attributes, recursively.
    Functions are described by their qualified name and their bytecode and constants.
    """
    if _depth > 6:
        return type(obj).__qualname__
    rec = lambda o: fingerprint(o, _depth + 1)  # noqa: E731
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return repr(obj)
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        digest = hashlib.sha256(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return f"Tensor({t.dtype},{tuple(t.shape)},{digest.hexdigest()[:16]})"
    if isinstance(obj, (list, tuple)):
        return type(obj).__name__ + "[" + ",".join(rec(o) for o in obj) + "]"
    if isinstance(obj, (set, frozenset)):
        return "set[" + ",".join(sorted(rec(o) for o in obj)) + "]"
    if isinstance(obj, dict):
        items = sorted((str(k), rec(v)) for k, v in obj.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        fn = obj.__func__ if inspect.ismethod(obj) else obj
        code = fn.__code__
        consts = ",".join(rec(c) for c in code.co_consts if not inspect.iscode(c))
        parts = [fn.__module__, fn.__qualname__, hashlib.sha256(code.co_code).hexdigest()[:16], consts]
        if fn.__defaults__:
            parts.append(rec(fn.__defaults__))
        if fn.__closure__:
            parts.append(rec([c.cell_contents for c in fn.__closure__]))
        if inspect.ismethod(obj):
            parts.append(rec(obj.__self__))
        return "fn(" + ";".join(parts) + ")"
    if isinstance(obj, type):
        return f"class({obj.__module__}.{obj.__qualname__})"
    if isinstance(obj, torch.nn.Module):
        state = {k: rec(v) for k, v in obj.state_dict().items()}
        return f"{type(obj).__module__}.{type(obj).__qualname__}({repr(obj)};{rec(state)})"
    if hasattr(obj, "__dict__"):
        attrs = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
        return f"{type(obj).__module__}.{type(obj).__qualname__}({rec(attrs)})"
    return f"{type(obj).__qualname__}:{repr(obj)}"


def cache_key(pre_transform: Any = None, pre_filter: Any = None, **options: Any) -> str:
    """Short hex key of the pre-transform, the pre-filter and the loader options."""
    text = fingerprint({"v": CACHE_VERSION, "pre_transform": pre_transform,
                        "pre_filter": pre_filter, "options": options})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class AtomicProcessMixin:
    """Mixin for PyG ``Dataset`` classes: keyed processed directory, processed atomically.

    Use as ``class Cora(AtomicProcessMixin, Planetoid)`` and pass ``cache_key=...``. The
    processed directory becomes ``<the loader's processed dir>_<cache_key>``; processing
    happens in ``<that>.tmp-<unique>`` and is renamed into place at the end; on any error
    the temporary directory is deleted.
    """

    def __init__(self, *args: Any, cache_key: str, **kwargs: Any) -> None:
        self._gl_key = cache_key
        self._gl_tmp: str | None = None
        super().__init__(*args, **kwargs)

    @property
    def processed_dir(self) -> str:
        if getattr(self, "_gl_tmp", None):
            return self._gl_tmp
        return self._gl_final_processed_dir()

    def _gl_final_processed_dir(self) -> str:
        base = super().processed_dir  # type: ignore[misc]
        return f"{base.rstrip(os.sep)}_{self._gl_key}"

    def _download(self) -> None:
        try:
            super()._download()  # type: ignore[misc]
        except Exception as e:  # noqa: BLE001 - re-raised with the missing files named
            missing = [p for p in _as_list(self.raw_paths) if not osp.exists(p)]
            raise FetchFailed(missing, e) from e

    def _process(self) -> None:
        from torch_geometric.data.dataset import files_exist

        final = self._gl_final_processed_dir()
        force = bool(getattr(self, "force_reload", False))
        if not force and files_exist([osp.join(final, f) for f in _as_list(self.processed_file_names)]):
            return
        tmp = f"{final}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._gl_tmp = tmp
        try:
            super()._process()  # type: ignore[misc]
            self._gl_tmp = None
            if force and osp.isdir(final):
                trash = f"{tmp}.old"
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            try:
                os.rename(tmp, final)
            except OSError:
                # Another process finished first: keep its (identical) result.
                if not osp.isdir(final):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            self._gl_tmp = None
            if osp.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)


class FetchFailed(RuntimeError):
    """Raw files were missing and fetching them failed; ``missing`` names them."""

    def __init__(self, missing: list, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.missing, self.cause = missing, cause


def _as_list(x: Any) -> list:
    return [x] if isinstance(x, str) else list(x)
