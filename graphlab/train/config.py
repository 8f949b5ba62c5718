"""Experiment configs: YAML + dotted ``key=value`` overrides, validated before anything runs.

A config has these sections (``configs/<model>/<dataset>.yaml``)::

    experiment: gcn-cora          # optional; default "<model>-<dataset>"
    seeds: 10                     # optional; number of seeds (0..N-1) for --seeds
    data:      {name: Cora, batch_size: 32, ...}
    model:     {name: gcn, hidden_channels: 64, ...}   # checked against the model constructor
    optim:     {name: adam, lr: 0.01, weight_decay: 5e-4}
    scheduler: {name: none}       # none | cosine | plateau | step
    trainer:   {max_epochs: 200, ...}                   # checked against lightning.Trainer

Every error is a :class:`ConfigError` with one line that names the key and the valid choices;
the CLI turns it into exit code 2 without a traceback.
"""
from __future__ import annotations

import copy
import difflib
import inspect
import types
import typing
from typing import Any, Dict, List, Mapping

import torch
import yaml


class ConfigError(ValueError):
    """A config key is unknown, has the wrong type, or a required one is missing."""


# --------------------------------------------------------------------------- schema
#: keys the trainer fills in from the dataset; a config must not set them
INJECTED_MODEL_ARGS = ("in_channels", "out_channels", "task_level", "node_encoder", "edge_dim",
                       "edge_encoder", "num_users", "num_items")

DATA_KEYS: Dict[str, Any] = {
    "name": str, "root": (str, type(None)), "batch_size": int, "eval_batch_size": (int, type(None)),
    "num_workers": int, "fold": int, "pe": (dict, type(None)), "transforms": list,
    "loader": str, "opts": dict, "split_seed": (int, type(None)),
}
LOADERS = ("auto", "pyg", "packed")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = {
    "none": {},
    "cosine": {"warmup_epochs": int, "min_lr": float},
    "plateau": {"factor": float, "patience": int, "min_lr": float, "monitor": str,
                "warmup_epochs": int},
    "step": {"step_size": int, "gamma": float},
}
TOP_KEYS = ("experiment", "seeds", "data", "model", "optim", "scheduler", "trainer", "task",
            "wandb")
TASK_KEYS = {"metric": str, "loss": str, "embed_dim": int, "compile": (bool, dict),
             "cuda_graphs": (bool, dict), "select_on": str, "matmul_precision": str}
#: ``task.matmul_precision``: torch.set_float32_matmul_precision for the run. ``highest``
#: (torch's default) keeps float32 products exact to float32; ``high`` lets CUDA use TF32
#: tensor cores (10-bit mantissa inputs), ``medium`` bfloat16
MATMUL_PRECISIONS = ("highest", "high", "medium")


def check_matmul_precision(value) -> str:
    """``value`` if it is one of :data:`MATMUL_PRECISIONS`, else a ConfigError."""
    if value not in MATMUL_PRECISIONS:
        raise ConfigError(f"'task.matmul_precision' must be one of "
                          f"{', '.join(MATMUL_PRECISIONS)}, got {value!r}")
    return value


#: what ``task.select_on`` (best epoch) and the plateau ``scheduler.monitor`` may watch on the
#: validation split: the task's metric, or its training loss function
MONITORS = ("metric", "loss")
#: options of ``task.cuda_graphs`` (graphlab.train.cuda_graphs; --ensemble runs only)
CUDA_GRAPH_KEYS = {"capture": bool, "granularity": int, "max_graphs": int}


def _did_you_mean(key: str, choices) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unknown(section: str, key: str, choices) -> ConfigError:
    return ConfigError(f"unknown key '{section}.{key}'{_did_you_mean(key, choices)}; valid keys: "
                       f"{', '.join(sorted(choices))}")


def _type_ok(value: Any, ann: Any) -> bool:
    """Loose runtime check of a value against a type annotation (ints pass as floats)."""
    if ann is inspect.Parameter.empty or ann is Any:
        return True
    if isinstance(ann, tuple):
        return any(_type_ok(value, a) for a in ann)
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(ann))
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


def _ann_name(ann: Any) -> str:
    if isinstance(ann, tuple):
        return " | ".join(_ann_name(a) for a in ann)
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")


def _check_type(section: str, key: str, value: Any, ann: Any) -> None:
    if not _type_ok(value, ann):
        raise ConfigError(f"'{section}.{key}' must be {_ann_name(ann)}, got {value!r} "
                          f"({type(value).__name__})")


def signature_schema(fn, skip=()) -> Dict[str, inspect.Parameter]:
    """Keyword parameters of a constructor/function (resolving string annotations)."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    out = {}
    for name, p in inspect.signature(target).parameters.items():
        if name in ("self", *skip) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[name] = p.replace(annotation=hints.get(name, p.annotation))
    return out


def _check_against_signature(section: str, cfg: dict, fn, skip=(), reserved=()) -> None:
    params = signature_schema(fn, skip=skip)
    for key, value in cfg.items():
        if key in reserved:
            continue
        if key in skip:
            raise ConfigError(f"'{section}.{key}' is set by graphlab from the dataset; remove it")
        if key not in params:
            raise _unknown(section, key, [*params, *reserved])
        _check_type(section, key, value, params[key].annotation)


# --------------------------------------------------------------------------- loading
class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 insists on ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    __import__("re").compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", __import__("re").X),
    list("-+0123456789."))


def _yaml(text):
    return yaml.load(text, Loader=_Loader)


def parse_overrides(pairs: List[str]) -> Dict[str, Any]:
    """``["model.hidden_channels=64", "optim.lr=1e-3"]`` -> nested dict (values parsed as YAML)."""
    out: Dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override '{pair}' is not of the form key=value")
        key, raw = pair.split("=", 1)
        if not key or any(not k for k in key.split(".")):
            raise ConfigError(f"override '{pair}' has an empty key")
        try:
            value = _yaml(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for k in parts[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{pair}' conflicts with another override")
        node[parts[-1]] = value
    return out


def merge(base: dict, upd: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(path: str, overrides: List[str] | None = None) -> dict:
    try:
        with open(path) as f:
            cfg = _yaml(f)
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping with sections {TOP_KEYS}")
    return merge(cfg, parse_overrides(overrides or []))


def validate(cfg: dict) -> dict:
    """Check every section; returns the config with defaults filled in."""
    from graphlab.registry import MODELS

    if not isinstance(cfg, dict):
        raise ConfigError("config must be a mapping")
    for key in cfg:
        if key not in TOP_KEYS:
            raise _unknown("<top>", key, TOP_KEYS)
    for sec in ("data", "model"):
        if not isinstance(cfg.get(sec), dict):
            raise ConfigError(f"missing required section '{sec}' (a mapping with at least 'name')")
        if "name" not in cfg[sec]:
            raise ConfigError(f"missing required key '{sec}.name'")
    cfg = copy.deepcopy(cfg)
    for sec in ("optim", "scheduler", "trainer", "task"):
        cfg.setdefault(sec, {})
        if not isinstance(cfg[sec], dict):
            raise ConfigError(f"section '{sec}' must be a mapping, got {type(cfg[sec]).__name__}")
    if "seeds" in cfg:
        _check_type("<top>", "seeds", cfg["seeds"], int)
    if "experiment" in cfg:
        _check_type("<top>", "experiment", cfg["experiment"], str)

    # data
    data = cfg["data"]
    for key, value in data.items():
        if key not in DATA_KEYS:
            raise _unknown("data", key, DATA_KEYS)
        _check_type("data", key, value, DATA_KEYS[key])
    data.setdefault("batch_size", 32)
    data.setdefault("loader", "auto")
    if data["loader"] not in LOADERS:
        raise ConfigError(f"'data.loader' must be one of {', '.join(LOADERS)}, got {data['loader']!r}")
    from graphlab import data as gdata
    try:
        gdata.info(data["name"])
    except KeyError as e:
        raise ConfigError(f"'data.name': {e.args[0]}") from None
    if data.get("transforms"):
        from graphlab.train.run import build_transforms
        build_transforms(data["transforms"])
    if data.get("pe"):
        pe = dict(data["pe"])
        if "name" not in pe:
            raise ConfigError("'data.pe' needs a 'name' (the positional encoding transform)")
        pe.pop("on_the_fly", None)
        from graphlab.nn.pe import pe_transform
        try:
            pe_transform(pe.pop("name"), **pe)
        except (KeyError, ValueError, TypeError) as e:
            raise ConfigError(f"'data.pe': {e.args[0] if e.args else e}") from None

    # model
    model = cfg["model"]
    try:
        cls = MODELS.get(model["name"])
    except KeyError as e:
        raise ConfigError(f"'model.name': {e.args[0]}") from None
    _check_against_signature("model", model, cls, skip=INJECTED_MODEL_ARGS, reserved=("name",))

    # optimiser
    optim = cfg["optim"]
    optim.setdefault("name", "adam")
    optim.setdefault("lr", 1e-3)
    if optim["name"] not in OPTIMIZERS:
        raise ConfigError(f"'optim.name' must be one of {', '.join(OPTIMIZERS)}, got {optim['name']!r}")
    import torch
    ocls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[optim["name"]]
    _check_against_signature("optim", optim, ocls, skip=("params",), reserved=("name",))

    # scheduler
    sched = cfg["scheduler"]
    sched.setdefault("name", "none")
    if sched["name"] not in SCHEDULERS:
        raise ConfigError(f"'scheduler.name' must be one of {', '.join(SCHEDULERS)}, "
                          f"got {sched['name']!r}")
    allowed = SCHEDULERS[sched["name"]]
    for key, value in sched.items():
        if key == "name":
            continue
        if key not in allowed:
            raise _unknown("scheduler", key, ["name", *allowed])
        _check_type("scheduler", key, value, allowed[key])
    if sched.get("monitor", "metric") not in MONITORS:
        raise ConfigError(f"'scheduler.monitor' must be one of {', '.join(MONITORS)}, got "
                          f"{sched['monitor']!r}")
    if sched.get("warmup_epochs", 0) < 0:
        raise ConfigError("'scheduler.warmup_epochs' must be >= 0")

    # trainer: lightning.Trainer's own signature is the schema
    import lightning
    _check_against_signature("trainer", cfg["trainer"], lightning.Trainer,
                             skip=("logger", "callbacks", "plugins", "default_root_dir",
                                   "enable_checkpointing"))

    # optional Weights & Biases logging: the section holds WandbLogger arguments
    if cfg.get("wandb") is not None:
        if not isinstance(cfg["wandb"], dict):
            raise ConfigError("'wandb' must be a mapping of WandbLogger arguments, e.g. "
                              "{project: my-project}")
        from lightning.pytorch.loggers import WandbLogger
        _check_against_signature("wandb", cfg["wandb"], WandbLogger, skip=("save_dir",))

    # task
    for key, value in cfg["task"].items():
        if key not in TASK_KEYS:
            raise _unknown("task", key, TASK_KEYS)
        _check_type("task", key, value, TASK_KEYS[key])
        if key == "compile" and isinstance(value, dict):
            _check_against_signature("task.compile", value, torch.compile, skip=("model",))
        if key == "cuda_graphs" and isinstance(value, dict):
            for k, v in value.items():
                if k not in CUDA_GRAPH_KEYS:
                    raise _unknown("task.cuda_graphs", k, CUDA_GRAPH_KEYS)
                _check_type("task.cuda_graphs", k, v, CUDA_GRAPH_KEYS[k])
        if key == "matmul_precision":
            check_matmul_precision(value)
        if key == "select_on" and value not in MONITORS:
            raise ConfigError(f"'task.select_on' must be one of {', '.join(MONITORS)}, got "
                              f"{value!r}")
    return cfg


def experiment_name(cfg: dict) -> str:
    return cfg.get("experiment") or f"{cfg['model']['name']}-{cfg['data']['name']}".lower()
