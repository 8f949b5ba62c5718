"""Config validation: every shipped config dry-runs; bad keys exit 2 with one clear line."""
from __future__ import annotations

import glob
import os

import pytest

from graphlab.registry import MODELS
from graphlab.train.cli import main
from graphlab.train.config import ConfigError, load_config, parse_overrides, validate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*", "*.yaml")))

BASE = {"data": {"name": "motifs"}, "model": {"name": "gin"}}


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.relpath(p, ROOT) for p in CONFIGS])
def test_every_config_validates(path):
    validate(load_config(path))  # --dry-run also builds the data: see test_cli_output.py


def test_configs_exist():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("name", MODELS.names())
def test_misspelled_model_keyword_is_rejected(name):
    with pytest.raises(ConfigError, match=r"unknown key 'model\.hiden_channels'"):
        validate({"data": {"name": "motifs"}, "model": {"name": name, "hiden_channels": 8}})


@pytest.mark.parametrize("cfg, pattern", [
    ({**BASE, "trainr": {}}, r"unknown key '<top>\.trainr'.*did you mean 'trainer'"),
    ({"data": {"name": "motifs", "batchsize": 4}, "model": {"name": "gin"}},
     r"unknown key 'data\.batchsize'.*did you mean 'batch_size'"),
    ({**BASE, "optim": {"name": "adam", "lr": "fast"}}, r"'optim\.lr' must be float"),
    ({**BASE, "optim": {"name": "adamm"}}, r"'optim\.name': unknown optimizer 'adamm' \(did you mean 'adam'"),
    ({**BASE, "optim": {"name": "adam", "lr": -1}}, r"'optim\.lr' must be a number >= 0, got -1"),
    ({**BASE, "optim": {"name": "rmsprop", "momentum": 0.9, "betas": [0.9, 0.99]}},
     r"unknown key 'optim\.betas'"),
    ({**BASE, "scheduler": {"name": "plateau", "factor": 1.5}},
     r"'scheduler\.factor' must be a number > 0 and < 1, got 1\.5"),
    ({**BASE, "scheduler": {"name": "plateau", "monitor": "accuracy"}},
     r"'scheduler\.monitor' must be one of metric, loss"),
    ({**BASE, "data": {"name": "motifs", "batch_size": 0}}, r"'data\.batch_size' must be a number >= 1"),
    ({**BASE, "trainer": {"max_epochs": 0}}, r"'trainer\.max_epochs' must be a number >= 1"),
    ({**BASE, "task": {"select_on": "acc"}}, r"'task\.select_on' must be one of metric, loss"),
    ({**BASE, "task": {"embed_dim": 8}}, r"unknown key 'task\.embed_dim'"),
    ({**BASE, "task": {"loss": "huber"}}, r"unknown key 'task\.loss'"),
    ({**BASE, "trainer": {"strategy": "ddpp"}}, r"'trainer\.strategy\.name': unknown strategy 'ddpp' \(did you mean 'ddp'"),
    ({**BASE, "trainer": {"strategy": {"name": "ddp", "process_group_backend": 3}}},
     r"'trainer\.strategy\.process_group_backend' must be"),
    ({"data": {"name": "motifs"}, "model": {"name": "gin", "dropout": 1.5}},
     r"'model\.dropout' must be a number >= 0 and < 1, got 1\.5"),
    ({"data": {"name": "motifs"}, "model": {"name": "gps", "hidden_channels": 0}},
     r"'model\.hidden_channels' must be a number >= 1, got 0"),
    ({"data": {"name": "ogbg-code2"}, "model": {"name": "gcn"}},
     r"dataset 'ogbg-code2' is a graph_sequence task, which has no registered task family"),
    ({**BASE, "scheduler": {"name": "cosine", "warmup": 3}}, r"unknown key 'scheduler\.warmup'"),
    ({**BASE, "trainer": {"max_epoch": 3}}, r"unknown key 'trainer\.max_epoch'.*max_epochs"),
    ({**BASE, "trainer": {"max_epochs": "10"}}, r"'trainer\.max_epochs' must be"),
    ({"data": {"name": "motifs"}, "model": {"name": "gin", "hidden_channels": 2.5}},
     r"'model\.hidden_channels' must be int"),
    ({"data": {"name": "motifs"}, "model": {"name": "gin", "in_channels": 3}},
     r"'model\.in_channels' is set by graphlab"),
    ({"data": {"name": "motifs"}, "model": {"name": "gnn"}}, r"'model\.name': unknown model 'gnn'"),
    ({"data": {"name": "mutagg"}, "model": {"name": "gin"}}, r"'data\.name': unknown dataset"),
    ({"model": {"name": "gin"}}, r"missing required section 'data'"),
    ({"data": {}, "model": {"name": "gin"}}, r"missing required key 'data\.name'"),
    ({**BASE, "wandb": {"projekt": "x"}}, r"unknown key 'wandb\.projekt'.*project"),
    ({**BASE, "data": {"name": "motifs", "transforms": ["NoSuchTransform"]}},
     r"unknown transform 'NoSuchTransform'"),
    ({**BASE, "task": {"matmul_precision": "tf32"}},
     r"'task\.matmul_precision' must be one of highest, high, medium"),
])
def test_bad_configs(cfg, pattern):
    with pytest.raises(ConfigError, match=pattern):
        validate(cfg)


def test_cli_exit_code_and_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("data: {name: motifs}\nmodel: {name: gin, hidden_chanels: 8}\n")
    assert main(["train", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.hidden_chanels" in err[0] and "hidden_channels" in err[0]
    assert "Traceback" not in err[0]


def test_cli_missing_file_and_bad_yaml(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml"), "--dry-run"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    assert main(["train", str(bad), "--dry-run"]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_overrides():
    assert parse_overrides(["optim.lr=1e-3", "model.virtual_node=true", "data.name=MUTAG"]) == {
        "optim": {"lr": 1e-3}, "model": {"virtual_node": True}, "data": {"name": "MUTAG"}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["optim.lr"])
    cfg = load_config(os.path.join(ROOT, "configs", "gin", "motifs.yaml"),
                      ["model.hidden_channels=8", "trainer.max_epochs=2"])
    assert cfg["model"]["hidden_channels"] == 8 and cfg["trainer"]["max_epochs"] == 2
    validate(cfg)
