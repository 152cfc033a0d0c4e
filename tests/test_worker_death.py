"""A worker that dies or is stopped mid-job: nothing it started outlives it, and a job it
stopped is never recorded as a success (issue 14, points 2 and 3).

Real workers (``opsjobs worker`` processes), real kernels, SQLite and PostgreSQL; short leases.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from harness import TESTS, client_for, settings_for, start_worker, wait_for

import opsjobs
from opsjobs import Job, JobState, Settings
from opsjobs.client import Client
from opsjobs.runners import reaper
from opsjobs.runners.process import kill_tree

LEASE = 3.0
LONG_RUNNING = str(TESTS / "notebooks" / "long_running.ipynb")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield settings_for(tmp_path, lease_seconds=LEASE)
        return
    from pg import isolated_schema

    with isolated_schema() as url:
        yield settings_for(tmp_path, lease_seconds=LEASE, store_url=url)


def _worker(settings: Settings, *, background: bool = False) -> subprocess.Popen[str]:
    # five: four pool jobs and an inline one at once (an inline claim needs a free slot too)
    return start_worker(
        settings, "--threads", "5", background=background, OPSJOBS_LEASE=f"{LEASE:g}"
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=30)


def _pids(path: Path) -> list[int]:
    """The pids a job wrote: ``pid_tree``'s "pid child" or the notebook's JSON."""
    text = path.read_text()
    if text.startswith("{"):
        return list(json.loads(text).values())
    return [int(p) for p in text.split()]


# -- point 2: SIGKILL ---------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkilled_worker_leaves_no_process_of_any_job(settings: Settings, tmp_path: Path) -> None:
    """Notebook (process and thread mode), process, thread and inline jobs each start a
    grandchild; the worker is SIGKILLed; two leases later none of their processes is alive."""
    client = client_for(settings)
    victim = _worker(settings)
    files = {name: tmp_path / f"{name}.pids" for name in ("nb_process", "nb_thread")}
    files.update({m: tmp_path / f"{m}.pids" for m in ("process", "thread", "inline")})
    jobs = {}
    rescuer = None
    try:
        for mode in ("process", "thread"):
            payload = {"path": LONG_RUNNING, "parameters": {"pid_file": str(files[f"nb_{mode}"])}}
            jobs[f"nb_{mode}"] = client.submit("nb", kind="notebook", payload=payload, mode=mode)
        for mode in ("process", "thread"):
            kwargs = {"path": str(files[mode]), "seconds": 300}
            jobs[mode] = client.submit(mode, call="jobfuncs:pid_tree", kwargs=kwargs, mode=mode)
        # the inline job blocks the main loop: submitted once the pool jobs have started
        wait_for(
            lambda: all(client.get(j.id).state is JobState.RUNNING for j in jobs.values()),
            60,
            "the pool jobs to start",
        )
        kwargs = {"path": str(files["inline"]), "seconds": 300}
        jobs["inline"] = client.submit("inline", call="jobfuncs:pid_tree", kwargs=kwargs)
        wait_for(lambda: all(f.is_file() for f in files.values()), 60, "every job's pids")
        pids = {name: _pids(f) for name, f in files.items()}
        assert all(alive(p) for ps in pids.values() for p in ps)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)  # (not communicate: orphans may hold its stderr open)
        killed_at = time.monotonic()
        rescuer = _worker(settings)

        def leftovers() -> dict[str, list[int]]:
            left = {n: [p for p in ps if alive(p)] for n, ps in pids.items()}
            return {n: ps for n, ps in left.items() if ps}

        # Two leases once the rescuer is up; its start alone took over 6 s at load 8 (xdist
        # beside three core runs), so the deadline leaves 30 s in all.
        deadline = killed_at + max(2 * LEASE, 30)
        while leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leftovers() == {}, "processes of the SIGKILLed worker's jobs outlived it"
        for job in jobs.values():
            done = client.wait(job.id, timeout=4 * LEASE)
            assert done.state is JobState.LOST
    finally:
        for proc in (victim, rescuer):
            if proc is not None:
                _stop(proc)
        client.close()


# -- point 3: SIGTERM ---------------------------------------------------------------------------
def test_kill_tree_leaves_the_exit_status_to_its_popen(tmp_path: Path) -> None:
    """kill_tree must not reap a child it did not start: the Popen that waits for it would get
    ECHILD and report exit status 0 (a stopped job recorded as a success)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    kill_tree(proc.pid, grace=2.0)
    assert proc.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)


def _sigterm_mid_job(
    settings: Settings, submit: dict[str, object], ready: Path, *, background: bool = False
) -> tuple[Client, Job]:
    """Submit a job, SIGTERM its worker once ``ready`` exists; the job as then recorded."""
    client = client_for(settings)
    worker = _worker(settings, background=background)
    try:
        job = client.submit("stopped", **submit)  # type: ignore[arg-type]
        wait_for(ready.is_file, 60, "the job to get going")
        worker.send_signal(signal.SIGTERM)
        ended = wait_for(
            # 30 s was once too short for a thread-mode notebook at load 8 (its kernel's
            # interrupt and shutdown wait their turn for the CPU)
            lambda: client.get(job.id).state is not JobState.RUNNING,
            90,
            "the stop recorded",
        )
        if submit.get("mode") == "thread" and submit.get("kind") != "notebook":
            # a thread that ignores the stop keeps the process until it returns (its end is
            # recorded already): no need to wait a minute for it here
            worker.kill()
        _, err = worker.communicate(timeout=30)
        assert ended and worker.returncode in (0, -signal.SIGKILL), err
    finally:
        _stop(worker)
    return client, client.get(job.id)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["process", "thread"])
def test_sigterm_mid_notebook_fails_it_with_the_cell_and_its_output(
    tmp_path: Path, mode: str
) -> None:
    settings = settings_for(tmp_path, lease_seconds=LEASE)
    pid_file = tmp_path / "pids.json"
    payload = {"path": LONG_RUNNING, "parameters": {"pid_file": str(pid_file)}}
    client, job = _sigterm_mid_job(
        settings, {"kind": "notebook", "payload": payload, "mode": mode}, pid_file
    )
    try:
        assert job.state is JobState.FAILED, (job.state, job.exit_code, job.error)
        assert "cell 3" in (job.error or "") and "import time" in (job.error or ""), job.error
        assert "[cell 3 (4/5)] import time" in job.output and "started" in job.output
        assert "finished without being stopped" not in job.output
        for pid in json.loads(pid_file.read_text()).values():
            wait_for(lambda pid=pid: not alive(pid), 10, f"process {pid} of the job to end")
    finally:
        client.close()


@pytest.mark.parametrize(
    ("mode", "background"),
    [("process", False), ("thread", False), ("inline", False), ("inline", True)],
    ids=["process", "thread", "inline", "inline-background"],
)
def test_sigterm_mid_command_keeps_its_output_in_the_row(
    tmp_path: Path, mode: str, background: bool
) -> None:
    """``inline-background``: a worker started by a shell as ``opsjobs worker &`` inherits
    SIGINT ignored; its inline job must still be stopped (it ran to its end, recorded a
    success, when the stop relied on a simulated SIGINT)."""
    settings = settings_for(tmp_path, lease_seconds=LEASE)
    ready = tmp_path / "ready"
    source = (
        "import time\n"
        "print('before the stop', flush=True)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "for _ in range(600):\n"
        "    time.sleep(0.1)\n"
        "print('after the stop')\n"
    )
    client, job = _sigterm_mid_job(
        settings, {"command": source, "mode": mode}, ready, background=background
    )
    try:
        assert job.state is JobState.FAILED, (job.state, job.exit_code, job.error)
        assert "before the stop" in job.output
        assert "after the stop" not in job.output
    finally:
        client.close()


# -- the pieces -----------------------------------------------------------------------------------
def _sleeper(**env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env={**os.environ, **env}
    )


def test_reaper_kills_what_dead_owners_left_and_nothing_else() -> None:
    owner = _sleeper()
    tag = reaper.owner_tag(owner.pid)
    assert tag is not None and reaper.owner_alive(tag)
    ns = tag.rsplit(":", 1)[1]
    live = reaper.owner_tag()
    assert live is not None
    # the second: its owner's pid started at another time (a reused pid): gone too
    orphans = [_sleeper(OPSJOBS_OWNER=tag), _sleeper(OPSJOBS_OWNER=f"{owner.pid}:1:{ns}")]
    spared = [
        _sleeper(OPSJOBS_OWNER=live),  # its owner (this process) lives
        _sleeper(OPSJOBS_OWNER=f"{owner.pid}:{tag.split(':')[1]}:1"),  # another namespace
        _sleeper(),  # no mark
    ]
    try:
        owner.kill()
        owner.wait()
        assert not reaper.owner_alive(tag)
        killed = reaper.reap_orphans()
        assert {p.pid for p in orphans} <= set(killed)
        assert [p.wait(timeout=10) for p in orphans] == [-signal.SIGKILL] * 2
        assert all(p.poll() is None for p in spared)
    finally:
        for proc in spared + orphans:
            proc.kill()
            proc.wait()


def test_what_a_process_job_left_running_ends_with_it(tmp_path: Path) -> None:
    """The group watchdog: a process job's background child does not outlive the job."""
    settings = settings_for(tmp_path, lease_seconds=LEASE)
    client = client_for(settings)
    pid_file = tmp_path / "pid"
    script = f"sleep 300 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}"
    try:
        with opsjobs.embed(store=client.store, settings=settings):
            job = client.submit("bg", argv=["sh", "-c", script], mode="process")
            assert client.wait(job.id, timeout=30).state is JobState.SUCCEEDED
            pid = int(pid_file.read_text())
            wait_for(lambda: not alive(pid), 10, "the job's background sleep to end")
    finally:
        client.close()
