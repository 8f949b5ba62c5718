"""scripts/summarize_logs.py and scripts/pack_results.py: per-epoch logs, best-on-validation
results, --curve, and the committed results layout."""
from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts"))
import pack_results as P  # noqa: E402
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
    [(run, rows)] = S.runs_of(str(tmp_path))
    assert run == "seed0" and rows[0] == {"epoch": "0", "test_ap": "0.2", "train_loss": "0.5",
                                          "valid_ap": "0.1"}
    assert S.epoch_values(rows) == ("ap", {0: (0.1, 0.2), 1: (0.3, 0.4)})


def _fake_run(exp, seed, history, test, git_sha="0123456789abcdef"):
    """What graphlab train leaves in one seed folder, reduced to the parts the packer reads."""
    d = exp / f"seed{seed}"
    _lightning(str(d / "logs" / "metrics.csv"), history)
    best = max(range(len(history)), key=lambda i: history[i][1])
    (d / "metrics.json").write_text(json.dumps({
        "metric": "ap", "seed": seed, "fold": None, "best_epoch": best, "epochs": len(history),
        "valid": {"ap": history[best][1]}, "test": {"ap": test}, "git_sha": git_sha,
        "hardware": "CPU x86_64 (2 cores)", "dataset": "d", "model": "m", "num_parameters": 7,
        "max_epochs": 5, "versions": {"torch": "x"}, "wall_time_s": 1.0}))
    (d / "stdout.log").write_text(f"Epoch 0: 100%|##| 3/3 [00:00<00:00, 9.1it/s]\rseed {seed}: done\n")
    (d / "test_predictions.pt").write_bytes(b"not packed")


def test_pack_writes_summary_csv_and_log_that_summarize_logs_reads(tmp_path):
    exp = tmp_path / "runs" / "exp"
    _fake_run(exp, 0, [(0, 0.1, 0.2), (1, 0.3, 0.4)], test=0.4)
    _fake_run(exp, 1, [(0, 0.2, 0.3), (1, 0.1, 0.2)], test=0.3)
    dest = tmp_path / "results" / "exp-2ep"
    cmd = "graphlab train configs/x/y.yaml --seeds 2"
    s = P.pack(str(exp), str(dest), command=cmd, budget="2 of 5 epochs")
    assert sorted(os.listdir(dest)) == ["metrics.csv", "run.log", "summary.json"]
    assert list(s)[:len(P.ROW_FIELDS)] == list(P.ROW_FIELDS)
    assert (s["experiment"], s["config"], s["seeds"], s["commit"]) == ("exp-2ep", "configs/x/y.yaml",
                                                                        2, "0123456")
    assert s["mean"] == pytest.approx(0.35) and s["std"] == pytest.approx(0.0707107, rel=1e-5)
    assert json.loads((dest / "summary.json").read_text()) == s
    log = (dest / "run.log").read_text()
    assert "seed 1: done" in log and "it/s" not in log
    # the committed table gives summarize_logs what the seed folders gave it
    assert S.runs_of(str(dest)) == S.runs_of(str(exp))
    best = [S.seed_result(h, None) for _, h in S.runs_of(str(dest))]
    assert [(b["best_epoch"], b["test"]) for b in best] == [(1, 0.4), (0, 0.3)]
    assert S.seed_result(S.runs_of(str(dest))[0][1], 1)["test"] == 0.2  # --max-epochs 1


def test_pack_refuses_a_command_without_a_config():
    with pytest.raises(ValueError, match="graphlab train CONFIG"):
        P.config_of("python train.py")


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
    assert "empty: no per-epoch log" in out and [r[0] for r in rows] == [0]
