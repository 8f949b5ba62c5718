"""Shared runner for the measurement scripts ``state_tracking.py`` and ``ptd_robustness.py``.

Runs a grid of independent training runs in worker processes (spawn context) under one global
wall-clock deadline, and writes every finished run to ``results.json`` as it arrives.

* ``--jobs N`` worker processes; on CUDA worker ``i`` uses GPU ``i % torch.cuda.device_count()``
  (several workers may share one GPU); on CPU each worker runs with one torch thread.
* ``--time-budget S``: the deadline is ``start + S``. A run not started by then is recorded with
  ``status = "not run (budget)"``; a running one stops training at ``deadline - eval_reserve``
  and is evaluated (``status = "stopped (budget)"``, ``steps`` says how many it took), so a run
  of fixed length always returns results.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import sys
import time
from typing import Any, Callable, Dict, List

_WORKER: Dict[str, Any] = {}


def _init_worker(counter, device: str, threads: int) -> None:
    import torch
    with counter.get_lock():
        idx = counter.value
        counter.value += 1
    if device == "cuda":
        n = max(torch.cuda.device_count(), 1)
        dev = f"cuda:{idx % n}"
        torch.cuda.set_device(idx % n)
    else:
        dev = "cpu"
    torch.set_num_threads(threads)
    _WORKER.update(index=idx, device=dev)


def worker_device() -> str:
    """The device of the current worker (``'cpu'`` outside a pool)."""
    return _WORKER.get("device", "cpu")


def add_grid_args(p) -> None:
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (CPU)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="global wall-clock budget in seconds (see module docstring)")
    p.add_argument("--eval-reserve", type=float, default=20.0,
                   help="seconds before the deadline at which running workers stop training")
    p.add_argument("--out", default=None, help="output folder for results.json / results.md")


def run_grid(fn: Callable[[dict], dict], configs: List[dict], args,
             write: Callable[[List[dict]], None]) -> List[dict]:
    """Runs ``fn(cfg)`` for every config; ``cfg`` gets ``deadline`` and ``eval_reserve`` added.

    ``fn`` must be a module-level function returning a dict (it is pickled into the workers).
    ``write(results)`` is called after every finished run. Results keep the order of ``configs``.
    """
    deadline = None if args.time_budget is None else time.time() + args.time_budget
    cfgs = [dict(c, deadline=deadline, eval_reserve=args.eval_reserve) for c in configs]
    results: List[dict] = [None] * len(cfgs)  # type: ignore[list-item]
    t0 = time.time()

    def done(i: int, res: dict) -> None:
        results[i] = res
        n = sum(r is not None for r in results)
        keys = " ".join(f"{k}={v}" for k, v in res.items() if not isinstance(v, (dict, list)))
        print(f"[{n}/{len(cfgs)} {time.time() - t0:.0f}s] {keys}", flush=True)
        write([r for r in results if r is not None])

    if args.jobs <= 1:
        import torch
        torch.set_num_threads(args.threads)
        if args.device == "cuda":
            _WORKER.update(index=0, device="cuda:0")
        for i, c in enumerate(cfgs):
            done(i, fn(c))
    else:
        ctx = mp.get_context("spawn")
        counter = ctx.Value("i", 0)
        with cf.ProcessPoolExecutor(args.jobs, mp_context=ctx, initializer=_init_worker,
                                    initargs=(counter, args.device, args.threads)) as ex:
            futs = {ex.submit(fn, c): i for i, c in enumerate(cfgs)}
            for f in cf.as_completed(futs):
                i = futs[f]
                try:
                    res = f.result()
                except Exception as e:  # keep the other runs; record the failure
                    res = {k: v for k, v in cfgs[i].items() if k not in ("deadline", "eval_reserve")}
                    res["status"] = f"error: {type(e).__name__}: {e}"
                done(i, res)
    return results


def budget_left(cfg: dict) -> float:
    """Seconds of training left for this run (``inf`` without a budget)."""
    if cfg.get("deadline") is None:
        return float("inf")
    return cfg["deadline"] - cfg.get("eval_reserve", 0.0) - time.time()


def write_json(path: str, meta: dict, results: List[dict]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"meta": meta, "runs": results}, f, indent=1)
    os.replace(tmp, path)


def command_line() -> str:
    return " ".join([os.path.basename(sys.executable)] + sys.argv)


def make_optimizer(net, lr: float, steps: int):
    """AdamW (weight decay 0.01) with a one-cycle schedule over ``steps``: the setup both
    benchmark scripts use for every model, so a learning-rate sweep means the same thing."""
    import torch
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    if steps < 8:  # one-cycle needs a few steps per phase; smoke runs keep a constant lr
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps,
                                                pct_start=min(0.5, max(0.1, 2 / steps)))
    return opt, sched


def optimizer_step(net, opt, sched, loss) -> None:
    """Backward, gradient clipping at norm 1, optimizer and schedule step."""
    import torch
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    sched.step()
