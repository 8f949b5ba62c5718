"""scripts/detached.py: a command started in its own process session is waited for from a
later process, with its log, exit status and wall time."""
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts",
                      "detached.py")


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=60)


def test_start_then_wait(tmp_path):
    d = str(tmp_path / "job")
    assert _run("start", d, "--", sys.executable, "-c",
                "import time; print('first'); time.sleep(1.5); print('last')").returncode == 0
    early = _run("wait", d, "--timeout", "0")
    assert early.returncode == 3 and "still running" in early.stdout
    done = _run("wait", d, "--timeout", "30")
    assert done.returncode == 0 and "last" in done.stdout and "exit 0" in done.stdout
    bad = str(tmp_path / "bad")
    _run("start", bad, "--", sys.executable, "-c", "raise SystemExit(4)")
    out = _run("wait", bad, "--timeout", "30")
    assert out.returncode == 1 and "exit 4" in out.stdout
