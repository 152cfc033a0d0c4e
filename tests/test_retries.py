"""Retry on failure with backoff (issue 17 point 1): a real worker on a real store (SQLite file,
PostgreSQL schema) runs a job that fails, waits without holding a thread, and runs it again."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import TESTS, settings_for, wait_for

import opsjobs
from opsjobs.client import Client
from opsjobs.config import Settings
from opsjobs.model import JobSpec, JobState, attempts_of
from opsjobs.retry import JITTER, next_attempt_at, retry_delay
from opsjobs.store import open_store

WORKER_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=WORKER_BACKENDS)
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Client, Settings]]:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    # a long poll: a retry is run on time only if the worker wakes for its due time
    settings = settings_for(tmp_path, poll_interval=60.0)
    if request.param == "postgres":
        from pg import schema_store

        store = schema_store()
    else:
        store = open_store(
            settings.store_url, runtime_dir=settings.runtime_dir, data_dir=settings.data_dir
        )
    client = Client(store, settings)
    handle = opsjobs.embed(store=store, settings=settings, threads=2)
    yield client, settings
    handle.stop(timeout=120)
    client.close()


def _submit_flaky(client: Client, tmp_path: Path, failures: int, **kw: object) -> opsjobs.Job:
    counter = tmp_path / "calls.txt"
    return client.submit(
        "flaky",
        call="jobfuncs:flaky",
        kwargs={"path": str(counter), "failures": failures},
        **kw,  # type: ignore[arg-type]
    )


def test_fails_twice_then_succeeds_with_three_attempts_and_growing_delays(
    env: tuple[Client, Settings], tmp_path: Path
) -> None:
    client, _ = env
    job = _submit_flaky(client, tmp_path, 2, retries=3, retry_delay="1s", retry_backoff=2)
    done = client.wait(job.id, timeout=60)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.attempt == 3 and done.result == 3
    attempts = client.attempts(job.id)
    assert [(a.attempt, a.state) for a in attempts] == [
        (1, JobState.FAILED),
        (2, JobState.FAILED),
        (3, JobState.SUCCEEDED),
    ]
    # each attempt keeps its own output, error and timing
    assert "call 1" in attempts[0].output and "flaky failure 1" in (attempts[0].error or "")
    assert "call 2" in attempts[1].output and "flaky failure 2" in (attempts[1].error or "")
    assert "call 3" in attempts[2].output and attempts[2].error is None
    for a in attempts:
        assert a.started_at is not None and a.finished_at is not None and a.runtime is not None
    waits = [
        attempts[i + 1].started_at - attempts[i].finished_at  # type: ignore[operator]
        for i in range(2)
    ]
    # 1 s then 2 s, each within the jitter (and a little scheduling slack after it)
    assert 1 - JITTER - 0.01 <= waits[0] <= 1 + JITTER + 0.5, waits
    assert 2 * (1 - JITTER) - 0.01 <= waits[1] <= 2 * (1 + JITTER) + 0.5, waits
    assert waits[1] > waits[0]


def test_always_failing_job_ends_failed_after_four_attempts(
    env: tuple[Client, Settings], tmp_path: Path
) -> None:
    client, _ = env
    job = _submit_flaky(
        client, tmp_path, -1, retries=3, retry_delay=0.05, retry_backoff=2, retry_max=0.1
    )
    done = client.wait(job.id, timeout=60)
    assert done.state is JobState.FAILED
    assert done.attempt == 4 and "flaky failure 4" in (done.error or "")
    attempts = client.attempts(job.id)
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert all(a.state is JobState.FAILED for a in attempts)
    assert (tmp_path / "calls.txt").read_text() == "4"


def test_cancel_during_the_wait_ends_the_job_at_once(
    env: tuple[Client, Settings], tmp_path: Path
) -> None:
    client, _ = env
    job = _submit_flaky(client, tmp_path, -1, retries=3, retry_delay="1h", retry_max="2h")
    waiting = wait_for(
        lambda: (j := client.get(job.id)).state is JobState.QUEUED and j.attempt == 1 and j,
        what="the first attempt to fail and the job to wait",
    )
    assert waiting.run_after is not None and waiting.run_after > time.time() + 3000
    assert "attempt 2 of 4" in (waiting.error or "")
    t0 = time.monotonic()
    cancelled = client.cancel(job.id)
    assert time.monotonic() - t0 < 5
    assert cancelled.state is JobState.CANCELLED
    assert "waiting for attempt 2" in (cancelled.error or "")
    assert client.get(job.id).state is JobState.CANCELLED
    attempts = client.attempts(job.id)
    assert [(a.attempt, a.state) for a in attempts] == [(1, JobState.FAILED)]
    assert (tmp_path / "calls.txt").read_text() == "1"  # no more attempts


def test_a_waiting_retry_holds_no_worker_thread(
    env: tuple[Client, Settings], tmp_path: Path
) -> None:
    client, _ = env
    job = _submit_flaky(client, tmp_path, -1, retries=3, retry_delay="1h", retry_max="2h")
    wait_for(
        lambda: (j := client.get(job.id)).state is JobState.QUEUED and j.attempt == 1,
        what="the first attempt to fail and the job to wait",
    )
    # the worker has 2 threads: both jobs run at once only if the waiting job holds neither
    meet = str(tmp_path / "meet")
    pair = [
        client.submit(
            f"pair-{i}", call="jobfuncs:rendezvous", kwargs={"folder": meet, "parties": 2}
        )
        for i in range(2)
    ]
    for p in pair:
        assert client.wait(p.id, timeout=60).state is JobState.SUCCEEDED
    assert client.get(job.id).state is JobState.QUEUED
    client.cancel(job.id)


def test_timed_out_attempt_is_retried_and_retry_on_limits_it(
    env: tuple[Client, Settings], tmp_path: Path
) -> None:
    client, _ = env
    job = client.submit(
        "slow",
        call="jobfuncs:cooperative_sleep",
        kwargs={"seconds": 30},
        timeout=0.2,
        retries=1,
        retry_delay=0.05,
    )
    done = client.wait(job.id, timeout=60)
    assert done.state is JobState.TIMED_OUT and done.attempt == 2
    only_failed = client.submit(
        "slow-once",
        call="jobfuncs:cooperative_sleep",
        kwargs={"seconds": 30},
        timeout=0.2,
        retries=2,
        retry_delay=0.05,
        retry_on=["failed"],
    )
    done = client.wait(only_failed.id, timeout=60)
    assert done.state is JobState.TIMED_OUT and done.attempt == 1


# -- the policy alone -----------------------------------------------------------------------
def _spec(**kw: object) -> JobSpec:
    return JobSpec("p", "command", {"source": "pass"}, **kw).validated()  # type: ignore[arg-type]


def test_delay_grows_by_the_backoff_within_the_jitter_up_to_the_cap() -> None:
    spec = _spec(retries=10, retry_delay=10.0, retry_backoff=2.0, retry_max=60.0)
    for key in ("a", "b", "c"):
        delays = [retry_delay(spec, n, key=key) for n in range(1, 7)]
        for n, d in enumerate(delays[:3], start=1):
            base = 10.0 * 2 ** (n - 1)
            assert base * (1 - JITTER) <= d <= base * (1 + JITTER)
        assert all(60 * (1 - JITTER) <= d <= 60.0 for d in delays[3:])
        assert delays == [retry_delay(spec, n, key=key) for n in range(1, 7)]  # reproducible


def test_policy_says_no_to_success_cancel_lost_and_the_last_attempt() -> None:
    spec = _spec(retries=2, retry_delay=1.0)
    job = opsjobs.Job("id", spec, JobState.RUNNING, 0.0, attempt=1)
    assert next_attempt_at(job, JobState.FAILED, now=100.0) is not None
    assert next_attempt_at(job, JobState.TIMED_OUT, now=100.0) is not None
    for state in (JobState.SUCCEEDED, JobState.CANCELLED, JobState.LOST):
        assert next_attempt_at(job, state, now=100.0) is None
    job.attempt = 3
    assert next_attempt_at(job, JobState.FAILED, now=100.0) is None
    none = opsjobs.Job("id", _spec(), JobState.RUNNING, 0.0, attempt=1)
    assert next_attempt_at(none, JobState.FAILED, now=100.0) is None  # retries = 0


@pytest.mark.parametrize(
    "field, value",
    [
        ("retry_delay", -1.0),
        ("retry_backoff", 0.5),
        ("retry_max", float("nan")),
        ("retry_on", ["lost"]),
        ("retry_on", ["succeeded"]),
    ],
)
def test_invalid_policy_is_refused(field: str, value: object) -> None:
    with pytest.raises(opsjobs.ValidationError):
        _spec(**{field: value})


def test_attempts_of_a_waiting_job_are_the_kept_ones_only() -> None:
    spec = _spec(retries=2)
    job = opsjobs.Job("id", spec, JobState.QUEUED, 0.0, attempt=1)
    assert attempts_of(job, []) == []


def test_next_attempt_keeps_its_deadline_while_the_last_one_still_runs(
    env: tuple[Client, Settings],
) -> None:
    # attempt 1 overruns its timeout (thread code cannot be killed) and ends only after
    # attempt 2 started on the same worker: its end must not make the worker forget attempt 2
    client, _ = env
    job = client.submit(
        "stubborn",
        command="import time; time.sleep(0.6)",
        timeout=0.4,
        retries=1,
        retry_delay=0.05,
        retry_max=0.05,
    )
    done = client.wait(job.id, timeout=60)
    assert done.attempt == 2 and done.state is JobState.TIMED_OUT, done


@pytest.mark.parametrize("backend", WORKER_BACKENDS)
def test_an_idle_worker_wakes_for_a_retry_another_worker_queued(
    backend: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, poll_interval=60.0)
    if backend == "postgres":
        from pg import schema_store

        store = schema_store()
    else:
        store = open_store(
            settings.store_url, runtime_dir=settings.runtime_dir, data_dir=settings.data_dir
        )
    client = Client(store, settings)
    try:
        job = client.submit("elsewhere", command="pass", retries=1)
        taken = store.claim("w-other", "h-other", ["default"], now=time.time(), lease=60)
        assert taken is not None and taken.id == job.id
        with opsjobs.embed(store=store, settings=settings, threads=1) as handle:
            wait_for(lambda: any(w.id == handle.id for w in store.workers()), 20, "the worker")
            due = time.time() + 0.5
            assert store.requeue_after(
                job.id,
                "w-other",
                1,
                opsjobs.store.Finish(JobState.FAILED, error="x"),
                now=time.time(),
                run_after=due,
                note="retry",
            )
            done = client.wait(job.id, timeout=30)
            assert done.state is JobState.SUCCEEDED and done.attempt == 2
            assert done.worker_id == handle.id
            assert due <= (done.started_at or 0) <= due + 2.0
    finally:
        client.close()
