"""Test-suite wiring.

* ``TRITON_INTERPRET=1`` is set before anything imports ``graphlab.kernels`` when no GPU is
  present, so Triton kernels run (slowly, on tiny inputs) in the CPU interpreter.
* Real-data tests carry ``@pytest.mark.realdata`` and take the ``mirror`` fixture. With
  ``$GRAPHLAB_MIRROR`` set, a missing file is a failure. Without it they skip with the reason.
  ``GRAPHLAB_REQUIRE_REALDATA=1`` (set by ``.ci/run``) turns any skipped realdata test into a
  failed session.
* Processed datasets are built once per session under a temporary ``$GRAPHLAB_DATA``.
* ``float64`` makes float64 torch's default dtype for a test.
"""
from __future__ import annotations

import os

os.environ.setdefault("OUTDATED_IGNORE", "1")
# Tests use tiny tensors: one intra-op thread is faster than two, and avoids OpenMP threads
# spinning against each other when test processes (DDP, kill-and-resume) run side by side.
os.environ.setdefault("OMP_NUM_THREADS", "1")
try:  # decide before graphlab.kernels (and triton) are imported
    import torch
    torch.set_num_threads(1)
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
except ImportError:  # pragma: no cover
    pass

import pytest

_SKIPPED_REALDATA: list = []


def mirror_dirs() -> list:
    raw = os.environ.get("GRAPHLAB_MIRROR", "")
    return [p for p in raw.split(os.pathsep) if p]


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """A per-session data root: every dataset is processed at most once per test session."""
    root = tmp_path_factory.mktemp("datasets")
    old = os.environ.get("GRAPHLAB_DATA")
    os.environ["GRAPHLAB_DATA"] = str(root)
    yield str(root)
    if old is None:
        os.environ.pop("GRAPHLAB_DATA", None)
    else:
        os.environ["GRAPHLAB_DATA"] = old


@pytest.fixture
def float64():
    """float64 as torch's default dtype for one test (references, symmetry and gradient checks
    at 1e-10); modules use it with ``pytestmark = pytest.mark.usefixtures("float64")``."""
    import torch
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(scope="session")
def mirror(data_root):
    """Mirror directories; skips (no mirror, no network) or fails (mirror configured but broken)."""
    dirs = mirror_dirs()
    if not dirs:
        pytest.skip("real data needs $GRAPHLAB_MIRROR (e.g. ../shared/data) or network access; "
                    "set GRAPHLAB_MIRROR to run this test offline")
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:
        pytest.fail(f"GRAPHLAB_MIRROR points to missing directories: {missing}")
    return dirs


@pytest.fixture(scope="session")
def molhiv(mirror):
    """ogbg-molhiv from the mirror, processed once per session (10-30 s on 2 cores): share it."""
    import graphlab.data as gd
    return gd.load("ogbg-molhiv")


def pytest_runtest_logreport(report):
    if report.skipped and "realdata" in report.keywords:
        _SKIPPED_REALDATA.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("GRAPHLAB_REQUIRE_REALDATA") == "1" and _SKIPPED_REALDATA:
        print("\nrealdata tests skipped although GRAPHLAB_REQUIRE_REALDATA=1:")
        for nodeid in _SKIPPED_REALDATA:
            print("  ", nodeid)
        session.exitstatus = 1
