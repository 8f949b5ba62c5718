"""README stays honest: its commands match CI, and every results row matches a committed run."""
from __future__ import annotations

import glob
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme() -> str:
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def _first_code_blocks(text: str, n: int):
    return re.findall(r"```bash\n(.*?)\n```", text, re.S)[:n]


def test_readme_starts_with_two_commands_and_ci_runs_the_second():
    text = _readme()
    main_cmd, test_cmd = _first_code_blocks(text, 2)
    assert "graphlab train" in main_cmd and "pip install" in main_cmd
    assert "pytest" in test_cmd and "pip install" in test_cmd
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    assert test_cmd.strip() in ci


def results_rows():
    text = _readme()
    section = text.split("## Results", 1)[1].split("\n## ", 1)[0]
    rows = [l for l in section.splitlines() if l.startswith("| ") and not l.startswith("| experiment")]
    out = []
    for line in rows:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= {"-"}:
            continue
        out.append(dict(zip(["experiment", "config", "metric", "result", "seeds", "budget",
                             "hardware", "command"], cells)))
    return out


def test_results_table_rows_match_committed_summaries():
    rows = results_rows()
    assert rows, "README has an empty results table"
    for row in rows:
        exp = row["experiment"].strip("`")
        config = row["config"].strip("`")
        assert os.path.exists(os.path.join(ROOT, config)), config
        assert config in row["command"] and "graphlab train" in row["command"]
        res_dir = os.path.join(ROOT, "scripts", "results", exp)
        with open(os.path.join(res_dir, "summary.json")) as f:
            summary = json.load(f)
        assert summary["git_sha"] and summary["hardware"]
        logs = glob.glob(os.path.join(res_dir, "**", "*.log"), recursive=True)
        assert logs, f"no raw log committed for {exp}"
        m = re.match(r"([0-9.]+) ± ([0-9.]+)", row["result"])
        assert m, row["result"]
        stats = summary["metrics"][f"test_{row['metric']}"]
        assert f"{stats['mean']:.4f}" == m.group(1) and f"{stats['std']:.4f}" == m.group(2), exp
        assert int(row["seeds"]) == stats["n"]
        assert row["hardware"].split(",")[0] in summary["hardware"]
