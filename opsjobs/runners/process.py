"""``process`` mode: a child process per job, killed with its whole tree on timeout or cancel."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from opsjobs.config import Settings
from opsjobs.context import ENV_JOB_DIR, ENV_JOB_ID, METRICS_FILE, RESULT_FILE
from opsjobs.model import Job, JobState, Metric
from opsjobs.runners import guard
from opsjobs.runners.capture import read_capped
from opsjobs.runners.kinds import Kind
from opsjobs.store import Finish

__all__ = ["collect", "kill_tree", "spawn", "wait_peak"]


def wait_peak(proc: subprocess.Popen[bytes]) -> tuple[int, int | None]:
    """Wait for the job's child; its exit code and peak resident memory in bytes (``wait4``'s
    ``ru_maxrss``: the child's, or the largest of the descendants it waited for, such as a
    notebook's kernel). None when another thread reaped the child first."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:
        return proc.wait(), None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024  # Linux counts KiB


def spawn(
    kind: Kind,
    job: Job,
    job_dir: Path,
    log_path: Path,
    worker_id: str,
    host: str,
    settings: Settings | None = None,
) -> subprocess.Popen[bytes]:
    """Start the child for ``job`` in a new session, stdout and stderr into ``log_path``,
    through :mod:`~opsjobs.runners.guard`: it dies with the calling thread (the worker's), and
    its process group with it.

    With ``settings``, the child's environment names the worker's data folder and store
    (``OPSJOBS_DATA``, ``OPSJOBS_STORE``), so code in the child — and a notebook kernel started
    by it — that builds :class:`Settings` or calls ``opsjobs.connect()`` finds the same ones.
    """
    job_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "job_id": job.id,
        "kind": job.kind,
        "payload": dict(job.spec.payload),
        "worker_id": worker_id,
        "host": host,
    }
    (job_dir / "job.json").write_text(json.dumps(meta), "utf-8")
    argv = kind.program(job.spec.payload)
    env = dict(os.environ)
    if argv is None:  # our own child: it arms the guard itself (runners/child.py)
        argv = [sys.executable, "-m", "opsjobs.runners.child", str(job_dir), str(os.getpid())]
    elif shutil.which(argv[0], path=env.get("PATH")) is None:
        # as Popen would say it, before anything is started (the guard would only exit 127)
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    else:
        argv = guard.command(argv)
    env[ENV_JOB_ID] = job.id
    env[ENV_JOB_DIR] = str(job_dir)
    env["PYTHONUNBUFFERED"] = "1"
    if settings is not None:
        env["OPSJOBS_DATA"] = str(settings.data_dir.resolve())
        env["OPSJOBS_STORE"] = settings.store_url
        if settings.runtime_dir:
            env["OPSJOBS_RUNTIME_DIR"] = settings.runtime_dir
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def kill_tree(pid: int, grace: float = 2.0) -> None:
    """Terminate ``pid`` and every descendant (found before the parent dies), then kill what
    is left after ``grace`` seconds."""
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)  # the child leads its own session and process group
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    alive = _wait_gone(procs, grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _wait_gone(alive, grace)


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until ``procs`` are dead or zombies; returns those that are not. Never reaps one
    (``psutil.wait_procs`` does, for this process's children): the ``Popen`` that started a
    child must get its exit status, or it reads ECHILD as exit status 0."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if _running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)
        procs = alive


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def collect(
    job: Job, returncode: int, job_dir: Path, log_path: Path, cap: int
) -> tuple[Finish, list[Metric], str | None]:
    """Read what the child left behind: (outcome, metrics, error reading them)."""
    output = read_capped(log_path, cap)
    metrics: list[Metric] = []
    problem = None
    try:
        with open(job_dir / METRICS_FILE, encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                metrics.append(Metric(d["name"], d["value"], d.get("labels", {}), d["at"]))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError) as exc:
        problem = f"unreadable metrics from the child: {exc}"
    result = None
    with contextlib.suppress(FileNotFoundError):
        result = (job_dir / RESULT_FILE).read_text("utf-8")
    if returncode == 0:
        finish = Finish(JobState.SUCCEEDED, output=output, result_json=result, exit_code=0)
    else:
        error = None
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
            error = json.loads((job_dir / "error.json").read_text("utf-8"))["error"]
        if error is None:
            error = (
                f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
            )
        finish = Finish(
            JobState.FAILED, output=output, result_json=result, error=error, exit_code=returncode
        )
    shutil.rmtree(job_dir, ignore_errors=True)
    return finish, metrics, problem
