"""Where a training step's time goes: one config's step under ``torch.profiler``.

Builds data, loader, model, loss and optimiser exactly as ``graphlab train CONFIG`` does
(:func:`graphlab.train.run.prepare` / ``build_model``, ``GraphDataModule``,
``GraphTask.training_step`` and ``configure_optimizers``; gradient clipping as the trainer's
config says) and drives the step by hand, without Lightning, so the figures are the step's own:

* wall time per step (``--steps`` steps after ``--warmup``, no profiler attached);
* per step under the profiler: top-level ATen ops (about one kernel launch each on a GPU),
  device-to-host synchronisations (``aten::item`` / ``_local_scalar_dense``, ``cudaMemcpy``
  to the host, stream / device synchronise), kernels launched, and the sum of kernel times
  (GPU busy time: when it is far below the wall time the step waits on the host);
* the ops and kernels with the most time.

    python scripts/profile_step.py configs/gps/peptides-func.yaml data.batch_size=32 \
        data.loader=packed --steps 50
    python scripts/profile_step.py configs/gin/ogbg-molhiv.yaml --ensemble 10 --cuda-graphs
    python scripts/profile_step.py configs/gps/peptides-func.yaml data.batch_size=32 task.compile=true

``--ensemble K`` profiles the step of ``graphlab train --seeds K --ensemble`` (members built
with seeds 0..K-1, vmapped per-member losses, per-member clipping; dropout masks differ per
member); with ``--cuda-graphs`` the step of ``task.cuda_graphs`` (padded static batches, masked
BatchNorm), recorded and replayed as CUDA graphs on a GPU (the profiler then reports the kernels
of the replays), run eagerly on the padded batches elsewhere. Overrides are the CLI's dotted
``key=value`` pairs.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SYNC_OPS = ("aten::item", "aten::_local_scalar_dense", "aten::nonzero", "aten::is_nonzero")
SYNC_RUNTIME = ("cudaMemcpy", "cudaStreamSynchronize", "cudaDeviceSynchronize",
                "cudaEventSynchronize")


def build(cfg, device, ensemble=0):
    import lightning as L

    from graphlab.train import run as R
    from graphlab.train.datamodule import GraphDataModule
    from graphlab.train.task import GraphTask
    from graphlab.train import records
    seed = 0
    rd = R.prepare(cfg, seed)
    dims = rd.dims
    if ensemble and cfg["task"].get("compile"):
        raise SystemExit("task.compile is not supported with --ensemble")
    if ensemble:
        from graphlab.train.ensemble import SeedEnsemble
        members = []
        for s in range(ensemble):
            L.seed_everything(s, workers=True, verbose=False)
            members.append(R.build_model(cfg, dims))
        n_params = records.count_parameters(members[0])
        model = SeedEnsemble(members, seeds=list(range(ensemble)), randomness="different")
        model = model.to(device)
    else:
        model = R.build_model(cfg, dims).to(device)
        n_params = records.count_parameters(model)
        comp = cfg["task"].get("compile", False)
        if comp:  # as graphlab.train.run does
            model.compile(**({} if comp is True else dict(comp)))
    task = GraphTask(model, rd.task, optim=cfg["optim"], scheduler=cfg["scheduler"],
                     max_epochs=cfg["trainer"].get("max_epochs", 100)).to(device)
    task.log = lambda *a, **k: None
    conf = task.configure_optimizers()
    opt = conf if isinstance(conf, torch.optim.Optimizer) else conf["optimizer"]
    dm = GraphDataModule(rd.dataset, rd.split, rd.task, batch_size=cfg["data"]["batch_size"],
                         num_workers=cfg["data"].get("num_workers", 0), seed=seed,
                         loader=cfg["data"].get("loader", "auto"), device=device)
    return task, opt, dm.train_dataloader(), n_params


def ensemble_step(task, opt, cfg, device, it, graphs, capture=None):
    """The step of graphlab.train.ensemble_run (eager, or task.cuda_graphs' padded step, recorded
    as CUDA graphs on a GPU unless ``capture`` is False)."""
    from graphlab.train.ensemble_run import _trainer_settings, clip_and_step
    ens, params = task.model, list(task.model.parameters())
    tset = _trainer_settings(cfg["trainer"])  # clipping as the ensemble runner does it
    if not graphs:
        loss_of = torch.func.vmap(task.task.loss, in_dims=(0, None))

        def step(i):
            b = next(it)
            losses = loss_of(ens(b), b.y)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            clip_and_step(opt, params, tset, None)
        return step
    from graphlab.train.cuda_graphs import GraphedSteps, make_capturable
    from graphlab.train.ensemble_run import padded_ensemble_step
    capture = device.type == "cuda" if capture is None else capture
    if capture:
        make_capturable(opt)
    padded = padded_ensemble_step(ens, opt, params, tset, task.task.masked_loss)
    graphed = GraphedSteps(padded, cfg["data"]["batch_size"], capture=capture, device=device)
    return lambda i: graphed(next(it))


def batches(loader, device):
    while True:
        for b in loader:
            yield b.to(device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--profile-steps", type=int, default=5)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--ensemble", type=int, default=0, metavar="K",
                    help="profile K seeds as one vmapped ensemble")
    ap.add_argument("--cuda-graphs", action="store_true",
                    help="with --ensemble: the task.cuda_graphs step (padded, graphed on GPU)")
    ap.add_argument("--no-capture", action="store_true",
                    help="with --cuda-graphs: run the padded steps eagerly (on a GPU the "
                         "profiler then names the op behind each kernel); adds a table of ops "
                         "by input shape")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    os.environ.setdefault("OUTDATED_IGNORE", "1")
    if args.cuda_graphs and not args.ensemble:
        ap.error("--cuda-graphs needs --ensemble (task.cuda_graphs is an ensemble option)")
    if args.no_capture and not args.cuda_graphs:
        ap.error("--no-capture needs --cuda-graphs")
    from graphlab.train.config import load_config, validate
    from graphlab.train.run import matmul_precision
    cfg = validate(load_config(args.config, args.overrides))
    with matmul_precision(cfg):  # task.matmul_precision, as graphlab train applies it
        return profile_config(args, cfg)


def profile_config(args, cfg) -> int:
    from torch.profiler import ProfilerActivity, profile
    device = torch.device(args.device)
    task, opt, loader, n_params = build(cfg, device, args.ensemble)
    clip = cfg["trainer"].get("gradient_clip_val")
    task.train()
    it = batches(loader, device)
    if args.ensemble:
        step = ensemble_step(task, opt, cfg, device, it, args.cuda_graphs,
                             capture=False if args.no_capture else None)
    else:
        def step(i):
            b = next(it)
            loss = task.training_step(b, i)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(task.parameters(), float(clip))
            opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    task.on_train_epoch_start()
    for i in range(args.warmup):
        step(i)
    sync()
    t = time.perf_counter()
    for i in range(args.steps):
        step(i)
    sync()
    ms = 1e3 * (time.perf_counter() - t) / args.steps

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts, record_shapes=args.no_capture) as prof:
        for i in range(args.profile_steps):
            step(i)
        sync()
    P = args.profile_steps
    ops, syncs, kernels = collections.Counter(), collections.Counter(), collections.Counter()
    kernel_us = collections.Counter()
    for e in prof.events():
        parent = e.cpu_parent
        if e.name.startswith("aten::") and (parent is None or
                                            not str(parent.name).startswith("aten::")):
            ops[e.name] += 1
        if e.name in SYNC_OPS or (e.name.startswith(SYNC_RUNTIME) and "DtoH" not in e.name
                                  and not e.name.startswith("cudaMemcpyAsync")):
            syncs[e.name] += 1
        if getattr(e, "device_type", None) is not None and "CUDA" in str(e.device_type) and \
                not e.name.startswith(("Memcpy", "Memset")):
            kernels[e.name] += 1
            kernel_us[e.name] += e.device_time_total if hasattr(e, "device_time_total") \
                else e.cuda_time_total
    busy_ms = sum(kernel_us.values()) / 1e3 / P
    res = {
        "config": args.config, "overrides": args.overrides, "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__, "num_parameters": n_params,
        "batch_size": cfg["data"]["batch_size"], "loader": cfg["data"].get("loader", "auto"),
        "ms_per_step": ms, "aten_ops_per_step": sum(ops.values()) / P,
        "syncs_per_step": {k: v / P for k, v in syncs.items()},
        "kernels_per_step": sum(kernels.values()) / P, "kernel_ms_per_step": busy_ms,
        "top_ops": {k: v / P for k, v in ops.most_common(args.top)},
        "top_kernels_ms": {k[:90]: v / 1e3 / P for k, v in kernel_us.most_common(args.top)},
    }
    print(f"{args.config} {' '.join(args.overrides)}: {n_params:,} parameters, "
          f"{ms:.2f} ms/step ({device})")
    print(f"  per step: {res['aten_ops_per_step']:.0f} top-level ATen ops, "
          f"{res['kernels_per_step']:.0f} kernels, {busy_ms:.2f} ms kernel time, "
          f"host syncs {res['syncs_per_step']}")
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=args.top, max_name_column_width=60))
    if args.no_capture:  # which op (and autograd node) each kernel belongs to, by input shape
        total = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        print(prof.key_averages().table(sort_by=total, row_limit=4 * args.top,
                                        max_name_column_width=70))
        print(prof.key_averages(group_by_input_shape=True).table(
            sort_by=total, row_limit=4 * args.top, max_name_column_width=50,
            max_shapes_column_width=70))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
