"""README and method pages stay honest: the set-up commands match CI, every results row matches
its committed summary, every method has its page, and the repository speaks of the project alone."""
from __future__ import annotations

import glob
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "scripts", "results")
README = os.path.join(ROOT, "README.md")
PAGES = sorted(glob.glob(os.path.join(ROOT, "configs", "*", "README.md"))) + [
    os.path.join(ROOT, "graphlab", "nn", "seq", "README.md")]
SECTIONS = ["Method", "Configs", "How to run", "Results", "Deviations"]
ROW_CELLS = ["experiment", "metric", "result", "seeds", "budget", "hardware", "command"]
SUMMARY_FIELDS = ["experiment", "config", "command", "metric", "mean", "std", "seeds", "budget",
                  "hardware", "commit"]


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def _first_code_blocks(text: str, n: int):
    return re.findall(r"```bash\n(.*?)\n```", text, re.S)[:n]


def test_readme_starts_with_two_commands_and_ci_runs_the_second():
    main_cmd, test_cmd = _first_code_blocks(_read(README), 2)
    assert "graphlab train" in main_cmd and "pip install" in main_cmd
    assert "pytest" in test_cmd and "pip install" in test_cmd
    assert test_cmd.strip() in _read(os.path.join(ROOT, ".ci", "run"))


def test_readme_is_short():
    assert os.path.getsize(README) <= 15 * 1024


def _cells(line: str):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def results_rows(path: str):
    """Every row of every table in ``path`` whose header names the results cells."""
    rows, header = [], None
    for line in _read(path).splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = _cells(line)
        if header is None:
            header = cells if set(ROW_CELLS) <= set(cells) else []
        elif header and not set("".join(cells)) <= set("-: "):
            rows.append(dict(zip(header, cells), _page=_rel(path)))
    return rows


ALL_ROWS = [r for p in [README] + PAGES if os.path.exists(p) for r in results_rows(p)]


def test_readme_and_every_page_have_results_rows():
    assert results_rows(README), "README has no results table"
    pages_with_rows = {r["_page"] for r in ALL_ROWS}
    assert len(pages_with_rows) >= 8, pages_with_rows


@pytest.mark.parametrize("row", ALL_ROWS, ids=lambda r: f"{r['_page']}:{r['experiment']}")
def test_results_row_matches_its_committed_summary(row):
    exp = row["experiment"].strip("`")
    folder = os.path.join(RESULTS, exp)
    s = json.loads(_read(os.path.join(folder, "summary.json")))
    assert list(s)[:len(SUMMARY_FIELDS)] == SUMMARY_FIELDS, "summary schema"
    assert s["experiment"] == exp
    command = row["command"].strip("`")
    assert command == s["command"] and command.startswith("graphlab train ")
    assert os.path.exists(os.path.join(ROOT, s["config"])) and f" {s['config']} " in command + " "
    if "config" in row:
        assert row["config"].strip("`") == s["config"]
    assert row["metric"] == s["metric"]
    assert row["result"] == f"{s['mean']:.4f} ± {s['std']:.4f}"
    assert int(row["seeds"]) == s["seeds"] == len(s["runs"])
    assert row["budget"] == s["budget"] and row["hardware"] == s["hardware"]
    assert re.fullmatch(r"[0-9a-f]{7}(\+dirty)?(, [0-9a-f]{7}(\+dirty)?)*", s["commit"])
    tests = sorted(r["test"] for r in s["runs"])
    assert abs(sum(tests) / len(tests) - s["mean"]) < 1e-9
    # what reproduces and checks the row, and nothing heavier
    assert set(os.listdir(folder)) == {"summary.json", "metrics.csv", "run.log"}


def test_every_committed_summary_has_a_row():
    shown = {r["experiment"].strip("`") for r in ALL_ROWS}
    committed = {os.path.basename(os.path.dirname(p))
                 for p in glob.glob(os.path.join(RESULTS, "*", "summary.json"))}
    assert committed - shown == set(), "summaries no README or page row shows"


def test_every_results_folder_is_a_row_or_described():
    """A folder without a summary holds a benchmark's or a stopped run's output; the results
    README says what it is and which page quotes it."""
    described = _read(os.path.join(RESULTS, "README.md"))
    for name in sorted(os.listdir(RESULTS)):
        if os.path.isdir(os.path.join(RESULTS, name)) and not os.path.exists(
                os.path.join(RESULTS, name, "summary.json")):
            assert f"`{name}/`" in described, f"scripts/results/{name}/ is neither a row nor described"


def test_no_checkpoints_predictions_or_event_files_under_results():
    heavy = [p for p in glob.glob(os.path.join(RESULTS, "**", "*"), recursive=True)
             if re.search(r"\.(pt|ckpt|pth|png)$|tfevents", p)]
    assert heavy == []


def _methods_table_pages():
    text = _read(README)
    section = text.split("## Methods", 1)[1].split("\n## ", 1)[0]
    return [m for line in section.splitlines() if line.startswith("| ")
            for m in re.findall(r"\]\(([^)#]+README\.md)\)", line)]


def test_every_method_in_the_table_has_a_page_with_the_same_sections():
    linked = _methods_table_pages()
    model_dirs = {d for d in os.listdir(os.path.join(ROOT, "configs"))
                  if os.path.isdir(os.path.join(ROOT, "configs", d))}
    assert {f"configs/{d}/README.md" for d in model_dirs} <= set(linked)
    for page in linked:
        path = os.path.join(ROOT, page)
        assert os.path.exists(path), page
        heads = re.findall(r"^## (.+)$", _read(path), re.M)
        assert heads == SECTIONS, f"{page}: sections {heads}"


def _expand(name: str):
    """``cycles-{spe,lap}.yaml`` -> ``cycles-spe.yaml``, ``cycles-lap.yaml`` (one brace group)."""
    m = re.search(r"\{([^}]*)\}", name)
    if not m:
        return [name]
    return [name[:m.start()] + part + name[m.end():] for part in m.group(1).split(",")]


def test_each_page_names_every_config_of_its_folder_and_only_existing_ones():
    model_dirs = set(os.listdir(os.path.join(ROOT, "configs")))
    for page in PAGES:
        text = _read(page)
        for d, name in re.findall(r"configs/([\w-]+)/([\w.{},-]+\.yaml)", text):
            if d in model_dirs:  # not another repository's configs/ folder
                for cfg in _expand(name):
                    assert os.path.exists(os.path.join(ROOT, "configs", d, cfg)), \
                        f"{_rel(page)}: configs/{d}/{cfg}"
        folder = os.path.dirname(page)
        if os.path.dirname(folder) == os.path.join(ROOT, "configs"):
            named = {c for n in re.findall(r"`([\w.{},-]+\.yaml)`", text) for c in _expand(n)}
            for path in glob.glob(os.path.join(folder, "*.yaml")):
                assert os.path.basename(path) in named, f"{_rel(page)} does not name {_rel(path)}"


# words from how the code was built, not what it is: none of them belongs in the repository
_HISTORY = re.compile("|".join(["sess" + r"ion [0-9]", "device" + " call", "device" + "-minutes",
                                "lent" + " GPU", "anch" + "ors"]), re.I)
_TEXT = (".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".json", ".csv", ".log", ".sh", ".cfg")
_SKIP = {".git", "datasets", "runs", "lightning_logs", "__pycache__", "node_modules"}


def test_repository_speaks_of_the_project_alone():
    hits = []
    for dirpath, dirnames, files in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in _SKIP and not d.startswith(".")
                       and not d.endswith(".egg-info")]
        for name in files:
            if name.endswith(_TEXT):
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for i, line in enumerate(f, 1):
                        if _HISTORY.search(line):
                            hits.append(f"{_rel(path)}:{i}: {line.strip()[:80]}")
    assert hits == []
