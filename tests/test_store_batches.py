"""Batched claims, ends and submits (issue 21): on every backend, and under concurrency on
PostgreSQL, where four stores claiming batches of 50 must never take a job twice."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from opsjobs.model import JobSpec, JobState
from opsjobs.store import End, Finish, Store

T0 = 1_800_000_000.0


def spec(name: str = "job", **kw: object) -> JobSpec:
    base: dict[str, object] = {"kind": "command", "payload": {"source": "pass"}}
    base.update(kw)
    return JobSpec(name=name, **base).validated()  # type: ignore[arg-type]


def test_submit_many_keeps_order_and_every_field(store: Store) -> None:
    specs = [spec(f"j{i}", priority=i % 3, timeout=i or None, retries=i % 2) for i in range(7)]
    specs.append(spec("other", queue="elsewhere", owner="ann", description="d"))
    jobs = store.submit_many(specs, now=T0)
    assert [j.spec for j in jobs] == specs
    assert len({j.id for j in jobs}) == len(specs)
    for job in jobs:
        got = store.get(job.id)
        assert got.spec == job.spec and got.state is JobState.QUEUED and got.submitted_at == T0
    assert store.submit_many([], now=T0) == []


def test_batch_claim_takes_the_best_in_order_each_with_a_lease(store: Store) -> None:
    low = store.submit_many([spec(f"low{i}") for i in range(5)], now=T0)
    high = store.submit(spec("high", priority=9), now=T0 + 1)
    _, jobs = store.finish_and_claim_many(
        (), worker_id="w1", host="h1", queues=["default"], now=T0 + 5, lease=30, want=4
    )
    assert [j.id for j in jobs] == [high.id] + [j.id for j in low[:3]]
    for job in jobs:
        assert job.state is JobState.RUNNING and job.worker_id == "w1" and job.attempt == 1
        assert job.lease_until == T0 + 35
    ends = [End(j.id, j.attempt, Finish(JobState.SUCCEEDED), T0 + 6) for j in jobs]
    stale = End(low[4].id, 1, Finish(JobState.SUCCEEDED), T0 + 6)  # not running: refused
    accepted, more = store.finish_and_claim_many(
        [*ends, stale], worker_id="w1", host="h1", queues=["default"], now=T0 + 7, lease=30, want=5
    )
    assert accepted == [True] * 4 + [False]
    assert [j.id for j in more] == [j.id for j in low[3:]]
    assert all(store.get(j.id).state is JobState.SUCCEEDED for j in jobs)


def _claim_until_empty(
    store: Store, worker: str, want: int, taken: list[str], errors: list[BaseException]
) -> None:
    try:
        ends: list[End] = []
        idle = 0
        while idle < 3:
            _, jobs = store.finish_and_claim_many(
                ends,
                worker_id=worker,
                host=worker,
                queues=["default"],
                now=time.time(),
                lease=60,
                want=want,
            )
            taken.extend(j.id for j in jobs)
            ends = [End(j.id, j.attempt, Finish(JobState.SUCCEEDED), time.time()) for j in jobs]
            idle = 0 if jobs else idle + 1
        if ends:
            store.finish_and_claim_many(
                ends, worker_id=worker, host=worker, queues=[], now=time.time(), lease=60, want=0
            )
    except BaseException as exc:  # reported by the test
        errors.append(exc)


@pytest.mark.postgres
def test_four_stores_claiming_batches_of_50_never_take_a_job_twice() -> None:
    from pg import schema_store

    from opsjobs.store.postgres import PostgresStore

    first = schema_store()
    stores = [first] + [PostgresStore(first.url) for _ in range(3)]
    try:
        n = 10_000
        for lo in range(0, n, 2_000):
            first.submit_many([spec(f"j{i}") for i in range(lo, lo + 2_000)], now=T0 + lo)
        taken: list[list[str]] = [[] for _ in stores]
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=_claim_until_empty, args=(s, f"w{k}", 50, taken[k], errors))
            for k, s in enumerate(stores)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors
        every = [job_id for part in taken for job_id in part]
        twice = [job_id for job_id, c in Counter(every).items() if c > 1]
        assert twice == [] and len(every) == n
        assert sum(1 for part in taken if part) >= 2  # they did run side by side
        rows = first._read(
            "check", "SELECT state, max(attempt) AS a, count(*) AS n FROM jobs GROUP BY state"
        )
        assert [(r["state"], r["a"], r["n"]) for r in rows] == [("succeeded", 1, n)]
    finally:
        for s in reversed(stores):
            s.close()
