"""Migration 9 on a store with jobs made before it. PostgreSQL moves its queue and running set
into tables of their own (``queued_jobs``, ``running_jobs``) filled from the jobs of version 8:
every job is kept, queued ones are claimed in the same order, a waiting retry stays waiting, a
running job's worker can still end it and a running job whose lease lapsed is recovered. SQLite's
version 9 changes nothing, and its jobs are kept too."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg import isolated_schema

from opsjobs.model import JobSpec, JobState
from opsjobs.store import Finish
from opsjobs.store.postgres import PostgresStore
from opsjobs.store.sql import load_migrations, load_queries
from opsjobs.store.sqlite import SQLiteStore

T0 = 1_800_000_000.0
NOW = T0 + 100

#: Jobs of a version 8 store: (id, queue, priority, state, submitted, attempt, retries,
#: worker, lease_until, run_after).
OLD_JOBS = [
    ("q-low", "default", 0, "queued", T0 + 1, 0, 0, None, None, None),
    ("q-high", "default", 5, "queued", T0 + 2, 0, 0, None, None, None),
    ("q-old", "default", 0, "queued", T0 + 0, 0, 0, None, None, None),
    ("q-other", "gpu", 0, "queued", T0 + 3, 0, 0, None, None, None),
    ("retry-due", "default", 0, "queued", T0 + 4, 1, 3, None, None, NOW - 1),
    ("retry-later", "default", 0, "queued", T0 + 5, 1, 3, None, None, NOW + 50),
    ("run-live", "default", 0, "running", T0 + 6, 1, 0, "w-live", NOW + 60, None),
    ("run-lapsed", "default", 0, "running", T0 + 7, 1, 2, "w-dead", NOW - 5, None),
    ("done", "default", 0, "succeeded", T0 + 8, 1, 0, "w-live", None, None),
]
_INSERT = (
    "INSERT INTO jobs (id, name, owner, kind, payload, mode, queue, priority, state,"
    " submitted_at, attempt, retries, worker_id, host, started_at, lease_until, run_after,"
    " finished_at)"
    " VALUES ({p}, {p}, 'a@example.org', 'command', {payload}, 'thread', {p}, {p}, {p}, {p}, {p},"
    " {p}, {p}, {p}, {p}, {p}, {p}, {p})"
)


def _rows() -> list[tuple[object, ...]]:
    rows = []
    for job_id, queue, prio, state, sub, attempt, retries, worker, lease, after in OLD_JOBS:
        started = sub + 1 if worker else None
        finished = sub + 2 if state == "succeeded" else None
        host = "h1" if worker else None
        head = (job_id, job_id, queue, prio, state, sub, attempt, retries, worker, host)
        rows.append((*head, started, lease, after, finished))
    return rows


def postgres_v8() -> Iterator[PostgresStore]:
    with isolated_schema() as url:
        queries = load_queries("postgres")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(queries["schema_version_table"])
            for version, name, script in load_migrations("postgres"):
                if version <= 8:
                    conn.execute(script.encode())
                    conn.execute(queries["record_migration"], {"version": version, "name": name})
            insert = _INSERT.format(p="%s", payload='\'{"source": "pass"}\'::jsonb')
            for row in _rows():
                conn.execute(insert.encode(), row)
        store = PostgresStore(url)
        yield store
        store.close()


def sqlite_v8(tmp_path: Path) -> Iterator[SQLiteStore]:
    path = tmp_path / "v8.db"
    SQLiteStore(path, runtime_dir=str(tmp_path / "run")).close()  # the newest schema
    conn = sqlite3.connect(path)
    conn.executemany(_INSERT.format(p="?", payload='\'{"source": "pass"}\''), _rows())
    conn.execute("PRAGMA user_version = 8")  # version 9 changed nothing: it runs again on open
    conn.commit()
    conn.close()
    store = SQLiteStore(path, runtime_dir=str(tmp_path / "run"))
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PostgresStore]:
    yield from (postgres_v8() if request.param == "postgres" else sqlite_v8(tmp_path))


def test_jobs_of_version_8_are_kept_and_served(old_store: PostgresStore) -> None:
    store = old_store
    assert store.schema_version() == load_migrations("postgres")[-1][0] >= 9
    kept = {job_id: store.get(job_id) for job_id, *_ in OLD_JOBS}
    assert {k: j.state.value for k, j in kept.items()} == {r[0]: r[3] for r in OLD_JOBS}
    assert all(j.spec.payload == {"source": "pass"} for j in kept.values())
    assert kept["run-live"].worker_id == "w-live" and kept["run-live"].lease_until == NOW + 60

    # queued jobs come out best first, the due retry among them, the later one not yet
    assert store.next_due(["default"], now=NOW) == NOW + 50
    order = []
    while (job := store.claim("w-new", "h2", ["default"], now=NOW, lease=30)) is not None:
        order.append(job.id)
    assert order == ["q-high", "q-old", "q-low", "retry-due"]
    assert store.claim("w-new", "h2", ["gpu"], now=NOW, lease=30).id == "q-other"  # type: ignore[union-attr]
    later = store.claim("w-new", "h2", ["default"], now=NOW + 51, lease=30)
    assert later is not None and later.id == "retry-later" and later.attempt == 2

    # the running job's worker ends it; the lapsed one is re-queued (a retry remains) and runs
    assert store.finish("run-live", "w-live", 1, Finish(JobState.SUCCEEDED), now=NOW + 1)
    recovered = store.recover_expired(now=NOW + 1)
    assert [(r.job_id, r.requeued) for r in recovered] == [("run-lapsed", True)]
    again = store.claim("w-new", "h2", ["default"], now=NOW + 2, lease=30)
    assert again is not None and again.id == "run-lapsed" and again.attempt == 2
    assert store.claim("w-new", "h2", ["default"], now=NOW + 60, lease=30) is None
    assert store.get("done").state is JobState.SUCCEEDED

    # and the store goes on as usual: submit, cancel, claim
    fresh = store.submit(JobSpec(name="fresh", kind="command", payload={"source": "pass"}),
                         now=NOW + 3)  # fmt: skip
    gone = store.submit(JobSpec(name="gone", kind="command", payload={"source": "pass"}),
                        now=NOW + 3)  # fmt: skip
    assert store.request_cancel(gone.id, now=NOW + 4).state is JobState.CANCELLED
    taken = store.claim("w-new", "h2", ["default"], now=NOW + 5, lease=30)
    assert taken is not None and taken.id == fresh.id
    assert store.claim("w-new", "h2", ["default"], now=NOW + 5, lease=30) is None
