"""Running experiments: the plain Python API (:func:`fit`) and the config runner behind the CLI.

Each seed writes ``<out>/<experiment>/seed<k>/``: ``metrics.json`` (best-epoch validation and
test metrics, the per-epoch history, run facts), ``test_predictions.pt``, ``checkpoints/last.ckpt``
and CSV / TensorBoard logs. ``--seeds N`` adds ``<out>/<experiment>/summary.json`` with the mean
and unbiased std per metric over seeds 0..N-1 (the OGB leaderboard protocol).
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from graphlab.registry import MODELS
from graphlab.train import metrics as M
from graphlab.train.config import INJECTED_MODEL_ARGS, ConfigError, experiment_name, validate
from graphlab.train.datamodule import GRAPH_TASKS, LINK_TASKS, GraphDataModule
from graphlab.train.task import GraphTask

#: fields of metrics.json that describe the run rather than its results (they vary run to run)
RUN_FIELDS = ("wall_time_s", "hardware", "peak_memory_mb", "throughput", "git_sha", "versions",
              "resumed", "ensemble")


# --------------------------------------------------------------------------- small utilities
def atomic_write_bytes(path: str, payload: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_torch_save(obj: Any, path: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file and renames it: a kill during the write leaves
    the previous checkpoint intact."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
        atomic_torch_save(checkpoint, str(path))


class _Timer(Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        t0 = getattr(self, "_t0", None)  # None when a resumed run re-enters at the epoch end
        if t0 is not None:
            pl_module.train_time += time.perf_counter() - t0
        self._t0 = None


def git_sha() -> Optional[str]:
    """The commit that ran (``$GRAPHLAB_GIT_SHA`` where the checkout has no ``.git``)."""
    if os.environ.get("GRAPHLAB_GIT_SHA"):
        return os.environ["GRAPHLAB_GIT_SHA"]
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def versions() -> Dict[str, str]:
    import lightning
    import torch_geometric
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "torch_geometric": torch_geometric.__version__, "lightning": lightning.__version__}
    try:
        import ogb
        out["ogb"] = ogb.__version__
    except ImportError:
        pass
    import graphlab
    out["graphlab"] = graphlab.__version__
    return out


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- building blocks
def build_transforms(specs: list):
    """``[NormalizeFeatures, {name: AddRandomWalkPE, walk_length: 8}]`` -> a PyG ``Compose``.

    Names resolve in :mod:`graphlab.transforms` first, then :mod:`torch_geometric.transforms`."""
    if not specs:
        return None
    import torch_geometric.transforms as T

    import graphlab.transforms as GT
    from graphlab.train.config import ConfigError
    out = []
    for spec in specs:
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        name = spec.pop("name", None)
        cls = getattr(GT, str(name), None) or getattr(T, str(name), None)
        if cls is None or not isinstance(cls, type):
            raise ConfigError(f"'data.transforms': unknown transform {name!r}; use a class name "
                              "from graphlab.transforms or torch_geometric.transforms")
        try:
            out.append(cls(**spec))
        except TypeError as e:
            raise ConfigError(f"'data.transforms': {name}: {e}") from None
    return T.Compose(out)


def build_data(cfg: dict, seed: int):
    """Dataset, its info record, the split and (for link tasks) the split graphs."""
    from graphlab import data as gdata
    dcfg = cfg["data"]
    info = gdata.info(dcfg["name"])
    pre_transform, transform = None, build_transforms(dcfg.get("transforms", []))
    if dcfg.get("pe"):
        # Positional encodings are computed once and stored with the processed dataset, or,
        # with ``on_the_fly: true``, when a graph is loaded (bounded memory for RRWP pairs).
        import torch_geometric.transforms as T

        from graphlab.nn.pe import pe_transform
        pe = dict(dcfg["pe"])
        on_the_fly = bool(pe.pop("on_the_fly", False))
        pe_t = pe_transform(pe.pop("name"), **pe)
        if on_the_fly and pe_t is not None:
            transform = T.Compose([pe_t, transform]) if transform is not None else pe_t
        else:
            pre_transform = pe_t
    dataset = gdata.load(dcfg["name"], root=dcfg.get("root"), pre_transform=pre_transform,
                         transform=transform, **dcfg.get("opts", {}))
    stored = getattr(dataset, "_data", None)
    x = getattr(stored, "x", None) if stored is not None and not hasattr(stored, "node_types") \
        else None
    if isinstance(x, torch.Tensor) and x.is_floating_point() and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(-1).sum()) if x.dim() > 1 else int((~torch.isfinite(x)).sum())
        raise gdata.DataError(f"{dcfg['name']}: {bad} node(s) have NaN/inf features; clean the "
                              "raw data or impute them with a transform before training")
    split_seed = dcfg.get("split_seed")
    split = gdata.get_split(dcfg["name"], dataset, seed=seed if split_seed is None else split_seed,
                            fold=dcfg.get("fold", 0))
    link_data = None
    if info.task in LINK_TASKS:
        link_data = split if isinstance(split, dict) and "train" in split and \
            hasattr(split["train"], "edge_index") else None
    return dataset, info, split, link_data


def dataset_dims(dataset, info, split=None) -> Dict[str, Any]:
    """The model arguments that come from the dataset (see the model contract)."""
    if info.task == "recommendation":  # user/item embeddings: the sizes are the inputs
        nu, ni = int(split["num_users"]), int(split["num_items"])
        return {"num_users": nu, "num_items": ni, "in_channels": nu + ni, "out_channels": 1,
                "edge_dim": None, "node_encoder": "embedding", "edge_encoder": "linear",
                "task_level": "node"}
    data0 = dataset[0] if len(dataset) else None
    in_channels = int(getattr(dataset, "num_node_features", 0) or 0)
    if info.task in ("node_classification", "graph_classification"):
        out = int(dataset.num_classes)
    elif info.task == "graph_multilabel":
        out = int(getattr(dataset, "num_tasks", 0) or data0.y.view(1, -1).size(1))
    elif info.task == "graph_regression":
        out = int(data0.y.view(1, -1).size(1)) if data0 is not None and data0.y is not None else 1
    elif info.task == "node_regression":  # y [n, T] per graph
        out = int(data0.y.view(data0.y.size(0), -1).size(1)) if data0 is not None else 1
    else:
        out = None
    edge_dim = None
    if info.edge_encoder is not None and data0 is not None and \
            getattr(data0, "edge_attr", None) is not None:
        edge_dim = int(data0.edge_attr.view(data0.edge_attr.size(0), -1).size(1))
        if info.edge_encoder == "embedding":  # categories: the vocabulary size
            edge_dim = int(getattr(dataset, "_data", data0).edge_attr.max()) + 1
    if info.node_encoder == "embedding":
        in_channels = int(getattr(dataset, "num_node_types", 0) or
                          int(dataset._data.x.max()) + 1)
    return {"in_channels": in_channels, "out_channels": out, "edge_dim": edge_dim,
            "node_encoder": info.node_encoder, "edge_encoder": info.edge_encoder or "linear",
            "task_level": "graph" if info.task in GRAPH_TASKS else "node"}


def target_std(dataset, train_index) -> torch.Tensor:
    """Per-target standard deviation (unbiased) of ``y`` over the training graphs' nodes
    (``mae_normalized``'s scale). Read from the stored tensors, without the loader transform;
    a constant target gets scale 1 (its normalised MAE is then its plain MAE)."""
    idx = torch.as_tensor(train_index).view(-1)
    if idx.dtype == torch.bool:
        idx = idx.nonzero().view(-1)
    ys = [dataset.get(int(i)).y for i in idx] if len(dataset) > 1 else \
        [dataset.get(0).y[idx.long()]]
    y = torch.cat([t.view(t.size(0), -1) for t in ys]).double()
    if y.size(0) < 2:
        raise ValueError("mae_normalized needs at least 2 training targets to estimate a std")
    std = y.std(0)
    return torch.where(std > 0, std, torch.ones_like(std))


def build_model(cfg: dict, dims: Dict[str, Any]) -> torch.nn.Module:
    mcfg = dict(cfg["model"])
    cls = MODELS.get(mcfg.pop("name"))
    from graphlab.train.config import signature_schema
    accepted = signature_schema(cls)
    kwargs = {k: v for k, v in dims.items() if k in accepted and k in INJECTED_MODEL_ARGS}
    if dims["out_channels"] is None:  # link prediction: the model outputs node embeddings
        kwargs["out_channels"] = int(cfg["task"].get("embed_dim", mcfg.get("hidden_channels", 64)))
    if "edge_dim" in kwargs and kwargs["edge_dim"] is None:
        kwargs.pop("edge_dim")
    return cls(**kwargs, **mcfg)


# --------------------------------------------------------------------------- running
def run_name(seed: int, fold: Optional[int] = None) -> str:
    """``seed<k>``, or ``fold<f>-seed<k>`` for cross-validation runs."""
    return f"seed{seed}" if fold is None else f"fold{fold}-seed{seed}"


def matmul_precision(cfg: dict):
    """Applies ``task.matmul_precision`` (:func:`torch.set_float32_matmul_precision`) for the
    duration of a run and restores the previous setting afterwards."""
    from graphlab.nn.checks import float32_matmul_precision
    from graphlab.train.config import check_matmul_precision
    want = (cfg.get("task") or {}).get("matmul_precision")
    if want is None:
        return contextlib.nullcontext()
    return float32_matmul_precision(check_matmul_precision(want))


def run_seed(cfg: dict, seed: int, out_dir: str, resume: bool = False,
             quiet: bool = False, fold: Optional[int] = None,
             data_seed: Optional[int] = None) -> Dict[str, Any]:
    """Train one seed (of one cross-validation fold); returns and writes its metrics.json.

    ``data_seed`` (default: ``seed``) seeds the data side alone: a random split and the order
    of the training batches. A seed ensemble (``--ensemble``) uses its first seed's data for
    every member; ``data_seed`` reproduces a member as a separate run."""
    with matmul_precision(cfg):
        return _run_seed(cfg, seed, out_dir, resume, quiet, fold, data_seed)


def _run_seed(cfg: dict, seed: int, out_dir: str, resume: bool, quiet: bool,
              fold: Optional[int], data_seed: Optional[int]) -> Dict[str, Any]:
    data_seed = seed if data_seed is None else int(data_seed)
    if fold is not None:
        cfg = {**cfg, "data": {**cfg["data"], "fold": fold}}
    cfg = validate(cfg)
    exp_dir = os.path.join(out_dir, experiment_name(cfg))
    seed_dir = os.path.join(exp_dir, run_name(seed, fold))
    metrics_path = os.path.join(seed_dir, "metrics.json")
    ckpt_dir = os.path.join(seed_dir, "checkpoints")
    last = os.path.join(ckpt_dir, "last.ckpt")
    if resume and os.path.exists(metrics_path):
        with open(metrics_path) as f:
            done = json.load(f)
        if done.get("complete", True):
            return done  # finished seeds are skipped; time-limited ones continue
    os.makedirs(seed_dir, exist_ok=True)

    L.seed_everything(data_seed, workers=True, verbose=False)
    dataset, info, split, link_data = build_data(cfg, data_seed)
    dims = dataset_dims(dataset, info, split)
    rec_data = None
    if info.task == "recommendation":
        from graphlab.train.ranking import bipartite_graph
        rec_data = {k: split[k] for k in ("train", "valid", "test", "num_users", "num_items")}
        rec_data["graph"] = bipartite_graph(split["train"], split["num_users"], split["num_items"])
    L.seed_everything(seed, workers=True, verbose=False)  # model init independent of data prep
    model = build_model(cfg, dims)
    if cfg["task"].get("cuda_graphs"):
        raise ConfigError("'task.cuda_graphs' is implemented by the ensemble runner: add "
                          "--ensemble (also for a single seed: --seeds 1 --ensemble)")
    compile_cfg = cfg["task"].get("compile", False)
    if compile_cfg:  # in place (nn.Module.compile): state_dict keys and checkpoints unchanged
        model.compile(**({} if compile_cfg is True else dict(compile_cfg)))
    tcfg = dict(cfg["trainer"])
    tcfg.setdefault("max_epochs", 100)
    tcfg.setdefault("deterministic", "warn")
    tcfg.setdefault("num_sanity_val_steps", 0)
    tcfg.setdefault("enable_progress_bar", not quiet)
    tcfg.setdefault("enable_model_summary", False)
    if info.task not in GRAPH_TASKS:
        tcfg.setdefault("log_every_n_steps", 1)
    metric = cfg["task"].get("metric", info.metric)
    scale = target_std(dataset, split["train"]) if metric == "mae_normalized" else None
    task = GraphTask(model, info.task, metric, ogb_name=getattr(info, "ogb_name", None),
                     optim=cfg["optim"], scheduler=cfg["scheduler"],
                     loss=cfg["task"].get("loss", "auto"), max_epochs=tcfg["max_epochs"],
                     rec_data=rec_data, target_scale=scale,
                     select_on=cfg["task"].get("select_on", "metric"))
    dm = GraphDataModule(dataset, split, info.task, batch_size=cfg["data"]["batch_size"],
                         eval_batch_size=cfg["data"].get("eval_batch_size"),
                         num_workers=cfg["data"].get("num_workers", 0), seed=data_seed,
                         link_data=link_data, loader=cfg["data"].get("loader", "auto"))
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
    ckpt = ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_last=False, save_top_k=1,
                           every_n_epochs=1, save_on_train_epoch_end=False, enable_version_counter=False)
    trainer = L.Trainer(default_root_dir=seed_dir, logger=loggers,
                        callbacks=[ckpt, _Timer()], plugins=[AtomicCheckpointIO()], **tcfg)
    resumed = bool(resume and os.path.exists(last))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.fit(task, datamodule=dm, ckpt_path=last if resumed else None)
    wall = time.perf_counter() - t0
    if trainer.global_rank != 0:
        return {}
    if task.best is None:
        raise RuntimeError("training finished without a validation epoch; check trainer settings")

    record = {
        "experiment": experiment_name(cfg), "seed": seed, "fold": fold,
        "dataset": cfg["data"]["name"],
        "model": cfg["model"]["name"], "task": info.task, "metric": metric,
        "best_epoch": task.best["epoch"], "epochs": len(task.history),
        "max_epochs": tcfg["max_epochs"], "complete": len(task.history) >= tcfg["max_epochs"],
        "valid": {metric: task.best[f"valid_{metric}"], **_parts(task.best, "valid", metric)},
        "test": {metric: task.best.get(f"test_{metric}"), **_parts(task.best, "test", metric)},
        "num_parameters": count_parameters(model), "history": task.history, "config": cfg,
        "wall_time_s": wall, "hardware": hardware(), "peak_memory_mb": peak_memory_mb(),
        "throughput": {"train_samples_per_s": task.train_samples / max(task.train_time, 1e-9)},
        "git_sha": git_sha(), "versions": versions(), "resumed": resumed,
    }
    if scale is not None:
        record["target_scale"] = scale.tolist()
    if task.best_test_pred is not None:
        atomic_torch_save(task.best_test_pred, os.path.join(seed_dir, "test_predictions.pt"))
    atomic_write_json(metrics_path, record)
    return record


def _parts(best: Dict[str, Any], split: str, metric: str) -> Dict[str, float]:
    """Per-target parts of the metric at the best epoch (``mae_normalized_t0`` ...)."""
    pre = f"{split}_{metric}_"
    return {k[len(split) + 1:]: v for k, v in best.items() if k.startswith(pre)}


def summarize_seeds(records: List[Dict[str, Any]]) -> Dict[str, Any]:
    vals: Dict[str, list] = {}
    for r in records:
        for split in ("valid", "test"):
            for k, v in r[split].items():
                if v is not None:
                    vals.setdefault(f"{split}_{k}", []).append(v)
    return {"experiment": records[0]["experiment"], "seeds": [r["seed"] for r in records],
            "folds": [r.get("fold") for r in records],
            "num_parameters": records[0]["num_parameters"], "metrics": M.summarize(vals),
            "hardware": records[0]["hardware"], "git_sha": records[0]["git_sha"],
            "wall_time_s": sum(r["wall_time_s"] for r in records)}


def format_summary(summary: Dict[str, Any]) -> str:
    lines = [f"| experiment | seeds | params | metric | mean ± std |", "|---|---|---|---|---|"]
    for k, v in summary["metrics"].items():
        lines.append(f"| {summary['experiment']} | {v['n']} | {summary['num_parameters']:,} | {k} | "
                     f"{v['mean']:.4f} ± {v['std']:.4f} |")
    return "\n".join(lines)


def run_seeds(cfg: dict, seeds: List[int], out_dir: str, resume: bool = False, jobs: int = 1,
              config_path: Optional[str] = None, overrides: Optional[List[str]] = None,
              quiet: bool = False, folds: Optional[List[int]] = None) -> Dict[str, Any]:
    """Run seeds (for each cross-validation fold in ``folds``, if given), sequentially or as
    ``jobs`` parallel processes, and summarise over all runs (mean ± unbiased std)."""
    cfg = validate(cfg)
    exp_dir = os.path.join(out_dir, experiment_name(cfg))
    runs = [(s, f) for f in (folds if folds is not None else [None]) for s in seeds]
    if jobs > 1:
        if config_path is None:
            raise ValueError("parallel seeds need the config path (they run as CLI processes)")
        pending = list(runs)
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
                os.makedirs(os.path.join(exp_dir, run_name(s, fold)), exist_ok=True)
                log = open(os.path.join(exp_dir, run_name(s, fold), "stdout.log"), "ab")
                # Share the CPU cores between the seed processes instead of oversubscribing
                # them (OpenMP threads spinning against each other slow everything down).
                env = dict(os.environ)
                env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
                ngpu = torch.cuda.device_count()
                if ngpu > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
                    env["CUDA_VISIBLE_DEVICES"] = str(s % ngpu)  # spread seeds over GPUs
                procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
            time.sleep(0.5)
            for p in list(procs):
                if p.poll() is not None:
                    procs.remove(p)
                    if p.returncode != 0:
                        failed.append(p.args)
        if failed:
            raise RuntimeError(f"{len(failed)} seed process(es) failed; see seed*/stdout.log in {exp_dir}")
        records = []
        for s, fold in runs:
            with open(os.path.join(exp_dir, run_name(s, fold), "metrics.json")) as f:
                records.append(json.load(f))
    else:
        records = [run_seed(cfg, s, out_dir, resume=resume, quiet=quiet, fold=fold)
                   for s, fold in runs]
    summary = summarize_seeds(records)
    atomic_write_json(os.path.join(exp_dir, "summary.json"), summary)
    return summary


def fit(model: torch.nn.Module, dataset: str, *, seed: int = 0, out_dir: str = "runs",
        experiment: Optional[str] = None, optim: Optional[dict] = None,
        scheduler: Optional[dict] = None, trainer: Optional[dict] = None,
        data: Optional[dict] = None, resume: bool = False) -> Dict[str, Any]:
    """Plain Python API: train an already-built model on a registry dataset, no YAML.

    >>> from graphlab.models import GCN
    >>> from graphlab.train import fit
    >>> rec = fit(GCN(1433, 7), "Cora", trainer={"max_epochs": 200})
    """
    from graphlab.registry import MODELS
    name = f"_fit_{type(model).__name__.lower()}_{id(model)}"
    MODELS._items[name] = lambda **kw: model  # the instance plays the role of the class
    try:
        cfg = {"experiment": experiment or f"{type(model).__name__.lower()}-{dataset.lower()}",
               "data": {"name": dataset, **(data or {})}, "model": {"name": name},
               "optim": optim or {"name": "adam", "lr": 1e-3}, "scheduler": scheduler or {},
               "trainer": trainer or {}}
        return run_seed(cfg, seed, out_dir, resume=resume, quiet=True)
    finally:
        MODELS._items.pop(name, None)
