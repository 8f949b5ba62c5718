"""The dataset catalog: what each registered dataset is, where its files come from, how it loads.

Every dataset is a :class:`DatasetSpec` registered in :data:`graphlab.registry.DATASETS`; its
public description is a :class:`DatasetInfo`. :func:`load` resolves the data root, copies raw
files from a configured mirror (``$GRAPHLAB_MIRROR``) when one holds the dataset, and then runs
the dataset's loader, the same class whether the files came from the mirror or a download.
"""
from __future__ import annotations

import os
import os.path as osp
import socket
import sys
import urllib.error
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

os.environ.setdefault("OUTDATED_IGNORE", "1")  # before anything imports ogb

from graphlab.data import cache as _cache
from graphlab.data import mirror as _mirror
from graphlab.errors import DataError
from graphlab.registry import DATASETS, register_dataset

TASKS = ("node_classification", "graph_classification", "graph_multilabel", "graph_regression",
         "link_prediction", "recommendation", "hetero_node_classification", "node_regression")
LOWER_IS_BETTER = {"mae", "rmse", "mae_normalized"}


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a registered dataset (no file access).

    Attributes:
        name: display name (``load`` accepts any casing).
        task: one of :data:`TASKS` (``ogbg-code2``: ``'graph_sequence'``).
        metric: the benchmark's metric: ``accuracy``, ``rocauc``, ``ap``, ``mae``, ``rmse``,
            ``f1_macro``, ``f1``, ``hits@K``, ``mrr``, ``recall@20``.
        higher_is_better: direction of ``metric``.
        ogb_name: name for ``ogb``'s official ``Evaluator`` (None outside OGB).
        node_encoder / edge_encoder: input kinds for :mod:`graphlab.nn.encoders`
            (``edge_encoder`` is None when there are no edge features).
        protocol: ``'ogb'`` (10 seeds 0..9, official split and Evaluator), ``'lrgb'`` (4 seeds,
            official split, <= 500k parameters), ``'tu_cv'`` (10-fold CV with inner validation,
            committed folds), ``'planetoid'`` (public split, seeds vary the initialisation),
            ``'random'`` (a seeded random split per seed), ``'fixed'`` (the dataset's own
            split: MAGNN, HGB, LightGCN sets).
        num_seeds: seeds (or folds) the protocol averages over.
        source: citation and origin of the files.
        mirror_subdir: path inside a mirror (like ``shared/data``), or None.
        url: where the loader downloads from when no mirror holds the files.
        expected: published counts (``num_graphs``, ``num_nodes``, ``num_edges``, split sizes, ...).
        target: node type carrying labels (heterographs) or the item node type (recommendation).
        multilabel: targets are several binary labels per node/graph.
        num_tasks: number of prediction targets (labels or regression outputs).
    """

    name: str
    task: str
    metric: str
    higher_is_better: bool
    ogb_name: Optional[str]
    node_encoder: str
    edge_encoder: Optional[str]
    protocol: str
    source: str
    mirror_subdir: Optional[str]
    expected: Dict[str, Any] = field(default_factory=dict)
    num_seeds: int = 10
    url: Optional[str] = None
    target: Optional[str] = None
    multilabel: bool = False
    num_tasks: int = 1


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its :class:`DatasetInfo` plus how to fetch and build it.

    ``build(root, transform, pre_transform, cache_key, **opts)`` returns the PyG dataset;
    ``subdir`` is the dataset's folder inside the data root (for messages);
    ``mirror`` lists what to copy from a mirror; ``volatile_opts`` are loader options that do
    not change the processed tensors (left out of the cache key).
    """

    info: DatasetInfo
    build: Callable[..., Any]
    subdir: str
    mirror: tuple = ()
    volatile_opts: tuple = ()


def _register(spec: DatasetSpec) -> DatasetSpec:
    register_dataset(spec.info.name.lower())(spec)
    return spec


# --------------------------------------------------------------------------- loader classes
# Each standard loader gets graphlab's keyed, atomic processed directory via the mixin. The
# classes are module-level so datasets stay picklable (DataLoader workers, DDP spawn).

def _classes() -> Dict[str, type]:
    global _CLASSES
    if _CLASSES:
        return _CLASSES
    import torch_geometric.datasets as pyg
    from graphlab.data.lightgcn import LightGCNDataset
    from graphlab.data.peptides import PeptidesDataset
    from graphlab.data.snap import SNAPDataset, SNAPEdgeListDataset
    M = _cache.AtomicProcessMixin
    out = {n: type(n, (M, c), {"__module__": __name__, "__qualname__": n}) for n, c in [
        ("Planetoid", pyg.Planetoid), ("TUDataset", pyg.TUDataset), ("DBLP", pyg.DBLP),
        ("IMDB", pyg.IMDB), ("HGBDataset", pyg.HGBDataset), ("EmailEUCore", pyg.EmailEUCore),
        ("AmazonBook", pyg.AmazonBook), ("SNAPDataset", SNAPDataset),
        ("SNAPEdgeListDataset", SNAPEdgeListDataset), ("LightGCNDataset", LightGCNDataset),
        ("PeptidesDataset", PeptidesDataset), ("ZINC", pyg.ZINC)]}
    from ogb.graphproppred import PygGraphPropPredDataset
    from ogb.linkproppred import PygLinkPropPredDataset
    from ogb.nodeproppred import PygNodePropPredDataset
    for n, c in [("PygGraphPropPredDataset", PygGraphPropPredDataset),
                 ("PygNodePropPredDataset", PygNodePropPredDataset),
                 ("PygLinkPropPredDataset", PygLinkPropPredDataset)]:
        out[n] = type(n, (M, c), {"__module__": __name__, "__qualname__": n})
    globals().update(out)  # so pickle finds graphlab.data.catalog.<Name>
    _CLASSES = out
    return out


_CLASSES: Dict[str, type] = {}


_CLASS_NAMES = {"Planetoid", "TUDataset", "DBLP", "IMDB", "HGBDataset", "EmailEUCore",
                 "AmazonBook", "SNAPDataset", "SNAPEdgeListDataset", "LightGCNDataset",
                 "PeptidesDataset", "PygGraphPropPredDataset", "PygNodePropPredDataset",
                 "PygLinkPropPredDataset"}


def __getattr__(name: str):  # lazily created loader classes, for unpickling
    if name not in _CLASS_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _classes()[name]


# --------------------------------------------------------------------------- public functions

def default_root() -> str:
    return os.environ.get("GRAPHLAB_DATA") or osp.abspath("datasets")


def spec(name: str) -> DatasetSpec:
    try:
        return DATASETS.get(name)
    except KeyError as e:
        raise KeyError(str(e).strip("\"'")) from None


def info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a registered dataset (case-insensitive name)."""
    return spec(name).info


def load(name: str, root: Optional[str] = None, transform: Optional[Callable] = None,
         pre_transform: Optional[Callable] = None, **opts: Any):
    """Load a registered dataset as a PyG dataset.

    Args:
        name: registered name, any casing (``graphlab.DATASETS.names()`` lists them).
        root: data root; default ``$GRAPHLAB_DATA`` or ``./datasets``.
        transform: applied on every access (not cached).
        pre_transform: applied once before caching; the processed directory is keyed by its
            fingerprint, so changing it (or its arguments) re-processes.
        **opts: loader options (e.g. ``use_node_attr=True`` for TU sets, ``split='full'`` for
            Planetoid, ``pre_filter=...``); those that change the tensors are part of the key.

    Raises:
        DataError: raw files missing, unreadable, corrupt, or not downloadable (the message
            names the file or folder and what to do).
    """
    s = spec(name)
    root = osp.abspath(osp.expanduser(root or default_root()))
    mirror = _mirror.find_mirror(list(s.mirror)) if s.mirror else None
    keyed = {k: v for k, v in opts.items()
             if k not in s.volatile_opts and k not in ("pre_filter", "force_reload")}
    key = _cache.cache_key(pre_transform, opts.get("pre_filter"), dataset=s.subdir,
                           **keyed)
    try:
        with processing_lock(root, s.subdir):
            if mirror:
                _mirror.fetch(mirror, list(s.mirror), root)
            return s.build(root, transform, pre_transform, key, **opts)
    except DataError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except TypeError as e:
        if "keyword argument" in str(e) and opts:
            raise ValueError(f"{s.info.name}: a loader option in {sorted(opts)} is not accepted "
                             f"({e})") from None
        raise _explain(s, root, mirror, e) from e
    except Exception as e:  # noqa: BLE001 - every loader failure becomes one clear DataError
        raise _explain(s, root, mirror, e) from e


_LOCKS: Dict[str, Any] = {}


@contextmanager
def processing_lock(root: str, subdir: str):
    """Hold an inter-process lock on one dataset folder of ``root`` while its files are copied,
    downloaded or processed: runs started together (``--jobs``, several commands) wait for the
    first one to process instead of writing the same files at once. The lock file lives in
    ``<root>/.locks``; the operating system releases it when its holder exits, also on a
    crash. Where ``root`` is not writable the block runs unlocked."""
    from filelock import FileLock, Timeout
    lock_dir = osp.join(root, ".locks")
    try:
        os.makedirs(lock_dir, exist_ok=True)
    except OSError:
        yield
        return
    path = osp.join(lock_dir, subdir.replace("/", "_").replace(os.sep, "_") + ".lock")
    # one object per file: FileLock is reentrant per object, so a load nested in another on the
    # same thread (a dataset built from another) does not wait for itself
    lock = _LOCKS.setdefault(path, FileLock(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"graphlab: waiting for another process that is preparing {subdir} in {root} "
              f"(lock {lock.lock_file})", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def list_datasets() -> List[Dict[str, Any]]:
    """One row per registered dataset: name, task, metric, protocol, source, mirror status and
    where its files come from (``files``: ``generated`` locally, the ``mirror``, or a
    ``download``)."""
    rows = []
    for key in DATASETS.names():
        s = DATASETS.get(key)
        m = _mirror.find_mirror(list(s.mirror)) if s.mirror else None
        generated = not s.mirror and s.info.url is None
        files = "generated" if generated else ("mirror" if m is not None else "download")
        rows.append({"name": s.info.name, "task": s.info.task, "metric": s.info.metric,
                     "protocol": s.info.protocol, "source": s.info.source,
                     "in_mirror": m is not None, "mirror": m, "files": files})
    return rows


def format_list(rows: Optional[List[Dict[str, Any]]] = None) -> str:
    """``list_datasets()`` as an aligned text table (what ``graphlab data list`` prints)."""
    rows = list_datasets() if rows is None else rows
    cols = ["name", "task", "metric", "protocol", "mirror"]
    table = [[r["name"], r["task"], r["metric"], r["protocol"], "yes" if r["in_mirror"] else "-"]
             for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths)) for t in table]
    return "\n".join(line.rstrip() for line in lines)


_NETWORK_ERRORS = (urllib.error.URLError, socket.gaierror, socket.timeout, ConnectionError,
                   TimeoutError)
_NETWORK_NAMES = ("ClientConnectorError", "ClientError", "ConnectError", "gaierror")


def _is_network(e: BaseException) -> bool:
    """Whether ``e`` (or what caused it) is a failed download: fsspec/aiohttp or urllib."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, _NETWORK_ERRORS) or any(
                c.__name__ in _NETWORK_NAMES for c in type(e).__mro__):
            return True
        e, seen = (e.__cause__ or e.__context__), seen + 1
    return False


def _explain(s: DatasetSpec, root: str, mirror: Optional[str], e: Exception) -> DataError:
    where = osp.join(root, *s.subdir.split("/"))
    missing = ""
    if isinstance(e, _cache.FetchFailed):
        missing = f" ({', '.join(e.missing)})" if e.missing else ""
        e = e.cause
    cause = f"{type(e).__name__}: {e}"
    if missing or _is_network(e):
        hint = (f"set GRAPHLAB_MIRROR to a directory laid out like shared/data (see its "
                f"MANIFEST.md) that holds '{s.info.mirror_subdir}'" if s.info.mirror_subdir else
                "this dataset has no mirror layout; run once with network access")
        return DataError(f"{s.info.name}: raw files are missing in {where}{missing} and the download "
                         f"from {s.info.url or 'its source'} failed ({cause}). Offline? {hint}, "
                         f"or put the raw files into {where} yourself.")
    fname = getattr(e, "filename", None)
    culprit = f" (file: {fname})" if fname else ""
    source = f"re-copied from the mirror {mirror}" if mirror else "downloaded again"
    return DataError(f"{s.info.name}: processing the raw files in {where} failed{culprit} with "
                     f"{cause}. The raw files are probably corrupt or incomplete: delete {where} "
                     f"and load again (they will be {source}).")
