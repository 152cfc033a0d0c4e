"""``opsjobs serve`` as a real process on a free port, driven over HTTP with the seed's own calls;
a second user sees nothing of the first; Ctrl-C stops it and leaves nothing running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from harness import cli_env, client_for, run_cli, settings_for, wait_for
from server_harness import free_port

from opsjobs import JobState

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SEED = "/apps/WebHostTaskManagement/api/v1"


def make_key(settings: object, email: str, roles: str) -> str:
    done = run_cli(settings, "keys", "create", "--email", email, "--name", "T", "--roles", roles)  # type: ignore[arg-type]
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_serve_answers_the_seeds_calls_and_stops_cleanly(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, lease_seconds=3.0)
    first = make_key(settings, "test@localhost", "debug,system_admin")
    second = make_key(settings, "other@localhost", "task_manager")
    port = free_port()
    env = cli_env(settings, OPSJOBS_LEASE="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsjobs", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    h1 = {"Authorization": f"Bearer {first}"}
    h2 = {"Authorization": f"Bearer {second}"}

    def up() -> bool:
        try:
            return requests.get(base + f"{SEED}/jobs/results", timeout=2).status_code == 401
        except requests.ConnectionError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return False

    try:
        wait_for(up, 60, "opsjobs serve to listen")
        # Test-MemoryAnalysisWorkflow.ps1, step 3: a one-time job in MainLoop mode
        body = {
            "jobName": "MemoryAnalysis_20260123_143000",
            "command": "print('=== PSWebHost Memory Analysis ===')",
            "description": "Memory analysis snapshot",
            "executionMode": "MainLoop",
        }
        reply = requests.post(base + f"{SEED}/jobs/submit", headers=h1, json=body, timeout=10)
        assert reply.status_code == 200, reply.text
        assert set(reply.json()) == {"success", "jobId", "message", "executionMode"}
        job_id = reply.json()["jobId"]

        def result() -> dict[str, object] | None:
            got = requests.get(
                base + f"{SEED}/jobs/results?maxResults=50", headers=h1, timeout=10
            ).json()
            return next((r for r in got["results"] if r["JobID"] == job_id), None)

        r = wait_for(result, 30, "the job's result")
        assert r["Success"] is True and r["ExecutionMode"] == "MainLoop"
        assert r["Output"] == "=== PSWebHost Memory Analysis ===\n"

        # the second user sees nothing of the first
        theirs = requests.get(base + f"{SEED}/jobs/results", headers=h2, timeout=10).json()
        assert theirs == {"success": True, "count": 0, "results": []}
        stolen = requests.delete(
            base + f"{SEED}/jobs/results", params={"jobId": job_id}, headers=h2, timeout=10
        )
        assert stolen.status_code == 404 and stolen.json()["success"] is False
        native = requests.get(base + f"/opsjobs/api/v1/jobs/{job_id}", headers=h2, timeout=10)
        assert native.status_code == 404

        deleted = requests.delete(
            base + f"{SEED}/jobs/results", params={"jobId": job_id}, headers=h1, timeout=10
        )
        assert deleted.json() == {"success": True, "message": "Job result deleted successfully"}
        assert result() is None

        # a job still running at Ctrl-C is told to stop and marked; nothing stays running
        body = {
            "jobName": "busy",
            "command": "import time\nwhile True: time.sleep(0.05)",
            "executionMode": "Runspace",
        }
        busy = requests.post(base + f"{SEED}/jobs/submit", headers=h1, json=body, timeout=10)
        busy_id = busy.json()["jobId"]
        wait_for(
            lambda: (
                requests.get(base + f"{SEED}/jobs", headers=h1, timeout=10).json()["jobs"][0][
                    "Status"
                ]
                == "running"
            ),
            30,
            "the busy job to run",
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise AssertionError(f"opsjobs serve did not stop on SIGINT:\n{out[-3000:]}") from None
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    with client_for(settings) as client:
        job = client.get(busy_id)
        assert job.state is JobState.FAILED and "stopped" in (job.error or "")
        (worker,) = client.store.workers()
        assert worker.stopped_at is not None


def test_serve_refuses_a_bad_port(tmp_path: Path) -> None:
    done = run_cli(settings_for(tmp_path), "serve", "--port", "70000")
    assert done.returncode == 2 and done.stderr.startswith("opsjobs: error:"), done.stderr


def test_keys_cli_create_list_revoke(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    key = make_key(settings, "k@localhost", "debug")
    listed = json.loads(run_cli(settings, "keys", "list", "--json").stdout)
    assert [(k["email"], k["roles"], k["revoked_at"]) for k in listed] == [
        ("k@localhost", ["debug"], None)
    ]
    assert key not in run_cli(settings, "keys", "list").stdout  # secrets are never shown again
    done = run_cli(settings, "keys", "revoke", listed[0]["prefix"])
    assert done.returncode == 0, done.stderr
    assert json.loads(run_cli(settings, "keys", "list", "--json").stdout)[0]["revoked_at"]
    bad = run_cli(settings, "keys", "create", "--email", "x@y", "--roles", "root")
    assert bad.returncode == 2 and "unknown role" in bad.stderr
