"""Training: config validation, the runners (Lightning and the seed ensemble), the ``graphlab``
CLI, records and reports. :func:`train` is the in-memory core; :func:`run_seed` /
:func:`run_seeds` the config runner; :func:`fit` the plain Python API."""
from graphlab.errors import ConfigError
from graphlab.train.config import load_config, validate
from graphlab.train.run import fit, run_seed, run_seeds, train

__all__ = ["ConfigError", "load_config", "validate", "fit", "run_seed", "run_seeds", "train"]
