"""Running experiments: the in-memory core :func:`train`, the config runner behind the CLI
(:func:`run_seed`, :func:`run_seeds`) and the plain Python API :func:`fit`.

A run goes through each stage once, in order: ``config.validate`` -> the data pipeline
(:func:`graphlab.data.pipeline.build_data`) -> the task family (:func:`graphlab.tasks.build_task`,
its ``prepare`` and ``dims``) -> the model (:func:`build_model`) -> the Lightning module over
both (:class:`~graphlab.train.task.GraphTask`) -> the metrics record
(:func:`graphlab.train.records.build_record`).

Each seed run by :func:`run_seed` writes ``<out>/<experiment>/seed<k>/``: ``metrics.json``
(best-epoch validation and test metrics, the per-epoch history, run facts),
``test_predictions.pt``, ``checkpoints/last.ckpt`` and CSV / TensorBoard logs. ``--seeds N``
adds ``<out>/<experiment>/summary.json`` with the mean and unbiased std per metric over seeds
0..N-1 (the OGB leaderboard protocol). :func:`train` writes nothing unless given ``out_dir``.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from graphlab.errors import ConfigError
from graphlab.registry import MODELS
from graphlab.schema import signature_schema
from graphlab.tasks import INJECTED_MODEL_ARGS, Task, build_task
from graphlab.train import records as R
from graphlab.train.config import (check_matmul_precision, experiment_name, validate,
                                   validate_sections)
from graphlab.train.datamodule import GraphDataModule
from graphlab.train.task import GraphTask

#: fields of metrics.json that describe the run rather than its results
RUN_FIELDS = R.RUN_FIELDS


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file and renames it: a kill during the write leaves
    the previous checkpoint intact."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
        R.atomic_torch_save(checkpoint, str(path))


class _Timer(Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        t0 = getattr(self, "_t0", None)  # None when a resumed run re-enters at the epoch end
        if t0 is not None:
            pl_module.train_time += time.perf_counter() - t0
        self._t0 = None


# --------------------------------------------------------------------------- building blocks
@dataclass
class RunData:
    """The data side of a run: the dataset, its facts, the split, the task family prepared on
    them and the model arguments they inject."""

    dataset: Any
    info: Any
    split: Any
    task: Task
    dims: Dict[str, Any]


def prepare(cfg: dict, data_seed: int) -> RunData:
    """Data pipeline, then the task family on it (``prepare``, ``dims``)."""
    from graphlab.data.pipeline import build_data
    L.seed_everything(data_seed, workers=True, verbose=False)
    dataset, info, split = build_data(cfg["data"], data_seed)
    task = build_task(cfg["task"], info)
    task.prepare(dataset, info, split)
    return RunData(dataset, info, split, task, task.dims(dataset, info, split))


def build_model(cfg: dict, dims: Dict[str, Any]) -> torch.nn.Module:
    """``MODELS[model.name](**injected, **model)``: the injected arguments the constructor
    accepts, then the config's (an ``out_channels`` of ``None``, embeddings for link
    prediction, becomes the model's ``hidden_channels``, else 64)."""
    mcfg = dict(cfg["model"])
    cls = MODELS.get(mcfg.pop("name"))
    accepted = signature_schema(cls)
    kwargs = {k: v for k, v in dims.items() if k in accepted and k in INJECTED_MODEL_ARGS}
    if dims["out_channels"] is None:
        kwargs["out_channels"] = int(mcfg.get("hidden_channels", 64))
    if "edge_dim" in kwargs and kwargs["edge_dim"] is None:
        kwargs.pop("edge_dim")
    return cls(**kwargs, **mcfg)


def matmul_precision(cfg: dict):
    """Applies ``task.matmul_precision`` (:func:`torch.set_float32_matmul_precision`) for the
    duration of a run and restores the previous setting afterwards."""
    from graphlab.nn.checks import float32_matmul_precision
    want = (cfg.get("task") or {}).get("matmul_precision")
    if want is None:
        return contextlib.nullcontext()
    return float32_matmul_precision(check_matmul_precision(want))


def _trainer_settings(cfg: dict, task: Task, verbose: bool, strategy) -> Dict[str, Any]:
    tcfg = {k: v for k, v in cfg["trainer"].items() if k != "strategy"}
    tcfg.setdefault("max_epochs", 100)
    tcfg.setdefault("deterministic", "warn")
    tcfg.setdefault("num_sanity_val_steps", 0)
    tcfg.setdefault("enable_progress_bar", verbose)  # else graphlab's own compact lines
    tcfg.setdefault("enable_model_summary", False)
    if task.level != "graph":
        tcfg.setdefault("log_every_n_steps", 1)
    if task.eval_needs_grad:
        tcfg["inference_mode"] = False
    if strategy.owns_steps:  # the strategy clips (Lightning refuses to under manual steps)
        tcfg.pop("gradient_clip_val", None)
        tcfg.pop("gradient_clip_algorithm", None)
    return tcfg


def _module(cfg: dict, model, task: Task, max_epochs: int, strategy) -> GraphTask:
    clip = (cfg["trainer"].get("gradient_clip_val"),
            cfg["trainer"].get("gradient_clip_algorithm")) if strategy.owns_steps else None
    return GraphTask(model, task, optim=cfg["optim"], scheduler=cfg["scheduler"],
                     max_epochs=max_epochs, select_on=cfg["task"].get("select_on", "metric"),
                     strategy=strategy, clip=clip)


def _datamodule(cfg: dict, rd: RunData, data_seed: int, device=None) -> GraphDataModule:
    d = cfg["data"]
    return GraphDataModule(rd.dataset, rd.split, rd.task, batch_size=d["batch_size"],
                           eval_batch_size=d.get("eval_batch_size"),
                           num_workers=d.get("num_workers", 0), seed=data_seed,
                           loader=d.get("loader", "auto"), device=device)


def _compile(cfg: dict, model) -> None:
    compile_cfg = cfg["task"].get("compile", False)
    if compile_cfg:  # in place (nn.Module.compile): state_dict keys and checkpoints unchanged
        model.compile(**({} if compile_cfg is True else dict(compile_cfg)))


# --------------------------------------------------------------------------- the core
def train(model: Optional[torch.nn.Module], data: Union[str, Any], cfg: Mapping[str, Any], *,
          seed: int = 0, split: Optional[Mapping[str, Any]] = None,
          out_dir: Optional[str] = None) -> Dict[str, Any]:
    """Train in memory and return the metrics record; nothing is written unless ``out_dir``.

    Args:
        model: a built model, or ``None`` to build ``cfg['model']`` with the injected
            dimensions.
        data: a registered dataset's name, or in-memory data: a PyG dataset, a list of
            ``Data`` objects or one ``Data`` (transductive: its ``train_mask`` /
            ``val_mask`` (or ``valid_mask``) / ``test_mask`` are the split).
        cfg: the config sections ``optim``, ``scheduler``, ``trainer``, ``task`` (and
            ``model`` when ``model`` is ``None``; ``data`` options for a registered dataset).
            For in-memory data ``task.name`` and ``task.metric`` say what to train.
        seed: seeds the model's initialisation (when built here), the data order and dropout.
        split: for in-memory datasets of several graphs, ``{'train', 'valid', 'test'}``
            index tensors.
        out_dir: where to write checkpoints and logs (``None``: nowhere).

    Lightning's start-up and end-of-fit messages are silenced for the call. The fixed cost per
    call is measured by ``scripts/bench_train_overhead.py`` (on a 2-core CPU: about 70 ms per
    call plus about 15 ms per epoch over a plain PyTorch loop doing the same work).
    """
    cfg = _training_config(cfg, data)
    with matmul_precision(cfg), _quiet_lightning():
        L.seed_everything(seed, workers=True, verbose=False)
        rd = _in_memory(cfg, data, split, seed) if not isinstance(data, str) else \
            prepare(cfg, seed)
        L.seed_everything(seed, workers=True, verbose=False)
        if model is None:
            model = build_model(cfg, rd.dims)
        record, _ = _fit(cfg, rd, model, seed=seed, data_seed=seed, seed_dir=out_dir,
                         quiet=True)
        return record


@contextlib.contextmanager
def _quiet_lightning():
    """Lightning's informational messages (accelerator, tips, why fit stopped) off for a block."""
    import logging
    import warnings
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric",
                                              "pytorch_lightning", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="lightning")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _training_config(cfg: Mapping[str, Any], data) -> dict:
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in dict(cfg).items()}
    if isinstance(data, str):
        cfg["data"] = {**cfg.get("data", {}), "name": data}
        return validate(cfg) if "model" in cfg else validate_sections(cfg)
    return validate_sections(cfg, in_memory=True)


def _in_memory(cfg: dict, data, split, seed: int) -> RunData:
    from graphlab.data.catalog import DatasetInfo
    from torch_geometric.data import Data
    tcfg = cfg["task"]
    if not tcfg.get("name") or not tcfg.get("metric"):
        raise ConfigError("training on in-memory data needs 'task.name' (e.g. "
                          "node_classification) and 'task.metric' (e.g. accuracy)")
    dataset = [data] if isinstance(data, Data) else data
    if split is None:
        if len(dataset) != 1:
            raise ConfigError("in-memory data of several graphs needs split={'train', 'valid', "
                              "'test'} (graph indices)")
        g = dataset[0]
        masks = {"train": getattr(g, "train_mask", None),
                 "valid": getattr(g, "val_mask", getattr(g, "valid_mask", None)),
                 "test": getattr(g, "test_mask", None)}
        if any(m is None for m in masks.values()):
            raise ConfigError("a single in-memory graph needs train_mask, val_mask (or "
                              "valid_mask) and test_mask")
        split = masks
    first = dataset[0]
    has_edges = getattr(first, "edge_attr", None) is not None
    info = DatasetInfo(name=cfg["data"]["name"], task=tcfg["name"], metric=tcfg["metric"],
                       higher_is_better=True, ogb_name=None, node_encoder="linear",
                       edge_encoder="linear" if has_edges else None, protocol="fixed",
                       source="in-memory data", mirror_subdir=None)
    if not hasattr(dataset, "num_node_features"):
        dataset = _ListDataset(dataset)
    task = build_task(tcfg, info)
    task.prepare(dataset, info, split)
    return RunData(dataset, info, split, task, task.dims(dataset, info, split))


class _ListDataset(torch.utils.data.Dataset):
    """A list of ``Data`` with what the task families read of a PyG dataset."""

    def __init__(self, graphs: Sequence[Any]):
        self.graphs = list(graphs)

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int):
        return self.graphs[i].clone() if hasattr(self.graphs[i], "clone") else self.graphs[i]

    def get(self, i: int):
        return self.graphs[i]

    @property
    def num_node_features(self) -> int:
        x = getattr(self.graphs[0], "x", None)
        return 0 if x is None else int(x.view(x.size(0), -1).size(1))

    @property
    def num_classes(self) -> int:
        ys = torch.cat([g.y.view(-1) for g in self.graphs])
        return int(ys.max()) + 1


def _fit(cfg: dict, rd: RunData, model, *, seed: int, data_seed: int,
         seed_dir: Optional[str], quiet: bool, resume: bool = False,
         fold: Optional[int] = None, experiment: Optional[str] = None,
         verbose: bool = False, label: Optional[str] = None):
    """One Lightning run: ``(record, best test predictions)`` (``({}, None)`` on ranks other
    than 0); with ``seed_dir`` it writes checkpoints and logs there."""
    from graphlab.distributed import resolve
    if cfg["task"].get("cuda_graphs"):
        raise ConfigError("'task.cuda_graphs' is implemented by the ensemble runner: add "
                          "--ensemble (also for a single seed: --seeds 1 --ensemble)")
    strategy = resolve(cfg["trainer"].get("strategy"))
    _compile(cfg, model)
    tcfg = _trainer_settings(cfg, rd.task, verbose, strategy)
    module = _module(cfg, model, rd.task, tcfg["max_epochs"], strategy)
    dm = _datamodule(cfg, rd, data_seed)
    resumed, ckpt_path = False, None
    if seed_dir is not None:
        ckpt_dir = os.path.join(seed_dir, "checkpoints")
        last = os.path.join(ckpt_dir, "last.ckpt")
        resumed = bool(resume and os.path.exists(last))
        ckpt_path = last if resumed else None
        extra = dict(default_root_dir=seed_dir, logger=_loggers(cfg, seed_dir, seed),
                     callbacks=[ModelCheckpoint(dirpath=ckpt_dir, filename="last",
                                                save_last=False, save_top_k=1, every_n_epochs=1,
                                                save_on_train_epoch_end=False,
                                                enable_version_counter=False), _Timer()],
                     plugins=[AtomicCheckpointIO()])
    else:
        extra = dict(logger=False, enable_checkpointing=False, callbacks=[_Timer()])
    if not quiet and not verbose:
        from graphlab.train.progress import SeedProgress
        extra["callbacks"].append(SeedProgress(label or R.run_name(seed, fold)))
    with (contextlib.nullcontext() if verbose else _quiet_lightning()):
        trainer = L.Trainer(strategy=strategy.lightning_strategy(), **extra, **tcfg)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    wall = time.perf_counter() - t0
    if trainer.global_rank != 0:
        return {}, None
    record = R.build_record(recorder=module.recorder, task=rd.task, cfg=cfg,
                            experiment=experiment or experiment_name(cfg), seed=seed, fold=fold,
                            max_epochs=tcfg["max_epochs"],
                            num_parameters=R.count_parameters(model), wall_time_s=wall,
                            resumed=resumed)
    return record, module.best_test_pred


def _loggers(cfg: dict, seed_dir: str, seed: int) -> list:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    loggers = [CSVLogger(seed_dir, name="logs", version=""),
               TensorBoardLogger(seed_dir, name="tb", version="")]
    if cfg.get("wandb") is not None:  # optional: needs `pip install graphlab[wandb]`
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise RuntimeError("the config has a 'wandb' section but wandb is not installed: "
                               "pip install 'graphlab[wandb]'") from None
        from lightning.pytorch.loggers import WandbLogger
        loggers.append(WandbLogger(save_dir=seed_dir, **{"name": f"{experiment_name(cfg)}-s{seed}",
                                                         **cfg["wandb"]}))
    return loggers


# --------------------------------------------------------------------------- config runner
def run_seed(cfg: dict, seed: int, out_dir: str, resume: bool = False,
             quiet: bool = False, fold: Optional[int] = None,
             data_seed: Optional[int] = None, verbose: bool = False) -> Dict[str, Any]:
    """Train one seed (of one cross-validation fold); returns and writes its metrics.json.

    Output: a start line, a compact in-place bar and an end line per seed; ``quiet``: nothing;
    ``verbose``: Lightning's own progress bars and messages.

    ``data_seed`` (default: ``seed``) seeds the data side alone: a random split and the order
    of the training batches. A seed ensemble (``--ensemble``) uses its first seed's data for
    every member; ``data_seed`` reproduces a member as a separate run."""
    with matmul_precision(cfg):
        return _run_seed(cfg, seed, out_dir, resume, quiet, fold, data_seed, verbose)


def _run_seed(cfg: dict, seed: int, out_dir: str, resume: bool, quiet: bool,
              fold: Optional[int], data_seed: Optional[int],
              verbose: bool = False) -> Dict[str, Any]:
    data_seed = seed if data_seed is None else int(data_seed)
    if fold is not None:
        cfg = {**cfg, "data": {**cfg["data"], "fold": fold}}
    cfg = validate(cfg)
    seed_dir = os.path.join(out_dir, experiment_name(cfg), R.run_name(seed, fold))
    metrics_path = os.path.join(seed_dir, "metrics.json")
    if resume and os.path.exists(metrics_path):
        with open(metrics_path) as f:
            done = json.load(f)
        if done.get("complete", True):
            return done  # finished seeds are skipped; time-limited ones continue
    os.makedirs(seed_dir, exist_ok=True)
    rd = prepare(cfg, data_seed)
    L.seed_everything(seed, workers=True, verbose=False)  # model init independent of data prep
    model = build_model(cfg, rd.dims)
    record, best_test_pred = _fit(cfg, rd, model, seed=seed, data_seed=data_seed,
                                  seed_dir=seed_dir, quiet=quiet, resume=resume, fold=fold,
                                  verbose=verbose)
    if not record:
        return record
    if best_test_pred is not None:
        R.atomic_torch_save(best_test_pred, os.path.join(seed_dir, "test_predictions.pt"))
    R.atomic_write_json(metrics_path, record)
    return record


def run_seeds(cfg: dict, seeds: List[int], out_dir: str, resume: bool = False, jobs: int = 1,
              config_path: Optional[str] = None, overrides: Optional[List[str]] = None,
              quiet: bool = False, folds: Optional[List[int]] = None,
              verbose: bool = False) -> Dict[str, Any]:
    """Run seeds (for each cross-validation fold in ``folds``, if given), sequentially or as
    ``jobs`` parallel processes, and summarise over all runs (mean ± unbiased std)."""
    cfg = validate(cfg)
    exp_dir = os.path.join(out_dir, experiment_name(cfg))
    runs = [(s, f) for f in (folds if folds is not None else [None]) for s in seeds]
    if jobs > 1:
        if config_path is None:
            raise ValueError("parallel seeds need the config path (they run as CLI processes)")
        _run_processes(runs, jobs, config_path, overrides, out_dir, exp_dir, resume, quiet)
        records = []
        for s, fold in runs:
            with open(os.path.join(exp_dir, R.run_name(s, fold), "metrics.json")) as f:
                records.append(json.load(f))
    else:
        records = [run_seed(cfg, s, out_dir, resume=resume, quiet=quiet, fold=fold,
                            verbose=verbose) for s, fold in runs]
    summary = R.summarize_seeds(records)
    R.atomic_write_json(os.path.join(exp_dir, "summary.json"), summary)
    return summary


def _run_processes(runs, jobs: int, config_path: str, overrides, out_dir: str, exp_dir: str,
                   resume: bool, quiet: bool = True) -> None:
    """The runs as ``jobs`` CLI processes at a time, each logging to its ``stdout.log``; one
    line per start and end here (unless ``quiet``), so parallel seeds never interleave."""
    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)
    pending = list(runs)
    started: Dict[Any, float] = {}
    procs: List[subprocess.Popen] = []
    failed = []
    while pending or procs:
        while pending and len(procs) < jobs:
            s, fold = pending.pop(0)
            cmd = [sys.executable, "-m", "graphlab.train.cli", "train", config_path,
                   *(overrides or []), "--seed", str(s), "--out", out_dir, "--quiet"]
            if fold is not None:
                cmd += ["--fold", str(fold)]
            if resume:
                cmd.append("--resume")
            os.makedirs(os.path.join(exp_dir, R.run_name(s, fold)), exist_ok=True)
            log = open(os.path.join(exp_dir, R.run_name(s, fold), "stdout.log"), "ab")
            # Share the CPU cores between the seed processes instead of oversubscribing
            # them (OpenMP threads spinning against each other slow everything down).
            env = dict(os.environ)
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
            ngpu = torch.cuda.device_count()
            if ngpu > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
                env["CUDA_VISIBLE_DEVICES"] = str(s % ngpu)  # spread seeds over GPUs
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            p.run = (s, fold)
            started[p.run] = time.perf_counter()
            procs.append(p)
            say(f"[{R.run_name(s, fold)}] started ({len(runs) - len(pending)} of {len(runs)}; "
                f"log: {os.path.join(exp_dir, R.run_name(s, fold), 'stdout.log')})")
        time.sleep(0.5)
        for p in list(procs):
            if p.poll() is not None:
                procs.remove(p)
                took = time.perf_counter() - started[p.run]
                if p.returncode != 0:
                    failed.append(p.args)
                    say(f"[{R.run_name(*p.run)}] failed after {took:.0f} s (exit {p.returncode})")
                else:
                    say(f"[{R.run_name(*p.run)}] done in {took:.0f} s: {_result_line(exp_dir, p.run)}")
    if failed:
        raise RuntimeError(f"{len(failed)} seed process(es) failed; see seed*/stdout.log in "
                           f"{exp_dir}")


def _result_line(exp_dir: str, run) -> str:
    try:
        with open(os.path.join(exp_dir, R.run_name(*run), "metrics.json")) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return "no metrics.json"
    m = rec["metric"]
    test = rec["test"].get(m)
    return (f"best epoch {rec['best_epoch']}, valid {m} {rec['valid'][m]:.4f}"
            + (f", test {m} {test:.4f}" if test is not None else ""))


def fit(model: torch.nn.Module, dataset: str, *, seed: int = 0, out_dir: str = "runs",
        experiment: Optional[str] = None, optim: Optional[dict] = None,
        scheduler: Optional[dict] = None, trainer: Optional[dict] = None,
        data: Optional[dict] = None, task: Optional[dict] = None,
        resume: bool = False) -> Dict[str, Any]:
    """Plain Python API: train an already-built model on a registry dataset, no YAML; writes
    ``<out_dir>/<experiment>/seed<k>/`` as ``graphlab train`` does.

    >>> from graphlab.models import GCN
    >>> from graphlab.train import fit
    >>> rec = fit(GCN(1433, 7), "Cora", trainer={"max_epochs": 200})
    """
    experiment = experiment or f"{type(model).__name__.lower()}-{dataset.lower()}"
    seed_dir = os.path.join(out_dir, experiment, R.run_name(seed))
    os.makedirs(seed_dir, exist_ok=True)
    cfg = {"experiment": experiment, "data": {**(data or {}), "name": dataset},
           "optim": optim or {"name": "adam", "lr": 1e-3}, "scheduler": scheduler or {},
           "trainer": trainer or {}, "task": task or {},
           "model": {"name": type(model).__name__.lower()}}
    cfg = validate_sections(cfg)
    with matmul_precision(cfg):
        rd = prepare(cfg, seed)
        L.seed_everything(seed, workers=True, verbose=False)
        record, best_test_pred = _fit(cfg, rd, model, seed=seed, data_seed=seed,
                                      seed_dir=seed_dir, quiet=True, resume=resume,
                                      experiment=experiment)
    if best_test_pred is not None:
        R.atomic_torch_save(best_test_pred, os.path.join(seed_dir, "test_predictions.pt"))
    R.atomic_write_json(os.path.join(seed_dir, "metrics.json"), record)
    return record
