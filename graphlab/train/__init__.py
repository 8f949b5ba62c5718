"""Training: config validation, tasks, the ``graphlab`` CLI, evaluation and reports."""
from graphlab.train.config import ConfigError, load_config, validate
from graphlab.train.run import fit, run_seed, run_seeds

__all__ = ["ConfigError", "load_config", "validate", "fit", "run_seed", "run_seeds"]
