"""Retries seen from every door (issue 17 point 1): REST (a real server with its worker on a
SQLite file), the CLI (a real ``opsjobs`` process on the same store) and the dashboard's data
layer and detail view show each attempt of a job that failed twice, then succeeded."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ROOT, cli_env, client_for, run_cli, settings_for, start_worker, wait_for
from server_harness import ServerThread, failed, finished, valid

from opsjobs.auth import Auth
from opsjobs.dashboard.data import DashboardData
from opsjobs.dashboard.render import detail_html
from opsjobs.server.openapi import API

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path).start()
    yield s
    s.stop()


def test_rest_cli_and_dashboard_show_the_attempts(server: ServerThread, tmp_path: Path) -> None:
    email = f"ann-{uuid.uuid4().hex[:6]}@example.org"
    ann_key = server.key(email, "debug")
    ann = server.api(ann_key)
    other = server.api(server.key("bob@example.org", "debug"))
    body = {
        "name": "flaky",
        "call": "jobfuncs:flaky",
        "kwargs": {"path": str(tmp_path / "calls.txt"), "failures": 2},
        "retries": 3,
        "retry_delay": "0.1",
        "retry_backoff": 2,
        "retry_max": "10m",
    }
    job = valid(ann.post(f"{API}/jobs", json=body), "JobReply", 201)["job"]
    assert (job["retries"], job["retry_delay"], job["retry_backoff"]) == (3, 0.1, 2.0)
    assert job["retry_max"] == 600.0 and job["retry_on"] == ["failed", "timed_out"]
    done = finished(ann, job["id"])
    assert done["state"] == "succeeded" and done["attempt"] == 3

    # REST: the sub-route, scoped to who may see the job
    attempts = valid(ann.get(f"{API}/jobs/{job['id']}/attempts"), "AttemptList")["attempts"]
    assert [(a["attempt"], a["state"]) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    assert "flaky failure 1" in attempts[0]["error"] and "call 2" in attempts[1]["output"]
    failed(other.get(f"{API}/jobs/{job['id']}/attempts"), 404)
    failed(ann.get(f"{API}/jobs/not-a-uuid/attempts"), 422)
    for bad in ({"retry_backoff": 0.5}, {"retry_delay": "soon"}, {"retry_on": ["lost"]}):
        failed(ann.post(f"{API}/jobs", json={**body, **bad}), 422)

    # CLI: show lists the attempts, --json carries them
    settings = settings_for(tmp_path)
    shown = run_cli(settings, "show", job["id"])
    assert shown.returncode == 0, shown.stderr
    assert "--- attempts ---" in shown.stdout
    assert "--- output of attempt 1 ---" in shown.stdout and "call 1" in shown.stdout
    data = json.loads(run_cli(settings, "show", job["id"], "--json").stdout)
    assert [a["state"] for a in data["attempts"]] == ["failed", "failed", "succeeded"]

    # dashboard: the data layer and the detail view
    with client_for(settings) as client:
        dash = DashboardData(client, Auth(client.store).authenticate(ann_key))
        seen = dash.job(job["id"])
        listed = dash.attempts(seen)
        assert [a.attempt for a in listed] == [1, 2, 3]
        html = detail_html(seen, attempts=listed)
        assert html.count('data-attempt="') == 3 and "flaky failure 2" in html


def test_cli_submit_takes_the_retry_options(server: ServerThread, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    counter = tmp_path / "cli-calls.txt"
    args = ["submit", "--name", "cli-flaky", "--call", "jobfuncs:flaky"]
    args += ["--kwargs", json.dumps({"path": str(counter), "failures": 1})]
    args += ["--retries", "2", "--retry-delay", "0.1", "--retry-backoff", "3", "--retry-max", "1m"]
    out = run_cli(settings, *args)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip()
    with client_for(settings) as client:
        done = wait_for(lambda: (j := client.get(job_id)).finished and j, 60, "the job")
        assert done.state.value == "succeeded" and done.attempt == 2
        assert (done.spec.retry_delay, done.spec.retry_backoff, done.spec.retry_max) == (
            0.1,
            3.0,
            60.0,
        )
    bad = run_cli(settings, "submit", "--name", "x", "--command", "pass", "--retry-delay", "soon")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    bad = run_cli(settings, "submit", "--name", "x", "--command", "pass", "--retry-on", "lost")
    assert bad.returncode != 0 and "retry_on" in bad.stderr


def test_the_readme_retries_example_runs_as_written(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    start = text.index("### Retries")
    (block,) = re.findall(r"```bash\n(.*?)```", text[start : text.index("\n### ", start + 5)], re.S)
    lines = [ln for ln in block.replace("\\\n", " ").splitlines() if ln and ln[0] != "#"]
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = start_worker(settings)
    try:
        script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
        done = subprocess.run(
            ["bash", "-c", script],
            env=cli_env(settings),
            cwd=settings.data_dir.parent,  # the worker's folder too
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "once-flaky" in done.stdout and "succeeded" in done.stdout.lower()
        with client_for(settings) as client:
            (job,) = client.results(exact_name="once-flaky")
            assert [a.state.value for a in client.attempts(job.id)] == ["failed", "succeeded"]
    finally:
        worker.terminate()
        worker.communicate(timeout=60)
