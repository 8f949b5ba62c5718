"""Run one long command in its own process session, so that it outlives the shell that started
it (a device call ends after 10 minutes; a job started with ``setsid`` runs on while the machine
stays warm), and wait for it from a later shell.

    python scripts/detached.py start DIR -- graphlab train CONFIG ...   # returns at once
    python scripts/detached.py wait DIR --timeout 540                   # exit 0 when done

``DIR`` receives ``log`` (stdout and stderr), ``start`` and ``end`` (Unix times, the end written
after the command exits) and ``rc`` (its exit status). ``wait`` polls for ``end`` until the
timeout, prints the log's last lines and the wall time from ``start`` to ``end``, and exits with
0 (finished, ``rc`` 0), 1 (finished with an error) or 3 (still running).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time


def start(run_dir: str, cmd) -> int:
    if not cmd:
        raise SystemExit("start: give the command after --")
    os.makedirs(run_dir, exist_ok=True)
    for name in ("end", "rc"):
        if os.path.exists(os.path.join(run_dir, name)):
            os.remove(os.path.join(run_dir, name))
    d = shlex.quote(os.path.abspath(run_dir))
    script = (f"date +%s.%N > {d}/start; {shlex.join(cmd)} > {d}/log 2>&1; "
              f"echo $? > {d}/rc; date +%s.%N > {d}/end")
    subprocess.Popen(["bash", "-c", script], start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"started in {run_dir}: {shlex.join(cmd)}")
    return 0


def wait(run_dir: str, timeout: float, tail: int) -> int:
    t0 = time.time()
    end = os.path.join(run_dir, "end")
    while not os.path.exists(end) and time.time() - t0 < timeout:
        time.sleep(2)
    log = os.path.join(run_dir, "log")
    if os.path.exists(log):
        with open(log, errors="replace") as f:
            print("".join(f.readlines()[-tail:]), end="")
    if not os.path.exists(end):
        print(f"still running after {timeout:.0f} s")
        return 3
    with open(os.path.join(run_dir, "start")) as f:
        t_start = float(f.read())
    with open(end) as f:
        t_end = float(f.read())
    with open(os.path.join(run_dir, "rc")) as f:
        rc = int(f.read().strip() or 1)
    print(f"finished: exit {rc}, {t_end - t_start:.1f} s from start to exit")
    return 0 if rc == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    s = sub.add_parser("start")
    s.add_argument("dir")
    s.add_argument("cmd", nargs=argparse.REMAINDER)
    w = sub.add_parser("wait")
    w.add_argument("dir")
    w.add_argument("--timeout", type=float, default=540.0)
    w.add_argument("--tail", type=int, default=5)
    args = ap.parse_args()
    if args.verb == "start":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        return start(args.dir, cmd)
    return wait(args.dir, args.timeout, args.tail)


if __name__ == "__main__":
    sys.exit(main())
