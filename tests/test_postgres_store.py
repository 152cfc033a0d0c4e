"""PostgreSQL-only behaviour: concurrent claimers and openers, LISTEN/NOTIFY across stores,
recovery from killed connections. The shared contract lives in test_store_contract.py."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from pg import BASE_URL, isolated_schema

from opsjobs.errors import StoreError
from opsjobs.model import JobSpec, JobState
from opsjobs.store import Finish, open_store
from opsjobs.store.postgres import PostgresStore, channel_for
from opsjobs.store.sql import load_migrations

pytestmark = pytest.mark.postgres

T0 = 1_800_000_000.0


def spec(name: str = "job") -> JobSpec:
    return JobSpec(name=name, kind="command", payload={"source": "pass"}).validated()


@pytest.fixture
def url() -> Iterator[str]:
    with isolated_schema() as schema_url:
        yield schema_url


LATEST = load_migrations("postgres")[-1][0]


def test_open_store_routes_postgres_urls(url: str) -> None:
    with open_store(url) as store:
        assert isinstance(store, PostgresStore)
        assert store.schema.startswith("opsjobs_t_")
        assert store.channel == f"opsjobs_jobs_{store.schema}"
        assert store.schema_version() == LATEST


def test_channel_names() -> None:
    assert channel_for("public") == "opsjobs_jobs"
    assert channel_for("a") == "opsjobs_jobs_a"
    assert len(channel_for("x" * 63)) <= 63


def test_concurrent_openers_migrate_once(url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            s = PostgresStore(url, max_size=2)
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            stores.append(s)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert len(stores) == 4
        assert {s.schema_version() for s in stores} == {LATEST}
        rows = stores[0]._read("versions", "SELECT version FROM opsjobs_schema_version")
        assert sorted(r["version"] for r in rows) == [v for v, _, _ in load_migrations("postgres")]
    finally:
        for s in stores:
            s.close()


def test_concurrent_claimers_never_share_a_job(url: str) -> None:
    with PostgresStore(url) as submitter:
        ids = {submitter.submit(spec(f"j{i}"), now=T0 + i).id for i in range(500)}
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def drain(worker: str) -> None:
        got: list[str] = []
        try:
            with PostgresStore(url, max_size=2) as store:
                start.wait()
                while (
                    job := store.claim(worker, "h", ["default"], now=T0 + 1e3, lease=30)
                ) is not None:
                    assert job.worker_id == worker and job.attempt == 1
                    got.append(job.id)
        except BaseException as exc:
            errors.append(exc)
        claimed[worker] = got

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    everything = [job_id for got in claimed.values() for job_id in got]
    assert len(everything) == len(set(everything)) == 500
    assert set(everything) == ids
    assert sum(1 for got in claimed.values() if got) > 1, "only one claimer got work"
    with PostgresStore(url) as check:
        for worker, got in claimed.items():
            for job_id in got[:5]:
                job = check.get(job_id)
                assert job.state is JobState.RUNNING and job.worker_id == worker


def test_waiter_wakes_on_submit_from_another_store(url: str) -> None:
    with PostgresStore(url) as listener, PostgresStore(url) as submitter:
        waiter = listener.waiter("w1")
        try:
            assert not waiter.wait(0.01)
            timer = threading.Timer(0.1, lambda: submitter.submit(spec(), now=T0))
            started = time.monotonic()
            timer.start()
            assert waiter.wait(5.0)
            elapsed = time.monotonic() - started
            timer.join()
            assert elapsed < 1.0
        finally:
            waiter.close()


def test_waiter_is_woken_by_cancel(url: str) -> None:
    with PostgresStore(url) as store:
        job = store.submit(spec(), now=T0)
        waiter = store.waiter("w1")
        try:
            assert not waiter.wait(0.01)
            store.request_cancel(job.id, now=T0 + 1)
            assert waiter.wait(1.0)
        finally:
            waiter.close()


def test_stores_in_other_schemas_do_not_wake_each_other(url: str) -> None:
    with (
        isolated_schema() as other_url,
        PostgresStore(url) as mine,
        PostgresStore(other_url) as other,
    ):
        waiter = mine.waiter("w1")
        try:
            other.submit(spec(), now=T0)
            assert not waiter.wait(0.3)
            assert mine.claim("w1", "h", ["default"], now=T0, lease=30) is None
        finally:
            waiter.close()


def _terminate(app: str) -> int:
    """Kill every backend of application ``app`` from a separate connection."""
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (app,),
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize("check", [True, False], ids=["pool-check", "retry-only"])
def test_recovers_from_terminated_connections(url: str, check: bool) -> None:
    # Unique per run: CI runs this file on three interpreters at once against one server, and a
    # shared name let one run terminate the other's backends (it then found none of its own).
    app = f"opsjobs-kill-{check}-{uuid.uuid4().hex[:8]}"
    with PostgresStore(f"{url}&application_name={app}", check=check) as store:
        waiter = store.waiter("w1")
        try:
            first = store.submit(spec("before"), now=T0)
            assert store.get(first.id).state is JobState.QUEUED
            # Take the submit's notification first: left in the waiter's buffer it would be
            # the first wake-up below, and the reconnect's one a surplus (a race: seen on 3.10).
            assert waiter.wait(5.0)
            assert _terminate(app) >= 2  # the pool's connection(s) and the waiter's

            job = store.submit(spec("after"), now=T0 + 1)
            claimed = store.claim("w1", "h", ["default"], now=T0 + 2, lease=30)
            assert claimed is not None and claimed.id == first.id
            assert store.get(job.id).state is JobState.QUEUED
            assert store.finish(first.id, "w1", 1, Finish(JobState.SUCCEEDED), now=T0 + 3)

            # The broken listener reports a wake-up (re-check the queue), then reconnects,
            # reporting one more (notifications may have been missed meanwhile) ...
            assert waiter.wait(1.0)
            assert waiter.wait(1.0)
            # ... and is back to normal: quiet until a submit, woken by one.
            assert not waiter.wait(0.05)
            store.submit(spec("wake"), now=T0 + 4)
            assert waiter.wait(1.0)
        finally:
            waiter.close()


def test_errors_are_store_errors(url: str) -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/test", timeout=0.5, connect_timeout=1)
    store = PostgresStore(url)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get("x")


def test_a_row_that_cannot_be_read_fails_its_job_at_claim(url: str) -> None:
    # a mode this version does not know (jsonb keeps the payload valid): the claim fails that
    # job with the reason and takes the next one, in claim and in finish_and_claim
    with open_store(url) as store:
        bad = [store.submit(spec(f"bad{n}"), now=T0 + n) for n in range(2)]
        good = [store.submit(spec(f"good{n}"), now=T0 + 10 + n) for n in range(2)]
        with psycopg.connect(url, autocommit=True) as raw:
            raw.execute("UPDATE jobs SET mode = 'gpu' WHERE id = ANY(%s)", ([j.id for j in bad],))
        first = store.claim("w1", "host", ["default"], now=T0 + 100, lease=30.0)
        assert first is not None and first.id == good[0].id
        store.submit(spec("bad2"), now=T0 + 5)  # queued ahead of good[1]
        with psycopg.connect(url, autocommit=True) as raw:
            raw.execute("UPDATE jobs SET mode = 'gpu' WHERE name = 'bad2'")
        accepted, second = store.finish_and_claim(
            first.id,
            "w1",
            first.attempt,
            Finish(JobState.SUCCEEDED),
            now=T0 + 101,
            host="host",
            queues=["default"],
            lease=30.0,
        )
        assert accepted and second is not None and second.id == good[1].id
        with psycopg.connect(url) as raw:
            rows = raw.execute(
                "SELECT name, state, error FROM jobs WHERE mode = 'gpu' ORDER BY name"
            ).fetchall()
        assert [(n, s) for n, s, _ in rows] == [
            ("bad0", "failed"),
            ("bad1", "failed"),
            ("bad2", "failed"),
        ]
        assert all("cannot be read" in e and "KeyError: 'gpu'" in e for _, _, e in rows)


def test_a_claimed_job_is_the_job_as_stored(url: str) -> None:
    # the claim returns only the columns a worker needs (the rest it knows, or a queued job
    # does not have yet): the job it builds is the stored one, a retry's note included
    full = JobSpec(
        name="full",
        kind="command",
        payload={"source": "print(1)", "nested": {"k": [1, 2]}},
        description="all fields",
        owner="alice",
        priority=3,
        timeout=12.5,
        retries=2,
        retry_delay=1.0,
        retry_backoff=3.0,
        retry_max=30.0,
    ).validated()
    with PostgresStore(url) as store:
        job = store.submit(full, now=T0)
        _, (claimed,) = store.finish_and_claim_many(
            (), worker_id="w1", host="h1", queues=["default"], now=T0 + 1, lease=30.0, want=5
        )
        assert claimed == store.get(job.id)
        assert store.requeue_after(
            job.id,
            "w1",
            1,
            Finish(JobState.FAILED, error="boom"),
            now=T0 + 2,
            run_after=T0 + 3,
            note="attempt 1 failed: boom",
        )
        _, (again,) = store.finish_and_claim_many(
            (), worker_id="w2", host="h2", queues=["default"], now=T0 + 4, lease=30.0, want=5
        )
        stored = store.get(job.id)
        assert again.attempt == 2 and again.error == "attempt 1 failed: boom"
        assert again == dataclasses.replace(stored, run_after=None)


def test_a_retried_claim_takes_the_jobs_its_lost_first_run_claimed(url: str) -> None:
    # a claim whose reply was lost after its commit is run again by _adopt (the retry of
    # _run): it returns the jobs the first run took, and the ends it recorded as accepted
    from opsjobs.store.base import End
    from opsjobs.store.postgres import _many_params

    with PostgresStore(url) as store:
        ids = [store.submit(spec(f"j{i}"), now=T0 + i).id for i in range(4)]
        first = store.claim("w1", "h", ["default"], now=T0 + 10, lease=30.0)
        assert first is not None and first.id == ids[0]
        end = End(first.id, first.attempt, Finish(JobState.SUCCEEDED), T0 + 11)
        accepted, taken = store.finish_and_claim_many(
            (end,), worker_id="w1", host="h", queues=["default"], now=T0 + 11, lease=30.0, want=2
        )
        assert accepted == [True] and [j.id for j in taken] == ids[1:3]
        params = _many_params((end,), "w1", "h", ["default"], T0 + 11, 30.0, 2)
        with store._pool.connection() as conn:
            rows = store._adopt(conn, params)
        assert sorted(r[1] for r in rows) == sorted(ids[1:3])
        assert all(r[0] == [first.id] for r in rows)
        again = [store._readable(r, "w1", "h", T0 + 11, T0 + 41) for r in rows]
        assert sorted((j.id, j.attempt) for j in again if j) == sorted([(ids[1], 1), (ids[2], 1)])
        assert store.get(ids[3]).state is JobState.QUEUED


def test_a_batch_retried_after_a_lost_reply_is_stored_once_and_alike(url: str) -> None:
    # submit_many's first run is a COPY; its retry (the first may have committed before its
    # reply was lost) is the submit_jobs statement, which skips rows already there and
    # stores the rows a COPY stores
    from opsjobs.model import ResultQuery
    from opsjobs.store.postgres import _submit_params

    specs = [
        JobSpec(
            name=f"b{i}",
            kind="command",
            payload={"source": f"print({i})", "tab\there": "back\\slash\nline"},
            description="d\tescribed",
            owner="alice",
            priority=i % 3,
            timeout=None if i % 2 else 2.5,
            retries=i % 2,
        ).validated()
        for i in range(6)
    ]

    def rows(store: PostgresStore) -> list[dict[str, object]]:
        jobs = store.results(ResultQuery(sort="name", limit=100).validated())
        return [
            {k: v for k, v in j.to_dict().items() if k not in ("id", "submitted_at")} for j in jobs
        ]

    with PostgresStore(url) as store:
        copied = store.submit_many(specs[:3], now=T0)
        with store._pool.connection() as conn:
            params = _submit_params([j.id for j in copied], specs[:3], T0, store.channel)
            conn.execute(store._q["submit_jobs"], params)  # the retry after a committed COPY
            params = _submit_params([f"r{i}" for i in range(3)], specs[3:], T0, store.channel)
            conn.execute(store._q["submit_jobs"], params)  # a retry that stores the batch
        assert sorted(j.id for j in store.results(ResultQuery(limit=100).validated())) == sorted(
            [j.id for j in copied] + ["r0", "r1", "r2"]
        )
        retried = rows(store)[3:]
    with isolated_schema() as other, PostgresStore(other) as store:
        store.submit_many(specs[3:], now=T0)
        assert rows(store) == retried
        claimed = store.claim("w", "h", ["default"], now=T0 + 1, lease=30.0)
        assert claimed is not None and claimed.spec == specs[5]  # priority 2 first
