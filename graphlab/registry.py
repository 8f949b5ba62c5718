"""Name -> component registries, so new methods plug into configs and the CLI without edits.

>>> from graphlab import register_model
>>> @register_model("my_gnn")
... class MyGNN(torch.nn.Module): ...

The CLI resolves ``model.name: my_gnn`` through :data:`MODELS` and validates the rest of the
``model`` section against the constructor signature (:mod:`graphlab.schema`). Every pluggable
part has a registry: :data:`MODELS`, :data:`DATASETS`, :data:`ENCODINGS`, :data:`SEQ_CORES`,
:data:`TASKS` (task families, :mod:`graphlab.tasks`), :data:`OPTIMIZERS` and
:data:`SCHEDULERS` (:mod:`graphlab.optim`), :data:`STRATEGIES` (:mod:`graphlab.distributed`),
:data:`MIXERS` and :data:`LOCAL_MPNNS` (GPS's global and local layers), :data:`PE_TRANSFORMS`
(the pre-transform of each positional encoding, :mod:`graphlab.transforms.pe`).

**Discovery.** A registry imports the modules of its home packages the first time it is read
(``graphlab.models.*`` for :data:`MODELS`, ...), so a component in a new file of the package is
found without editing any ``__init__``. Third-party packages register through the Python entry
point group ``graphlab.plugins``: each entry names a module (imported) or a callable (called
with no arguments) that registers its components::

    # pyproject.toml of a plugin package
    [project.entry-points."graphlab.plugins"]
    my_models = "my_package.graphlab_models"
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, TypeVar

from graphlab.schema import did_you_mean

T = TypeVar("T")
PLUGIN_GROUP = "graphlab.plugins"


class Registry:
    """A case-insensitive mapping from names to classes or factories, with per-entry metadata.

    Args:
        kind: what the registry holds, for messages (``'model'``, ``'optimizer'``, ...).
        packages: graphlab packages whose modules are imported on first use (discovery).
    """

    def __init__(self, kind: str, packages: Tuple[str, ...] = ()):
        self.kind = kind
        self.packages = tuple(packages)
        self._items: Dict[str, Any] = {}
        self._meta: Dict[str, Dict[str, Any]] = {}
        self._populated = False

    def register(self, name: Optional[str] = None, obj: Any = None, **meta: Any):
        """Register ``obj`` under ``name`` (default: its ``__name__``) with optional metadata
        (``registry.meta(name)``); usable as a decorator: ``@registry.register('name')``."""
        def deco(o: T) -> T:
            key = (name or o.__name__).lower()
            if key in self._items and self._items[key] is not o:
                raise ValueError(f"{self.kind} '{key}' is already registered")
            self._items[key] = o
            self._meta[key] = dict(meta)
            return o
        return deco(obj) if obj is not None else deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` (no error if absent)."""
        key = str(name).lower()
        self._items.pop(key, None)
        self._meta.pop(key, None)

    def get(self, name: str) -> Any:
        self._populate()
        key = str(name).lower()
        if key not in self._items:
            raise KeyError(f"unknown {self.kind} '{name}'{did_you_mean(key, self._items)}; "
                           f"choose from: {', '.join(sorted(self._items))}")
        return self._items[key]

    def meta(self, name: str) -> Dict[str, Any]:
        """The metadata ``name`` was registered with (``{}`` if none)."""
        self.get(name)
        return dict(self._meta.get(str(name).lower(), {}))

    def names(self) -> list:
        self._populate()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._populate()
        return str(name).lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} entries)"

    def _populate(self) -> None:
        if self._populated:
            return
        self._populated = True  # set first: the imports below may read this registry
        for pkg in self.packages:
            discover(pkg)
        load_plugins()


def discover(package: str) -> None:
    """Import ``package`` and every module below it (their ``@register_*`` decorators run)."""
    mod = importlib.import_module(package)
    path = getattr(mod, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, prefix=f"{package}."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue  # private helpers register nothing
        importlib.import_module(info.name)


_PLUGINS_LOADED = False


def load_plugins() -> None:
    """Load every ``graphlab.plugins`` entry point once per process."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    from importlib.metadata import entry_points
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            obj = ep.load()
        except Exception as e:  # a broken plugin names itself instead of a deep traceback
            raise ImportError(f"graphlab plugin '{ep.name}' ({ep.value}) failed to load: "
                              f"{type(e).__name__}: {e}") from e
        if callable(obj) and not isinstance(obj, type):
            obj()


def reload_plugins() -> None:
    """Load the entry points again (e.g. after installing a plugin in a running process)."""
    global _PLUGINS_LOADED
    _PLUGINS_LOADED = False
    load_plugins()


MODELS = Registry("model", ("graphlab.models",))
DATASETS = Registry("dataset", ("graphlab.data",))
ENCODINGS = Registry("encoding", ("graphlab.nn.pe",))
SEQ_CORES = Registry("sequence core", ("graphlab.nn.seq",))
TASKS = Registry("task", ("graphlab.tasks",))
OPTIMIZERS = Registry("optimizer", ("graphlab.optim",))
SCHEDULERS = Registry("scheduler", ("graphlab.optim",))
STRATEGIES = Registry("strategy", ("graphlab.distributed",))
MIXERS = Registry("mixer", ("graphlab.nn.mixers",))
LOCAL_MPNNS = Registry("local MPNN", ("graphlab.models.gps",))
#: encoding name -> the pre-transform class that stores what the encoder reads
PE_TRANSFORMS = Registry("positional-encoding transform", ("graphlab.transforms",))


def _decorator(registry: Registry) -> Callable[..., Callable[[T], T]]:
    def register(name: Optional[str] = None, **meta: Any) -> Callable[[T], T]:
        return registry.register(name, **meta)
    register.__doc__ = f"Decorator: register a {registry.kind} under ``name``."
    return register


register_model = _decorator(MODELS)
register_dataset = _decorator(DATASETS)
register_encoding = _decorator(ENCODINGS)
register_seq_core = _decorator(SEQ_CORES)
register_task = _decorator(TASKS)
register_optimizer = _decorator(OPTIMIZERS)
register_scheduler = _decorator(SCHEDULERS)
register_strategy = _decorator(STRATEGIES)
register_mixer = _decorator(MIXERS)
register_local_mpnn = _decorator(LOCAL_MPNNS)
register_pe_transform = _decorator(PE_TRANSFORMS)
