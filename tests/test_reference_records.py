"""The trainer's numbers do not move: every task family and both runners reproduce the metrics
records committed in ``tests/reference/`` (written by ``tests/reference_records.py`` before the
trainer was reorganised into registered components).

Floats are compared to 1e-6 (absolute): the CPU runs are seeded and deterministic, and were
bit-identical when the references were checked; the tolerance only absorbs a different BLAS. ``GRAPHLAB_REFERENCE_EXACT=1`` asks for equality.
"""
from __future__ import annotations

import json
import math
import os

import pytest

from reference_records import CASES, reference_path, run_case

TOL = 0.0 if os.environ.get("GRAPHLAB_REFERENCE_EXACT") == "1" else 1e-6


def _compare(got, want, where="record"):
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), \
            f"{where}: keys {sorted(set(got) ^ set(want))} differ"
        for k in want:
            _compare(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: length differs"
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, (int, float)), f"{where}: {got!r} is not a number"
        if math.isnan(want):
            assert math.isnan(got), f"{where}: {got} != nan"
        else:
            assert abs(got - want) <= TOL, f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def _params():
    for case in CASES:
        marks = [pytest.mark.realdata] if case["realdata"] else []
        yield pytest.param(case, id=case["name"], marks=marks)


@pytest.mark.parametrize("case", _params())
def test_records_equal_the_references(case, request, data_root, tmp_path):
    if case["realdata"]:
        request.getfixturevalue("mirror")
    with open(reference_path(case)) as f:
        want = json.load(f)
    got = json.loads(json.dumps(run_case(case, str(tmp_path))))
    _compare(got, want)
