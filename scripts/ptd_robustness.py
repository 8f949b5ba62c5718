"""Robustness of diagonal SSMs to Fourier-mode noise: S4D / S5 against S4-PTD / S5-PTD.

Claim checked (Yu, Nigmetov, Morozov, Mahoney, Erichson, "Robustifying State-space Models for
Long Sequences via Approximate Diagonalization", ICLR 2024, arXiv 2310.01698): the S4D/S5
initialisations converge to HiPPO-LegS only weakly, their transfer functions keep spikes (at the
imaginary parts of the normal part's eigenvalues, poles with real part -1/2, section 3), so
models built on them are not robust to inputs perturbed in those Fourier modes, while the
perturb-then-diagonalize (PTD) initialisations converge strongly and are robust.

The paper's test (section 5.2 / appendix J.2, as quoted by public reviews: its full text was not
readable here): models trained on clean sCIFAR are tested on sCIFAR images with 10% sinusoidal
noise at the frequencies where S4D's transfer function has its spikes, "worst-case noises ...
intentionally made to fail the S4D model"; S4D's accuracy collapses, S4-PTD's stays high.

Here (no CIFAR offline), a generated stand-in with the same ingredients: train on clean
sequences, then add at test time sinusoidal noise at the frequencies where each trained model's
own first SSM layer has its largest gain (``spike``; for S4D-LegS these are its resonances, for
PTD the gain decays with frequency so its worst case is a band just above the signal), and, as a
second probe, broadband Gaussian noise on the upper half of the spectrum (``band``).

Generated task (``make_signals``; length ``--length`` = 1024 by default, ``--classes`` = 8):
  * Each class ``c`` owns a template of ``K = 3`` distinct frequencies ``f_{c,k}`` drawn once
    (from ``--task-seed``) among 1..``--max-freq`` (= 32) cycles per sequence; the periods span
    32..1024 steps, so telling classes apart needs memory over the whole sequence.
  * A sample of class ``c``: ``u(t) = sum_k a_k cos(2 pi f_{c,k} t / L + phi_k) + a_0 cos(2 pi f_0
    t / L + phi_0)``, amplitudes ``a_k ~ U[0.5, 1.5]``, phases ``phi ~ U[0, 2 pi)``, and one
    distractor frequency ``f_0`` uniform in 1..max-freq with ``a_0 ~ U[0, 1]``; then standardised
    to zero mean and unit standard deviation per sequence.
  * ``spike`` noise (``layer1_gain``, ``spike_bins``, ``sinusoid_noise``): the trained model's
    first core is reduced to its frequency response on the rFFT bins of a length-L input (S4D
    family: the convolution kernel's DFT, gain = sqrt(sum over channels |K_h^|^2); S5 family: the
    Frobenius norm of the [H, H] response); the ``--spike-freqs`` (= 8) bins of largest gain at or
    above ``--spike-min-bin`` (default 2 x max-freq = 64, i.e. outside the signal's band, so the
    noise never changes the class content) get unit cosines with random phases, scaled to
    standard deviation ``level`` (signals have std 1; the paper's level is 0.1).
  * ``band`` noise (``fourier_noise``): independent complex Gaussian coefficients on the rFFT bins
    ``k`` with ``band[0] <= k / (L/2) <= band[1]`` (default ``--band 0.5 1.0``), scaled to std
    ``level``.
  * ``target`` noise (``cross_evaluate``): the spike noise of the ``--target-model`` (default
    ``s4d-legs``) run of the same seed, applied to every model: one noise made to fail S4D, as in
    the paper (the trained models are kept in a temporary folder until this is done).
  * Levels ``--noise 0 0.1 0.5 1 2``; the clean and noisy test sets and the noise phases are
    the same for every model (the ``spike`` bins are each model's own).
  Differences from the paper: generated narrow-band signals instead of images (sCIFAR pixels are
  broadband, so there the noise overlaps frequencies the model uses; here it lies outside the
  signal band), the spikes are read off the trained first layer rather than derived from the
  initialisation, and the noise levels that matter here are larger than the paper's 10%.

Models (``build_seq_core``, ``--d-state`` 64): ``s4d-legs`` (S4D with the HiPPO-LegS normal-part
init: the diagonal init the paper's theory is about), ``s4d`` (S4D-Inv), ``s4d-lin`` (S4D-Lin),
``s4-ptd``, ``s5`` (HiPPO-LegS normal-part init), ``s5-ptd``. Network: ``Linear(1, d)``, then
``--layers`` blocks ``x + core(LN(x))`` (the cores end in GELU + GLU), LN, mean over time,
linear head. AdamW with OneCycle; the lr of each model is chosen from ``--lrs`` on the clean
*validation* accuracy (median over seeds), never on noisy data; the table reports the median
test accuracy over seeds at that lr for every noise kind and level.

Outputs (``--out DIR``): results.json (every run: model, lr, seed, val acc, test acc per
``kind:level``, spike bins, steps, seconds, status) and results.md (rows = model).

Cost (CPU, one torch thread, d=32, d_state=64, 2 layers, batch 16, L=1024): S4D-LegS / S4D-Inv
0.2-0.3 s/step, S4-PTD 0.3-0.4 s/step (all N modes kept; +0.7 s PTD init); S5 / S5-PTD ~3 s/step
(d=32, batch 32). With band noise only (levels up to 2) every model stays at ~1.0 on one H200
(scripts/results/ptd-robustness-h200).

Usage (CPU smoke):  python scripts/ptd_robustness.py --steps 10 --seeds 1 --lrs 3e-3 --out /tmp/ptd
CPU, one core, ~20 min (scripts/results/ptd-robustness-cpu):  python scripts/ptd_robustness.py \\
    --models s4d-legs s4d s4-ptd --steps 400 --seeds 2 --lrs 1e-2 --d 32 --batch 16 --eval-n 256 \\
    --noise 0 0.1 0.5 1 2 4 --jobs 1 --threads 1 --time-budget 1150
One H200 (scripts/results/ptd-robustness-h200):  python scripts/ptd_robustness.py --device cuda \\
                        --jobs 8 --steps 1000 --seeds 3 --out scripts/results/ptd_robustness
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(_HERE)]  # scripts/ (for _grid) and the repo root
from _grid import (add_grid_args, budget_left, command_line, make_optimizer,  # noqa: E402
                   optimizer_step, run_grid, worker_device, write_json)

from graphlab.nn.seq import build_seq_core  # noqa: E402

MODELS = {
    "s4d-legs": ("s4d", dict(init="legs")),
    "s4d": ("s4d", dict(init="inv")),
    "s4d-lin": ("s4d", dict(init="lin")),
    "s4-ptd": ("s4ptd", dict()),
    "s5": ("s5", dict()),
    "s5-ptd": ("s5ptd", dict()),
}
K_FREQS = 3
NOISE_KINDS = ("spike", "band")


# ----------------------------------------------------------------------------- generator
def class_templates(classes: int, max_freq: int, task_seed: int) -> torch.Tensor:
    """``[classes, K]`` distinct frequencies (cycles per sequence) in ``1..max_freq`` per class."""
    if max_freq < K_FREQS:
        raise ValueError(f"max_freq must be >= {K_FREQS}, got {max_freq}")
    g = torch.Generator().manual_seed(task_seed)
    return torch.stack([torch.randperm(max_freq, generator=g)[:K_FREQS] + 1 for _ in range(classes)])


def make_signals(n: int, length: int, templates: torch.Tensor, max_freq: int, gen: torch.Generator):
    """Clean standardised signals ``[n, L]`` and labels ``[n]`` (see module docstring)."""
    classes = templates.size(0)
    y = torch.randint(0, classes, (n,), generator=gen)
    freqs = torch.cat([templates[y], torch.randint(1, max_freq + 1, (n, 1), generator=gen)], 1)  # [n, K+1]
    amps = torch.cat([0.5 + torch.rand(n, K_FREQS, generator=gen), torch.rand(n, 1, generator=gen)], 1)
    phase = 2 * math.pi * torch.rand(n, K_FREQS + 1, generator=gen)
    t = torch.arange(length, dtype=torch.float64)
    u = (amps[..., None] * torch.cos(2 * math.pi * freqs[..., None] * t / length + phase[..., None])).sum(1)
    u = (u - u.mean(1, keepdim=True)) / u.std(1, keepdim=True)
    return u.float(), y


def fourier_noise(n: int, length: int, level: float, band, gen: torch.Generator) -> torch.Tensor:
    """``[n, L]`` noise supported on the rFFT bins ``band[0] <= k/(L/2) <= band[1]``, std ``level``."""
    if not 0 <= band[0] < band[1] <= 1:
        raise ValueError(f"band must satisfy 0 <= lo < hi <= 1, got {band}")
    nb = length // 2 + 1
    k = torch.arange(nb, dtype=torch.float64) / (length / 2)
    keep = (k >= band[0]) & (k <= band[1]) & (torch.arange(nb) > 0)
    if not bool(keep.any()):
        raise ValueError(f"band {band} holds no frequency bin at length {length}")
    coef = torch.complex(torch.randn(n, nb, generator=gen, dtype=torch.float64),
                         torch.randn(n, nb, generator=gen, dtype=torch.float64)) * keep
    z = torch.fft.irfft(coef, n=length)
    return (level * z / z.std(1, keepdim=True)).float()


@torch.no_grad()
def layer1_gain(net, length: int) -> torch.Tensor:
    """``[L/2 + 1]`` gain of the first SSM layer on the rFFT bins of a length-``L`` input.

    The (truncated) convolution kernel of the first core is Fourier-transformed on the bins of a
    length-``L`` sequence; the gain of a bin is the Frobenius norm of the response over channels
    (S4D family: ``sqrt(sum_h |K_h^(k)|^2)``; S5 family: ``||K^(k)||_F`` of the ``[H, H]`` matrix).
    """
    core = net.cores[0]
    if hasattr(core, "kernel"):                                   # S4D / S4-PTD: K [H, L]
        return torch.fft.rfft(core.kernel(length).double(), n=length).abs().pow(2).sum(0).sqrt()
    lam_bar, B_bar, C = core._discrete()                          # S5 / S5-PTD
    pw = lam_bar.unsqueeze(-1) ** torch.arange(length, device=lam_bar.device)    # [P, L]
    K = torch.einsum("hp,pl,pj->lhj", C, pw, B_bar).real.double()                # [L, H, H]
    return torch.fft.rfft(K, n=length, dim=0).abs().pow(2).sum((1, 2)).sqrt()


def spike_bins(gain: torch.Tensor, n_freqs: int, min_bin: int) -> list:
    """The ``n_freqs`` rFFT bins ``>= min_bin`` (below Nyquist) where ``gain`` is largest."""
    g = gain.clone()
    g[:min_bin] = -1.0
    g[-1] = -1.0
    return sorted(int(k) for k in torch.topk(g, n_freqs).indices)


def sinusoid_noise(n: int, length: int, level: float, bins, gen: torch.Generator) -> torch.Tensor:
    """``[n, L]`` sum of unit cosines at rFFT ``bins`` with random phases, scaled to std ``level``."""
    t = torch.arange(length, dtype=torch.float64)
    k = torch.as_tensor(bins, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(n, len(bins), 1, generator=gen, dtype=torch.float64)
    z = torch.cos(2 * math.pi * k[:, None] * t / length + phase).sum(1)
    return (level * z / z.std(1, keepdim=True)).float()


# ----------------------------------------------------------------------------- model
class Net(nn.Module):
    def __init__(self, core: str, kw: dict, d: int, layers: int, classes: int):
        super().__init__()
        self.enc = nn.Linear(1, d)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.cores = nn.ModuleList(build_seq_core(core, d, **kw) for _ in range(layers))
        self.out = nn.Sequential(nn.LayerNorm(d))
        self.head = nn.Linear(d, classes)

    def forward(self, u):
        h = self.enc(u.unsqueeze(-1))
        for norm, core in zip(self.norms, self.cores):
            h = h + core(norm(h))
        return self.head(self.out(h).mean(1))


@torch.no_grad()
def accuracy(net, u, y, device, slice_size=128):
    pred = torch.cat([net(x.to(device)).argmax(-1).cpu() for x in u.split(slice_size)])
    return (pred == y).float().mean().item()


def train_run(cfg: dict) -> dict:
    """One (model, lr, seed) run; module level so that it pickles into spawn workers."""
    out = {k: cfg[k] for k in ("model", "lr", "seed")}
    if budget_left(cfg) <= 0:
        return dict(out, status="not run (budget)")
    device = torch.device(worker_device())
    t0 = time.time()
    seed, L = cfg["seed"], cfg["length"]
    templates = class_templates(cfg["classes"], cfg["max_freq"], cfg["task_seed"])
    core, kw = MODELS[cfg["model"]]
    torch.manual_seed(seed)
    net = Net(core, dict(kw, d_state=cfg["d_state"]), cfg["d"], cfg["layers"], cfg["classes"]).to(device)
    opt, sched = make_optimizer(net, cfg["lr"], cfg["steps"])
    gen = torch.Generator().manual_seed(1000 + seed)
    steps, status, t_train = 0, "ok", time.time()
    for step in range(cfg["steps"]):
        if budget_left(cfg) <= 0:
            status = "stopped (budget)"
            break
        u, y = make_signals(cfg["batch"], L, templates, cfg["max_freq"], gen)
        loss = F.cross_entropy(net(u.to(device)), y.to(device))
        optimizer_step(net, opt, sched, loss)
        steps = step + 1
    train_s = time.time() - t_train
    net.eval()
    # fixed validation / test sets, independent of the model seed
    u_val, y_val = make_signals(cfg["eval_n"], L, templates, cfg["max_freq"], torch.Generator().manual_seed(7))
    u_te, y_te = make_signals(cfg["eval_n"], L, templates, cfg["max_freq"], torch.Generator().manual_seed(8))
    bins = spike_bins(layer1_gain(net, L).cpu(), cfg["spike_freqs"], cfg["spike_min_bin"])
    acc = {}
    for i, level in enumerate(cfg["noise"]):
        for kind in cfg["noise_kinds"]:
            gen = torch.Generator().manual_seed(100 + i)
            if level == 0:
                if "clean" not in acc:
                    acc["clean"] = accuracy(net, u_te, y_te, device)
                acc[f"{kind}:{level}"] = acc["clean"]
                continue
            z = (fourier_noise(cfg["eval_n"], L, level, cfg["band"], gen) if kind == "band"
                 else sinusoid_noise(cfg["eval_n"], L, level, bins, gen))
            acc[f"{kind}:{level}"] = accuracy(net, u_te + z, y_te, device)
    acc.pop("clean", None)
    extra = {}
    if cfg.get("save_dir"):  # for the cross evaluation at the target model's spikes
        extra["model_path"] = os.path.join(cfg["save_dir"], f"{cfg['model']}_lr{cfg['lr']:g}_s{seed}.pt")
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, extra["model_path"])
    return dict(out, status=status, steps=steps, val_acc=accuracy(net, u_val, y_val, device),
                test_acc=acc, spike_bins=bins, ms_per_step=round(1000 * train_s / max(steps, 1), 2),
                seconds=round(time.time() - t0, 2), device=str(device), **extra)


def cross_evaluate(results, common: dict, target: str, target_lr: float, device) -> None:
    """Adds ``test_acc['target:<level>']`` to every saved run: its accuracy under the spike noise
    of the ``target`` model's run of the same seed (at ``target_lr``), i.e. one noise, made to fail
    the target, for every model, as in the paper's test."""
    L = common["length"]
    templates = class_templates(common["classes"], common["max_freq"], common["task_seed"])
    u_te, y_te = make_signals(common["eval_n"], L, templates, common["max_freq"],
                              torch.Generator().manual_seed(8))
    for r in results:
        t = next((t for t in results if t["model"] == target and t["seed"] == r["seed"]
                  and t["lr"] == target_lr and "spike_bins" in t), None)
        if "model_path" not in r or t is None:
            continue
        core, kw = MODELS[r["model"]]
        net = Net(core, dict(kw, d_state=common["d_state"]), common["d"], common["layers"], common["classes"])
        net.load_state_dict(torch.load(r["model_path"]))
        net.to(device).eval()
        r["target_bins"] = t["spike_bins"]
        for i, level in enumerate(common["noise"]):
            if level == 0:
                r["test_acc"][f"target:{level}"] = r["test_acc"][f"{common['noise_kinds'][0]}:{level}"]
                continue
            z = sinusoid_noise(common["eval_n"], L, level, t["spike_bins"],
                               torch.Generator().manual_seed(100 + i))
            r["test_acc"][f"target:{level}"] = accuracy(net, u_te + z, y_te, device)


# ----------------------------------------------------------------------------- tables
def columns(kinds, levels):
    """Table columns ``[(key in test_acc, header)]``: clean once, then each noise kind x level."""
    cols = [(f"{kinds[0]}:{lv}", "clean") for lv in levels if lv == 0][:1]
    return cols + [(f"{k}:{lv}", f"{k} {lv:g}") for k in kinds for lv in levels if lv != 0]


def summarise(results, models, keys):
    table = {}
    for model in models:
        runs = [r for r in results if r["model"] == model and "val_acc" in r]
        if not runs:
            table[model] = None
            continue
        best = None
        for lr in sorted({r["lr"] for r in runs}):
            rs = [r for r in runs if r["lr"] == lr]
            val = statistics.median(r["val_acc"] for r in rs)
            if best is None or val > best["val"]:
                best = dict(lr=lr, val=val, n=len(rs), steps=min(r["steps"] for r in rs),
                            stopped=sum(r["status"] != "ok" for r in rs),
                            test={key: statistics.median(r["test_acc"][key] for r in rs)
                                  for key in keys},
                            bins=[r.get("spike_bins") for r in rs])
        table[model] = best
    return table


def write_outputs(out_dir, meta, results, models, levels):
    write_json(os.path.join(out_dir, "results.json"), meta, results)
    cols = columns(meta["noise_kinds"], levels)
    table = summarise(results, models, [k for k, _ in cols])
    lines = [f"# Fourier-mode noise robustness ({meta['date']})", "", f"`{meta['command']}`", "",
             f"Length {meta['length']}, {meta['classes']} classes (chance {1 / meta['classes']:.3f}). "
             f"Noise std = level x signal std. `spike`: {meta['spike_freqs']} cosines at the rFFT bins "
             f">= {meta['spike_min_bin']} where the model's own first SSM layer has the largest gain "
             f"(worst case per model); `band`: Gaussian noise on rFFT band {meta['band']} of Nyquist; "
             f"`target`: the spike noise of the {meta['target_model']} run of the same seed, for every "
             "model (one noise made to fail it, as in the paper). "
             "Cell: median test accuracy over seeds at the lr chosen on clean validation accuracy.", "",
             "| model | lr | val | " + " | ".join(h for _, h in cols) + " | runs |",
             "|---|---|---|" + "---|" * len(cols) + "---|"]
    for model in models:
        c = table[model]
        if c is None:
            why = "error" if any(r["model"] == model and str(r.get("status", "")).startswith("error")
                                 for r in results) else "not run (budget)"
            lines.append(f"| {model} | | | " + " | ".join(why for _ in cols) + " | 0 |")
            continue
        runs = f"n={c['n']}" + (f", {c['stopped']} stopped at {c['steps']} steps" if c["stopped"] else "")
        lines.append(f"| {model} | {c['lr']:g} | {c['val']:.3f} | "
                     + " | ".join(f"{c['test'][k]:.3f}" for k, _ in cols) + f" | {runs} |")
    not_run = sum(r.get("status") == "not run (budget)" for r in results)
    errors = [r for r in results if str(r.get("status", "")).startswith("error")]
    lines += ["", f"Runs: {len(results)} recorded, {not_run} not run (budget), {len(errors)} errors."]
    lines += [f"- {r['model']} lr {r['lr']} seed {r['seed']}: {r['status']}" for r in errors]
    lines += ["", "Spike bins (cycles per sequence) of the selected runs:"]
    lines += [f"- {m}: {table[m]['bins']}" for m in models if table[m] is not None]
    lines += ["", "Per run (model, lr, seed: clean / spike / target / band accuracy by level):"]
    for r in results:
        if "test_acc" in r:
            acc = r["test_acc"]
            row = " ; ".join(f"{k}: " + " ".join(f"{acc[key]:.3f}" for key in sorted(
                (x for x in acc if x.startswith(k + ":")), key=lambda x: float(x.split(":")[1])))
                for k in ("spike", "target", "band") if any(x.startswith(k + ":") for x in acc))
            lines.append(f"- {r['model']} lr {r['lr']:g} seed {r['seed']}: {row}")
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["s4d-legs", "s4d", "s4-ptd", "s5", "s5-ptd"],
                   choices=list(MODELS))
    p.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 3e-3, 1e-2])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--d-state", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--max-freq", type=int, default=32)
    p.add_argument("--task-seed", type=int, default=0)
    p.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.1, 0.5, 1.0, 2.0])
    p.add_argument("--noise-kinds", nargs="+", default=list(NOISE_KINDS), choices=list(NOISE_KINDS))
    p.add_argument("--spike-freqs", type=int, default=8, help="cosines in the spike noise")
    p.add_argument("--target-model", default="s4d-legs",
                   help="also test every model on the spike noise of this model's run of the same "
                        "seed ('target' columns; '' to skip)")
    p.add_argument("--spike-min-bin", type=int, default=None,
                   help="lowest rFFT bin of the spike noise (default 2 x --max-freq)")
    p.add_argument("--band", nargs=2, type=float, default=[0.5, 1.0],
                   help="noise band as fractions of the Nyquist frequency")
    p.add_argument("--eval-n", type=int, default=512)
    add_grid_args(p)
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available")
    if args.target_model and args.target_model not in args.models:
        print(f"# --target-model {args.target_model} is not among --models: no 'target' columns", flush=True)
        args.target_model = ""
    if args.spike_min_bin is None:
        args.spike_min_bin = 2 * args.max_freq
    if not 0 < args.spike_min_bin < args.length // 2 - args.spike_freqs:
        p.error(f"--spike-min-bin must lie in (0, L/2 - spike_freqs), got {args.spike_min_bin}")
    out_dir = args.out or "scripts/results/ptd_robustness"
    os.makedirs(out_dir, exist_ok=True)
    meta = dict(vars(args), command=command_line(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    common = dict(steps=args.steps, batch=args.batch, d=args.d, d_state=args.d_state, layers=args.layers,
                  length=args.length, classes=args.classes, max_freq=args.max_freq,
                  task_seed=args.task_seed, noise=args.noise, band=args.band, eval_n=args.eval_n,
                  noise_kinds=args.noise_kinds, spike_freqs=args.spike_freqs,
                  spike_min_bin=args.spike_min_bin)
    configs = [dict(common, model=m, lr=lr, seed=s) for s in range(args.seeds)
               for m in args.models for lr in args.lrs]
    print(f"# {len(configs)} runs, {args.jobs} jobs on {args.device}; budget "
          f"{args.time_budget} s; {command_line()}", flush=True)
    with tempfile.TemporaryDirectory() as save_dir:
        if args.target_model:
            configs = [dict(c, save_dir=save_dir) for c in configs]
        results = run_grid(train_run, configs, args,
                           lambda res: write_outputs(out_dir, meta, res, args.models, args.noise))
        table = write_outputs(out_dir, meta, results, args.models, args.noise)
        if args.target_model and table.get(args.target_model):
            cross_evaluate(results, common, args.target_model, table[args.target_model]["lr"],
                           torch.device("cuda" if args.device == "cuda" else "cpu"))
            for r in results:
                r.pop("model_path", None)
            meta["noise_kinds"] = args.noise_kinds = args.noise_kinds + ["target"]
            table = write_outputs(out_dir, meta, results, args.models, args.noise)
    for model, c in table.items():
        if c is not None:
            accs = " ".join(f"{h}:{c['test'][k]:.3f}" for k, h in columns(args.noise_kinds, args.noise))
            print(f"{model:8s} lr {c['lr']:<7g} val {c['val']:.3f}  test {accs}", flush=True)
    print(f"# wrote {out_dir}/results.json and results.md", flush=True)


if __name__ == "__main__":
    main()
