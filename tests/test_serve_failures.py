"""``opsjobs serve`` never runs half-started: when a part fails to start it exits non-zero with
one line, and SIGTERM always ends it within seconds."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from harness import cli_env, settings_for, wait_for
from server_harness import ServerThread, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    settings = settings_for(tmp_path)
    return subprocess.Popen(
        [sys.executable, "-m", "opsjobs", *args, "serve", "--port", str(free_port())],
        env=cli_env(settings),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _ended(proc: subprocess.Popen[str], within: float) -> int | None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        time.sleep(0.05)
    return None


def test_serve_on_an_unopenable_store_exits_with_one_line(tmp_path: Path) -> None:
    bad = f"sqlite://{tmp_path / 'missing' / 'x.db'}"
    proc = _serve(tmp_path, "--store", bad)
    try:
        code = _ended(proc, 60)
        if code is None:  # half-started: it must at least stop on SIGTERM, within seconds
            proc.send_signal(signal.SIGTERM)
            code = _ended(proc, 10)
            assert code is not None, "opsjobs serve ignored SIGTERM"
            # what it printed tells where it stood (once seen at load 25, not reproduced)
            pytest.fail(
                f"opsjobs serve kept running 60 s without its store:\n{proc.communicate()[0]}"
            )
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate()[0]
    assert code == 2, out
    errors = [line for line in out.splitlines() if line.startswith("opsjobs: error:")]
    assert len(errors) == 1 and "does not exist" in errors[0], out
    assert "Traceback" not in out and "opsjobs serving" not in out, out


def test_a_part_that_fails_to_start_stops_the_server(tmp_path: Path) -> None:
    server = ServerThread(tmp_path, memory_analysis=None)
    server.config.OpsJobsExtension.queues = ["no spaces allowed"]  # the hosted worker refuses it
    server.start()
    try:
        wait_for(lambda: not server._thread.is_alive(), 30, "the server to stop itself")
    finally:
        server.stop()
    assert server.app is not None
    failure = server.app.web_app.settings["opsjobs"].start_failure
    assert failure and "queue" in failure
    with pytest.raises(requests.ConnectionError):
        requests.get(server.base + "/opsjobs/api/v1/me", timeout=2)


def test_sigterm_ends_a_running_server_within_seconds(tmp_path: Path) -> None:
    proc = _serve(tmp_path, "--store", f"sqlite://{tmp_path / 'data' / 'opsjobs.db'}")
    lines: list[str] = []

    def started() -> bool:
        lines.append(proc.stdout.readline())  # type: ignore[union-attr]
        return proc.poll() is not None or "hosted worker" in lines[-1]

    try:
        wait_for(started, 60, "the server to start")
        assert proc.poll() is None, "".join(lines)
        proc.send_signal(signal.SIGTERM)
        assert _ended(proc, 15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
