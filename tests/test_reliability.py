"""Many processes on one SQLite file: exactly-once under load, recovery after SIGKILL."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from harness import cli_env, client_for, settings_for, start_worker, wait_for

from opsjobs import JobState

SUBMITTER = """
import sys, opsjobs
log, n, who = sys.argv[1], int(sys.argv[2]), sys.argv[3]
source = ("import os, opsjobs\\n"
          f"fd = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)\\n"
          "os.write(fd, (opsjobs.context().job_id + '\\\\n').encode())\\n"
          "os.close(fd)\\n")
with opsjobs.connect() as client:
    for i in range(n):
        client.submit(f"{who}-{i}", command=source, mode="inline" if i % 2 else "thread")
"""


@pytest.mark.slow
def test_eight_submitters_three_workers_every_job_exactly_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    client = client_for(settings)
    ran = tmp_path / "ran.log"
    workers = [start_worker(settings, "--threads", "4") for _ in range(3)]
    submitters = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, str(ran), "500", f"s{i}"], env=cli_env(settings)
        )
        for i in range(8)
    ]
    try:
        for proc in submitters:
            assert proc.wait(timeout=300) == 0
        total = 8 * 500
        wait_for(
            lambda: client.count(states=["succeeded", "failed", "lost"]) == total,
            timeout=300,
            what="all jobs to finish",
        )
        stats = client.stats()
        assert (stats.total, stats.succeeded, stats.running, stats.queued) == (total, total, 0, 0)
        runs = collections.Counter(ran.read_text().split())
        assert len(runs) == total and set(runs.values()) == {1}
        jobs = client.results(limit=total)
        assert {j.attempt for j in jobs} == {1}
        assert len({j.worker_id for j in jobs}) == 3  # all three workers took part
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.communicate(timeout=60)
        client.close()


@pytest.mark.slow
@pytest.mark.parametrize("retries", [0, 1])
def test_sigkilled_worker_job_is_lost_or_requeued(tmp_path: Path, retries: int) -> None:
    settings = settings_for(tmp_path, lease_seconds=2.0)
    client = client_for(settings)
    lease = {"OPSJOBS_LEASE": "2"}
    victim = start_worker(settings, **lease)
    job = client.submit(
        "long",
        command="import time, opsjobs\nfor _ in range(300):\n    time.sleep(0.01)\n",
        retries=retries,
    )
    wait_for(lambda: client.get(job.id).state is JobState.RUNNING, what="job to start")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    killed_at = time.time()
    rescuer = start_worker(settings, **lease)
    try:
        done = client.wait(job.id, timeout=60)
        if retries:
            assert done.state is JobState.SUCCEEDED and done.attempt == 2
        else:
            assert done.state is JobState.LOST and "lease expired" in (done.error or "")
            # within two lease periods (plus one heartbeat) of the death, or of the rescuer's
            # start where that came later: a loaded machine can take seconds to start a worker
            (rescuer_row,) = [w for w in client.store.workers() if w.pid == rescuer.pid]
            since = max(killed_at, rescuer_row.started_at)
            assert (done.finished_at or 0) - since < 2 * 2.0 + 2.0
    finally:
        rescuer.terminate()
        rescuer.communicate(timeout=30)
        client.close()


def test_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    client = client_for(settings)
    proc = start_worker(settings)
    wait_for(lambda: client.store.workers(), what="worker to register")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    (info,) = client.store.workers()
    assert info.stopped_at is not None and not info.alive(time.time())
    client.close()


def test_no_process_left_after_timeouts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    client = client_for(settings)
    proc = start_worker(settings)
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! >> {pids}; sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    try:
        job = client.submit("t", argv=["sh", "-c", script], mode="process", timeout=1)
        assert client.wait(job.id, timeout=60).state is JobState.TIMED_OUT
        tree = [int(p) for p in pids.read_text().split()]
        assert len(tree) == 3

        def all_gone() -> bool:
            return not any(
                psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                for pid in tree
            )

        wait_for(all_gone, timeout=10, what="shell and both sleeps to be gone")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
        client.close()


@pytest.mark.slow
def test_process_job_dies_with_its_sigkilled_worker(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    client = client_for(settings)
    env = cli_env(settings)
    victim = start_worker(settings, PYTHONPATH=env["PYTHONPATH"])
    pids = tmp_path / "pids"
    client.submit("tree", call="jobfuncs:pid_tree", kwargs={"path": str(pids)}, mode="process")
    try:
        wait_for(lambda: pids.exists(), what="child pids")
        tree = [psutil.Process(int(p)) for p in pids.read_text().split()]
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)

        def gone() -> bool:
            return all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in tree)

        wait_for(gone, timeout=15, what="orphaned job processes to exit")
    finally:
        client.close()
