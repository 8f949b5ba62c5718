"""Experiment configs: YAML + dotted ``key=value`` overrides, validated before anything runs.

A config has these sections (``configs/<model>/<dataset>.yaml``)::

    experiment: gcn-cora          # optional; default "<model>-<dataset>"
    seeds: 10                     # optional; number of seeds (0..N-1) for --seeds
    data:      {name: Cora, batch_size: 32, ...}
    model:     {name: gcn, hidden_channels: 64, ...}   # checked against the model constructor
    optim:     {name: adam, lr: 0.01, weight_decay: 5e-4}   # any graphlab.registry.OPTIMIZERS
    scheduler: {name: none}       # graphlab.registry.SCHEDULERS: none | cosine | plateau | step
    trainer:   {max_epochs: 200, strategy: ddp, ...}   # lightning.Trainer; strategy: STRATEGIES
    task:      {metric: rocauc, select_on: metric, ...} # trainer keys + the task family's own

Each section is checked against the schema of what it names (:mod:`graphlab.schema`): the
constructor or factory signature with its value constraints, read from the same registries
that build the run.

Every error is a :class:`ConfigError` with one line that names the key and the valid choices;
the CLI turns it into exit code 2 without a traceback.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Dict, List

import yaml

from graphlab.errors import ConfigError
from graphlab.schema import (Choice, Param, Range, check_section, check_value, signature_schema,
                             unknown_key)

__all__ = ["ConfigError", "load_config", "validate", "parse_overrides", "merge",
           "experiment_name", "check_matmul_precision", "MATMUL_PRECISIONS", "validate_sections",
           "validate_strategy", "trainer_schema"]


# --------------------------------------------------------------------------- schema
def _params(**spec) -> Dict[str, Param]:
    """``name=(type, default, *constraints)`` -> a schema of :class:`Param`."""
    return {k: Param(k, v[0], v[1], tuple(v[2:])) for k, v in spec.items()}


_EMPTY = Param.__dataclass_fields__["default"].default
DATA_KEYS = _params(
    name=(str, _EMPTY), root=((str, type(None)), None), batch_size=(int, 32, Range(ge=1)),
    eval_batch_size=((int, type(None)), None, Range(ge=1)),
    num_workers=(int, 0, Range(ge=0)), fold=(int, 0, Range(ge=0)), pe=((dict, type(None)), None),
    transforms=(list, None), loader=(str, "auto", Choice("auto", "pyg", "packed")),
    opts=(dict, None), split_seed=((int, type(None)), None))
TOP_KEYS = ("experiment", "seeds", "data", "model", "optim", "scheduler", "trainer", "task",
            "wandb")
#: ``task.matmul_precision``: torch.set_float32_matmul_precision for the run. ``highest``
#: (torch's default) keeps float32 products exact to float32; ``high`` lets CUDA use TF32
#: tensor cores (10-bit mantissa inputs), ``medium`` bfloat16
MATMUL_PRECISIONS = ("highest", "high", "medium")
#: options of ``task.cuda_graphs`` (graphlab.train.cuda_graphs; --ensemble runs only)
CUDA_GRAPH_KEYS = _params(capture=(bool, True), granularity=(int, 8, Range(ge=1)),
                          max_graphs=(int, 64, Range(ge=1)))
#: the trainer's own ``task`` keys; the family's options come from its constructor
TRAINER_TASK_KEYS = _params(
    name=(str, None), metric=(str, None), compile=((bool, dict), False),
    cuda_graphs=((bool, dict), False), select_on=(str, "metric", Choice("metric", "loss")),
    matmul_precision=(str, None, Choice(*MATMUL_PRECISIONS)))
#: constraints on ``lightning.Trainer`` arguments (its signature gives names and types)
TRAINER_CONSTRAINTS = {"max_epochs": Range(ge=1), "min_epochs": Range(ge=0),
                       "gradient_clip_val": Range(ge=0), "accumulate_grad_batches": Range(ge=1),
                       "check_val_every_n_epoch": Range(ge=1), "log_every_n_steps": Range(ge=1),
                       "num_sanity_val_steps": Range(ge=-1)}
#: ``lightning.Trainer`` arguments graphlab sets itself
TRAINER_OWN = ("logger", "callbacks", "plugins", "default_root_dir", "enable_checkpointing")
TRAINER_KEYS = None  # the Trainer's schema, read on first use (importing lightning is slow)


def check_matmul_precision(value) -> str:
    """``value`` if it is one of :data:`MATMUL_PRECISIONS`, else a ConfigError."""
    if value not in MATMUL_PRECISIONS:
        raise ConfigError(f"'task.matmul_precision' must be one of "
                          f"{', '.join(MATMUL_PRECISIONS)}, got {value!r}")
    return value


# --------------------------------------------------------------------------- loading
class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 insists on ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
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


def _section(cfg: dict, sec: str) -> dict:
    cfg.setdefault(sec, {})
    if cfg[sec] is None:
        cfg[sec] = {}
    if not isinstance(cfg[sec], dict):
        raise ConfigError(f"section '{sec}' must be a mapping, got {type(cfg[sec]).__name__}")
    return cfg[sec]


def _named(section: str, cfg: dict, registry, default: str):
    """The registry entry ``cfg['name']`` names (``default`` when unset)."""
    cfg.setdefault("name", default)
    try:
        return registry.get(cfg["name"])
    except KeyError as e:
        raise ConfigError(f"'{section}.name': {e.args[0]}") from None


def validate(cfg: dict) -> dict:
    """Check every section against the registries' schemas (names, types and values); returns
    a copy with the section defaults filled in (``optim.name: adam``, ``scheduler.name:
    none``, ``data.batch_size: 32``, ``data.loader: auto``)."""
    from graphlab.registry import MODELS
    from graphlab.tasks import INJECTED_MODEL_ARGS
    cfg = _top(cfg, need=("data", "model"))
    _validate_data(cfg["data"])
    _validate_task(cfg["task"], _dataset_info(cfg["data"]["name"]).task, cfg["data"]["name"])
    # model: the constructor's signature, less what the task injects
    cls = _named("model", cfg["model"], MODELS, cfg["model"]["name"])
    check_section("model", cfg["model"], signature_schema(cls), reserved=("name",),
                  injected=INJECTED_MODEL_ARGS)
    _validate_training(cfg)
    return cfg


def validate_sections(cfg: dict, in_memory: bool = False) -> dict:
    """:func:`validate` without the ``model`` section (the caller built the model); with
    ``in_memory`` also without a registered dataset: ``task.name`` then names the family."""
    cfg = _top(cfg, need=() if in_memory else ("data",))
    cfg.setdefault("model", {"name": "<given>"})
    if in_memory:
        cfg.setdefault("data", {})
        cfg["data"].setdefault("name", "<in-memory>")
        check_section("data", {k: v for k, v in cfg["data"].items() if k != "name"}, DATA_KEYS)
        cfg["data"].setdefault("batch_size", 32)
        cfg["data"].setdefault("loader", "auto")
        _validate_task(cfg["task"], None, "<in-memory>")
    else:
        _validate_data(cfg["data"])
        _validate_task(cfg["task"], _dataset_info(cfg["data"]["name"]).task, cfg["data"]["name"])
    _validate_training(cfg)
    return cfg


def _top(cfg: dict, need) -> dict:
    if not isinstance(cfg, dict):
        raise ConfigError("config must be a mapping")
    for key in cfg:
        if key not in TOP_KEYS:
            raise unknown_key("<top>", key, TOP_KEYS)
    for sec in need:
        if not isinstance(cfg.get(sec), dict):
            raise ConfigError(f"missing required section '{sec}' (a mapping with at least 'name')")
        if "name" not in cfg[sec]:
            raise ConfigError(f"missing required key '{sec}.name'")
    cfg = copy.deepcopy(cfg)
    for sec in ("optim", "scheduler", "trainer", "task"):
        _section(cfg, sec)
    if "seeds" in cfg:
        check_value("<top>", "seeds", cfg["seeds"], Param("seeds", int, 1, (Range(ge=1),)))
    if "experiment" in cfg:
        check_value("<top>", "experiment", cfg["experiment"], Param("experiment", str))
    return cfg


def _validate_task(tcfg: dict, dataset_task, dataset: str) -> None:
    """The trainer's ``task`` keys plus the family's own options (its constructor)."""
    from graphlab.registry import TASKS
    from graphlab.tasks import task_schema
    family = tcfg.get("name") or dataset_task
    if family is None:
        raise ConfigError("'task.name' is required for in-memory data (e.g. node_classification;"
                          f" registered: {', '.join(TASKS.names())})")
    if family not in TASKS:
        if tcfg.get("name"):
            raise ConfigError(f"'task.name': {_missing(TASKS, family)}")
        raise ConfigError(f"dataset '{dataset}' is a {family} task, which has no registered "
                          f"task family (graphlab.registry.TASKS: {', '.join(TASKS.names())})")
    check_section("task", tcfg, {**TRAINER_TASK_KEYS, **task_schema(family)})
    if isinstance(tcfg.get("compile"), dict):
        import torch
        check_section("task.compile", tcfg["compile"], signature_schema(torch.compile,
                                                                        skip=("model",)))
    if isinstance(tcfg.get("cuda_graphs"), dict):
        check_section("task.cuda_graphs", tcfg["cuda_graphs"], CUDA_GRAPH_KEYS)


def _validate_training(cfg: dict) -> None:
    """``optim``, ``scheduler`` (the registered classes' signatures), ``trainer``, ``wandb``."""
    from graphlab.optim import OPTIMIZERS, SCHEDULERS, optimizer_schema, scheduler_schema
    _named("optim", cfg["optim"], OPTIMIZERS, "adam")
    check_section("optim", cfg["optim"], optimizer_schema(cfg["optim"]["name"]),
                  reserved=("name",), injected=("params",), injected_by="(the model's parameters)")
    _named("scheduler", cfg["scheduler"], SCHEDULERS, "none")
    check_section("scheduler", cfg["scheduler"], scheduler_schema(cfg["scheduler"]["name"]),
                  reserved=("name",))
    _validate_trainer(cfg["trainer"])
    # optional Weights & Biases logging: the section holds WandbLogger arguments
    if cfg.get("wandb") is not None:
        if not isinstance(cfg["wandb"], dict):
            raise ConfigError("'wandb' must be a mapping of WandbLogger arguments, e.g. "
                              "{project: my-project}")
        from lightning.pytorch.loggers import WandbLogger
        check_section("wandb", cfg["wandb"], signature_schema(WandbLogger, skip=("save_dir",)),
                      injected=("save_dir",), injected_by="(the run's folder)")


def _missing(registry, name: str) -> str:
    try:
        registry.get(name)
    except KeyError as e:
        return e.args[0]
    return ""


def _dataset_info(name: str):
    from graphlab import data as gdata
    try:
        return gdata.info(name)
    except KeyError as e:
        raise ConfigError(f"'data.name': {e.args[0]}") from None


def _validate_data(data: dict) -> None:
    check_section("data", data, DATA_KEYS)
    data.setdefault("batch_size", 32)
    data.setdefault("loader", "auto")
    _dataset_info(data["name"])
    from graphlab.data.pipeline import build_pe_transform, build_transforms
    if data.get("transforms"):
        build_transforms(data["transforms"])
    if data.get("pe"):
        build_pe_transform(data["pe"])


def trainer_schema() -> Dict[str, Param]:
    """``lightning.Trainer``'s arguments as the ``trainer`` section's schema (``strategy``
    resolves through :data:`graphlab.registry.STRATEGIES`)."""
    global TRAINER_KEYS
    if TRAINER_KEYS is None:
        import lightning
        TRAINER_KEYS = signature_schema(lightning.Trainer, skip=TRAINER_OWN,
                                        constraints=TRAINER_CONSTRAINTS)
    return TRAINER_KEYS


def _validate_trainer(trainer: dict) -> None:
    schema = dict(trainer_schema())
    strategy = trainer.get("strategy")
    schema.pop("strategy", None)
    check_section("trainer", {k: v for k, v in trainer.items() if k != "strategy"}, schema,
                  injected=TRAINER_OWN, injected_by="for every run")
    if strategy is not None:
        validate_strategy(strategy)


def validate_strategy(spec) -> None:
    """``trainer.strategy``: a registered strategy's name, or ``{name, **options}`` with the
    options checked against the strategy's signature."""
    from graphlab.registry import STRATEGIES
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError("'trainer.strategy' must be a strategy name or a mapping with 'name' "
                          f"and its options, got {spec!r}")
    factory = _named("trainer.strategy", dict(spec), STRATEGIES, spec["name"])
    meta = STRATEGIES.meta(spec["name"])
    target = meta.get("schema_of", factory) if "schema_of" in meta else factory
    schema = signature_schema(target) if target is not None else {}
    for fixed in meta.get("fixed", ()):
        schema.pop(fixed, None)
    if target is not None and _takes_var_kwargs(target):  # e.g. DDP's own arguments
        spec = {k: v for k, v in spec.items() if k in schema or k == "name"}
    check_section("trainer.strategy", spec, schema, reserved=("name",))


def _takes_var_kwargs(fn) -> bool:
    import inspect
    target = fn.__init__ if inspect.isclass(fn) else fn
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(target).parameters.values())


def experiment_name(cfg: dict) -> str:
    return cfg.get("experiment") or f"{cfg['model']['name']}-{cfg['data']['name']}".lower()
