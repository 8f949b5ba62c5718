"""Config schemas read from signatures: names, types and value constraints in one place.

A registered component's constructor (or factory) signature is its config schema: every keyword
parameter is a config key, its annotation the type, its default the default. Value constraints
sit next to the parameter, in the annotation, with :class:`typing.Annotated`::

    from typing import Annotated
    from graphlab.schema import Range, Choice

    class MyGNN(torch.nn.Module):
        def __init__(self, in_channels: int, out_channels: int,
                     hidden_channels: Annotated[int, Range(ge=1)] = 64,
                     dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0,
                     pool: Annotated[str, Choice("mean", "sum")] = "mean"): ...

Components whose signatures graphlab does not own (``torch.optim`` optimizers,
``lightning.Trainer``) get their constraints at registration instead
(``OPTIMIZERS.register("adam", torch.optim.Adam, constraints={"lr": Range(ge=0)})``).
:func:`check_section` validates a config section against a schema and raises
:class:`~graphlab.errors.ConfigError` with one line naming the key.
"""
from __future__ import annotations

import difflib
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from graphlab.errors import ConfigError

__all__ = ["Constraint", "Range", "Choice", "Param", "signature_schema", "check_section",
           "check_value", "did_you_mean", "unknown_key", "INJECTED_MODEL_ARGS"]

#: the model arguments a task family fills in from the dataset; a config must not set them
#: (the model contract, :mod:`graphlab.models.contract`)
INJECTED_MODEL_ARGS = ("in_channels", "out_channels", "task_level", "node_encoder", "edge_dim",
                       "edge_encoder", "num_users", "num_items", "metadata", "target")


class Constraint:
    """A check of a config value beyond its type; ``describe()`` says what is allowed."""

    def ok(self, value: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Constraint):
    """A number within bounds: ``Range(ge=0)``, ``Range(gt=0, le=1)``. ``None`` passes (an
    optional parameter left unset)."""

    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None

    def ok(self, value: Any) -> bool:
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return True  # the type check reports non-numbers
        if isinstance(value, float) and math.isnan(value):
            return False
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le)
                and (self.lt is None or value < self.lt))

    def describe(self) -> str:
        parts = [f"{op} {b}" for op, b in ((">=", self.ge), (">", self.gt), ("<=", self.le),
                                            ("<", self.lt)) if b is not None]
        return "a number " + " and ".join(parts)


class Choice(Constraint):
    """One of a fixed set of values (strings compare case-sensitively)."""

    def __init__(self, *values: Any):
        self.values = tuple(values)

    def ok(self, value: Any) -> bool:
        return value is None or value in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))

    def __repr__(self) -> str:
        return f"Choice{self.values!r}"


@dataclass(frozen=True)
class Param:
    """One config key of a schema: its type annotation, default and constraints."""

    name: str
    annotation: Any = inspect.Parameter.empty
    default: Any = inspect.Parameter.empty
    constraints: Tuple[Constraint, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def _split_annotated(ann: Any) -> Tuple[Any, Tuple[Constraint, ...]]:
    if typing.get_origin(ann) is typing.Annotated:
        base, *meta = typing.get_args(ann)
        return base, tuple(m for m in meta if isinstance(m, Constraint))
    return ann, ()


def signature_schema(fn: Any, skip: Iterable[str] = (),
                     constraints: Optional[Mapping[str, Any]] = None) -> Dict[str, Param]:
    """The keyword parameters of a class constructor or function as :class:`Param` s, with
    string annotations resolved and ``Annotated`` constraints (plus ``constraints``, a
    ``name -> Constraint or tuple`` table for signatures graphlab does not own) attached."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    skip = set(skip)
    extra = dict(constraints or {})
    out: Dict[str, Param] = {}
    for name, p in inspect.signature(target).parameters.items():
        if name in ("self", *skip) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        base, cons = _split_annotated(hints.get(name, p.annotation))
        more = extra.get(name, ())
        more = more if isinstance(more, tuple) else (more,)
        out[name] = Param(name, base, p.default, cons + more)
    return out


# --------------------------------------------------------------------------- checking
def did_you_mean(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_key(section: str, key: str, choices: Iterable[str]) -> ConfigError:
    choices = list(choices)
    return ConfigError(f"unknown key '{section}.{key}'{did_you_mean(key, choices)}; valid keys: "
                       f"{', '.join(sorted(choices))}")


def type_ok(value: Any, ann: Any) -> bool:
    """Loose runtime check of a value against a type annotation (ints pass as floats)."""
    ann, _ = _split_annotated(ann)
    if ann is inspect.Parameter.empty or ann is Any:
        return True
    if isinstance(ann, tuple):
        return any(type_ok(value, a) for a in ann)
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, a) for a in typing.get_args(ann))
    if origin is typing.Literal:
        return value in typing.get_args(ann)
    if origin in (list, List, tuple):
        return isinstance(value, (list, tuple))
    if origin in (dict, Dict, Mapping):
        return isinstance(value, dict)
    if ann is type(None):
        return value is None
    if ann is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(ann, type):
        return isinstance(value, ann)
    return True  # unresolvable annotation (e.g. a callable): accept


def ann_name(ann: Any) -> str:
    ann, _ = _split_annotated(ann)
    if isinstance(ann, tuple):
        return " | ".join(ann_name(a) for a in ann)
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")


def check_value(section: str, key: str, value: Any, param: Param) -> None:
    """Type, then constraints, of one value; a :class:`ConfigError` naming the key."""
    if not type_ok(value, param.annotation):
        raise ConfigError(f"'{section}.{key}' must be {ann_name(param.annotation)}, got "
                          f"{value!r} ({type(value).__name__})")
    for c in param.constraints:
        if not c.ok(value):
            raise ConfigError(f"'{section}.{key}' must be {c.describe()}, got {value!r}")


def check_section(section: str, cfg: Mapping[str, Any], schema: Mapping[str, Param],
                  reserved: Iterable[str] = (), injected: Iterable[str] = (),
                  injected_by: str = "from the dataset") -> None:
    """Every key of ``cfg`` is in ``schema`` (or ``reserved``) and has a valid value;
    ``injected`` keys are filled in by graphlab (``injected_by`` says how) and may not be set."""
    reserved, injected = set(reserved), set(injected)
    for key, value in cfg.items():
        if key in reserved:
            continue
        if key in injected:
            raise ConfigError(f"'{section}.{key}' is set by graphlab {injected_by}; remove it")
        if key not in schema:
            raise unknown_key(section, key, [*schema, *reserved])
        check_value(section, key, value, schema[key])
