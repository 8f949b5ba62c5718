"""What a person sees: per-seed lines and the final table with the output folder, nothing but
the table under --quiet, a dry run that says what would run, a fast --help, and `data list`
naming generated datasets."""
from __future__ import annotations

import os
import subprocess
import sys

from graphlab.train.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOTIFS = os.path.join(ROOT, "configs", "gin", "motifs.yaml")
TINY = ["model.hidden_channels=8", "model.num_layers=2", "data.batch_size=128",
        "trainer.max_epochs=2"]


def test_help_does_not_import_lightning_or_torch():
    code = ("import sys\nfrom graphlab.train.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('lightning', 'torch', 'torch_geometric') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_short_run_prints_seed_lines_and_the_table(data_root, tmp_path, capsys):
    assert main(["train", MOTIFS, *TINY, "--seeds", "2", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    for s in (0, 1):
        assert f"[seed{s}] training epochs 1..2" in err and f"[seed{s}] done in" in err
    assert "| gin-motifs | 2 |" in out and f"results: {tmp_path}/gin-motifs/" in out
    assert "GPU available" not in out + err and "it/s" not in err  # no Lightning chatter


def test_quiet_prints_only_the_table(data_root, tmp_path, capsys):
    assert main(["train", MOTIFS, *TINY, "--seeds", "1", "--out", str(tmp_path),
                 "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "[seed" not in out + err and "| gin-motifs | 1 |" in out


def test_dry_run_says_what_would_run(data_root, capsys):
    assert main(["train", MOTIFS, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "motifs: 600 graph(s), split 480/60/60" in out
    assert "graph_classification, metric accuracy" in out and "13,315 parameters" in out
    assert "30 epochs, adam lr 0.01, scheduler step, batch 32, 3 seed(s)" in out
    assert "runs/gin-motifs/" in out


def test_dry_run_failure_exits_2(data_root, capsys):
    assert main(["train", MOTIFS, "data.opts={no_such_option: 1}", "--dry-run"]) == 2
    assert "dry run failed" in capsys.readouterr().err


def test_data_list_names_generated_datasets(capsys):
    assert main(["data", "list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["motifs"][3] == "generated" and rows["cycles"][3] == "generated"
