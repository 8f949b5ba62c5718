"""The package's layering holds: the import-linter contracts in pyproject.toml (train above task
families, models, optimizers and strategies; those above graphlab.nn; kernels at the bottom;
the data side below what trains; errors on the ground floor) and no import circle anywhere,
imports inside functions included."""
from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_linter_contracts_are_kept(monkeypatch):
    from importlinter import cli  # the test extra installs it
    monkeypatch.chdir(ROOT)
    assert cli.lint_imports(config_filename=os.path.join(ROOT, "pyproject.toml"),
                            no_cache=True) == 0


def test_no_import_circle():
    import grimp  # import-linter's import graph
    import networkx as nx
    graph = grimp.build_graph("graphlab")
    g = nx.DiGraph()
    for m in graph.modules:
        g.add_node(m)
        for d in graph.find_modules_directly_imported_by(m):
            g.add_edge(m, d)
    circles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert circles == []
