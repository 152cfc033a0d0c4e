"""The store's part of retries (issue 17 point 1), one suite over every backend (the ``store``
fixture: memory, SQLite, PostgreSQL): an attempt ended by a retry is kept, the job waits
queued until its ``run_after``, and cancel, delete and lease recovery keep their meaning."""

from __future__ import annotations

from pathlib import Path

from harness import settings_for

from opsjobs.client import Client
from opsjobs.model import JobSpec, JobState, WorkerInfo, attempts_of
from opsjobs.store import End, Finish, Store

T0 = 1_800_000_000.0


def spec(name: str = "job", **kw: object) -> JobSpec:
    base: dict[str, object] = {"kind": "command", "payload": {"source": "pass"}}
    base.update(kw)
    return JobSpec(name=name, **base).validated()  # type: ignore[arg-type]


def _fail_and_wait(store: Store, job_id: str, at: float, until: float) -> None:
    job = store.claim("w1", "h1", ["default"], now=at, lease=30)
    assert job is not None and job.id == job_id
    ok = store.requeue_after(
        job.id,
        "w1",
        job.attempt,
        Finish(JobState.FAILED, output=f"out {job.attempt}", error="boom", exit_code=2),
        now=at + 1,
        run_after=until,
        note="attempt failed; next at until",
    )
    assert ok


def test_policy_fields_roundtrip(store: Store) -> None:
    s = spec(
        "p", retries=3, retry_delay=1.5, retry_backoff=3.0, retry_max=30.0, retry_on=["failed"]
    )
    job = store.submit(s, now=T0)
    assert store.get(job.id).spec == s
    claimed = store.claim("w1", "h1", ["default"], now=T0 + 1, lease=30)
    assert claimed is not None and claimed.spec == s  # the worker sees the policy it applies
    many = store.submit_many([s, spec("q")], now=T0 + 2)
    assert store.get(many[0].id).spec == s
    assert store.get(many[1].id).spec.retry_on == (JobState.FAILED, JobState.TIMED_OUT)


def test_requeue_keeps_the_attempt_and_waits_until_due(store: Store) -> None:
    job = store.submit(spec("r", retries=2), now=T0)
    _fail_and_wait(store, job.id, T0 + 1, T0 + 100)
    waiting = store.get(job.id)
    assert waiting.state is JobState.QUEUED and waiting.run_after == T0 + 100
    assert waiting.attempt == 1 and waiting.worker_id is None and waiting.started_at is None
    assert waiting.error == "attempt failed; next at until" and waiting.output == ""
    (first,) = store.attempts(job.id)
    assert (first.attempt, first.state, first.exit_code) == (1, JobState.FAILED, 2)
    assert (first.output, first.error, first.worker_id, first.host) == ("out 1", "boom", "w1", "h1")
    assert (first.started_at, first.finished_at, first.runtime) == (T0 + 1, T0 + 2, 1.0)
    assert attempts_of(waiting, store.attempts(job.id)) == [first]
    # not due: no claim takes it, by any path; the next due time is known
    assert store.claim("w1", "h1", ["default"], now=T0 + 99, lease=30) is None
    _, jobs = store.finish_and_claim_many(
        [], worker_id="w1", host="h1", queues=["default"], now=T0 + 99, lease=30, want=5
    )
    assert jobs == []
    assert store.next_due(["default"], now=T0 + 99) == T0 + 100
    assert store.next_due(["other"], now=T0 + 99) is None
    assert store.next_due(["default"], now=T0 + 100) is None  # due now: nothing waits after
    # a job submitted later but due now goes first
    later = store.submit(spec("later"), now=T0 + 50)
    got = store.claim("w2", "h2", ["default"], now=T0 + 99, lease=30)
    assert got is not None and got.id == later.id
    again = store.claim("w2", "h2", ["default"], now=T0 + 100, lease=30)
    assert again is not None and again.id == job.id and again.attempt == 2
    accepted, _ = store.finish_and_claim_many(
        [End(job.id, 2, Finish(JobState.SUCCEEDED, output="out 2"), T0 + 103)],
        worker_id="w2",
        host="h2",
        queues=["default"],
        now=T0 + 103,
        lease=30,
        want=0,
    )
    assert accepted == [True]
    done = store.get(job.id)
    every = attempts_of(done, store.attempts(job.id))
    assert [(a.attempt, a.state, a.output) for a in every] == [
        (1, JobState.FAILED, "out 1"),
        (2, JobState.SUCCEEDED, "out 2"),
    ]
    assert every[1].worker_id == "w2" and every[1].started_at == T0 + 100


def test_requeue_only_from_the_owner_of_the_attempt(store: Store) -> None:
    job = store.submit(spec("o", retries=2), now=T0)
    claimed = store.claim("w1", "h1", ["default"], now=T0 + 1, lease=30)
    assert claimed is not None
    for worker, attempt in (("w2", 1), ("w1", 2)):
        assert not store.requeue_after(
            job.id,
            worker,
            attempt,
            Finish(JobState.FAILED),
            now=T0 + 2,
            run_after=T0 + 5,
            note="n",
        )
    assert store.get(job.id).state is JobState.RUNNING
    assert store.attempts(job.id) == []  # nothing half-written


def test_cancel_during_the_wait_ends_the_job_and_no_attempt_follows(store: Store) -> None:
    job = store.submit(spec("c", retries=3), now=T0)
    _fail_and_wait(store, job.id, T0 + 1, T0 + 3600)
    cancelled = store.request_cancel(job.id, now=T0 + 10)
    assert cancelled.state is JobState.CANCELLED and cancelled.finished_at == T0 + 10
    assert "waiting for attempt 2" in (cancelled.error or "")
    assert store.claim("w1", "h1", ["default"], now=T0 + 7200, lease=30) is None
    assert store.next_due(["default"], now=T0 + 11) is None
    assert [a.attempt for a in attempts_of(cancelled, store.attempts(job.id))] == [1]


def test_delete_and_purge_take_the_attempts(store: Store) -> None:
    one = store.submit(spec("d", retries=1), now=T0)
    two = store.submit(spec("e", retries=1), now=T0)
    for job in (one, two):
        _fail_and_wait(store, job.id, T0 + 1, T0 + 2)
        store.request_cancel(job.id, now=T0 + 3)
        assert len(store.attempts(job.id)) == 1
    store.delete(one.id)
    assert store.attempts(one.id) == []
    assert store.purge(T0 + 10) == [two.id]
    assert store.attempts(two.id) == []


def test_lease_recovery_keeps_the_lost_attempt(store: Store) -> None:
    store.register_worker(WorkerInfo("w1", "h", 1, ["default"], 4, T0, T0, 10))
    job = store.submit(spec("l", retries=1), now=T0)
    claimed = store.claim("w1", "h", ["default"], now=T0 + 1, lease=10)
    assert claimed is not None
    (recovered,) = store.recover_expired(now=T0 + 20)
    assert recovered.requeued
    (lost,) = store.attempts(job.id)
    assert lost.attempt == 1 and lost.state is JobState.LOST and lost.worker_id == "w1"
    again = store.claim("w2", "h", ["default"], now=T0 + 21, lease=10)
    assert again is not None and again.attempt == 2  # due at once: no run_after


def test_a_schedule_carries_the_policy_to_its_jobs(store: Store, tmp_path: Path) -> None:
    client = Client(store, settings_for(tmp_path))
    policy = {
        "retries": 2,
        "retry_delay": "30s",
        "retry_backoff": 3.0,
        "retry_max": "5m",
        "retry_on": ["timed_out"],
    }
    made = client.schedules.add("nightly", every=3600, command="pass", **policy)
    kept = store.get_schedule("nightly")
    assert kept.spec.retry_delay == 30.0 and kept.spec.retry_max == 300.0
    assert kept.spec.retry_on == (JobState.TIMED_OUT,) and kept.spec == made.spec
    assert kept.to_dict()["job"]["retry_on"] == ["timed_out"]
    job = client.schedules.run_now("nightly")
    got = store.get(job.id).spec
    assert (got.retries, got.retry_delay, got.retry_backoff, got.retry_max) == (2, 30.0, 3.0, 300.0)
    assert got.retry_on == (JobState.TIMED_OUT,)
