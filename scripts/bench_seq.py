"""Throughput of graphlab's sequence cores (``graphlab.nn.seq``) next to the fla / mamba-ssm kernels.

Part ``cores``: every core through ``build_seq_core`` at B=8, L=2048, D=512 (tokens/s, forward
under ``no_grad`` and forward+backward, fp32 and bf16 autocast), DeltaNet / DeltaProduct both
with graphlab's fla dispatch (``use_fla=True``; the ``backend`` column says which kernel ran) and
forced onto the torch path, next to raw fla calls at the same shapes (H=4 heads of 128, as the
cores' defaults): ``chunk_delta_rule`` / ``chunk_gated_delta_rule`` /
``chunk_gated_delta_product`` (n_h=2) in bf16 and ``fused_recurrent_*`` in fp32.

Part ``scan``: the Mamba selective scan alone at B=32, L in 512..4096, D=128 channels, state
N=16: graphlab's torch path (:func:`graphlab.nn.seq.mamba.selective_scan`, i.e. the chunked
doubling scan of ``Mamba``) against mamba-ssm's Triton ``mamba_chunk_scan_combined`` (Mamba-2's
SSD; chunk 256). Mamba-2 is a throughput reference, not the same operator: its decay is one
scalar per head instead of one per (channel, state). Two layouts with the same state size per
sequence (128 x 16 = 2048) are timed: ``headdim=1, nheads=128`` (one head per channel, i.e.
Mamba-1's per-channel decay and shared B/C, ngroups=1) and ``headdim=64, nheads=2`` (the
usual SSD layout).

Timing: CUDA events (``perf_counter`` on CPU), ``--warmup`` calls first (Triton compiles and
autotunes there), then the median of up to ``--reps`` calls, fewer when one call is slow
(about ``--budget`` seconds per row, at least 3 calls). Rows that cannot run say why
("n/a (fla not installed)", "error: ...", "OOM").

    python scripts/bench_seq.py --out cores.json                              # on a GPU
    python scripts/bench_seq.py --device cpu --quick                          # smoke test
    python scripts/bench_seq.py --parts scan                                  # one part
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional

import os

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root



import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from graphlab.nn.seq import build_seq_core  # noqa: E402
from graphlab.nn.seq.delta import chunk as dchunk  # noqa: E402
from graphlab.nn.seq.mamba import _mamba_ssm_scan, selective_scan  # noqa: E402

CORES = ["mamba", "s4d", "s4ptd", "s5ptd", "deltanet", "deltaproduct"]


# ---------------------------------------------------------------------------------------- timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_call(fn: Callable[[], None], device: torch.device) -> float:
    """Seconds of one call of ``fn`` (CUDA events on a GPU)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(fn: Callable[[], None], device: torch.device, warmup: int, reps: int, budget: float) -> float:
    """Median seconds per call after ``warmup`` calls (reps adapted to ``budget`` seconds)."""
    for _ in range(warmup):
        fn()
    sync(device)
    first = timed_call(fn, device)
    n = max(3, min(reps, int(budget / max(first, 1e-9))))
    return statistics.median([first] + [timed_call(fn, device) for _ in range(n - 1)])


class Runner:
    """Runs one row: times it, catches what cannot run, collects the results."""

    def __init__(self, args, device: torch.device):
        self.args, self.device, self.rows = args, device, []
        self.t0 = time.time()

    def row(self, part: str, name: str, impl: str, dtype: str, mode: str, shape: Dict[str, int],
            make: Optional[Callable[[], Callable[[], None]]], tokens: int,
            status: Optional[str] = None, backend: Optional[Callable[[], str]] = None) -> None:
        if status is None and time.time() - self.t0 > self.args.max_seconds:
            status = f"skipped (--max-seconds {self.args.max_seconds:g} reached)"
        rec = dict(part=part, name=name, impl=impl, dtype=dtype, mode=mode, **shape,
                   ms=None, tokens_per_s=None, backend=None, status=status or "ok")
        if status is None:
            try:
                fn = make()
                sec = bench(fn, self.device, self.args.warmup, self.args.reps, self.args.budget)
                rec.update(ms=sec * 1e3, tokens_per_s=tokens / sec)
                if backend is not None:
                    rec["backend"] = backend()
            except torch.cuda.OutOfMemoryError:
                rec["status"] = "OOM"
            except Exception as e:  # noqa: BLE001 - a row that cannot run is reported, not fatal
                msg = f"{type(e).__name__}: {e}".splitlines()[0]
                rec["status"] = "error: " + msg[:160]
            finally:
                fn = None  # noqa: F841
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
        self.rows.append(rec)
        tps = f"{rec['tokens_per_s']:.3g} tok/s" if rec["tokens_per_s"] else rec["status"]
        print(f"  {part:5s} {name:28s} {impl:34s} {dtype:13s} {mode:8s} {tps}", flush=True)


# ------------------------------------------------------------------------------------ part cores
def fwd_bwd_step(module, x, dtype: str, device: torch.device, train: bool):
    amp = (torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bf16-autocast"
           else nullcontext())
    grad = torch.randn_like(x)

    def fwd():
        with torch.no_grad(), amp:
            module(x)

    def fwd_bwd():
        module.zero_grad(set_to_none=True)
        with amp:
            y = module(x)
        y.backward(grad.to(y.dtype))

    return fwd_bwd if train else fwd


class BackendLog:
    """Records what graphlab's fla dispatch picked during a call (wraps ``fla_backend``)."""

    def __init__(self):
        self.seen: List[str] = []
        self._orig = dchunk.fla_backend

    def __enter__(self):
        def wrapped(*a, **kw):
            name = self._orig(*a, **kw)
            self.seen.append(name)
            return name
        dchunk.fla_backend = wrapped
        return self

    def __exit__(self, *exc):
        dchunk.fla_backend = self._orig


def core_backend(name: str, module, x, dtype: str, device: torch.device, train: bool) -> str:
    if name.startswith("delta"):
        with BackendLog() as log:
            fwd_bwd_step(module, x[:, :64], dtype, device, train)()
        return "fla." + log.seen[-1] if log.seen and log.seen[-1] != "torch" else "torch (chunked WY)"
    if name == "mamba":
        fast = module.use_fast_path and device.type == "cuda" and _mamba_ssm_scan() is not None
        return "mamba_ssm selective_scan" if fast else "torch (chunked scan)"
    return "torch"


def fla_inputs(B, L, H, K, n_h, dtype, device, gated, train):
    q = F.normalize(torch.randn(B, L, H, K, device=device), dim=-1).to(dtype)
    k = F.normalize(torch.randn(B, L * n_h, H, K, device=device), dim=-1).to(dtype)
    v = torch.randn(B, L * n_h, H, K, device=device).to(dtype)
    beta = (2 * torch.rand(B, L * n_h, H, device=device)).to(dtype)
    g = F.logsigmoid(torch.randn(B, L, H, device=device)) if gated else None
    ts = [q, k, v, beta, g]
    if train:
        ts = [None if t is None else t.requires_grad_(True) for t in ts]
    return ts


def raw_fla_fn(fn_name: str, B, L, H, K, n_h, gated, dtype, device, train):
    ops = dchunk._fla_ops()
    fn = ops[fn_name]
    q, k, v, beta, g = fla_inputs(B, L, H, K, n_h, dtype, device, gated, train)
    if fn_name == "chunk_gated_delta_product":
        call = lambda: fn(q, k, v, g=g, beta=beta, num_householder=n_h, scale=K ** -0.5)[0]  # noqa: E731
    else:
        if n_h > 1:  # fp32 DeltaProduct: the fused recurrence on the L * n_h pseudo-tokens
            q = torch.zeros(B, L, n_h, H, K, device=device, dtype=dtype)
            q[:, :, -1] = F.normalize(torch.randn(B, L, H, K, device=device), dim=-1)
            q = q.reshape(B, L * n_h, H, K).requires_grad_(train)
            if g is not None:
                gg = torch.zeros(B, L, n_h, H, device=device)
                gg[:, :, 0] = g.detach()
                g = gg.reshape(B, L * n_h, H).requires_grad_(train)
        kw = dict(beta=beta, scale=K ** -0.5)
        if g is not None:
            kw["g"] = g
        call = lambda: fn(q, k, v, **kw)[0]  # noqa: E731
    do = None

    def run():
        nonlocal do
        if not train:
            with torch.no_grad():
                call()
            return
        o = call()
        if do is None:
            do = torch.randn_like(o)
        o.backward(do)

    return run


def part_cores(run: Runner, args, device):
    B, L, D = (2, 128, 64) if args.quick else (8, 2048, 512)
    H = 4
    K = D // H
    shape = dict(B=B, L=L, D=D)
    x = torch.randn(B, L, D, device=device)
    variants = []
    for name in CORES:
        variants.append((name, f"graphlab build_seq_core('{name}')", {}))
        if name.startswith("delta"):
            variants.append((name, "graphlab, use_fla=False (torch)", {"use_fla": False}))
    for name, impl, kw in variants:
        torch.manual_seed(0)
        module = build_seq_core(name, D, **kw).to(device)
        for dtype in ("fp32", "bf16-autocast"):
            for train in (False, True):
                mode = "fwd+bwd" if train else "fwd"
                run.row("cores", name, impl, dtype, mode, shape,
                        lambda: fwd_bwd_step(module, x, dtype, device, train), B * L,
                        backend=lambda: core_backend(name, module, x, dtype, device, train))
        del module
    # raw fla at the same shapes
    have = dchunk._fla_ops() is not None
    na = None if device.type == "cuda" and have else (
        "n/a (needs CUDA)" if device.type != "cuda" else "n/a (fla not installed)")
    raw = [  # (fla function, core it corresponds to, n_h, gated, dtype)
        ("chunk_delta_rule", "deltanet", 1, False, torch.bfloat16),
        ("chunk_gated_delta_rule", "deltanet (gated)", 1, True, torch.bfloat16),
        ("chunk_gated_delta_product", "deltaproduct", 2, True, torch.bfloat16),
        ("fused_recurrent_delta_rule", "deltanet", 1, False, torch.float32),
        ("fused_recurrent_gated_delta_rule", "deltanet (gated)", 1, True, torch.float32),
        ("fused_recurrent_gated_delta_rule", "deltaproduct", 2, True, torch.float32),
    ]
    for fn_name, core, n_h, gated, dt in raw:
        dts = "bf16" if dt == torch.bfloat16 else "fp32"
        for train in (False, True):
            status = na
            if status is None and train and fn_name == "fused_recurrent_gated_delta_rule":
                status = "n/a (fla has no backward)"
            run.row("cores", core, f"fla.{fn_name}" + (f" n_h={n_h}" if n_h > 1 else ""), dts,
                    "fwd+bwd" if train else "fwd", shape,
                    lambda: raw_fla_fn(fn_name, B, L, H, K, n_h, gated, dt, device, train), B * L,
                    status=status)


# ------------------------------------------------------------------------------------- part scan
def _mamba2_combined():
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except Exception as e:  # noqa: BLE001
        return None, f"n/a (mamba_ssm not importable: {type(e).__name__})"
    return mamba_chunk_scan_combined, None


def graphlab_scan_fn(B, L, E, N, dtype, device, train):
    g = torch.Generator(device=device).manual_seed(0)
    mk = lambda *s: torch.randn(*s, device=device, generator=g)  # noqa: E731
    u, z = mk(B, L, E).to(dtype), mk(B, L, E).to(dtype)
    delta = F.softplus(mk(B, L, E) - 4.0).to(dtype)
    A = -torch.arange(1, N + 1, device=device, dtype=torch.float32).expand(E, N).contiguous()
    Bm, Cm = mk(B, L, N).to(dtype), mk(B, L, N).to(dtype)
    Dp = torch.ones(E, device=device)
    leaves = [u, z, delta, Bm, Cm]
    if train:
        for t in leaves:
            t.requires_grad_(True)
    dy = torch.randn(B, L, E, device=device, dtype=dtype)

    def run():
        if not train:
            with torch.no_grad():
                selective_scan(u, delta, A.to(dtype), Bm, Cm, Dp.to(dtype), z)
            return
        y = selective_scan(u, delta, A.to(dtype), Bm, Cm, Dp.to(dtype), z)
        y.backward(dy.to(y.dtype))

    return run


def mamba2_fn(fn, B, L, E, N, headdim, dtype, device, train):
    nheads = E // headdim
    g = torch.Generator(device=device).manual_seed(0)
    mk = lambda *s: torch.randn(*s, device=device, generator=g)  # noqa: E731
    x, z = mk(B, L, nheads, headdim).to(dtype), mk(B, L, nheads, headdim).to(dtype)
    dt = F.softplus(mk(B, L, nheads) - 4.0)                      # fp32, as Mamba2 passes it
    A = -torch.rand(nheads, device=device) * 15 - 1              # scalar decay per head
    Bm, Cm = mk(B, L, 1, N).to(dtype), mk(B, L, 1, N).to(dtype)  # ngroups = 1
    Dp = torch.ones(nheads, device=device)
    if train:
        for t in (x, z, dt, Bm, Cm):
            t.requires_grad_(True)
    dy = torch.randn(B, L, nheads, headdim, device=device, dtype=dtype)

    def run():
        if not train:
            with torch.no_grad():
                fn(x, dt, A, Bm, Cm, chunk_size=256, D=Dp, z=z)
            return
        y = fn(x, dt, A, Bm, Cm, chunk_size=256, D=Dp, z=z)
        y.backward(dy.to(y.dtype))

    return run


def part_scan(run: Runner, args, device):
    B, E, N = (2, 16, 16) if args.quick else (32, 128, 16)
    lengths = [64, 128] if args.quick else (args.lengths or [512, 1024, 2048, 4096])
    fn, why = _mamba2_combined()
    if device.type != "cuda":
        fn, why = None, "n/a (needs CUDA)"
    dtypes = [d for d in (torch.float32, torch.bfloat16)
              if ("fp32" if d == torch.float32 else "bf16") in args.dtypes]
    for L in lengths:
        shape = dict(B=B, L=L, D=E)
        for dtype in dtypes:
            dts = "fp32" if dtype == torch.float32 else "bf16"
            for train in (False, True):
                mode = "fwd+bwd" if train else "fwd"
                run.row("scan", "mamba selective scan", "graphlab torch (chunked scan, N=16)", dts,
                        mode, shape, lambda: graphlab_scan_fn(B, L, E, N, dtype, device, train), B * L)
                for headdim in args.headdims:
                    if E % headdim:
                        continue
                    impl = f"mamba_chunk_scan_combined hd={headdim} nh={E // headdim}"
                    run.row("scan", "mamba2 SSD (reference)", impl, dts, mode, shape,
                            lambda: mamba2_fn(fn, B, L, E, N, headdim, dtype, device, train), B * L,
                            status=why)


# ----------------------------------------------------------------------------------------- main
def markdown(rows: List[dict]) -> str:
    out = []
    for part in dict.fromkeys(r["part"] for r in rows):
        sub = [r for r in rows if r["part"] == part]
        out.append(f"\n### {part}\n")
        out.append("| core | implementation | backend | dtype | mode | B | L | D | ms | tokens/s |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in sub:
            ms = f"{r['ms']:.3f}" if r["ms"] is not None else "-"
            tps = f"{r['tokens_per_s']:.4g}" if r["tokens_per_s"] is not None else r["status"]
            out.append(f"| {r['name']} | {r['impl']} | {r['backend'] or '-'} | {r['dtype']} | {r['mode']} "
                       f"| {r['B']} | {r['L']} | {r['D']} | {ms} | {tps} |")
    return "\n".join(out)


def environment(device: torch.device) -> dict:
    env = dict(python=platform.python_version(), torch=torch.__version__, device=str(device))
    try:
        import triton
        env["triton"] = triton.__version__
    except Exception:  # noqa: BLE001
        env["triton"] = None
    try:
        import fla
        env["fla"] = getattr(fla, "__version__", "?")
    except Exception:  # noqa: BLE001
        env["fla"] = None
    try:
        import mamba_ssm
        env["mamba_ssm"] = getattr(mamba_ssm, "__version__", "?")
    except Exception:  # noqa: BLE001
        env["mamba_ssm"] = None
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--parts", default="cores,scan", help="comma list of: cores, scan")
    ap.add_argument("--quick", action="store_true", help="tiny shapes (smoke test, e.g. on CPU)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed calls per row (default 2; 1 with --quick)")
    ap.add_argument("--reps", type=int, default=None,
                    help="at most this many timed calls (default 10; 3 with --quick)")
    ap.add_argument("--budget", type=float, default=None,
                    help="about this many seconds of timed calls per row (default 0.5; 0.05 with --quick)")
    ap.add_argument("--max-seconds", type=float, default=170.0,
                    help="rows not started by then are reported as skipped (default 170)")
    ap.add_argument("--out", default=None, help="write the rows and the environment as JSON here")
    ap.add_argument("--lengths", type=int, nargs="+", default=None,
                    help="scan part: sequence lengths (default 512 1024 2048 4096)")
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                    help="scan part: dtypes (default both)")
    ap.add_argument("--headdims", type=int, nargs="+", default=[1, 64],
                    help="scan part: head dims of the mamba2 reference (default 1 64; each costs "
                         "a Triton autotune per shape)")
    args = ap.parse_args(argv)
    for key, full, quick in (("warmup", 2, 1), ("reps", 10, 3), ("budget", 0.5, 0.05)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 rows are fp32
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - {"cores", "scan"}
    if unknown:
        ap.error(f"--parts: unknown {sorted(unknown)}")
    run = Runner(args, device)
    t0 = time.time()
    env = environment(device)
    print(json.dumps(env))
    if "cores" in parts:
        part_cores(run, args, device)
    if "scan" in parts:
        part_scan(run, args, device)
    table = markdown(run.rows)
    print(table)
    print(f"\ntotal {time.time() - t0:.1f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(env=env, args=vars(args), rows=run.rows, seconds=time.time() - t0), f, indent=1)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
