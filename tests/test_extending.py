"""Extending the trainer from outside the package: a task family, an optimizer and a strategy of
each kind are one class plus a registration each (this file), a model-owned loss is one method,
third-party packages register through the ``graphlab.plugins`` entry point, and the in-memory
core :func:`graphlab.train.train` writes nothing."""
from __future__ import annotations

import os
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data

import graphlab
from graphlab.distributed import CommHookStrategy, LightningStrategy, LoopStrategy
from graphlab.registry import (MODELS, OPTIMIZERS, STRATEGIES, TASKS, Registry, discover,
                               register_optimizer, register_strategy, register_task,
                               reload_plugins)
from graphlab.tasks import Task
from graphlab.train import run_seed, train

from reference_records import results_of

MOTIFS = {"data": {"name": "motifs", "batch_size": 64},
          "model": {"name": "gin", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0},
          "optim": {"name": "adam", "lr": 0.01},
          "scheduler": {"name": "step", "step_size": 1, "gamma": 0.5},
          "trainer": {"max_epochs": 2, "gradient_clip_val": 0.5}}


@pytest.fixture
def registered():
    """Unregister what a test registered."""
    added = []
    yield added
    for registry, name in added:
        registry.unregister(name)


# --------------------------------------------------------------------------- a task family
class EnergyForces(Task):
    """A geometric family: the model predicts one energy per graph; the loss also fits the
    forces -dE/dpos, which evaluation needs gradients for."""

    level = "graph"
    eval_needs_grad = True

    def out_channels(self, dataset, data0):
        return 1

    def forward(self, model, batch):
        batch.pos.requires_grad_(True)
        energy = model(batch).view(-1)
        forces = -torch.autograd.grad(energy.sum(), batch.pos, create_graph=True)[0]
        return energy, forces

    def loss(self, pred, y):
        return F.mse_loss(pred, y)

    def training_loss(self, pred, batch):
        energy, forces = pred
        return self.loss(energy, batch.y.view(-1)) + self.loss(forces, batch.force)

    def train_samples(self, batch):
        return int(batch.num_graphs)

    def eval_outputs(self, pred, batch, split):
        energy, forces = pred
        err = (forces - batch.force).abs().sum(-1)
        per_graph = torch.zeros(batch.num_graphs).index_add_(0, batch.batch, err.detach())
        return batch.sample_idx, per_graph, torch.zeros_like(per_graph)

    def score(self, pred, y):
        return float(pred.mean())


class EnergyModel(torch.nn.Module):
    """E = sum over nodes of an MLP of |pos|^2 (forces need autograd through pos)."""

    def __init__(self, in_channels: int = 0, out_channels: int = 1, task_level: str = "graph",
                 node_encoder: str = "linear", edge_encoder: str = "linear"):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(),
                                       torch.nn.Linear(8, 1))

    def reset_parameters(self):
        for m in self.mlp:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, data):
        h = self.mlp((data.pos ** 2).sum(-1, keepdim=True)).view(-1)
        return torch.zeros(int(data.num_graphs)).index_add(0, data.batch, h)


def _springs(n_graphs=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_graphs):
        pos = torch.randn(5, 3, generator=g)
        out.append(Data(x=torch.ones(5, 1), pos=pos, edge_index=torch.empty(2, 0, dtype=torch.long),
                        y=(pos ** 2).sum().view(1), force=-2 * pos))
    return out


def test_a_task_family_is_one_class_and_a_registration(registered):
    register_task("energy_forces_test")(EnergyForces)
    registered.append((TASKS, "energy_forces_test"))
    split = {"train": torch.arange(8), "valid": torch.arange(8, 10), "test": torch.arange(10, 12)}
    cfg = {"task": {"name": "energy_forces_test", "metric": "force_mae"},
           "optim": {"name": "adam", "lr": 0.01}, "data": {"batch_size": 4},
           "trainer": {"max_epochs": 12, "accelerator": "cpu"}}
    rec = train(EnergyModel(), _springs(), cfg, split=split)
    assert rec["task"] == "energy_forces_test" and rec["epochs"] == 12
    errs = [row["valid_force_mae"] for row in rec["history"]]
    assert all(torch.isfinite(torch.tensor(errs))) and errs[-1] < errs[0]  # it learns the forces
    with pytest.raises(graphlab.ConfigError, match="unknown key 'task.embed_dim'"):
        train(EnergyModel(), _springs(), {**cfg, "task": {**cfg["task"], "embed_dim": 3}},
              split=split)


# --------------------------------------------------------------------------- an optimizer
class SignSGD(torch.optim.Optimizer):
    """p <- p - lr * sign(g)."""

    def __init__(self, params, lr: float = 0.01):
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            self._sign_step()
        return loss

    def _sign_step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


def test_an_optimizer_is_one_class_and_a_registration(registered, data_root, tmp_path):
    register_optimizer("signsgd_test", ensemble_exact=False)(SignSGD)
    registered.append((OPTIMIZERS, "signsgd_test"))
    cfg = {**MOTIFS, "experiment": "sign", "optim": {"name": "signsgd_test", "lr": 0.01},
           "scheduler": {"name": "none"}}
    rec = run_seed(cfg, 0, str(tmp_path), quiet=True)
    assert rec["history"][0]["lr"] == 0.01 and rec["epochs"] == 2
    with pytest.raises(graphlab.ConfigError, match="unknown key 'optim.momentum'"):
        run_seed({**cfg, "optim": {"name": "signsgd_test", "momentum": 0.9}}, 0, str(tmp_path))
    from graphlab.train.ensemble_run import run_ensemble
    with pytest.raises(graphlab.ConfigError, match="not supported with --ensemble"):
        run_ensemble(cfg, [0, 1], str(tmp_path), quiet=True)
    assert "rmsprop" in OPTIMIZERS and OPTIMIZERS.meta("adamw")["ensemble_exact"]


# --------------------------------------------------------------------------- strategies
def test_a_loop_strategy_owns_the_steps(registered, data_root, tmp_path):
    """A loop strategy taking plain steps reproduces Lightning's automatic optimisation
    (clipping and the epoch schedule included), bit for bit."""
    calls = []

    @register_strategy("plain_loop_test")
    class PlainLoop(LoopStrategy):
        def optimization_step(self, module, loss, batch_idx):
            calls.append(batch_idx)
            super().optimization_step(module, loss, batch_idx)
    registered.append((STRATEGIES, "plain_loop_test"))
    auto = run_seed({**MOTIFS, "experiment": "auto"}, 0, str(tmp_path), quiet=True)
    loop = run_seed({**MOTIFS, "experiment": "loop",
                     "trainer": {**MOTIFS["trainer"], "strategy": "plain_loop_test"}}, 0,
                    str(tmp_path), quiet=True)
    assert calls and results_of(loop) == results_of(auto)


def test_a_lightning_strategy_subclass(registered, data_root, tmp_path):
    from lightning.pytorch.strategies import SingleDeviceStrategy
    steps = []

    class Counting(SingleDeviceStrategy):
        def optimizer_step(self, *args, **kwargs):
            steps.append(1)
            return super().optimizer_step(*args, **kwargs)

    @register_strategy("counting_test")
    def counting(device: str = "cpu"):
        return LightningStrategy(Counting(device=torch.device(device)))
    registered.append((STRATEGIES, "counting_test"))
    rec = run_seed({**MOTIFS, "experiment": "count",
                    "trainer": {**MOTIFS["trainer"], "strategy": {"name": "counting_test"}}},
                   0, str(tmp_path), quiet=True)
    assert len(steps) == 2 * 8 and rec["epochs"] == 2  # 480 training graphs / 64 per batch
    with pytest.raises(graphlab.ConfigError, match="unknown key 'trainer.strategy.devices'"):
        run_seed({**MOTIFS, "trainer": {"strategy": {"name": "counting_test", "devices": 2}}}, 0,
                 str(tmp_path))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_a_ddp_communication_hook(registered, data_root, tmp_path):
    """A gradient-combining hook replaces DDP's all-reduce (one gloo process here; the
    multi-process run is the multi-GPU measurement's): averaging one worker is the identity,
    so the run equals the plain one."""
    buckets = []

    @register_strategy("mean_hook_test")
    class MeanHook(CommHookStrategy):
        def hook(self, state, bucket):
            buckets.append(bucket.index())
            t = bucket.buffer()
            fut = torch.distributed.all_reduce(t, async_op=True).get_future()
            return fut.then(lambda f: f.value()[0] / torch.distributed.get_world_size())
    registered.append((STRATEGIES, "mean_hook_test"))
    trainer = {**MOTIFS["trainer"], "accelerator": "cpu", "devices": 1,
               "strategy": {"name": "mean_hook_test",
                            "ddp_kwargs": {"process_group_backend": "gloo"}}}
    plain = run_seed({**MOTIFS, "experiment": "plain"}, 0, str(tmp_path), quiet=True)
    env = dict(os.environ)
    try:
        hooked = run_seed({**MOTIFS, "experiment": "hook", "trainer": trainer}, 0,
                          str(tmp_path), quiet=True)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        # Lightning's launcher sets MASTER_ADDR / LOCAL_RANK / ... in this process; processes
        # started later (the DDP tests' ranks) must not inherit them
        os.environ.clear()
        os.environ.update(env)
    assert buckets
    for a, b in zip(hooked["history"], plain["history"]):
        assert a["valid_accuracy"] == pytest.approx(b["valid_accuracy"], abs=1e-6)


def test_lightning_builtins_are_registered():
    for name in ("auto", "ddp", "ddp_spawn", "fsdp", "single_device"):
        assert name in STRATEGIES
    assert STRATEGIES.get("ddp")().lightning_strategy() == "ddp"


# --------------------------------------------------------------------------- model-owned loss
def test_a_model_owned_loss(data_root):
    calls = []

    class Regularised(torch.nn.Module):
        def __init__(self, in_channels: int, out_channels: int, task_level: str = "node",
                     node_encoder: str = "linear"):
            super().__init__()
            self.lin = torch.nn.Linear(in_channels, out_channels)

        def forward(self, data):
            return self.lin(data.x)

        def training_loss(self, batch, out, loss):
            calls.append(float(loss))
            return loss + 0.1 * self.lin.weight.square().sum()

    g = Data(x=torch.randn(30, 4), y=torch.randint(0, 3, (30,)),
             edge_index=torch.empty(2, 0, dtype=torch.long),
             train_mask=torch.arange(30) < 20, val_mask=torch.arange(30) >= 20,
             test_mask=torch.arange(30) >= 25)
    cfg = {"task": {"name": "node_classification", "metric": "accuracy"},
           "trainer": {"max_epochs": 2, "accelerator": "cpu"}}
    rec = train(Regularised(4, 3), g, cfg)
    assert len(calls) == 2 and rec["history"][0]["train_loss"] > calls[0]


# --------------------------------------------------------------------------- the core
def test_train_writes_nothing(tmp_path, monkeypatch):
    g = Data(x=torch.randn(40, 5), y=torch.randint(0, 2, (40,)),
             edge_index=torch.randint(0, 40, (2, 120)),
             train_mask=torch.arange(40) < 20, val_mask=(torch.arange(40) >= 20) &
             (torch.arange(40) < 30), test_mask=torch.arange(40) >= 30)
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.chdir(ro)
    os.chmod(ro, 0o555)
    try:
        cfg = {"task": {"name": "node_classification", "metric": "accuracy"},
               "model": {"name": "gcn", "hidden_channels": 8, "dropout": 0.0},
               "trainer": {"max_epochs": 3, "accelerator": "cpu"}}
        rec = train(None, g, cfg, seed=1)
        again = train(None, g, cfg, seed=1)
    finally:
        os.chmod(ro, 0o755)
    assert list(ro.iterdir()) == []
    assert rec["epochs"] == 3 and rec["history"] == again["history"]
    with pytest.raises(graphlab.ConfigError, match="task.name"):
        train(None, g, {"trainer": {"max_epochs": 1}})


# --------------------------------------------------------------------------- registration
def test_discovery_finds_a_new_module_without_init_edits(tmp_path, monkeypatch):
    pkg = tmp_path / "gl_discovery_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""Empty: nothing is imported here."""\n')
    (pkg / "extra_model.py").write_text(textwrap.dedent("""
        from graphlab.registry import MODELS
        MODELS.register("discovered_model_test", object)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        Registry("probe", ("gl_discovery_pkg",)).names()
        assert "discovered_model_test" in MODELS
    finally:
        MODELS.unregister("discovered_model_test")
    discover("graphlab.models")  # the package's own modules import cleanly


def test_a_plugin_package_registers_a_model(tmp_path, monkeypatch):
    pkg = tmp_path / "gl_plugin_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import torch
        from graphlab import register_model

        @register_model("plugin_gnn_test")
        class PluginGNN(torch.nn.Module):
            def __init__(self, in_channels: int, out_channels: int, width: int = 4):
                super().__init__()
                self.lin = torch.nn.Linear(in_channels, out_channels)
    """))
    dist = tmp_path / "gl_plugin_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gl-plugin-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[graphlab.plugins]\nmodels = gl_plugin_pkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        reload_plugins()
        assert "plugin_gnn_test" in MODELS
        from graphlab.train.config import validate
        validate({"data": {"name": "motifs"}, "model": {"name": "plugin_gnn_test", "width": 8}})
    finally:
        MODELS.unregister("plugin_gnn_test")
        sys.modules.pop("gl_plugin_pkg", None)
