"""graphlab's data layer: one registry of benchmark datasets, offline mirror, splits.

>>> import graphlab.data as gd
>>> ds = gd.load("MUTAG")                 # PyG dataset (mirror copy or download)
>>> gd.info("MUTAG").metric, gd.info("MUTAG").protocol
('accuracy', 'tu_cv')
>>> split = gd.get_split("MUTAG", ds, fold=3)   # {'train', 'valid', 'test'} index tensors

Data root: ``$GRAPHLAB_DATA`` (default: ``./datasets``). Offline mirror: ``$GRAPHLAB_MIRROR``
(``os.pathsep``-separated directories laid out like ``shared/data``). See README "Data".
"""
import os as _os

_os.environ.setdefault("OUTDATED_IGNORE", "1")  # before anything imports ogb

from graphlab.errors import DataError  # noqa: E402
from graphlab.data.catalog import (DatasetInfo, DatasetSpec, TASKS, default_root,  # noqa: E402
                                   format_list, info, list_datasets, load)
from graphlab.data import specs as _specs  # noqa: E402,F401  (registers every dataset)
from graphlab.data.splits import get_split  # noqa: E402

__all__ = ["DataError", "DatasetInfo", "DatasetSpec", "TASKS", "default_root", "format_list", "get_split",
           "info", "list_datasets", "load"]
from graphlab.data import synthetic as _synthetic  # noqa: E402,F401  (generated benchmarks)
