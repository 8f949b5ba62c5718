"""Training steps replayed as CUDA graphs over static-shape batches.

Small graph models (GIN-virtual on molecules: ~1,000 nodes per batch) spend a training step
launching a few hundred tiny kernels from Python; the GPU waits on the CPU. A CUDA graph records
one step (forward, backward, gradient clipping, optimiser update) once and replays it with a
single launch. It needs fixed shapes, so batches go through
:class:`~graphlab.data.static_batch.StaticBatcher` (padded to a bucket size; padding cannot
reach real graphs, BatchNorm statistics skip it, the loss weights real graphs only), and one
graph is recorded per bucket.

:class:`GraphedSteps` drives this for any ``step(static_batch) -> Tensor`` written with fixed
shapes and no host synchronisation (no ``.item()``, no boolean indexing, no data-dependent
sizes). The first batch of a bucket runs eagerly on the capture stream (a real training step,
which also creates the optimiser state), then the bucket's step is recorded; later batches of
that bucket copy into the bucket's buffers and replay. With ``capture=False`` every step runs
eagerly on the padded batch (the CPU path, used by tests to check the padding itself).

All of a :class:`GraphedSteps`' graphs record into one shared memory pool, so the activations of
a step take the memory of the largest bucket once, not once per bucket: with a pool per graph,
a 4-seed GPS ensemble on Peptides-func held 113.75 GiB in graph pools after 23 epochs (about 20
buckets) and ran out of an H200's memory in its 24th. Sharing is safe because the
graphs never run concurrently (one stream) and nothing a graph leaves in the pool is read after
another graph replays: each call returns a copy of its graph's output.

Requirements (checked by the caller, :mod:`graphlab.train.ensemble_run`): an optimiser that
supports ``capturable=True`` (Adam, AdamW; SGD with a constant learning rate), graph-level tasks,
and models whose batch-coupled layers are :class:`~graphlab.nn.masked_norm.MaskedBatchNorm1d`
(see :func:`~graphlab.nn.masked_norm.mask_batchnorms`). A learning rate that changes (an LR
schedule) is kept in a device tensor that the recorded update reads (see
:func:`set_tensor_lr`).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from graphlab.data.static_batch import StaticBatcher

__all__ = ["GraphedSteps", "make_capturable", "set_tensor_lr"]


def make_capturable(opt: torch.optim.Optimizer) -> None:
    """Switch an optimiser to ``capturable=True`` (Adam / AdamW keep their step counters on the
    device, so a recorded update reads the current count); also after ``load_state_dict`` of a
    state saved without it. SGD keeps no host-side state and needs nothing."""
    for g in opt.param_groups:
        if "capturable" in g:
            g["capturable"] = True
        elif not isinstance(opt, torch.optim.SGD):
            raise ValueError(f"{type(opt).__name__} cannot be captured in a CUDA graph "
                             "(no capturable option); use adam, adamw or sgd")
        for p in g["params"]:
            st = opt.state.get(p, {})
            step = st.get("step")
            if isinstance(step, Tensor) and step.device != p.device:
                st["step"] = step.to(p.device, torch.float32)


def set_tensor_lr(opt: torch.optim.Optimizer, device) -> None:
    """Keep each param group's learning rate in a 0-d device tensor, so a recorded update reads
    the current value; change it with ``group["lr"].fill_(value)``. Adam / AdamW only (their
    capturable update accepts a tensor rate)."""
    if not isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
        raise ValueError(f"a changing learning rate inside a CUDA graph needs adam or adamw, "
                         f"not {type(opt).__name__}")
    for g in opt.param_groups:
        if not isinstance(g["lr"], Tensor):
            dtype = g["params"][0].dtype if g["params"] else torch.float32
            g["lr"] = torch.tensor(float(g["lr"]), dtype=dtype, device=device)


class GraphedSteps:
    """Pads each batch to its bucket and runs ``step`` on it, replaying a CUDA graph per bucket.

    Args:
        step: ``step(static_batch) -> Tensor`` (e.g. the members' losses); must use fixed
            shapes and never synchronise with the host.
        batch_size: the largest number of graphs in a training batch.
        capture: record and replay CUDA graphs (needs CUDA); False runs ``step`` eagerly on the
            padded batch.
        max_graphs: at most this many buckets are recorded; batches of further buckets run
            eagerly (counted in :attr:`stats`).
        max_graph_nodes: the largest graph's node count, passed to the
            :class:`~graphlab.data.static_batch.StaticBatcher` (fixed dense widths).
    """

    def __init__(self, step: Callable[[object], Tensor], batch_size: int, capture: bool = True,
                 device=None, granularity: int = 8, max_graphs: int = 64,
                 max_graph_nodes: Optional[int] = None):
        if capture and not torch.cuda.is_available():
            raise RuntimeError("CUDA graphs need a CUDA device")
        self.step, self.capture, self.max_graphs = step, capture, int(max_graphs)
        self.batcher = StaticBatcher(batch_size, granularity=granularity, device=device,
                                     max_graph_nodes=max_graph_nodes)
        self.graphs: Dict[Tuple[int, int], Tuple[torch.cuda.CUDAGraph, Tensor]] = {}
        self.stream = torch.cuda.Stream(device) if capture else None
        self.pool = torch.cuda.graph_pool_handle() if capture else None  # shared by all graphs
        self.stats = {"replays": 0, "captures": 0, "eager": 0}

    def __call__(self, batch, variant=None) -> Tensor:
        """One step on ``batch``; returns a new tensor (never a graph's static output).
        ``variant`` (hashable) selects a version of the step (e.g. with or without per-member
        learning-rate scaling): ``step(static, variant)`` is called and each (bucket, variant)
        pair gets its own graph; None calls ``step(static)``."""
        key, static = self.batcher(batch)
        key = (key, variant)

        def run():
            return self.step(static) if variant is None else self.step(static, variant)
        if not self.capture:
            self.stats["eager"] += 1
            return run()
        if key in self.graphs:
            graph, out = self.graphs[key]
            graph.replay()
            self.stats["replays"] += 1
            return out.clone()  # the next graph's replay may reuse the pool memory of ``out``
        cur = torch.cuda.current_stream()
        self.stream.wait_stream(cur)
        with torch.cuda.stream(self.stream):  # the real step for this batch (and the warm-up)
            result = run()
        cur.wait_stream(self.stream)
        self.stats["eager"] += 1
        if len(self.graphs) < self.max_graphs:
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph, pool=self.pool, stream=self.stream):
                    out = run()  # recorded, not run
            except RuntimeError as e:
                raise RuntimeError(
                    "recording the training step as a CUDA graph failed: a recorded step must "
                    "not read values back to the host (data-dependent sizes such as SPEN's "
                    "ego-nets or a sequence mixer's orderings, .item(), boolean indexing, deterministic "
                    "scatter kernels: set trainer.deterministic=false); train this model without "
                    f"task.cuda_graphs. ({type(e).__name__}: {str(e).splitlines()[0]})") from e
            self.graphs[key] = (graph, out)
            self.stats["captures"] += 1
        return result.clone()
