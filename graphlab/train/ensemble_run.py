"""``graphlab train CONFIG --seeds K --ensemble``: the ``K`` seeds trained as one vmapped model.

The runner builds member ``k`` exactly as a separate run with ``seeds[k]`` builds its model
(``lightning.seed_everything(seed)`` then :func:`graphlab.train.run.build_model`), stacks the
members into a :class:`~graphlab.train.ensemble.SeedEnsemble` and trains them with one forward
and one backward per batch. For every seed it writes what a separate run writes:
``seed<k>/metrics.json`` (the same fields, plus ``ensemble``), ``test_predictions.pt`` and
``logs/metrics.csv``, and ``summary.json`` over the seeds. The loss and the evaluation are the
task family's (:meth:`graphlab.tasks.Task.member_losses`, :meth:`~graphlab.tasks.Task.eval_outputs`),
the record, the best-epoch selection and the checkpointed run state a
:class:`~graphlab.train.step.RunRecorder` per member, and the schedules
:func:`graphlab.optim.build_schedule`'s: the same code the Lightning runner calls.

What equals a separate run, and what does not:

* **One data order.** All members see the same batches: the split and the shuffling of the
  *first* seed (``data_seed``, default ``seeds[0]``). A separate run with seed ``s`` splits
  (where the split is random) and shuffles with ``s``; to compare, run it with
  ``run_seed(..., data_seed=seeds[0])``. Member ``k`` then follows that run within float
  tolerance (tests/test_ensemble.py).
* **Randomness.** With ``randomness='error'`` (default: ``'error'``) a model that draws random numbers
  (dropout > 0) is refused with a :class:`~graphlab.errors.ConfigError`.
  ``randomness='different'`` trains it with independent dropout masks per member, which are
  *not* the masks of the separate runs: the members are then valid seeds, but not equal to
  separate runs.
* **Per member**: gradient clipping (``trainer.gradient_clip_val``, by norm over the member's
  own parameters or by value), LR schedule (one scheduler per member; ``plateau`` reads the
  member's own validation metric; the optimiser's step is rescaled per member when the LRs
  differ, exact for SGD/Adam/AdamW whose steps are linear in the LR), best-on-validation
  selection, history and test predictions.
* ``trainer.max_time`` is checked at epoch ends (Lightning also stops mid-epoch) and counts
  this invocation's time only.
* ``wall_time_s`` of each seed is the ensemble's wall time divided by ``K`` (so the summary's
  total is the ensemble's); ``ensemble`` in metrics.json holds the whole run's figures.

Checkpoints: ``<experiment>/ensemble[-fold<f>]/last.ckpt`` after every epoch (stacked weights and
BatchNorm statistics, optimiser, per-member schedulers and GraphTask state, RNG streams),
written on a background thread from a host copy taken at the epoch's end
(:class:`~graphlab.train.checkpoint_writer.BackgroundCheckpointWriter`, an atomic write: a kill
leaves the previous checkpoint);
``--resume`` continues from it exactly, and skips the run when every seed has finished.

Supported: task families with ``supports_ensemble`` (graph-level tasks, node classification and
regression), optimizers registered ``ensemble_exact`` (element-wise steps linear in the rate:
SGD, Adam, AdamW, ...), a single device (``trainer.accelerator``: auto / cpu / gpu / cuda),
``trainer.precision`` 32 or 64. Anything else (link prediction, recommendation, strategies,
gradient accumulation, mixed precision, L-BFGS, models that ``vmap`` cannot map or that own
their loss) gives a ConfigError naming the problem.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import lightning as L
import torch
from torch import Tensor, nn

from graphlab.errors import ConfigError
from graphlab.optim import OPTIMIZERS, Schedule, build_optimizer, build_schedule
from graphlab.tasks.base import Task
from graphlab.train import records as R
from graphlab.train import run as runner
from graphlab.train.checkpoint_writer import BackgroundCheckpointWriter
from graphlab.train.config import experiment_name, validate
from graphlab.train.ensemble import SeedEnsemble
from graphlab.train.step import RunRecorder, mean_loss, rng_state, set_rng_state

__all__ = ["run_ensemble", "run_ensembles", "ENSEMBLE_TRAINER_KEYS"]

#: trainer keys the ensemble runner honours (others would change what a separate run does)
ENSEMBLE_TRAINER_KEYS = ("max_epochs", "gradient_clip_val", "gradient_clip_algorithm",
                         "precision", "accelerator", "devices", "deterministic",
                         "enable_progress_bar", "enable_model_summary", "num_sanity_val_steps",
                         "log_every_n_steps", "check_val_every_n_epoch",
                         "accumulate_grad_batches", "benchmark", "num_nodes", "max_time")


@dataclass
class _Member:
    """One member's learning-rate schedule (on a one-parameter probe optimiser that carries
    the rate; the stacked optimiser applies it) and its run record."""

    probe: torch.optim.Optimizer
    schedule: Schedule
    recorder: RunRecorder

    @property
    def lr(self) -> float:
        return self.probe.param_groups[0]["lr"]

    def step_batch(self) -> None:
        if self.schedule.scheduler is not None and self.schedule.interval == "step":
            self.probe.step()  # no gradients: only marks the step for the scheduler
            self.schedule.scheduler.step()

    def step_epoch(self) -> None:
        if self.schedule.scheduler is None or self.schedule.interval != "epoch":
            return
        self.probe.step()
        self.schedule.step_epoch(self.recorder.monitored(self.schedule.watches_loss)
                                 if self.schedule.monitor is not None else None)

    def state_dict(self) -> Dict[str, Any]:
        sched = self.schedule.scheduler
        return {"optimizer": self.probe.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else None,
                "graphlab": self.recorder.state_dict()}

    def load_state_dict(self, st: Dict[str, Any]) -> None:
        self.probe.load_state_dict(st["optimizer"])
        if self.schedule.scheduler is not None:
            self.schedule.scheduler.load_state_dict(st["scheduler"])
        self.recorder.load_state_dict(st["graphlab"])


def _trainer_settings(tcfg: dict) -> Dict[str, Any]:
    for k, v in tcfg.items():
        if k not in ENSEMBLE_TRAINER_KEYS:
            raise ConfigError(f"'trainer.{k}' is not supported with --ensemble (supported: "
                              f"{', '.join(ENSEMBLE_TRAINER_KEYS)}); run the seeds as separate "
                              "processes (--jobs) instead")
    if tcfg.get("check_val_every_n_epoch", 1) != 1:
        raise ConfigError("'trainer.check_val_every_n_epoch' must be 1 with --ensemble")
    if tcfg.get("accumulate_grad_batches", 1) != 1:
        raise ConfigError("'trainer.accumulate_grad_batches' must be 1 with --ensemble")
    if tcfg.get("num_nodes", 1) != 1:
        raise ConfigError("'trainer.num_nodes' must be 1 with --ensemble (one device)")
    prec = str(tcfg.get("precision") if tcfg.get("precision") is not None else "32-true")
    if prec not in ("32", "32-true", "64", "64-true"):
        raise ConfigError(f"'trainer.precision' {prec!r} is not supported with --ensemble; use "
                          "32-true or 64-true")
    acc = str(tcfg.get("accelerator", "auto"))
    if acc not in ("auto", "cpu", "gpu", "cuda"):
        raise ConfigError(f"'trainer.accelerator' {acc!r} is not supported with --ensemble; use "
                          "auto, cpu, gpu or cuda")
    dev = tcfg.get("devices", "auto")
    if dev not in ("auto", 1, "1", None) and not (isinstance(dev, list) and len(dev) == 1):
        raise ConfigError("'trainer.devices' must be one device with --ensemble (the members "
                          "share it)")
    use_cuda = acc in ("gpu", "cuda") or (acc == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError(f"'trainer.accelerator' is {acc!r} but CUDA is not available")
    index = dev[0] if isinstance(dev, list) else 0
    clip = tcfg.get("gradient_clip_val")
    algo = tcfg.get("gradient_clip_algorithm") or "norm"
    if algo not in ("norm", "value"):
        raise ConfigError(f"'trainer.gradient_clip_algorithm' must be norm or value, got {algo!r}")
    max_time = None
    if tcfg.get("max_time") is not None:
        from lightning.pytorch.callbacks import Timer
        try:
            max_time = Timer(duration=tcfg["max_time"])._duration
        except Exception as e:  # noqa: BLE001 - Lightning's parser: one line for the user
            raise ConfigError(f"'trainer.max_time': {e}") from None
    return {"device": torch.device("cuda", index) if use_cuda else torch.device("cpu"),
            "max_time": max_time,
            "double": prec.startswith("64"), "clip": float(clip) if clip else None,
            "clip_algorithm": algo, "max_epochs": int(tcfg.get("max_epochs", 100)),
            "deterministic": tcfg.get("deterministic", "warn")}


@torch.no_grad()
def clip_member_grad_norms(params: List[Tensor], max_norm: float) -> Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for every member of stacked parameters at once: each
    member's gradients (slice ``[k]`` of every parameter) are scaled by
    ``min(1, max_norm / (||g_k||_2 + 1e-6))``. Returns the members' total norms ``[K]``."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(0)
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), 2, dim=1) for g in grads])
    total = torch.linalg.vector_norm(norms, 2, dim=0)
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))
    return total


def clip_and_step(opt: torch.optim.Optimizer, params: List[Tensor], tset: Dict[str, Any],
                  ratio: Optional[Tensor]) -> None:
    """Gradient clipping per member, then the optimiser step; with ``ratio`` ``[K]`` (member
    rate / the optimiser's rate) each member's update is rescaled by its ratio (exact for SGD,
    Adam and AdamW, whose updates are linear in the rate)."""
    if tset["clip"]:
        if tset["clip_algorithm"] == "norm":
            clip_member_grad_norms(params, tset["clip"])
        else:
            torch.nn.utils.clip_grad_value_(params, tset["clip"])
    if ratio is None:
        opt.step()
        return
    before = [p.detach().clone() for p in params]
    opt.step()
    with torch.no_grad():
        for p, b in zip(params, before):
            r = ratio.view(-1, *([1] * (p.dim() - 1))).to(p.dtype)
            p.copy_(b + (p - b) * r)


def _to_double(batch):
    """Lightning's 64-bit precision plugin casts floating inputs; PyG batches by hand."""
    for store in batch.stores:
        for k, v in store.items():
            if isinstance(v, Tensor) and v.is_floating_point():
                store[k] = v.double()
    return batch


def _unsupported_model(model_name: str, e: Exception) -> ConfigError:
    return ConfigError(f"model '{model_name}' cannot be trained as a vmapped ensemble "
                       f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); run "
                       "the seeds as separate processes (--jobs) instead")


def _write_csv(path: str, history: List[Dict[str, float]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    keys: List[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(history)
    R.atomic_write_bytes(path, buf.getvalue().encode())  # a reader or a kill never sees half


def run_ensemble(cfg: dict, seeds: List[int], out_dir: str, resume: bool = False,
                 quiet: bool = False, fold: Optional[int] = None, randomness: str = "error",
                 data_seed: Optional[int] = None) -> List[Dict[str, Any]]:
    """Train ``seeds`` as one vmapped ensemble (of one cross-validation fold); returns and
    writes one metrics.json record per seed (see the module docstring)."""
    # checkpoints are written on a background thread from a point-in-time copy on the host
    # (a 10-member GIN-virtual ensemble's 400 MB checkpoint stalls training only for the
    # device-to-host copy); one write at a time, and every exit waits for the last one
    with BackgroundCheckpointWriter(R.atomic_torch_save) as ckpt_io:
        with runner.matmul_precision(cfg):
            return _run_ensemble(cfg, seeds, out_dir, resume, quiet, fold, randomness,
                                 data_seed, ckpt_io)


def _checked(cfg: dict, seeds: List[int], randomness: str, fold: Optional[int]) -> dict:
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--ensemble needs distinct seeds, got {seeds}")
    if randomness not in ("error", "different", "same"):
        raise ConfigError(f"ensemble randomness must be error, different or same, got "
                          f"{randomness!r}")
    if fold is not None:
        cfg = {**cfg, "data": {**cfg["data"], "fold": fold}}
    cfg = validate(cfg)
    if cfg["task"].get("compile"):
        # measured on torch 2.13: a compiled vmapped forward specialises on every batch's node
        # count even with dynamic=True, so it recompiles at each new batch size
        raise ConfigError("'task.compile' is not supported with --ensemble (the vmapped graph "
                          "recompiles for every batch size); compile separate runs (--jobs)")
    name = cfg["optim"]["name"]
    if not OPTIMIZERS.meta(name).get("ensemble_exact"):
        exact = [n for n in OPTIMIZERS.names() if OPTIMIZERS.meta(n).get("ensemble_exact")]
        raise ConfigError(f"'optim.name: {name}' is not supported with --ensemble (its step is "
                          f"not element-wise and linear in the rate, so stacked members would "
                          f"not train as separate runs); use one of {', '.join(exact)}, or run "
                          "the seeds as separate processes (--jobs)")
    return cfg


def _finished(seed_dirs: List[str]) -> Optional[List[Dict[str, Any]]]:
    """The records of a run whose every seed finished, else None."""
    if not all(os.path.exists(os.path.join(d, "metrics.json")) for d in seed_dirs):
        return None
    done = []
    for d in seed_dirs:
        with open(os.path.join(d, "metrics.json")) as f:
            done.append(json.load(f))
    return done if all(r.get("complete", True) for r in done) else None


def _build_members(cfg: dict, seeds: List[int], rd, tset: Dict[str, Any], randomness: str):
    """The stacked ensemble of the weights separate runs build, and its parameter count."""
    models = []
    for s in seeds:
        L.seed_everything(s, workers=True, verbose=False)
        models.append(runner.build_model(cfg, rd.dims))
    if getattr(models[0], "training_loss", None) is not None:
        raise ConfigError(f"model '{cfg['model']['name']}' owns its loss (training_loss), which "
                          "the vmapped ensemble does not call; run the seeds as separate "
                          "processes (--jobs)")
    num_parameters = R.count_parameters(models[0])
    ens = SeedEnsemble(models, seeds=seeds, randomness=randomness)
    ens = ens.double() if tset["double"] else ens.float()
    return ens.to(tset["device"]), num_parameters


def _build_schedules(cfg: dict, task: Task, K: int, max_epochs: int) -> List[_Member]:
    members = []
    for _ in range(K):
        probe = build_optimizer(cfg["optim"], [nn.Parameter(torch.zeros(1))])
        schedule = build_schedule(cfg["scheduler"], probe, max_epochs, task.higher_is_better)
        members.append(_Member(probe, schedule,
                               RunRecorder(task, cfg["task"].get("select_on", "metric"))))
    return members


def _run_ensemble(cfg: dict, seeds: List[int], out_dir: str, resume: bool, quiet: bool,
                  fold: Optional[int], randomness: str, data_seed: Optional[int],
                  ckpt_io: BackgroundCheckpointWriter) -> List[Dict[str, Any]]:
    seeds = [int(s) for s in seeds]
    cfg = _checked(cfg, seeds, randomness, fold)
    data_seed = seeds[0] if data_seed is None else int(data_seed)
    tset = _trainer_settings(cfg["trainer"])
    device, max_epochs = tset["device"], tset["max_epochs"]
    exp_dir = os.path.join(out_dir, experiment_name(cfg))
    seed_dirs = [os.path.join(exp_dir, R.run_name(s, fold)) for s in seeds]
    ens_dir = os.path.join(exp_dir, "ensemble" if fold is None else f"ensemble-fold{fold}")
    last = os.path.join(ens_dir, "last.ckpt")
    done = _finished(seed_dirs) if resume else None
    if done is not None:
        return done

    from graphlab.data import info as dataset_info
    from graphlab.tasks import TASKS
    family = cfg["task"].get("name") or dataset_info(cfg["data"]["name"]).task
    if not getattr(TASKS.get(family), "supports_ensemble", False):
        raise ConfigError(f"--ensemble supports graph-level and node tasks, not {family} "
                          f"({cfg['data']['name']}); run the seeds separately (--jobs)")

    # -- data: one split and one order for all members (those of data_seed)
    rd = runner.prepare(cfg, data_seed)
    task = rd.task
    ens, num_parameters = _build_members(cfg, seeds, rd, tset, randomness)
    K = len(seeds)
    # one optimiser over the stacked weights (its rate is set at every step from the members'
    # schedules) and one schedule per member
    opt = build_optimizer(cfg["optim"], ens.parameters())
    params = list(ens.parameters())
    members = _build_schedules(cfg, task, K, max_epochs)
    dm = runner._datamodule(cfg, rd, data_seed, device=device)
    train_loader, val_loaders = dm.train_dataloader(), dm.val_dataloader()

    start_epoch, resumed = 0, False
    if resume and os.path.exists(last):
        st = torch.load(last, map_location=device, weights_only=False)
        if st["seeds"] != seeds or st["data_seed"] != data_seed:
            raise ConfigError(f"{last} holds seeds {st['seeds']} (data seed {st['data_seed']}), "
                              f"not {seeds} (data seed {data_seed}); use another --out")
        ens.load_state_dict(st["ensemble"])
        opt.load_state_dict(st["optimizer"])
        for m, ms in zip(members, st["members"]):
            m.load_state_dict(ms)
        start_epoch, resumed = int(st["epoch"]), True
        set_rng_state(st["rng"])
    else:
        L.seed_everything(data_seed, workers=True, verbose=False)

    graphed = None
    if cfg["task"].get("cuda_graphs"):
        graphed = _graphed_steps(cfg, task, ens, opt, members, tset, params, rd.dataset)
    if tset["deterministic"]:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # as Lightning does
        torch.use_deterministic_algorithms(True, warn_only=tset["deterministic"] == "warn")
    dtype_ctx = (lambda: _DefaultDtype(torch.float64)) if tset["double"] else nullcontext
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t_wall = time.perf_counter()
    times = {"train_s": 0.0, "eval_s": 0.0, "checkpoint_s": 0.0}  # this invocation's epochs
    for epoch in range(start_epoch, max_epochs):
        t0 = time.perf_counter()
        sums, n_sum = _train_epoch(cfg, task, ens, opt, params, members, tset, train_loader,
                                   graphed, dtype_ctx, epoch)
        dt = time.perf_counter() - t0
        for k, m in enumerate(members):
            if not math.isfinite(sums[k]):
                raise FloatingPointError(f"seed {seeds[k]}: non-finite training loss in epoch "
                                         f"{epoch}: check the inputs for NaN features or lower "
                                         "the learning rate")
            m.recorder.train_samples += n_sum
            m.recorder.train_time += dt
        t1 = time.perf_counter()
        _evaluate(task, ens, members, val_loaders, tset, dtype_ctx)
        for k, m in enumerate(members):
            m.recorder.end_epoch(epoch, mean_loss(sums[k], n_sum), float(m.lr))
            m.step_epoch()
        t2 = time.perf_counter()
        os.makedirs(ens_dir, exist_ok=True)
        ckpt_io.save({"seeds": seeds, "data_seed": data_seed, "epoch": epoch + 1,
                      "ensemble": ens.state_dict(), "optimizer": opt.state_dict(),
                      "members": [m.state_dict() for m in members], "rng": rng_state()}, last)
        # every member's curve so far, as Lightning's CSV logger keeps it: a run stopped from
        # outside (a deadline, a kill) leaves its per-epoch metrics (scripts/summarize_logs.py)
        for m, d in zip(members, seed_dirs):
            _write_csv(os.path.join(d, "logs", "metrics.csv"), m.recorder.history)
        t3 = time.perf_counter()
        times["train_s"] += dt
        times["eval_s"] += t2 - t1
        times["checkpoint_s"] += t3 - t2
        if not quiet:
            vals = [m.recorder.history[-1][f"valid_{task.metric}"] for m in members]
            print(f"ensemble epoch {epoch}: valid {task.metric} mean {sum(vals) / K:.4f} "
                  f"(min {min(vals):.4f}, max {max(vals):.4f}), {dt:.2f} s train, "
                  f"{t2 - t1:.2f} s eval, {t3 - t2:.2f} s checkpoint")
        if tset["max_time"] is not None and time.perf_counter() - t_wall >= tset["max_time"]:
            break  # time limit, checked at epoch ends: records say complete=false; --resume
    ckpt_io.wait()  # the last checkpoint is on disk before the records are written
    wall = time.perf_counter() - t_wall
    return _write_records(cfg, task, members, seeds, seed_dirs, fold, max_epochs,
                          num_parameters, wall, resumed, data_seed, randomness, graphed, times,
                          last)


def _train_epoch(cfg, task: Task, ens, opt, params, members: List[_Member], tset, loader,
                 graphed, dtype_ctx, epoch: int):
    """One training epoch of every member; returns ``(per-member loss sums, samples)``."""
    device = tset["device"]
    ens.train()
    for m in members:
        m.schedule.epoch_start(m.probe, epoch)
    if hasattr(getattr(loader, "sampler", None), "set_epoch"):
        loader.sampler.set_epoch(epoch)
    loss_sum = torch.zeros(len(members), dtype=torch.float64, device=device)
    n_sum = 0
    for batch in loader:
        batch = batch.to(device)
        if tset["double"]:
            batch = _to_double(batch)
        if graphed is not None:  # padded static batch, one CUDA-graph replay per step
            with dtype_ctx():
                losses = graphed(batch)
            loss_sum += losses.double() * int(batch.num_graphs)
            n_sum += int(batch.num_graphs)
            for m in members:
                m.step_batch()
            continue
        with dtype_ctx():
            out = _forward(ens, batch, cfg["model"]["name"])
            losses, n = task.member_losses(out, batch), task.train_samples(batch)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        lrs = [m.lr for m in members]
        ref = max(lrs)
        for g in opt.param_groups:
            g["lr"] = ref
        clip_and_step(opt, params, tset,
                      torch.tensor([lr / ref for lr in lrs], device=device)
                      if ref > 0 and any(lr != ref for lr in lrs) else None)
        for m in members:
            m.step_batch()
        loss_sum += losses.detach().double() * n
        n_sum += n
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return loss_sum.cpu().tolist(), n_sum


def _forward(ens, batch, model_name: str) -> Tensor:
    """``[K, ...]`` outputs; vmap's refusals become one-line config errors."""
    try:
        return ens(batch)
    except ValueError as e:
        if "randomness" in str(e):
            raise ConfigError(f"model.dropout > 0 (or another random layer) with "
                              f"--ensemble: {e}") from None
        raise
    except (RuntimeError, NotImplementedError) as e:
        if "vmap" in str(e) or "atching rule" in str(e):  # not the model's own bug
            raise _unsupported_model(model_name, e) from e
        raise


def _evaluate(task: Task, ens, members: List[_Member], loaders, tset, dtype_ctx) -> None:
    """Validation and test (every epoch, as the trainer does) for every member."""
    device = tset["device"]
    ens.eval()
    with torch.no_grad(), dtype_ctx():
        for i, loader in enumerate(loaders):
            split = ("valid", "test")[i]
            for batch in loader:
                batch = batch.to(device)
                if tset["double"]:
                    batch = _to_double(batch)
                out = ens(batch)
                for k, m in enumerate(members):
                    m.recorder.collect(i, task.eval_outputs(out[k], batch, split))


def _write_records(cfg, task, members, seeds, seed_dirs, fold, max_epochs, num_parameters,
                   wall, resumed, data_seed, randomness, graphed, times, last):
    """Per-seed outputs, as a separate run writes them."""
    records = []
    K = len(seeds)
    facts = R.run_facts()
    for k, (s, m, d) in enumerate(zip(seeds, members, seed_dirs)):
        rec = R.build_record(recorder=m.recorder, task=task, cfg=cfg,
                             experiment=experiment_name(cfg), seed=s, fold=fold,
                             max_epochs=max_epochs, num_parameters=num_parameters,
                             wall_time_s=wall / K, resumed=resumed, facts=facts)
        rec["ensemble"] = {
            "seeds": seeds, "member": k, "data_seed": data_seed, "randomness": randomness,
            "wall_time_s": wall, "cuda_graphs": None if graphed is None else dict(graphed.stats),
            "epoch_times_s": {key: round(v, 3) for key, v in times.items()},
            "train_samples_per_s": K * m.recorder.train_samples /
            max(m.recorder.train_time, 1e-9),
            "checkpoint": os.path.relpath(last, d)}
        os.makedirs(d, exist_ok=True)
        if m.recorder.best_test_pred is not None:
            R.atomic_torch_save(m.recorder.best_test_pred, os.path.join(d, "test_predictions.pt"))
        _write_csv(os.path.join(d, "logs", "metrics.csv"), m.recorder.history)
        R.atomic_write_json(os.path.join(d, "metrics.json"), rec)
        records.append(rec)
    return records


def padded_ensemble_step(ens: SeedEnsemble, opt: torch.optim.Optimizer, params: List[Tensor],
                         tset: Dict[str, Any], masked_loss):
    """``step(static_batch, ratio=None) -> [K]`` losses: one training step of every member on
    a padded static batch (masked BatchNorm statistics, ``masked_loss(pred, y, graph_mask)``
    per member), then per-member clipping and the optimiser step as the eager loop does
    (:func:`clip_and_step`). Fixed shapes, no read-back: what ``task.cuda_graphs`` records.

    Swaps the padding-aware layers into the members' skeleton first (class swaps, the same
    parameters and state-dict keys): :class:`~graphlab.nn.masked_norm.MaskedBatchNorm1d` and
    :class:`~graphlab.nn.row_sums.RowSumBiasLinear` (bias gradients as vector-matrix products).
    Raises ``ValueError`` for a layer that normalises over the whole batch with no padding-aware
    version."""
    from graphlab.nn.masked_norm import (has_unmasked_batch_statistics, mask_batchnorms,
                                         padding_masks)
    from graphlab.nn.row_sums import row_sum_biases
    base = ens._base[0]
    mask_batchnorms(base)
    row_sum_biases(base)
    bad = has_unmasked_batch_statistics(base)
    if bad is not None:
        raise ValueError(f"layer '{bad}' normalises over the whole batch and has no "
                         "padding-aware version")
    member_loss = torch.func.vmap(masked_loss, in_dims=(0, None, None))

    def step(sb, ratio: Optional[Tensor] = None) -> Tensor:
        with padding_masks(sb.node_mask, sb.edge_mask, sb.graph_mask):
            out = ens(sb)
        losses = member_loss(out, sb.y, sb.graph_mask)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        clip_and_step(opt, params, tset, ratio)
        return losses.detach()
    return step


def _graphed_steps(cfg, task: Task, ens, opt, members: List[_Member], tset, params, dataset):
    """``task.cuda_graphs``: the training step over padded static batches, recorded once per
    bucket as a CUDA graph (graphlab.train.cuda_graphs); refuses what it cannot replay.

    Learning rates follow the members' schedules as in the eager loop: the optimiser runs at the
    largest member rate and, when the members' rates differ, each member's update is rescaled by
    its rate over that one (a second recorded variant of the step). With an LR schedule and
    capture, the rate lives in a device tensor that the recorded update reads."""
    from graphlab.data.static_batch import largest_graph
    from graphlab.train.cuda_graphs import GraphedSteps, make_capturable, set_tensor_lr
    opts = cfg["task"]["cuda_graphs"]
    opts = {} if opts is True else dict(opts)
    device = tset["device"]
    capture = opts.get("capture", True)
    if capture and device.type != "cuda":
        raise ConfigError("'task.cuda_graphs' records CUDA graphs and needs a CUDA device "
                          "(set task.cuda_graphs.capture: false to run the padded steps "
                          "eagerly, e.g. on CPU)")
    if not task.supports_padding:
        raise ConfigError(f"'task.cuda_graphs' supports graph-level tasks, not {task.name}")
    try:
        padded_step = padded_ensemble_step(ens, opt, params, tset, task.masked_loss)
    except ValueError as e:
        raise ConfigError(f"'task.cuda_graphs': {e}; train without cuda_graphs") from None
    scheduled = any(m.schedule.scheduler is not None for m in members)
    if capture:
        try:
            make_capturable(opt)
            if scheduled:
                set_tensor_lr(opt, device)
        except ValueError as e:
            raise ConfigError(f"'task.cuda_graphs': {e}") from None
    ratio = torch.ones(len(members), dtype=torch.float64, device=device)  # cast per parameter
    lr_state: Dict[str, Any] = {"lrs": None, "scaled": False}

    def sync_lrs() -> bool:
        """Set the optimiser's rate from the members' schedules (host side, only on a change);
        True when the members' rates differ (the rescaling variant)."""
        lrs = [m.lr for m in members]
        if lrs != lr_state["lrs"]:
            ref = max(lrs)
            for g in opt.param_groups:
                if isinstance(g["lr"], Tensor):
                    g["lr"].fill_(ref)
                else:
                    g["lr"] = ref
            scaled = ref > 0 and any(lr != ref for lr in lrs)
            if scaled:
                ratio.copy_(torch.tensor([lr / ref for lr in lrs], dtype=torch.float64))
            lr_state.update(lrs=lrs, scaled=scaled)
        return lr_state["scaled"]

    def step(sb, scaled: bool):
        return padded_step(sb, ratio if scaled else None)

    steps = GraphedSteps(step, cfg["data"]["batch_size"], capture=capture, device=device,
                         granularity=opts.get("granularity", 8),
                         max_graphs=opts.get("max_graphs", 64),
                         max_graph_nodes=largest_graph(dataset))  # fixed dense widths (GPS)

    def train_step(batch):
        return steps(batch, variant=sync_lrs())
    train_step.stats = steps.stats
    return train_step


class _DefaultDtype:
    """``torch.set_default_dtype`` for a block (Lightning's 64-bit precision forward context)."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype

    def __enter__(self):
        self.old = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.old)


def run_ensembles(cfg: dict, seeds: List[int], out_dir: str, resume: bool = False,
                  quiet: bool = False, folds: Optional[List[int]] = None,
                  randomness: str = "error") -> Dict[str, Any]:
    """One ensemble of ``seeds`` per cross-validation fold (or one, without folds); writes and
    returns ``summary.json`` over all runs, as :func:`graphlab.train.run.run_seeds` does."""
    cfg = validate(cfg)
    records: List[Dict[str, Any]] = []
    for fold in (folds if folds is not None else [None]):
        records += run_ensemble(cfg, seeds, out_dir, resume=resume, quiet=quiet, fold=fold,
                                randomness=randomness)
    summary = R.summarize_seeds(records)
    summary["ensemble"] = True
    R.atomic_write_json(os.path.join(out_dir, experiment_name(cfg), "summary.json"), summary)
    return summary
