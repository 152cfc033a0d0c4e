"""The default ``memory-analysis`` schedule: idempotent, re-aimed, and runnable in a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import client_for, settings_for

from opsjobs import JobState, Worker, WorkerHandle
from opsjobs.analyzer.job import JOB_NAME, RESULT_MARK, TARGET
from opsjobs.analyzer.schedule import ensure_schedule
from opsjobs.errors import ValidationError


def test_ensure_schedule_is_idempotent_and_follows_the_worker(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with client_for(settings) as client:
        first = ensure_schedule(client, "w1", top_count=7)
        assert first.name == "memory-analysis" and first.every_seconds == 1800
        spec = first.spec
        assert (spec.name, spec.kind, spec.mode.value, spec.queue) == (
            JOB_NAME,
            "call",
            "thread",
            "worker:w1",
        )
        assert spec.payload["target"] == TARGET and spec.payload["kwargs"]["top_count"] == 7
        # the scheduled analysis runs under the budget README states (10 s)
        assert spec.payload["kwargs"]["time_budget"] == 10.0
        again = ensure_schedule(client, "w1", top_count=7)
        assert again.id == first.id and again.updated_at == first.updated_at
        assert [s.name for s in client.schedules.list()] == ["memory-analysis"]

        client.schedules.pause("memory-analysis")
        moved = ensure_schedule(client, "w2", top_count=7)  # the worker restarted
        assert moved.id == first.id and moved.spec.queue == "worker:w2"
        assert not moved.enabled  # the operator's pause is kept
        assert len(client.schedules.list()) == 1

        with pytest.raises(ValidationError):
            ensure_schedule(client, "w1", top_count=0)
        with pytest.raises(ValidationError):
            ensure_schedule(client, "worker:w1")


def test_a_users_schedule_of_the_same_name_is_left_alone(tmp_path: Path) -> None:
    """Names are per owner: a user's "memory-analysis" neither blocks nor becomes the
    server's own analysis schedule."""
    with client_for(settings_for(tmp_path)) as client:
        theirs = client.schedules.add(
            "memory-analysis", every=60, command="pass", owner="u@example.org"
        )
        own = ensure_schedule(client, "w1")
        assert own.id != theirs.id and own.spec.owner != "u@example.org"
        assert ensure_schedule(client, "w1").id == own.id
        assert client.schedules.get(theirs.id).spec.payload == {"source": "pass"}


@pytest.mark.slow
def test_scheduled_analysis_runs_in_the_target_worker(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with client_for(settings) as client:
        handle = WorkerHandle(Worker(client.store, settings, threads=1))
        try:
            ensure_schedule(client, handle.id, every="30m", top_count=3)
            job = client.schedules.run_now("memory-analysis")
            done = client.wait(job.id, timeout=120)
        finally:
            handle.stop()
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.worker_id == handle.id and done.result["analyzer"] == RESULT_MARK
