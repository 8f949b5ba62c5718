"""``graphlab report`` rebuilds the table and curves from either layout: a ``graphlab train``
output folder, or the compact committed results (summary.json + metrics.csv)."""
import os
import shutil

from graphlab.train.report import write_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_report_from_committed_results(tmp_path):
    name = "gin-ogbg-molhiv-100k-ogb-protocol"
    shutil.copytree(os.path.join(ROOT, "scripts", "results", name), tmp_path / name)
    text = open(write_report(str(tmp_path))).read()
    assert f"| {name} | ogbg-molhiv | gin | 107,079 | 10 | rocauc |" in text
    assert "0.7777 ± 0.0167" in text and (tmp_path / name / "curves.png").exists()


def test_report_from_a_training_run(data_root, tmp_path):
    from graphlab.train import run_seeds
    cfg = {"experiment": "r", "data": {"name": "motifs", "batch_size": 64},
           "model": {"name": "gin", "hidden_channels": 8, "num_layers": 2, "dropout": 0.0},
           "trainer": {"max_epochs": 1}}
    run_seeds(cfg, [0, 1], str(tmp_path), quiet=True)
    text = open(write_report(str(tmp_path))).read()
    assert "| r | motifs | gin |" in text and (tmp_path / "r" / "curves.png").exists()
