"""Callables used as ``call`` targets by the tests (importable in worker children too)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import opsjobs


def add(a: int, b: int) -> dict[str, Any]:
    print(f"adding {a} and {b}")
    return {"sum": a + b, "pid": os.getpid()}


def boom(message: str = "boom") -> None:
    print("about to fail", file=sys.stderr)
    raise RuntimeError(message)


def measured(value: float) -> str:
    ctx = opsjobs.context()
    ctx.record_metric("test_value", value, source="jobfuncs")
    ctx.set_result({"job": ctx.job_id, "value": value})
    return "ignored: set_result wins"


def cooperative_sleep(seconds: float) -> str:
    ctx = opsjobs.context()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ctx.cancelled:
            return "stopped"
        time.sleep(0.01)
    return "slept"


def spew(megabytes: int) -> int:
    line = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(line)
    return megabytes


def pid_tree(path: str, seconds: float = 60) -> None:
    """Start a grandchild, write both pids to ``path``, then sleep."""
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    with open(path + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    os.replace(path + ".tmp", path)
    time.sleep(seconds)


def rendezvous(folder: str, parties: int, seconds: float = 30) -> int:
    """Arrive in ``folder``, then wait until ``parties`` jobs have arrived there: it succeeds
    only if that many jobs run at the same time. Returns how many had arrived."""
    ctx = opsjobs.context()
    os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, ctx.job_id), "w").close()
    deadline = time.monotonic() + seconds
    while (arrived := len(os.listdir(folder))) < parties:
        if ctx.cancelled or time.monotonic() > deadline:
            raise TimeoutError(f"only {arrived} of {parties} jobs ran at once")
        time.sleep(0.005)
    return arrived


def flaky(path: str, failures: int) -> int:
    """Count this call in the file ``path``; fail the first ``failures`` calls (a negative
    number: always), succeed after. Returns the call's number."""
    calls = 1
    if os.path.exists(path):
        with open(path) as fh:
            calls = int(fh.read()) + 1
    with open(path, "w") as fh:
        fh.write(str(calls))
    print(f"call {calls}")
    if failures < 0 or calls <= failures:
        raise RuntimeError(f"flaky failure {calls}")
    return calls
