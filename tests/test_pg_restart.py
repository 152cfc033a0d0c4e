"""A PostgreSQL server restart mid-run, on a private throwaway cluster.

The shared server at 127.0.0.1:5432 is never restarted (other tests use it at the same time):
this test ``initdb``\\ s its own cluster in a temporary folder on a free port, starts two worker
processes on it, restarts the server (``pg_ctl restart -m fast``: every backend is terminated,
as ``pg_terminate_backend`` does, and the server is unreachable for a moment) while jobs run,
and checks that the workers carry on and every job runs exactly once.

It skips when no ``initdb`` is installed; with ``CI=true`` it fails if ``initdb`` is there but
the cluster cannot be made or started.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet import Fleet
from harness import client_for, settings_for, wait_for

from opsjobs import JobState

JOBS = 600
#: A job of ~10 ms that records its run (see fleet.RECORD_RUN).
SOURCE = (
    "import os, time, opsjobs\n"
    "time.sleep(0.01)\n"
    "fd = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
    "os.write(fd, (opsjobs.context().job_id + '\\n').encode())\n"
    "os.close(fd)\n"
)


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A private PostgreSQL cluster (as user ``postgres`` when run by root: initdb refuses root)."""

    def __init__(self, bindir: Path, folder: Path) -> None:
        self.bindir = bindir
        self.folder = folder
        self.data = folder / "data"
        self.port = _free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        proc = subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed: {(proc.stderr or proc.stdout)[-800:]}"
            )

    def pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"),
            "-o", options, "-w", "-t", "60", *args,
        )  # fmt: skip

    def create(self) -> None:
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8", "--no-instructions",
        )  # fmt: skip
        self.pg_ctl("start")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.pg_ctl("stop", "-m", "immediate")


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no initdb/pg_ctl installed: cannot make a private PostgreSQL cluster")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb refuses to run as root")
    # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="opsjobs-pg-"))
    cluster = Cluster(bindir, folder)
    try:
        try:
            cluster.create()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            message = f"cannot start a private PostgreSQL cluster with {bindir}/initdb: {exc}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)
            pytest.skip(message)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_carry_on_across_a_server_restart(tmp_path: Path) -> None:
    with private_cluster() as cluster:
        settings = settings_for(tmp_path, store_url=cluster.url)
        client = client_for(settings)
        fleet = Fleet(settings, tmp_path)
        ran = tmp_path / "ran.log"
        try:
            source = SOURCE.format(log=str(ran))
            ids = [
                client.submit(f"r-{i}", command=source, mode="inline" if i % 2 else "thread").id
                for i in range(JOBS)
            ]
            for k in range(2):
                fleet.start(f"worker-{k}", "worker", "--threads", "2")
            wait_for(
                lambda: client.count(states=["succeeded"]) >= JOBS // 5,
                60,
                "a fifth of the jobs to run",
            )
            cluster.pg_ctl("restart", "-m", "fast")
            restarted = time.time()
            left = client.count(states=["queued"])  # the client's own pool reconnects too
            assert left > 0, "the restart came too late to matter; make the jobs longer"

            def drained() -> bool:
                fleet.check_alive()
                return client.count(states=["queued", "running"]) == 0

            wait_for(drained, 60, f"{JOBS} jobs to finish after the restart")
            jobs = client.results(limit=JOBS + 10)
            assert collections.Counter(j.state for j in jobs) == {JobState.SUCCEEDED: JOBS}
            assert max(j.finished_at or 0 for j in jobs) > restarted  # work went on after it
            assert collections.Counter(ran.read_text().split()) == dict.fromkeys(ids, 1)
        finally:
            fleet.stop()
            client.close()
