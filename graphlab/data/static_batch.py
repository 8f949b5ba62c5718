"""Static-shape batches: a PyG ``Batch`` padded to fixed sizes, for CUDA-graph training.

A CUDA graph replays kernels recorded for fixed tensor shapes, but mini-batches of graphs have
a different number of nodes and edges each step. :class:`StaticBatcher` copies each batch into
preallocated buffers of a *bucket* size (node and edge counts rounded up, so a few buckets cover
a whole dataset) and fills the rest with padding that cannot reach the real graphs:

* pad nodes are appended as one extra graph (index ``num_graphs - 1``): their features are zero
  and every pad edge joins the last pad node to itself, so no message reaches a real node;
* graphs between the batch's last real graph and the pad graph are empty (the last, smaller
  batch of an epoch);
* ``node_mask``, ``edge_mask`` and ``graph_mask`` (bool, True = real) mark the real rows: losses
  weight by ``graph_mask``, and :class:`graphlab.nn.masked_norm.MaskedBatchNorm1d` takes its
  statistics over the real rows, so a model trained on padded batches computes what it computes
  on the unpadded ones (tests/test_static_batch.py checks outputs, losses, gradients and
  BatchNorm statistics in float64).

Fields are classified by their PyG slices: node-level (sliced like ``x``), edge-level (like
``edge_index``) or graph-level (one entry per graph, e.g. ``y``); ``batch`` and ``ptr`` are
rebuilt. Fields of another layout (pair-level encodings such as RRWP's) are refused with a
clear error. Non-tensor fields are not carried.

Bucket sizes: a count ``n`` is rounded up to a multiple of ``2^(floor(log2 n) - 3)`` (at most
12.5% padding, eight buckets per doubling), and sizes of different kinds are kept distinct so a
row count names its kind.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch

__all__ = ["StaticBatcher", "bucket_size", "largest_graph"]


def bucket_size(n: int, granularity: int = 8, minimum: int = 16) -> int:
    """``n`` rounded up to a multiple of ``2^(floor(log2 n) - log2 granularity)``."""
    n = max(int(n), 1)
    step = max(1, (1 << max(n.bit_length() - 1, 0)) // granularity)
    return max(minimum, -(-n // step) * step)


def largest_graph(dataset) -> int:
    """The most nodes of any graph in ``dataset`` (read from an in-memory dataset's slices when
    it has them, else graph by graph)."""
    slices = getattr(dataset, "slices", None)
    if isinstance(slices, dict) and isinstance(slices.get("x"), Tensor) and \
            getattr(dataset, "_indices", None) is None and slices["x"].numel() > 1:
        return int(torch.diff(slices["x"]).max())
    return max((int(d.num_nodes) for d in dataset), default=0)


class StaticBatcher:
    r"""Pads PyG batches into per-bucket static buffers (see the module docstring).

    Args:
        batch_size (int): the largest number of graphs in a batch; every padded batch has
            ``batch_size + 1`` graphs (the last holds the pad nodes).
        granularity (int): buckets per doubling of the node / edge count (default: ``8``).
        device: where the buffers live.
        max_graph_nodes (int, optional): the most nodes any real graph has (e.g. the dataset's
            largest graph); carried as ``static.max_graph_nodes`` so that models that lay
            graphs out densely (GPS attention) use a fixed width instead of reading the batch's
            largest graph back from the device.

    ``batcher(batch)`` returns ``(key, static)`` where ``key = (nodes, edges)`` names the bucket
    and ``static`` is a :class:`~torch_geometric.data.Batch` whose tensors are the bucket's
    buffers (the same tensors for every batch of that bucket), with extra fields ``node_mask``,
    ``edge_mask``, ``graph_mask`` and the number of real graphs in ``num_real_graphs`` (an int).
    """

    def __init__(self, batch_size: int, granularity: int = 8, device=None,
                 max_graph_nodes: Optional[int] = None):
        if int(batch_size) < 1:
            raise ValueError(f"'batch_size' must be >= 1, got {batch_size}")
        if max_graph_nodes is not None and int(max_graph_nodes) < 1:
            raise ValueError(f"'max_graph_nodes' must be >= 1, got {max_graph_nodes}")
        self.max_graph_nodes = None if max_graph_nodes is None else int(max_graph_nodes)
        self.num_graphs = int(batch_size) + 1
        self.granularity = int(granularity)
        self.device = device
        self.buffers: Dict[Tuple[int, int], Batch] = {}
        self._layout: Optional[Dict[str, Tuple[str, int]]] = None

    # -- layout: which fields are node / edge / graph level
    @staticmethod
    def layout(batch: Batch) -> Dict[str, Tuple[str, int]]:
        """``{key: (level, cat_dim)}`` for the tensor fields of ``batch``."""
        sd = getattr(batch, "_slice_dict", None)
        if sd is None or getattr(batch, "ptr", None) is None:
            raise ValueError("static batches need a collated PyG Batch (with ptr and slices)")
        B = batch.num_graphs
        node_sl = batch.ptr.cpu()
        edge_sl = sd.get("edge_index")
        graph_sl = torch.arange(B + 1)
        out: Dict[str, Tuple[str, int]] = {}
        for key in batch.keys():
            value = batch[key]
            if key in ("batch", "ptr") or not isinstance(value, Tensor):
                continue
            if key == "edge_index":
                out[key] = ("edge", 1)
                continue
            sl = sd.get(key)
            if sl is None:
                raise ValueError(f"static batches: field '{key}' has no PyG slices")
            sl = sl.cpu()
            levels = [lv for lv, ref in (("node", node_sl), ("edge", edge_sl),
                                         ("graph", graph_sl))
                      if ref is not None and sl.shape == ref.shape and torch.equal(sl, ref)]
            if not levels:
                raise ValueError(f"static batches: field '{key}' is neither node-, edge- nor "
                                 "graph-level (e.g. pair-level encodings); train without "
                                 "cuda_graphs")
            if len(levels) > 1:  # equal counts in this batch: the name decides, as in PyG
                levels = ["edge"] if "edge" in key and "edge" in levels else \
                    ["graph"] if key in ("y",) and "graph" in levels else \
                    ["node"] if "node" in levels else levels[:1]
            out[key] = (levels[0], batch.__cat_dim__(key, value))
        return out

    def key_for(self, batch: Batch) -> Optional[Tuple[int, int]]:
        """The bucket ``(nodes, edges)`` of ``batch``, or None when it has more graphs than
        ``batch_size``."""
        if batch.num_graphs > self.num_graphs - 1:
            return None
        n = bucket_size(batch.num_nodes + 1, self.granularity)
        e = bucket_size(max(batch.edge_index.size(1), 1), self.granularity)
        g = self.num_graphs
        while n == g:
            n += 1
        while e in (n, g):
            e += 1
        return n, e

    def _allocate(self, key: Tuple[int, int], batch: Batch, layout) -> Batch:
        n, e = key
        g = self.num_graphs
        dev = self.device if self.device is not None else batch.edge_index.device
        out = Batch()
        size = {"node": n, "edge": e, "graph": g}
        for k, (level, dim) in layout.items():
            v = batch[k]
            shape = list(v.shape)
            shape[dim] = size[level]
            out[k] = torch.zeros(shape, dtype=v.dtype, device=dev)
        out.batch = torch.zeros(n, dtype=torch.long, device=dev)
        out.ptr = torch.zeros(g + 1, dtype=torch.long, device=dev)
        out.node_mask = torch.zeros(n, dtype=torch.bool, device=dev)
        out.edge_mask = torch.zeros(e, dtype=torch.bool, device=dev)
        out.graph_mask = torch.zeros(g, dtype=torch.bool, device=dev)
        out._num_graphs = g
        return out

    def __call__(self, batch: Batch) -> Tuple[Tuple[int, int], Batch]:
        key = self.key_for(batch)
        if key is None:
            raise ValueError(f"a batch of {batch.num_graphs} graphs exceeds batch_size "
                             f"{self.num_graphs - 1}")
        if self._layout is None:  # once: reading slices may copy from the device
            self._layout = self.layout(batch)
        layout = self._layout
        keys = {k for k in batch.keys() if k not in ("batch", "ptr")
                and isinstance(batch[k], Tensor)}
        if keys != set(layout):
            raise ValueError(f"static batches: the fields changed between batches "
                             f"({sorted(layout)} -> {sorted(keys)})")
        if key not in self.buffers:
            self.buffers[key] = self._allocate(key, batch, layout)
        out = self.buffers[key]
        n_pad, e_pad = key
        g = self.num_graphs
        N, E, B = batch.num_nodes, batch.edge_index.size(1), batch.num_graphs
        size = {"node": N, "edge": E, "graph": B}
        with torch.no_grad():
            for k, (level, dim) in layout.items():
                buf, v, m = out[k], batch[k], size[level]
                buf.narrow(dim, 0, m).copy_(v, non_blocking=True)
                if k == "edge_index":
                    buf.narrow(1, E, e_pad - E).fill_(n_pad - 1)
                else:
                    buf.narrow(dim, m, buf.size(dim) - m).zero_()
            out.batch[:N].copy_(batch.batch, non_blocking=True)
            out.batch[N:].fill_(g - 1)
            out.ptr[:B + 1].copy_(batch.ptr, non_blocking=True)
            out.ptr[B + 1:g].fill_(N)
            out.ptr[g:].fill_(n_pad)
            out.node_mask[:N].fill_(True)
            out.node_mask[N:].fill_(False)
            out.edge_mask[:E].fill_(True)
            out.edge_mask[E:].fill_(False)
            out.graph_mask[:B].fill_(True)
            out.graph_mask[B:].fill_(False)
        out.num_real_graphs = B
        if self.max_graph_nodes is not None:
            out.max_graph_nodes = self.max_graph_nodes
        return key, out
