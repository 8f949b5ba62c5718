"""Run a plan of experiment commands concurrently on the GPUs of one machine, under one deadline.

Each non-blank, non-comment line of the plan file is ``NAME | GPUS | COMMAND``:

* ``NAME``: a label; the command's output goes to ``<logs>/NAME.log``;
* ``GPUS``: the value of ``CUDA_VISIBLE_DEVICES`` for it (``0``, ``0,1``, or ``-`` to leave it unset);
* ``COMMAND``: a shell command run from the current directory.

Lines after a line ``---`` run only when every job above has ended (a barrier), e.g. benchmarks
that need a quiet GPU after the training jobs. All jobs share the deadline ``--deadline`` seconds
after start: a job still running then gets SIGTERM (``graphlab train`` stops at its own
``trainer.max_time`` before that), then SIGKILL ``--grace`` seconds later. A summary line per job
(exit code, seconds) is printed and written to ``<logs>/jobs.json``.

    python scripts/run_jobs.py plan.txt --logs out/logs --deadline 540
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time


def parse(path: str):
    stages, cur = [], []
    for raw in open(path):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "---":
            stages.append(cur)
            cur = []
            continue
        parts = [p.strip() for p in line.split("|", 2)]
        if len(parts) != 3 or not parts[0] or not parts[2]:
            raise SystemExit(f"{path}: bad line (want NAME | GPUS | COMMAND): {line!r}")
        cur.append(tuple(parts))
    stages.append(cur)
    return [s for s in stages if s]


def stop(procs, grace: float) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    end = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, end - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("plan")
    ap.add_argument("--logs", default="logs")
    ap.add_argument("--deadline", type=float, default=540.0, help="seconds from start for all jobs")
    ap.add_argument("--grace", type=float, default=20.0)
    args = ap.parse_args()
    os.makedirs(args.logs, exist_ok=True)
    t0 = time.time()
    records = []
    for stage in parse(args.plan):
        procs, meta = [], []
        for name, gpus, cmd in stage:
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            if gpus != "-":
                env["CUDA_VISIBLE_DEVICES"] = gpus
            log = open(os.path.join(args.logs, f"{name}.log"), "w")
            log.write(f"$ {cmd}\n")
            log.flush()
            procs.append(subprocess.Popen(cmd, shell=True, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
            meta.append((name, gpus, cmd, time.time()))
            print(f"[{time.time() - t0:6.0f}s] start {name} (GPU {gpus})", flush=True)
        pending = set(range(len(procs)))
        while pending and time.time() - t0 < args.deadline:
            for i in list(pending):
                if procs[i].poll() is not None:
                    pending.discard(i)
                    print(f"[{time.time() - t0:6.0f}s] end {meta[i][0]} rc={procs[i].returncode}", flush=True)
            time.sleep(1.0)
        if pending:
            print(f"[{time.time() - t0:6.0f}s] deadline: stopping {[meta[i][0] for i in pending]}", flush=True)
            stop([procs[i] for i in pending], args.grace)
        for p, (name, gpus, cmd, start) in zip(procs, meta):
            records.append(dict(name=name, gpus=gpus, command=cmd, rc=p.returncode,
                                seconds=round(time.time() - start, 1)))
        if time.time() - t0 >= args.deadline:
            break
    with open(os.path.join(args.logs, "jobs.json"), "w") as f:
        json.dump(records, f, indent=1)
    for r in records:
        print(f"{r['name']:<32} rc={r['rc']} {r['seconds']:.0f}s")


if __name__ == "__main__":
    main()
