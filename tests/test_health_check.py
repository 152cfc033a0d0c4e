"""``notebooks/health_check.ipynb`` as a job: figures as metrics, a clear failure on a threshold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ROOT, client_for, settings_for

import opsjobs
from opsjobs import JobState
from opsjobs.client import Client

HEALTH = ROOT / "notebooks" / "health_check.ipynb"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = settings_for(tmp_path, poll_interval=60.0)
    with client_for(settings) as client, opsjobs.embed(store=client.store, settings=settings):
        yield client


def check(client: Client, mode: str, **parameters: object) -> opsjobs.Job:
    payload = {"path": str(HEALTH), "parameters": parameters}
    job = client.submit("health", kind="notebook", payload=payload, mode=mode)
    return client.wait(job.id, timeout=120)


@pytest.mark.slow
def test_healthy_host_records_every_figure(client: Client) -> None:
    job = check(client, "process", min_alive_workers=1)
    assert job.state is JobState.SUCCEEDED, job.error or job.output
    assert job.result["ok"] is True and job.result["problems"] == []
    figures = job.result["figures"]
    assert figures["workers_alive"] == 1
    assert figures["worker_rss_mb"] > 10  # this test process, measured by pid
    for name in ("disk_pct", "memory_pct", "cpu_pct", "store_mb", "oldest_queued_s"):
        points = client.store.metrics(f"health.{name}", job_id=job.id)
        assert [p.value for p in points] == [pytest.approx(figures[name])], name
    assert "healthy" in job.output


@pytest.mark.slow
def test_crossed_thresholds_fail_the_job_with_one_clear_message(client: Client) -> None:
    client.submit("stuck", command="print(1)", queue="nobody")
    job = check(client, "thread", max_store_mb=0.0, max_queued_age_s=0.0, min_alive_workers=5)
    assert job.state is JobState.FAILED
    error = job.error or ""
    assert (
        error.startswith("NotebookExecutionError: cell ") and "raised HealthCheckFailed: " in error
    )
    assert "store_mb " in error and "is above 0 MiB" in error
    assert "oldest_queued_s " in error and "workers_alive 1 is below 5" in error
    assert client.store.metrics("health.store_mb", job_id=job.id)  # recorded before failing
    assert (client.settings.outputs_dir / f"{job.id}.html").is_file()
