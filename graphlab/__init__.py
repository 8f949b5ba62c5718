"""graphlab: a graph learning platform on PyTorch Geometric.

Subpackages (one concept each): ``nn`` (layers, encodings, sequence cores), ``models``,
``data``, ``transforms``, ``train``, ``optim``, ``distributed``, ``kernels``, ``valuation``,
``sampling``.
"""
import os as _os

# ogb's import asks PyPI for its latest version unless this is set; never wait on the network.
_os.environ.setdefault("OUTDATED_IGNORE", "1")

__version__ = "0.1.0"

from graphlab.errors import ConfigError, DataError  # noqa: E402
from graphlab.registry import (  # noqa: E402
    Registry, MODELS, DATASETS, ENCODINGS, SEQ_CORES, TASKS, OPTIMIZERS, SCHEDULERS,
    STRATEGIES, MIXERS, LOCAL_MPNNS, PE_TRANSFORMS,
    register_model, register_dataset, register_encoding, register_seq_core, register_task,
    register_optimizer, register_scheduler, register_strategy, register_mixer,
    register_local_mpnn, register_pe_transform,
)

__all__ = [
    "ConfigError", "DataError",
    "Registry", "MODELS", "DATASETS", "ENCODINGS", "SEQ_CORES", "TASKS", "OPTIMIZERS",
    "SCHEDULERS", "STRATEGIES", "MIXERS", "LOCAL_MPNNS", "PE_TRANSFORMS",
    "register_model", "register_dataset", "register_encoding", "register_seq_core",
    "register_task", "register_optimizer", "register_scheduler", "register_strategy",
    "register_mixer", "register_local_mpnn", "register_pe_transform",
    "__version__",
]
