"""End-to-end training: seeds and summary, kill-and-resume, DDP evaluation, OGB Evaluator."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from graphlab.tasks.metrics import compute, lrgb_average_precision, summarize
from graphlab.train.run import RUN_FIELDS, run_seed, run_seeds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOTIFS = os.path.join(ROOT, "configs", "gin", "motifs.yaml")
FAST = ["model.hidden_channels=16", "model.num_layers=2", "data.batch_size=64"]


def _cfg(epochs=3, **model):
    return {"experiment": "t", "data": {"name": "motifs", "batch_size": 64},
            "model": {"name": "gin", "hidden_channels": 16, "num_layers": 2, **model},
            "optim": {"name": "adam", "lr": 0.01}, "trainer": {"max_epochs": epochs}}


def _results(rec):
    return {k: v for k, v in rec.items() if k not in RUN_FIELDS}


def _cli(args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "graphlab.train.cli", *args], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, **kw)


def test_seeds_summary_and_outputs(data_root, tmp_path):
    summary = run_seeds(_cfg(epochs=2), [0, 1], str(tmp_path), quiet=True)
    exp = tmp_path / "t"
    for s in (0, 1):
        rec = json.loads((exp / f"seed{s}" / "metrics.json").read_text())
        for key in ("valid", "test", "best_epoch", "epochs", "wall_time_s", "num_parameters",
                    "hardware", "peak_memory_mb", "throughput", "config", "git_sha", "versions",
                    "history"):
            assert key in rec, key
        assert rec["epochs"] == 2 and len(rec["history"]) == 2
        assert (exp / f"seed{s}" / "test_predictions.pt").exists()
        assert (exp / f"seed{s}" / "checkpoints" / "last.ckpt").exists()
        assert (exp / f"seed{s}" / "logs" / "metrics.csv").exists()
    m = summary["metrics"]["test_accuracy"]
    vals = [json.loads((exp / f"seed{s}" / "metrics.json").read_text())["test"]["accuracy"]
            for s in (0, 1)]
    assert m["n"] == 2 and m["mean"] == pytest.approx(sum(vals) / 2)
    assert m["std"] == pytest.approx(float(torch.tensor(vals, dtype=torch.float64).std()))
    assert json.loads((exp / "summary.json").read_text())["seeds"] == [0, 1]
    # a second call with resume skips finished seeds and returns the same records
    again = run_seeds(_cfg(epochs=2), [0, 1], str(tmp_path), resume=True, quiet=True)
    assert again["metrics"] == summary["metrics"]


def test_best_epoch_is_selected_on_validation(data_root, tmp_path):
    rec = run_seed(_cfg(epochs=4), 0, str(tmp_path), quiet=True)
    vals = [row["valid_accuracy"] for row in rec["history"]]
    assert rec["best_epoch"] == vals.index(max(vals))
    assert rec["test"]["accuracy"] == rec["history"][rec["best_epoch"]]["test_accuracy"]
    pred = torch.load(tmp_path / "t" / "seed0" / "test_predictions.pt")
    assert compute("accuracy", pred["y_pred"], pred["y_true"]) == rec["test"]["accuracy"]


def _kill_until_done(args, env, ckpt, done, rng, tries, max_wait):
    """Start ``graphlab train ... --resume`` again and again, SIGKILL each run a random time
    (up to ``max_wait`` s) after its checkpoint exists, until ``done`` exists; then finish the
    run uninterrupted if needed. Returns the number of kills."""
    kills = 0
    for _ in range(tries):
        p = _cli([*args, "--resume"], env)
        # wait for the checkpoint to exist (the process is past start-up), then kill at random
        deadline = time.time() + 120
        while p.poll() is None and not ckpt.exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, max_wait))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate(timeout=120)
        if done.exists():
            break
    if not done.exists():
        p = _cli([*args, "--resume"], env)
        assert p.wait(timeout=600) == 0
    return kills


def test_kill_and_resume_is_bit_for_bit(data_root, tmp_path):
    """SIGKILL the CLI at random moments (also mid-checkpoint); resumed == uninterrupted."""
    args = ["train", MOTIFS, *FAST, "trainer.max_epochs=6", "--seed", "0", "--quiet"]
    env = {"GRAPHLAB_DATA": data_root}
    ref = _cli([*args, "--out", str(tmp_path / "ref")], env)
    out_ref = ref.communicate(timeout=600)[0].decode()
    assert ref.returncode == 0, out_ref
    ref_rec = json.loads((tmp_path / "ref" / "gin-motifs" / "seed0" / "metrics.json").read_text())

    run = tmp_path / "killed" / "gin-motifs" / "seed0"
    kills = _kill_until_done([*args, "--out", str(tmp_path / "killed")], env,
                             run / "checkpoints" / "last.ckpt", run / "metrics.json",
                             random.Random(0), tries=12, max_wait=1.5)
    assert kills >= 1
    rec = json.loads((run / "metrics.json").read_text())
    assert _results(rec) == _results(ref_rec)


def test_ensemble_kill_and_resume_is_bit_for_bit(data_root, tmp_path):
    """SIGKILL a seed ensemble at random moments, also while its checkpoint is being written on
    the background thread; the resumed run equals the uninterrupted one for every seed."""
    args = ["train", MOTIFS, *FAST, "model.dropout=0.0", "trainer.max_epochs=8", "--seeds", "2",
            "--ensemble", "--quiet"]
    env = {"GRAPHLAB_DATA": data_root}
    ref = _cli([*args, "--out", str(tmp_path / "ref")], env)
    out_ref = ref.communicate(timeout=600)[0].decode()
    assert ref.returncode == 0, out_ref

    def records(root):
        return [_results(json.loads((root / "gin-motifs" / f"seed{s}" / "metrics.json")
                                    .read_text())) for s in (0, 1)]
    out = tmp_path / "killed"
    kills = _kill_until_done([*args, "--out", str(out)], env,
                             out / "gin-motifs" / "ensemble" / "last.ckpt",
                             out / "gin-motifs" / "seed1" / "metrics.json",
                             random.Random(1), tries=8, max_wait=1.0)
    assert kills >= 1
    assert records(out) == records(tmp_path / "ref")


def test_ddp_two_processes_match_single_process_eval(data_root, tmp_path):
    """A 2-process DDP (gloo, CPU) run reports the same metrics as one process evaluating its
    checkpoint: no sample counted twice by the distributed sampler's padding."""
    out = str(tmp_path / "ddp")
    p = _cli(["train", MOTIFS, *FAST, "trainer.max_epochs=1", "trainer.accelerator=cpu",
              "trainer.devices=2", "trainer.strategy=ddp", "data.eval_batch_size=7",
              "--seed", "0", "--out", out, "--quiet"], {"GRAPHLAB_DATA": data_root})
    log = p.communicate(timeout=600)[0].decode()
    assert p.returncode == 0, log[-3000:]
    seed_dir = os.path.join(out, "gin-motifs", "seed0")
    rec = json.loads(open(os.path.join(seed_dir, "metrics.json")).read())
    pred = torch.load(os.path.join(seed_dir, "test_predictions.pt"))
    assert pred["index"].numel() == 60 and pred["index"].unique().numel() == 60

    from graphlab.train.config import load_config, validate
    from graphlab.train.run import build_model, prepare
    from graphlab.train.datamodule import GraphDataModule
    from graphlab.train.task import GraphTask
    import lightning as L
    cfg = validate(load_config(MOTIFS, FAST))
    rd = prepare(cfg, 0)
    dataset, split = rd.dataset, rd.split
    model = build_model(cfg, rd.dims)
    task = GraphTask(model, rd.task)
    ckpt = torch.load(os.path.join(seed_dir, "checkpoints", "last.ckpt"), weights_only=False)
    task.load_state_dict(ckpt["state_dict"])
    dm = GraphDataModule(dataset, split, rd.task, batch_size=64, eval_batch_size=5)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False)
    trainer.validate(task, datamodule=dm, verbose=False)
    row = task.history[-1]
    assert row["valid_accuracy"] == rec["history"][-1]["valid_accuracy"]
    assert row["test_accuracy"] == rec["history"][-1]["test_accuracy"]


def test_lrgb_ap_skips_classes_without_positives():
    y = torch.tensor([[1., 0., 0.], [0., 0., 1.], [1., 0., 0.], [0., 0., 1.]])
    p = torch.tensor([[.9, .1, .2], [.2, .3, .8], [.7, .6, .1], [.4, .2, .9]])
    # class 1 has no positive: skipped, so the mean is over classes 0 and 2 (both perfect)
    assert lrgb_average_precision(p, y) == pytest.approx(1.0)
    y[0, 0] = float("nan")
    assert lrgb_average_precision(p, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="undefined"):
        lrgb_average_precision(p[:, 1:2], y[:, 1:2])


def test_summary_uses_unbiased_std():
    s = summarize({"a": [1.0, 2.0, 3.0]})["a"]
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(1.0)


@pytest.mark.realdata
def test_metrics_equal_official_ogb_evaluator(mirror, data_root, tmp_path):
    from ogb.graphproppred import Evaluator
    cfg = {"experiment": "bace", "data": {"name": "ogbg-molbace", "batch_size": 128},
           "model": {"name": "gin", "hidden_channels": 16, "num_layers": 2},
           "trainer": {"max_epochs": 1}}
    rec = run_seed(cfg, 0, str(tmp_path), quiet=True)
    pred = torch.load(tmp_path / "bace" / "seed0" / "test_predictions.pt")
    ref = Evaluator("ogbg-molbace").eval({"y_true": pred["y_true"].view(-1, 1).numpy(),
                                          "y_pred": pred["y_pred"].view(-1, 1).numpy()})
    assert rec["test"]["rocauc"] == ref["rocauc"]
    assert pred["y_true"].numel() == 152


@pytest.mark.realdata
def test_tu_cross_validation_runs_every_fold(mirror, data_root, tmp_path):
    """--folds 10: one run per committed fold of the TU protocol, summarised over folds."""
    from graphlab.train.cli import main
    args = ["train", os.path.join(ROOT, "configs", "gin", "mutag.yaml"), "trainer.max_epochs=1",
            "model.hidden_channels=8", "model.num_layers=1", "--folds", "10", "--out",
            str(tmp_path), "--quiet"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "gin-mutag" / "summary.json").read_text())
    assert summary["folds"] == list(range(10)) and summary["metrics"]["test_accuracy"]["n"] == 10
    tests = []
    for f in range(10):
        pred = torch.load(tmp_path / "gin-mutag" / f"fold{f}-seed0" / "test_predictions.pt")
        tests.append(pred["index"])
    assert sorted(torch.cat(tests).tolist()) == list(range(188))  # the folds partition MUTAG


def test_nan_features_give_a_clear_error(data_root, tmp_path, monkeypatch, capsys):
    import graphlab.data.pipeline as pipeline
    from graphlab.train.cli import main
    real_load = pipeline.load

    def load_with_nan(name, **kw):
        ds = real_load(name, **kw)
        ds._data.x[3, 0] = float("nan")
        return ds
    monkeypatch.setattr(pipeline, "load", load_with_nan)
    assert main(["train", MOTIFS, "--seed", "0", "--out", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NaN/inf features" in err[0] and "motifs" in err[0]


def test_packed_and_pyg_loaders_give_identical_runs(data_root, tmp_path):
    """data.loader: packed gathers batches on the device; the run must not change."""
    recs = {}
    for loader in ("pyg", "packed"):
        cfg = _cfg(epochs=2, dropout=0.5)
        cfg["data"]["loader"] = loader
        cfg["experiment"] = f"t-{loader}"
        recs[loader] = run_seed(cfg, 0, str(tmp_path), quiet=True)
    assert recs["pyg"]["history"] == recs["packed"]["history"]


def test_gin_with_positional_encoding_trains_and_is_permutation_invariant(data_root, tmp_path):
    cfg = _cfg(epochs=1, pe="rwse", pe_dim=4, pe_kwargs={"walk_length": 6})
    cfg["data"]["pe"] = {"name": "rwse", "walk_length": 6}
    rec = run_seed(cfg, 0, str(tmp_path), quiet=True)
    assert rec["num_parameters"] > 0
    from graphlab.models import GIN
    from graphlab.transforms import AddRWSE
    from torch_geometric.data import Data
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 9, (2, 20), generator=g)
    data = AddRWSE(6)(Data(x=torch.randn(9, 3, generator=g), edge_index=ei))
    perm = torch.randperm(9, generator=g)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(9)
    pdata = AddRWSE(6)(Data(x=data.x[perm], edge_index=inv[ei]))
    model = GIN(3, 2, hidden_channels=16, num_layers=2, pe="rwse", pe_dim=4,
                pe_kwargs={"walk_length": 6}).eval()
    assert torch.allclose(model(data), model(pdata), atol=1e-5)


def test_python_api_fit_without_yaml(data_root, tmp_path):
    from graphlab.models import GIN
    from graphlab.train import fit
    rec = fit(GIN(1, 3, hidden_channels=16, num_layers=2), "motifs", out_dir=str(tmp_path),
              trainer={"max_epochs": 1}, data={"batch_size": 64})
    assert rec["epochs"] == 1 and rec["dataset"] == "motifs" and 0 <= rec["test"]["accuracy"] <= 1
    from graphlab.registry import MODELS
    assert not any(n.startswith("_fit_") for n in MODELS.names())


def test_task_compile_gives_the_same_run(data_root, tmp_path):
    """``task.compile`` compiles the model in place (state_dict keys unchanged, so checkpoints
    and resume work) and trains to the same numbers; ``aot_eager`` keeps the test fast on CPU
    (the default backend, inductor, goes through the same code)."""
    plain = run_seed(_cfg(epochs=2), 0, str(tmp_path / "plain"), quiet=True)
    cfg = {**_cfg(epochs=2), "task": {"compile": {"backend": "aot_eager", "dynamic": True}}}
    comp = run_seed(cfg, 0, str(tmp_path / "comp"), quiet=True)
    for split in ("valid", "test"):
        for k, v in plain[split].items():
            assert comp[split][k] == pytest.approx(v, abs=1e-4), (split, k)
    ckpt = torch.load(os.path.join(tmp_path, "comp", "t", "seed0", "checkpoints", "last.ckpt"),
                      weights_only=False)
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])


def test_task_compile_bad_options_are_config_errors():
    from graphlab.train.config import ConfigError, validate
    with pytest.raises(ConfigError, match="task.compile"):
        validate({**_cfg(), "task": {"compile": {"bakcend": "eager"}}})
    with pytest.raises(ConfigError, match="task.compile"):
        validate({**_cfg(), "task": {"compile": "yes"}})
