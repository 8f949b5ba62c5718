"""Vectorised seed ensemble (graphlab.train.ensemble) against separate runs with the same seeds."""
from __future__ import annotations

import csv
import os

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.datasets import FakeDataset
from torch_geometric.loader import DataLoader

from graphlab.models.basic import GIN
from graphlab.registry import register_model
from graphlab.train.ensemble import SeedEnsemble, member_losses, seed_everything

SEEDS = [0, 1, 5]


@pytest.fixture(scope="module")
def batches():
    torch.manual_seed(0)
    ds = FakeDataset(num_graphs=24, avg_num_nodes=7, num_channels=4, num_classes=3)
    out = list(DataLoader(ds, batch_size=8, shuffle=False))
    for b in out:
        b.x = b.x.double()
    return out


def make():
    # float64: a bias in front of BatchNorm has a gradient of pure rounding noise, which Adam
    # normalises to full-size steps; in float32 that noise (different summation order under
    # vmap) would make such biases drift apart, in float64 it stays far below Adam's eps.
    return GIN(4, 3, hidden_channels=16, num_layers=2, dropout=0.0, norm="batch").double()


def separate_run(seed, batches, epochs):
    seed_everything(seed)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(epochs):
        for b in batches:
            opt.zero_grad()
            loss = F.cross_entropy(model(b), b.y)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
    return model, torch.stack(losses)


def test_members_equal_separate_runs(batches):
    epochs = 3
    ens = SeedEnsemble.from_seeds(make, SEEDS)
    assert ens.num_members == 3 and ens.seeds == SEEDS
    opt = torch.optim.Adam(ens.parameters(), lr=1e-2)
    ens_losses = []
    for _ in range(epochs):
        for b in batches:
            opt.zero_grad()
            losses = member_losses(F.cross_entropy, ens(b), b.y)
            losses.sum().backward()
            opt.step()
            ens_losses.append(losses.detach())
    ens_losses = torch.stack(ens_losses, 1)  # [K, steps]
    ens.eval()
    out = torch.cat([ens(b) for b in batches], 1)  # [K, graphs, classes]
    ys = torch.cat([b.y for b in batches])
    for k, seed in enumerate(SEEDS):
        model, losses = separate_run(seed, batches, epochs)
        model.eval()
        ref = torch.cat([model(b) for b in batches])
        torch.testing.assert_close(ens_losses[k], losses, rtol=1e-9, atol=1e-10)
        # Outputs inherit the weights' rounding-level drift (compared at 1e-7 below); 1e-9 was
        # tighter than that and failed on another machine (1.6e-9).
        torch.testing.assert_close(out[k], ref, rtol=1e-6, atol=1e-7)
        assert torch.equal(out[k].argmax(-1) == ys, ref.argmax(-1) == ys)  # same accuracy
        # weights and BatchNorm statistics of the separate run (pre-BatchNorm biases carry the
        # rounding noise described in make(): ~1e-9 apart, without effect on the outputs)
        member = ens.member(k)
        for (n, a), (_, r) in zip(member.state_dict().items(), model.state_dict().items()):
            torch.testing.assert_close(a, r, rtol=1e-6, atol=1e-7, msg=n)
    # the members really differ (different seeds)
    assert not torch.allclose(out[0], out[1])


def test_initial_members_are_the_seeded_models(batches):
    ens = SeedEnsemble.from_seeds(make, SEEDS).eval()
    b = batches[0]
    for k, seed in enumerate(SEEDS):
        seed_everything(seed)
        ref = make().eval()
        torch.testing.assert_close(ens(b)[k], ref(b), rtol=1e-12, atol=1e-12)  # batched matmul
        assert all(torch.equal(p, q) for p, q in zip(ens.member(k).parameters(), ref.parameters()))


def test_dropout_needs_randomness_opt_in(batches):
    drop = lambda: GIN(4, 3, hidden_channels=8, num_layers=2, dropout=0.5).double()  # noqa: E731
    ens = SeedEnsemble.from_seeds(drop, [0, 1]).train()
    with pytest.raises(ValueError, match="randomness"):
        ens(batches[0])
    ens = SeedEnsemble.from_seeds(drop, [0, 1], randomness="different").train()
    assert ens(batches[0]).shape == (2, 8, 3)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="'models'"):
        SeedEnsemble([])
    with pytest.raises(ValueError, match="'models'"):
        SeedEnsemble([make(), GIN(4, 3, hidden_channels=8, num_layers=2)])
    with pytest.raises(ValueError, match="'randomness'"):
        SeedEnsemble([make()], randomness="maybe")
    with pytest.raises(ValueError, match="'k'"):
        SeedEnsemble([make()]).member(1)


# --------------------------------------------------------------------------- the CLI runner
# ``graphlab train CONFIG --seeds K --ensemble`` (graphlab.train.ensemble_run) against separate
# runs forced to the ensemble's data (split and batch order of the first seed: data_seed).
import json  # noqa: E402

from graphlab.train.config import ConfigError  # noqa: E402
from graphlab.train.ensemble_run import clip_member_grad_norms, run_ensemble  # noqa: E402
from graphlab.train.run import run_seed  # noqa: E402

RUN_SEEDS = [0, 3]


def _run_cfg(epochs=3, **model):
    # float64 (trainer.precision 64-true) so that separate runs and members agree to ~1e-9;
    # plateau with patience 0 gives the members different LRs, the tight clip clips them all.
    return {"experiment": "ens", "data": {"name": "motifs", "batch_size": 64},
            "model": {"name": "gin", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0,
                      **model},
            "optim": {"name": "adam", "lr": 0.02},
            "scheduler": {"name": "plateau", "patience": 0, "factor": 0.5},
            "trainer": {"max_epochs": epochs, "precision": "64-true", "gradient_clip_val": 0.5,
                        "accelerator": "cpu"}}


@pytest.fixture(scope="module")
def ensemble_records(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("ens")
    return str(out), run_ensemble(_run_cfg(), RUN_SEEDS, str(out), quiet=True)


def test_cli_ensemble_members_equal_separate_runs(data_root, tmp_path, ensemble_records):
    out, recs = ensemble_records
    lrs = set()
    for s, rec in zip(RUN_SEEDS, recs):
        ref = run_seed({**_run_cfg(), "experiment": "ref"}, s, str(tmp_path), quiet=True,
                       data_seed=RUN_SEEDS[0])
        assert rec["seed"] == s and rec["num_parameters"] == ref["num_parameters"]
        assert rec["best_epoch"] == ref["best_epoch"] and rec["epochs"] == ref["epochs"]
        for a, b in zip(rec["history"], ref["history"]):
            assert a.keys() == b.keys()
            for k in a:
                assert a[k] == pytest.approx(b[k], rel=1e-7, abs=1e-9), (s, k)
            lrs.add(a["lr"])
        assert rec["valid"] == pytest.approx(ref["valid"])
        assert rec["test"] == pytest.approx(ref["test"])
        # the same metrics.json fields (plus 'ensemble') and outputs
        assert set(ref) <= set(rec) and rec["ensemble"]["seeds"] == RUN_SEEDS
        d = os.path.join(out, "ens", f"seed{s}")
        pred = torch.load(os.path.join(d, "test_predictions.pt"))
        ref_pred = torch.load(os.path.join(tmp_path, "ref", f"seed{s}", "test_predictions.pt"))
        torch.testing.assert_close(pred["y_pred"], ref_pred["y_pred"], rtol=1e-5, atol=1e-6)
        assert torch.equal(pred["index"], ref_pred["index"])
        assert os.path.exists(os.path.join(d, "logs", "metrics.csv"))
    assert len(lrs) > 1  # the plateau schedule acted
    assert recs[0]["history"] != recs[1]["history"]


def test_cli_ensemble_resume_continues_exactly(data_root, tmp_path, monkeypatch, ensemble_records):
    import graphlab.train.ensemble_run as ER
    _, ref = ensemble_records
    saves = []
    real = ER.R.atomic_torch_save

    def killed_after_two(obj, path):
        real(obj, path)
        if path.endswith("last.ckpt"):
            saves.append(path)
            if len(saves) == 2:
                raise KeyboardInterrupt
    monkeypatch.setattr(ER.R, "atomic_torch_save", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_ensemble(_run_cfg(), RUN_SEEDS, str(tmp_path), quiet=True)
    # the killed run kept every member's curve of the epochs it finished
    for s, r in zip(RUN_SEEDS, ref):
        with open(os.path.join(tmp_path, "ens", f"seed{s}", "logs", "metrics.csv")) as f:
            rows = list(csv.DictReader(f))
        assert [int(x["epoch"]) for x in rows] == [0, 1]
        key = next(k for k in rows[0] if k.startswith("valid_") and k.count("_") == 1)
        assert [float(x[key]) for x in rows] == pytest.approx([h[key] for h in r["history"][:2]])
    monkeypatch.setattr(ER.R, "atomic_torch_save", real)
    recs = run_ensemble(_run_cfg(), RUN_SEEDS, str(tmp_path), quiet=True, resume=True)
    for a, b in zip(recs, ref):
        assert a["resumed"] and a["history"] == b["history"] and a["test"] == b["test"]
    # finished: a further --resume returns the records without training
    again = run_ensemble(_run_cfg(), RUN_SEEDS, str(tmp_path), quiet=True, resume=True)
    assert [r["history"] for r in again] == [r["history"] for r in recs]


def test_cli_flag_writes_outputs_and_summary(data_root, tmp_path):
    from graphlab.train.cli import main
    cfg = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                       "gin", "motifs.yaml")
    args = ["train", cfg, "model.hidden_channels=8", "model.num_layers=1", "data.batch_size=128",
            "trainer.max_epochs=1", "--ensemble", "--quiet"]
    assert main([*args, "--seeds", "2", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "gin-motifs" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["metrics"]["test_accuracy"]["n"] == 2
    for s in (0, 1):
        rec = json.loads((tmp_path / "gin-motifs" / f"seed{s}" / "metrics.json").read_text())
        assert rec["ensemble"]["data_seed"] == 0 and rec["epochs"] == 1
    assert main([*args, "--seed", "0", "--out", str(tmp_path / "x")]) == 2  # needs --seeds
    assert main([*args, "--seeds", "2", "--jobs", "2", "--out", str(tmp_path / "x")]) == 2


@register_model("test-vmap-unfriendly")
class _VmapUnfriendly(torch.nn.Module):
    """Branches on an activation (data-dependent control flow): vmap cannot map it."""

    def __init__(self, in_channels, out_channels, hidden_channels=8, task_level="graph",
                 node_encoder="linear", edge_dim=None, edge_encoder=None):
        super().__init__()
        self.lin = torch.nn.Linear(in_channels, out_channels)

    def forward(self, data):
        h = self.lin(data.x.to(self.lin.weight.dtype))
        if h.sum() > 0:
            h = -h
        from torch_geometric.nn import global_mean_pool
        return global_mean_pool(h, data.batch, size=data.num_graphs)


def test_cli_ensemble_refuses_what_it_cannot_reproduce(data_root, tmp_path):
    with pytest.raises(ConfigError, match="dropout"):
        run_ensemble(_run_cfg(epochs=1, dropout=0.5), [0, 1], str(tmp_path), quiet=True)
    cfg = _run_cfg(epochs=1)
    cfg["trainer"]["limit_train_batches"] = 2
    with pytest.raises(ConfigError, match="trainer.limit_train_batches"):
        run_ensemble(cfg, [0, 1], str(tmp_path), quiet=True)
    # trainer.max_time stops at an epoch end; the records are incomplete (for --resume)
    cfg = {**_run_cfg(epochs=3), "experiment": "timed"}
    cfg["trainer"]["max_time"] = {"seconds": 0}
    recs = run_ensemble(cfg, [0, 1], str(tmp_path), quiet=True)
    assert all(r["epochs"] == 1 and not r["complete"] for r in recs)
    # a model vmap cannot map (data-dependent control flow): one clear line, not a traceback
    bad = {**_run_cfg(epochs=1), "model": {"name": "test-vmap-unfriendly",
                                           "hidden_channels": 8}}
    with pytest.raises(ConfigError, match="cannot be trained as a vmapped ensemble"):
        run_ensemble(bad, [0, 1], str(tmp_path), quiet=True)
    with pytest.raises(ConfigError, match="distinct"):
        run_ensemble(_run_cfg(epochs=1), [1, 1], str(tmp_path), quiet=True)
    # randomness='different': trains, members differ
    recs = run_ensemble({**_run_cfg(epochs=1, dropout=0.5), "experiment": "drop"}, [0, 1],
                        str(tmp_path), quiet=True, randomness="different")
    assert len(recs) == 2 and all(r["ensemble"]["randomness"] == "different" for r in recs)


def test_member_grad_norm_clipping_equals_clip_grad_norm():
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(3, 4, 5, dtype=torch.float64)),
          torch.nn.Parameter(torch.randn(3, 7, dtype=torch.float64))]
    for p in ps:
        p.grad = torch.randn_like(p) * torch.tensor([0.01, 1.0, 10.0], dtype=p.dtype).view(
            -1, *([1] * (p.dim() - 1)))
    refs = []
    for k in range(3):
        qs = [torch.nn.Parameter(p[k].detach().clone()) for p in ps]
        for q, p in zip(qs, ps):
            q.grad = p.grad[k].clone()
        torch.nn.utils.clip_grad_norm_(qs, 0.5)
        refs.append([q.grad for q in qs])
    clip_member_grad_norms(ps, 0.5)
    for k in range(3):
        for p, r in zip(ps, refs[k]):
            torch.testing.assert_close(p.grad[k], r, rtol=1e-12, atol=1e-14)



def test_cli_ensemble_refuses_task_compile(data_root, tmp_path):
    from graphlab.train.config import ConfigError
    with pytest.raises(ConfigError, match="task.compile"):
        run_ensemble({**_run_cfg(epochs=1), "task": {"compile": True}}, RUN_SEEDS, str(tmp_path),
                     quiet=True)


@pytest.mark.parametrize("name", ["sincgcn", "spen"])
def test_sinc_and_spen_members_equal_their_models(name):
    """Their input checks read the raw batch, so vmap maps them (float64)."""
    from torch_geometric.loader import DataLoader
    from graphlab.registry import MODELS
    ds = FakeDataset(8, avg_num_nodes=8, num_channels=5, num_classes=2, task="graph")
    b = next(iter(DataLoader(ds, batch_size=8)))
    b.x = b.x.double()
    models = []
    for s in (0, 1):
        torch.manual_seed(s)
        models.append(MODELS.get(name)(5, 2, hidden_channels=8, task_level="graph").double()
                      .eval())
    ens = SeedEnsemble(models).eval()
    out = ens(b)
    for k, m in enumerate(models):
        torch.testing.assert_close(out[k], m(b))


def test_loss_selection_and_warm_plateau_equal_separate_runs(data_root, tmp_path):
    """task.select_on: loss and a loss-monitored plateau with warm-up (the SINC-GCN reference's
    protocol) in a separate run and as ensemble members."""
    cfg = _run_cfg(epochs=4)
    cfg["scheduler"] = {"name": "plateau", "patience": 0, "factor": 0.5, "monitor": "loss",
                        "warmup_epochs": 2}
    cfg["task"] = {"select_on": "loss"}
    recs = run_ensemble(cfg, RUN_SEEDS, str(tmp_path / "e"), quiet=True)
    for s, rec in zip(RUN_SEEDS, recs):
        ref = run_seed({**cfg, "experiment": "ref"}, s, str(tmp_path / "r"), quiet=True,
                       data_seed=RUN_SEEDS[0])
        hist = ref["history"]
        losses = [row["valid_loss"] for row in hist]
        assert ref["best_epoch"] == losses.index(min(losses))
        assert ref["test"]["accuracy"] == hist[ref["best_epoch"]]["test_accuracy"]
        assert all("test_loss" in row for row in hist)
        # warm-up: lr/2 then lr; afterwards the plateau rule on the validation loss
        assert hist[0]["lr"] == pytest.approx(0.01) and hist[1]["lr"] == pytest.approx(0.02)
        for e in (2, 3):
            worse = losses[e - 1] >= min(losses[:e - 1])
            assert hist[e]["lr"] == pytest.approx(hist[e - 1]["lr"] * (0.5 if worse else 1.0))
        assert rec["best_epoch"] == ref["best_epoch"]
        for a, b in zip(rec["history"], hist):
            assert a.keys() == b.keys()
            for k in a:
                assert a[k] == pytest.approx(b[k], rel=1e-7, abs=1e-9), (s, k)


def test_select_on_and_monitor_config_errors():
    from graphlab.train.config import validate
    with pytest.raises(ConfigError, match="select_on"):
        validate({**_run_cfg(), "task": {"select_on": "val"}})
    bad = _run_cfg()
    bad["scheduler"] = {"name": "plateau", "monitor": "auc"}
    with pytest.raises(ConfigError, match="monitor"):
        validate(bad)


def test_matmul_precision_is_set_for_the_run_and_restored(data_root, tmp_path, monkeypatch):
    """``task.matmul_precision`` holds while the step runs (seen from inside the model's
    forward), in separate runs and in the ensemble, and the previous setting returns after."""
    import graphlab.models.basic as basic
    seen = []
    forward = basic.GIN.forward

    def spy(self, data):
        seen.append(torch.get_float32_matmul_precision())
        return forward(self, data)
    monkeypatch.setattr(basic.GIN, "forward", spy)
    before = torch.get_float32_matmul_precision()
    cfg = {**_run_cfg(epochs=1), "task": {"matmul_precision": "medium"}}
    cfg["trainer"] = {**cfg["trainer"], "precision": "32-true"}
    run_seed(cfg, 0, str(tmp_path / "one"), quiet=True)
    run_ensemble(cfg, [0, 1], str(tmp_path / "ens"), quiet=True)
    assert seen and set(seen) == {"medium"}
    assert torch.get_float32_matmul_precision() == before
