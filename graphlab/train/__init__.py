"""Training: config validation, the runners (Lightning and the seed ensemble), the ``graphlab``
CLI, records and reports. :func:`train` is the in-memory core; :func:`run_seed` /
:func:`run_seeds` the config runner; :func:`fit` the plain Python API.

The names load on first use, so that ``graphlab --help`` does not import Lightning.
"""
from graphlab.errors import ConfigError

__all__ = ["ConfigError", "load_config", "validate", "fit", "run_seed", "run_seeds", "train"]

_LAZY = {"load_config": "graphlab.train.config", "validate": "graphlab.train.config",
         "fit": "graphlab.train.run", "run_seed": "graphlab.train.run",
         "run_seeds": "graphlab.train.run", "train": "graphlab.train.run"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphlab.train' has no attribute {name!r}")
