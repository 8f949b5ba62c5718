"""Checkpoints written in the background from a point-in-time copy on the host.

A 10-seed GIN-virtual ensemble checkpoints about 400 MB (weights and both Adam moments) every
epoch. :class:`BackgroundCheckpointWriter` keeps training waiting only for the device-to-host
copy: tensors are copied into host buffers that are allocated once and reused (page-locked when
the source is on a CUDA device, so the copies run asynchronously and at full bus speed, with one
synchronisation for the whole checkpoint), and the file is written on one background thread with
an atomic rename (a kill during the write leaves the previous checkpoint).

The copy is made on the calling thread on purpose: a CUDA call from another thread while the
training thread records a CUDA graph breaks the recording (``cudaErrorStreamCaptureUnsupported``
on an H200), so the writer thread only pickles host memory.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, List, Optional

import torch
from torch import Tensor

__all__ = ["BackgroundCheckpointWriter"]


class BackgroundCheckpointWriter:
    """Writes ``(checkpoint, path)`` pairs on one background thread.

    Args:
        write (callable): ``write(checkpoint, path)``, run on the background thread (for example
            :func:`graphlab.train.run.atomic_torch_save`).

    :meth:`save` waits for the previous write (its host buffers are about to be reused), copies
    every tensor of ``checkpoint`` to the host and queues the write; :meth:`close` waits for the
    last write. An error raised by a write is raised again by the next :meth:`save` or by
    :meth:`close`. Usable as a context manager.
    """

    def __init__(self, write: Callable[[Any, str], None]):
        self._write = write
        self._executor: Optional[ThreadPoolExecutor] = None
        self._pending: Optional[Future] = None
        self._buffers: List[Tensor] = []
        self._lock = threading.Lock()

    # -- host copy
    def _host(self, t: Tensor, slot: int) -> Tensor:
        t = t.detach()
        if t.device.type == "cpu":
            return t.clone()
        pin = t.device.type == "cuda"
        if slot < len(self._buffers):
            buf = self._buffers[slot]
            if buf.shape != t.shape or buf.dtype != t.dtype or buf.is_pinned() != pin:
                buf = self._buffers[slot] = torch.empty(t.shape, dtype=t.dtype,
                                                        pin_memory=pin)
        else:
            buf = torch.empty(t.shape, dtype=t.dtype, pin_memory=pin)
            self._buffers.append(buf)
        buf.copy_(t, non_blocking=pin)
        return buf

    def host_copy(self, obj: Any) -> Any:
        """``obj`` (nested dicts, lists and tuples) with every tensor copied to the host, into
        this writer's reusable buffers; returns once the copies are complete."""
        slot = [0]
        devices = set()

        def walk(o):
            if isinstance(o, Tensor):
                if o.device.type == "cuda":
                    devices.add(o.device)
                out = self._host(o, slot[0])
                slot[0] += o.device.type != "cpu"
                return out
            if isinstance(o, dict):
                d = {k: walk(v) for k, v in o.items()}
                return d if type(o) is dict else type(o)(d)  # OrderedDict (state dicts)
            if isinstance(o, list):
                return [walk(v) for v in o]
            if isinstance(o, tuple):
                vals = [walk(v) for v in o]
                return type(o)(*vals) if hasattr(o, "_fields") else tuple(vals)
            return o
        out = walk(obj)
        for dev in devices:  # the non-blocking copies were issued on each device's stream
            torch.cuda.current_stream(dev).synchronize()
        return out

    # -- writing
    def wait(self) -> None:
        """Wait for the queued write; raise its error if it failed."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def save(self, checkpoint: Any, path: str) -> None:
        """Copy ``checkpoint`` to the host now and write it to ``path`` in the background."""
        self.wait()  # the previous write reads the buffers this copy overwrites
        host = self.host_copy(checkpoint)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1,
                                                thread_name_prefix="checkpoint-writer")
        with self._lock:
            self._pending = self._executor.submit(self._write, host, str(path))

    def close(self) -> None:
        """Wait for the last write and stop the thread (raises the write's error, if any)."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def __enter__(self) -> "BackgroundCheckpointWriter":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:  # an exception is already propagating: wait, but do not mask it
            try:
                self.close()
            except Exception:
                pass
