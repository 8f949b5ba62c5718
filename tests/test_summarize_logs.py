"""scripts/summarize_logs.py: best-on-validation results and --curve from per-epoch CSV logs."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts"))
import summarize_logs as S  # noqa: E402


def _lightning(path, rows):  # several rows per epoch, as Lightning's CSV logger writes them
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("epoch,step,test/ap,train/loss,val/ap\n")
        for e, v, t in rows:
            f.write(f"{e},{10 * e},{t},,{v}\n{e},{10 * e},,0.5,\n")


def _ensemble(path, rows):  # the ensemble runner's history
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("epoch,valid_ap,test_ap,train_loss\n")
        for e, v, t in rows:
            f.write(f"{e},{v},{t},0.4\n")


def test_epoch_values_merge_lightning_rows(tmp_path):
    p = str(tmp_path / "seed0" / "logs" / "metrics.csv")
    _lightning(p, [(0, 0.1, 0.2), (1, 0.3, 0.4)])
    assert S.epoch_values(p) == ("ap", {0: (0.1, 0.2), 1: (0.3, 0.4)})


def test_curve_compares_at_the_epochs_all_seeds_finished(tmp_path, capsys):
    a, b = tmp_path / "cg", tmp_path / "pyg"
    _ensemble(str(a / "seed0" / "logs" / "metrics.csv"), [(0, 0.20, 0.21), (1, 0.30, 0.31),
                                                          (2, 0.40, 0.41)])
    _ensemble(str(a / "seed1" / "logs" / "metrics.csv"), [(0, 0.22, 0.23), (1, 0.32, 0.33),
                                                          (2, 0.42, 0.43)])
    _lightning(str(b / "seed0" / "logs" / "metrics.csv"), [(0, 0.21, 0.22), (1, 0.31, 0.32)])
    _lightning(str(b / "seed1" / "logs" / "metrics.csv"), [(0, 0.23, 0.24), (1, 0.33, 0.34)])
    rows = S.curves([str(a), str(b)])
    out = capsys.readouterr().out
    assert [r[0] for r in rows] == [0, 1]  # epoch 2: only one experiment finished it
    assert "| 0 | 0.2100 ± 0.0141 | 0.2200 ± 0.0141 | 0.2200 ± 0.0141 | 0.2300 ± 0.0141 |" in out
    assert rows[0][2] == pytest.approx(0.01 / 0.0141421, rel=1e-4)  # gap in units of the std
    assert "(ap; 2, 2 seeds; epochs every seed finished: 2)" in out
    # cg is 0.01 below pyg in both epochs: one sign, no scatter, no gap above 2 std
    assert "(valid, first minus second: mean -0.0100 over 2 epochs (scatter 0.0000); first " \
           "higher in 0 of 2; gap above 2 std in 0)" in out


def test_curve_leaves_out_an_experiment_without_logs(tmp_path, capsys):
    a = tmp_path / "a"
    _ensemble(str(a / "seed0" / "logs" / "metrics.csv"), [(0, 0.2, 0.3)])
    (tmp_path / "empty").mkdir()
    rows = S.curves([str(a), str(tmp_path / "empty")])
    out = capsys.readouterr().out
    assert "empty: no seed*/logs/metrics.csv" in out and [r[0] for r in rows] == [0]
