"""Packed in-memory batching: a small-graph dataset concatenated once and batched by index.

PyG's :class:`~torch_geometric.loader.DataLoader` builds every mini-batch in Python: it indexes
the dataset graph by graph and concatenates the pieces (``Batch.from_data_list``). For datasets of
many small graphs (OGB mol*, LRGB peptides) that per-graph work, not the model, bounds the step
time. :class:`PackedGraphs` does the concatenation once, keeps the result (with per-graph offsets)
on the training device, and :class:`PackedLoader` gathers each mini-batch there with a handful of
vectorised tensor operations (``repeat_interleave`` / ``cumsum`` arithmetic, no loop over graphs).

What the model receives is the same :class:`~torch_geometric.data.Batch` that PyG's loader would
build from the same graphs in the same order, field for field and dtype for dtype: every attribute
is concatenated along ``data.__cat_dim__(key, value, store)`` and incremented by the running sum of
``data.__inc__(key, value, store)``, exactly as :func:`torch_geometric.data.collate.collate` does,
so index-like fields (``edge_index``, RRWP pairs ``rrwp_index``) are offset by the node counts,
and ``batch``, ``ptr``, ``_slice_dict``, ``_inc_dict`` and ``num_graphs`` are filled in too.
``sample_idx`` (the dataset index of each graph, as set by the trainer's ``IndexedSubset``) is
added by default.

Shuffles follow the trainer's ``EpochSeededSampler`` (:func:`epoch_permutation`): the order of
epoch ``e`` is ``torch.randperm(n)`` under a CPU generator seeded with ``seed * 100003 + e``, so
the packed path visits the same graphs in the same batches. Each pass also draws one number from
the global torch RNG, as torch's ``DataLoader`` does, so dropout and other random layers see the
same stream: on CPU a training run gives the same numbers with either loader.

The dataset's ``transform`` runs once, when packing. Deterministic transforms (positional
encodings computed on the fly) are therefore cached; a random transform (augmentation) would be
frozen, so such datasets belong on the standard loader (:func:`packing_problem` says why).

>>> packed = PackedGraphs(dataset, split["train"], device="cuda")
>>> loader = PackedLoader(packed, batch_size=32, shuffle=True, seed=0)
>>> loader.set_epoch(3)
>>> for batch in loader: ...
"""
from __future__ import annotations

import math
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

__all__ = ["PackedGraphs", "PackedLoader", "epoch_permutation", "estimate_nbytes",
           "device_memory_bytes", "fits_in_memory", "packing_problem", "describe_choice"]

DeviceLike = Union[str, torch.device]


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The shuffled order of epoch ``epoch`` (CPU ``LongTensor [n]``), identical to the trainer's
    ``EpochSeededSampler``: it depends only on ``(seed, epoch)``, not on what ran before."""
    g = torch.Generator().manual_seed(seed * 100003 + epoch)
    return torch.randperm(n, generator=g)


def _exclusive_cumsum(x: Tensor) -> Tensor:
    return torch.cumsum(x, dim=0) - x


def _zero_prefixed_cumsum(x: Tensor) -> Tensor:
    """``[0, x0, x0 + x1, ...]`` along dim 0, like ``torch_geometric.utils.cumsum``."""
    out = x.new_zeros((x.size(0) + 1, ) + tuple(x.shape[1:]))
    torch.cumsum(x, dim=0, out=out[1:])
    return out


def _repeat_interleave(values: Tensor, sizes: Tensor, total: int) -> Tensor:
    """``torch.repeat_interleave(values, sizes, dim=0)`` with a known output size.

    On CPU, torch's kernel runs a parallel loop with grain 1 over the segments: for a batch of a
    few dozen graphs the thread wake-ups cost milliseconds per call, far more than the work, and
    much more on a loaded machine. Integer values are expanded serially instead, by writing the
    differences at the segment starts and summing them up (exact in integer arithmetic).
    """
    if values.device.type != "cpu" or values.is_floating_point() or values.dtype == torch.bool:
        return torch.repeat_interleave(values, sizes, dim=0, output_size=total)
    delta = values.clone()
    delta[1:] -= values[:-1]
    marks = values.new_zeros((total + 1, ) + tuple(values.shape[1:]))
    marks.index_add_(0, _exclusive_cumsum(sizes), delta)
    return torch.cumsum(marks[:-1], dim=0, dtype=values.dtype)


class _Field:
    """One attribute of the packed graphs.

    ``kind`` is ``'tensor'`` (concatenated along ``cat_dim``, possibly incremented),
    ``'number'`` (a Python int/float per graph, collated into a tensor) or ``'list'`` (anything
    else, collated into a Python list). ``group`` names the slice layout shared by fields with
    equal per-graph sizes (node-level, edge-level, ...), so gather positions are computed once.
    """

    __slots__ = ("key", "kind", "value", "cat_dim", "group", "inc", "inc_cpu", "inc_zero",
                 "out_dtype", "scalar_inc")

    def __init__(self, key: str, kind: str, value: Any, cat_dim: int = 0, group: int = -1,
                 inc: Optional[Tensor] = None, out_dtype: Optional[torch.dtype] = None,
                 inc_moved: Optional[Tensor] = None):
        self.key, self.kind, self.value, self.cat_dim, self.group = key, kind, value, cat_dim, group
        self.inc_cpu = inc  # per graph, as ``__inc__`` returns it: [G] or [G, *shape]
        # what is added to values with the cat dimension moved first: [G] or [G, *rest]
        self.inc = inc if inc_moved is None else inc_moved
        self.scalar_inc = inc is not None and inc.dim() == 1
        self.inc_zero = inc is None or (self.scalar_inc and not bool(inc.any()))
        self.out_dtype = out_dtype


class PackedGraphs:
    r"""A set of graphs concatenated once, with per-graph offsets, kept on ``device``.

    Args:
        dataset: a PyG dataset (or any sequence of :class:`~torch_geometric.data.Data`), read
            with ``dataset[i]`` (its ``transform`` runs here, once per graph).
        indices (Tensor or sequence, optional): the dataset indices to pack, in this order
            (a split). (default: all graphs)
        device (str or torch.device): where the packed tensors and the batches live.
            (default: ``'cpu'``)
        add_sample_idx (bool): give every graph ``sample_idx = [dataset index]`` as the trainer's
            ``IndexedSubset`` does, so batches carry ``sample_idx [B]``. (default: ``True``)

    Every attribute must be present in every graph. Tensors are concatenated along
    ``__cat_dim__`` and incremented by ``__inc__`` (PyG's collate rules); Python numbers become a
    tensor, other values a list. Sparse tensors, nested tensors, dictionaries and lists of tensors
    raise ``ValueError`` (use PyG's loader for those).

    Shapes:
        a batch of ``B`` graphs with ``N`` nodes in total: ``batch [N]``, ``ptr [B + 1]``,
        ``sample_idx [B]``, every other field as PyG's ``Batch.from_data_list`` builds it.
    """

    def __init__(self, dataset, indices: Optional[Union[Tensor, Sequence[int]]] = None,
                 device: DeviceLike = "cpu", add_sample_idx: bool = True):
        n_all = len(dataset)
        if indices is None:
            indices = torch.arange(n_all)
        indices = torch.as_tensor(indices)
        if indices.dtype == torch.bool:
            if indices.numel() != n_all:
                raise ValueError(f"'indices': boolean mask of length {indices.numel()} for a "
                                 f"dataset of {n_all} graphs")
            indices = indices.nonzero().view(-1)
        indices = indices.view(-1).long()
        if indices.numel() == 0:
            raise ValueError("'indices': no graphs to pack")
        if int(indices.min()) < 0 or int(indices.max()) >= n_all:
            raise ValueError(f"'indices': values must lie in [0, {n_all}), got "
                             f"[{int(indices.min())}, {int(indices.max())}]")
        self.device = torch.device(device)
        self.indices = indices
        data_list = []
        for idx in indices.tolist():
            data = dataset[idx]
            if add_sample_idx:
                data.sample_idx = torch.tensor([idx])
            data_list.append(data)
        self._pack(data_list)

    # ---------------------------------------------------------------------- packing
    def _pack(self, data_list: List[Data]) -> None:
        data0 = data_list[0]
        if not isinstance(data0, Data):
            raise ValueError(f"'dataset': PackedGraphs packs homogeneous torch_geometric Data "
                             f"graphs, got {type(data0).__name__}; use PyG's DataLoader")
        self._data_cls = data0.__class__
        keys = list(data0.stores[0].keys())
        key_set = set(keys)
        for i, d in enumerate(data_list):
            if set(d.keys()) != key_set:
                raise ValueError(f"'dataset': graph {int(self.indices[i])} has attributes "
                                 f"{sorted(d.keys())}, graph {int(self.indices[0])} has "
                                 f"{sorted(keys)}; every graph needs the same attributes")
        stores = [d.stores[0] for d in data_list]
        self.num_graphs = len(data_list)
        # Node counts as PyG's collate reads them for ``batch`` / ``ptr``.
        self._add_batch = stores[0].can_infer_num_nodes
        nn_ = torch.tensor([s.num_nodes or 0 for s in stores], dtype=torch.long) \
            if self._add_batch else None
        self._has_num_nodes_key = "num_nodes" in key_set
        if self._has_num_nodes_key:  # collate keeps the per-graph list and sets the sum
            self._num_nodes_key_cpu = torch.tensor([s["num_nodes"] for s in stores])

        self._fields: List[_Field] = []
        group_slices: List[Tensor] = []  # CPU zero-prefixed offsets per slice layout

        def group_of(sizes: Tensor) -> int:
            slices = _zero_prefixed_cumsum(sizes)
            for g, s in enumerate(group_slices):
                if torch.equal(s, slices):
                    return g
            group_slices.append(slices)
            return len(group_slices) - 1

        for key in keys:
            if key in ("num_nodes", "ptr"):  # PyG's collate: summed / skipped
                continue
            values = [s[key] for s in stores]
            elem = values[0]
            if isinstance(elem, Tensor):
                self._fields.append(self._pack_tensor(key, values, data_list, stores, group_of))
            elif isinstance(elem, (bool, int, float)):
                value = torch.tensor(values)
                inc = self._incs(key, values, data_list, stores)
                self._fields.append(_Field(key, "number", value, inc=inc))
            elif isinstance(elem, dict) or (isinstance(elem, (list, tuple)) and len(elem) > 0
                                            and isinstance(elem[0], Tensor)):
                raise ValueError(f"'dataset': attribute '{key}' is a {type(elem).__name__} of "
                                 "tensors; the packed loader does not batch nested attributes, "
                                 "use PyG's DataLoader")
            else:
                self._fields.append(_Field(key, "list", values))

        dev = self.device
        self._slices_cpu = group_slices
        self._sizes_cpu = [s[1:] - s[:-1] for s in group_slices]
        self._ident = [bool((sz == 1).all()) for sz in self._sizes_cpu]
        self._slices = [s.to(dev) for s in group_slices]
        self._sizes = [s.to(dev) for s in self._sizes_cpu]
        self._num_nodes_cpu = nn_
        self._num_nodes = nn_.to(dev) if nn_ is not None else None
        for f in self._fields:
            if f.kind != "list":
                f.value = f.value.to(dev)
            if f.inc is not None and not f.inc_zero:
                f.inc = f.inc.to(dev)

    @staticmethod
    def _incs(key, values, data_list, stores) -> Tensor:
        reps = [d.__inc__(key, v, s) for v, d, s in zip(values, data_list, stores)]
        return torch.stack(reps, 0) if isinstance(reps[0], Tensor) else torch.tensor(reps)

    def _pack_tensor(self, key, values, data_list, stores, group_of) -> _Field:
        from torch_geometric.utils import is_sparse
        elem = values[0]
        if is_sparse(elem) or getattr(elem, "is_nested", False):
            raise ValueError(f"'dataset': attribute '{key}' is a sparse or nested tensor; the "
                             "packed loader batches dense tensors only, use PyG's DataLoader")
        cat_dim = data_list[0].__cat_dim__(key, elem, stores[0])
        if isinstance(cat_dim, tuple):
            raise ValueError(f"'dataset': attribute '{key}' is concatenated along {cat_dim} "
                             "(block-diagonal); use PyG's DataLoader")
        if cat_dim is None or elem.dim() == 0:
            values = [v.unsqueeze(0) for v in values]
        dim = (cat_dim or 0) % values[0].dim()
        sizes = torch.tensor([v.size(dim) for v in values], dtype=torch.long)
        value = torch.cat(values, dim=dim)
        inc = inc_moved = self._incs(key, values, data_list, stores)
        # PyG adds ``value + inc`` with ``inc`` a 0-d tensor (scalar increments) or a [*shape]
        # tensor (tensor increments): the result dtype follows torch's promotion of that sum.
        out_dtype = torch.result_type(value, inc[0])
        if inc.dim() > 1:
            # A per-graph tensor increment broadcasts over one graph's slice; with the cat
            # dimension moved first it must broadcast over the remaining dimensions.
            shape = list(value.shape)
            shape[dim] = 1
            try:
                inc_moved = torch.stack([torch.broadcast_to(r, shape).movedim(dim, 0)[0]
                                   for r in inc.unbind(0)], 0)
            except RuntimeError:
                raise ValueError(f"'dataset': the increment of '{key}' (shape "
                                 f"{tuple(inc.shape[1:])}) does not broadcast over its "
                                 f"values {tuple(elem.shape)}") from None
        return _Field(key, "tensor", value, dim, group_of(sizes), inc, out_dtype, inc_moved)

    # ---------------------------------------------------------------------- facts
    def __len__(self) -> int:
        return self.num_graphs

    @property
    def keys(self) -> List[str]:
        return [f.key for f in self._fields]

    @property
    def nbytes(self) -> int:
        """Bytes held by the packed tensors."""
        out = sum(s.numel() * s.element_size() * 2 for s in self._slices)
        for f in self._fields:
            if isinstance(f.value, Tensor):
                out += f.value.numel() * f.value.element_size()
            if isinstance(f.inc, Tensor) and not f.inc_zero:
                out += f.inc.numel() * f.inc.element_size()
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_graphs={self.num_graphs}, keys={self.keys}, "
                f"device={self.device}, {self.nbytes / 2**20:.1f} MiB)")

    # ---------------------------------------------------------------------- gathering
    def batch(self, idx: Union[Tensor, Sequence[int]], idx_device: Optional[Tensor] = None
              ) -> Batch:
        """The :class:`Batch` of the packed graphs at positions ``idx`` (in that order).

        ``idx`` indexes the packed set (``0 .. len(self) - 1``), not the dataset. Pass
        ``idx_device`` (the same positions already on :attr:`device`) to save the copy.
        """
        idx = torch.as_tensor(idx, dtype=torch.long).view(-1).cpu()
        B = idx.numel()
        if B == 0:
            raise ValueError("'idx': an empty batch")
        if idx_device is None:
            idx_device = idx.to(self.device, non_blocking=True)
        dev = self.device

        # Gather positions per slice layout; sizes and totals come from the CPU copies, so the
        # device never has to report a size back (no synchronisation per step).
        group_pos: Dict[int, Tuple[Tensor, Tensor, Tensor, int]] = {}

        def positions(g: int):
            if g not in group_pos:
                sizes_cpu = self._sizes_cpu[g][idx]
                if self._ident[g]:
                    group_pos[g] = (idx_device, _zero_prefixed_cumsum(sizes_cpu), None, B)
                else:
                    total = int(sizes_cpu.sum())
                    sizes = self._sizes[g][idx_device]
                    starts = self._slices[g][idx_device]
                    pos = _repeat_interleave(starts - _exclusive_cumsum(sizes), sizes, total)
                    pos += torch.arange(total, device=dev)
                    group_pos[g] = (pos, _zero_prefixed_cumsum(sizes_cpu), sizes, total)
            return group_pos[g]

        out = Batch(_base_cls=self._data_cls)
        slice_dict: Dict[str, Any] = {}
        inc_dict: Dict[str, Any] = {}
        one_each = torch.arange(B + 1)
        zeros: Dict[torch.dtype, Tensor] = {}  # ``_inc_dict`` entries of never-incremented keys
        if self._has_num_nodes_key:
            counts = self._num_nodes_key_cpu[idx].tolist()
            out._store._num_nodes = counts
            out.num_nodes = sum(counts)
        for f in self._fields:
            if f.kind == "list":
                lst = idx.tolist()
                out[f.key] = [f.value[i] for i in lst]
                slice_dict[f.key], inc_dict[f.key] = one_each, None
                continue
            if f.kind == "number":
                value = f.value[idx_device]
                incs = _zero_prefixed_cumsum(f.inc_cpu[idx][:-1])
                if int(incs[-1]) != 0:
                    value.add_(incs.to(dev))
                out[f.key] = value
                slice_dict[f.key], inc_dict[f.key] = one_each, incs
                continue
            pos, slices_cpu, sizes, total = positions(f.group)
            value = f.value.index_select(f.cat_dim, pos)
            if f.inc_zero:
                dt = f.inc_cpu.dtype
                if dt not in zeros:
                    zeros[dt] = torch.zeros(B, dtype=dt)
                incs_cpu = zeros[dt]
            else:
                incs_cpu = _zero_prefixed_cumsum(f.inc_cpu[idx][:-1])
                add = not f.scalar_inc or f.out_dtype == value.dtype or int(incs_cpu[-1]) != 0
                if add:
                    incs = _zero_prefixed_cumsum(f.inc[idx_device][:-1])  # PyG's summation
                    if sizes is None:  # one slice per graph
                        off = incs
                    else:
                        off = _repeat_interleave(incs, sizes, total)
                    v = value.movedim(f.cat_dim, 0)
                    if f.scalar_inc:
                        off = off.view((-1, ) + (1, ) * (v.dim() - 1))
                    value = (v.to(f.out_dtype) + off.to(f.out_dtype)).movedim(0, f.cat_dim)
            out[f.key] = value
            slice_dict[f.key] = slices_cpu
            inc_dict[f.key] = incs_cpu
        if self._add_batch:
            counts = self._num_nodes[idx_device]
            n_total = int(self._num_nodes_cpu[idx].sum())
            out.batch = _repeat_interleave(torch.arange(B, device=dev), counts, n_total)
            out.ptr = _zero_prefixed_cumsum(counts)
        out._num_graphs = B
        out._slice_dict = slice_dict
        out._inc_dict = inc_dict
        return out


class _EpochOrder:
    """The loader's sampler: Lightning calls ``loader.sampler.set_epoch(epoch)`` at each epoch
    start (``lightning.fabric.utilities.data._set_sampler_epoch``)."""

    def __init__(self, n: int, seed: int, shuffle: bool):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self) -> Tensor:
        if self.shuffle:
            return epoch_permutation(self.n, self.seed, self.epoch)
        return torch.arange(self.n)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.n


class PackedLoader:
    r"""Mini-batches of a :class:`PackedGraphs`, gathered on its device.

    Args:
        packed (PackedGraphs): the packed graphs.
        batch_size (int): graphs per batch.
        shuffle (bool): shuffle with :func:`epoch_permutation` (``seed``, current epoch), the
            trainer's ``EpochSeededSampler`` order; otherwise the packed order. (default: ``False``)
        seed (int): shuffle seed. (default: ``0``)
        drop_last (bool): drop the last incomplete batch. (default: ``False``)

    ``set_epoch(epoch)`` picks the epoch's order (Lightning calls it through ``loader.sampler``).
    Each step yields ``packed.batch(order[i * batch_size:(i + 1) * batch_size])``.
    """

    def __init__(self, packed: PackedGraphs, batch_size: int, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False):
        if not isinstance(packed, PackedGraphs):
            raise ValueError(f"'packed': expected PackedGraphs, got {type(packed).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"'batch_size': expected a positive int, got {batch_size!r}")
        self.packed, self.batch_size, self.drop_last = packed, batch_size, bool(drop_last)
        self.sampler = _EpochOrder(len(packed), int(seed), bool(shuffle))
        self.batch_sampler = None  # Lightning reads both, as on a DataLoader

    @property
    def dataset(self) -> PackedGraphs:
        return self.packed

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n, b = len(self.packed), self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def __iter__(self) -> Iterator[Batch]:
        # torch's DataLoader draws one int64 from the global RNG per pass (its workers' base
        # seed); drawing it too keeps the RNG stream the model sees (dropout, ...) the same, so
        # a run gives the same numbers with either loader. It is drawn at the first batch, not
        # at ``iter()``: Lightning calls ``iter()`` once on non-DataLoader iterables as a check.
        torch.empty((), dtype=torch.int64).random_()
        order = self.sampler.order()
        order_dev = order.to(self.packed.device)
        b = self.batch_size
        for i in range(len(self)):
            yield self.packed.batch(order[i * b:(i + 1) * b], order_dev[i * b:(i + 1) * b])


# -------------------------------------------------------------------------- automatic selection
def _graph_nbytes(data: Data) -> int:
    return sum(v.numel() * v.element_size() for _, v in data if isinstance(v, Tensor))


def estimate_nbytes(dataset, indices: Optional[Union[Tensor, Sequence[int]]] = None,
                    max_samples: int = 256) -> int:
    """Bytes that packing ``dataset[indices]`` would take, from up to ``max_samples`` evenly
    spaced graphs (exact when there are no more graphs than that), read through ``dataset[i]``
    so on-the-fly transforms are counted. Offsets add 16 bytes per graph per slice layout."""
    idx = torch.arange(len(dataset)) if indices is None else torch.as_tensor(indices).view(-1)
    if idx.dtype == torch.bool:
        idx = idx.nonzero().view(-1)
    n = idx.numel()
    if n == 0:
        return 0
    take = idx if n <= max_samples else idx[torch.linspace(0, n - 1, max_samples).long()]
    sample = [_graph_nbytes(dataset[int(i)]) + 8 for i in take]  # + sample_idx
    return int(sum(sample) / len(sample) * n) + 16 * 4 * n


def device_memory_bytes(device: DeviceLike) -> int:
    """Total memory of ``device``: the GPU's memory, or the machine's RAM for ``'cpu'``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "cpu":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    raise ValueError(f"'device': cannot tell the memory of {device}")


def fits_in_memory(dataset, device: DeviceLike, fraction: float = 0.25,
                   indices: Optional[Union[Tensor, Sequence[int]]] = None) -> bool:
    """Whether the packed dataset takes at most ``fraction`` of ``device``'s memory."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"'fraction': expected a value in (0, 1], got {fraction}")
    return estimate_nbytes(dataset, indices) <= fraction * device_memory_bytes(device)


def packing_problem(dataset) -> Optional[str]:
    """Why ``dataset`` should not be packed (``None`` when it can be): graphs that are not
    homogeneous ``Data``, or a transform marked random (``transform.random = True`` or a PyG
    ``Random*`` transform), which packing would freeze."""
    if len(dataset) == 0:
        return "the dataset is empty"
    t = getattr(dataset, "transform", None)
    parts = getattr(t, "transforms", [t]) if t is not None else []
    for p in parts:
        if getattr(p, "random", False) or type(p).__name__.startswith("Random"):
            return (f"its transform {type(p).__name__} is random and packing would run it only "
                    "once")
    if not isinstance(dataset[0], Data):
        return f"its graphs are {type(dataset[0]).__name__}, not homogeneous Data"
    return None


def describe_choice(dataset, device: DeviceLike, fraction: float = 0.25,
                    indices: Optional[Union[Tensor, Sequence[int]]] = None,
                    name: str = "dataset") -> Tuple[bool, str]:
    """``(use_packed, message)`` for automatic selection, e.g.

    ``packed loader: ogbg-molhiv takes 61.2 MiB, 0.04% of cuda:0 memory (139.8 GiB; limit 25%):
    batches are gathered on the device``."""
    problem = packing_problem(dataset)
    if problem is not None:
        return False, f"standard loader: {name} is not packed because {problem}"
    need = estimate_nbytes(dataset, indices)
    total = device_memory_bytes(device)
    ok = need <= fraction * total
    head = (f"{name} takes {need / 2**20:.1f} MiB, {100 * need / total:.2g}% of "
            f"{torch.device(device)} memory ({total / 2**30:.1f} GiB; limit {100 * fraction:g}%)")
    if ok:
        return True, f"packed loader: {head}: batches are gathered on the device"
    return False, f"standard loader: {head}, more than the limit: using PyG's DataLoader"
