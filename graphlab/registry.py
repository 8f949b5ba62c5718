"""Name -> object registries, so new methods plug into configs and the CLI without touching them.

>>> from graphlab import register_model
>>> @register_model("my_gnn")
... class MyGNN(torch.nn.Module): ...

The CLI resolves ``model.name: my_gnn`` through :data:`MODELS`, and validates the rest of the
``model`` section against the constructor signature (see :mod:`graphlab.train.config`).
"""
from __future__ import annotations

import difflib
from typing import Any, Callable, Dict, Iterator, TypeVar

T = TypeVar("T")


class Registry:
    """A case-insensitive mapping from names to classes or factories."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Any] = {}

    def register(self, name: str | None = None, obj: Any = None):
        """Register ``obj`` under ``name``; usable as ``@registry.register('name')``."""
        def deco(o: T) -> T:
            key = (name or o.__name__).lower()
            if key in self._items and self._items[key] is not o:
                raise ValueError(f"{self.kind} '{key}' is already registered")
            self._items[key] = o
            return o
        return deco(obj) if obj is not None else deco

    def get(self, name: str) -> Any:
        self._populate()
        key = str(name).lower()
        if key not in self._items:
            close = difflib.get_close_matches(key, self._items, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise KeyError(f"unknown {self.kind} '{name}'{hint}; choose from: "
                           f"{', '.join(sorted(self._items))}")
        return self._items[key]

    def names(self) -> list:
        self._populate()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._populate()
        return str(name).lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _populate(self) -> None:
        # Importing the subpackage runs its @register_* decorators.
        import importlib
        mod = _POPULATE.get(self.kind)
        if mod:
            importlib.import_module(mod)


_POPULATE = {
    "model": "graphlab.models",
    "dataset": "graphlab.data",
    "encoding": "graphlab.nn",
    "sequence core": "graphlab.nn.seq",
}

MODELS = Registry("model")
DATASETS = Registry("dataset")
ENCODINGS = Registry("encoding")
SEQ_CORES = Registry("sequence core")


def register_model(name: str | None = None) -> Callable[[T], T]:
    return MODELS.register(name)


def register_dataset(name: str | None = None) -> Callable[[T], T]:
    return DATASETS.register(name)


def register_encoding(name: str | None = None) -> Callable[[T], T]:
    return ENCODINGS.register(name)


def register_seq_core(name: str | None = None) -> Callable[[T], T]:
    return SEQ_CORES.register(name)
