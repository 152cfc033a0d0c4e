"""SQLite specifics: pragmas, migrations, the claim plan, concurrent openers."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from opsjobs.model import JobSpec
from opsjobs.store.sqlite import SQLiteStore


def test_pragmas_and_schema_version(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db", runtime_dir=str(tmp_path / "run"))
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    version = store.schema_version()
    assert version >= 1
    store.close()
    again = SQLiteStore(tmp_path / "a.db", runtime_dir=str(tmp_path / "run"))
    assert again.schema_version() == version  # re-opening applies nothing twice
    again.close()


def test_claim_is_served_by_the_partial_index(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db", runtime_dir=str(tmp_path / "run"))
    conn = store._conn()
    pick = [
        r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + store._q["claim_pick"], ("a", 0.0, 4))
    ]
    assert pick == ["SEARCH jobs USING INDEX jobs_claim (queue=?)"], pick  # no sort, no scan
    heads = store._pick_sql(2)  # both queues of a worker in one statement
    plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + heads, ("a", 0.0, 4, "b", 0.0, 4))]
    assert plan.count("SEARCH jobs USING INDEX jobs_claim (queue=?)") == 2, plan
    assert not any("TEMP B-TREE" in line or line.startswith("SCAN jobs") for line in plan), plan
    take = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + store._q["claim_take"], (1,) * 5)]
    assert take == ["SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)"], take
    store.close()


def test_many_openers_migrate_once(tmp_path: Path) -> None:
    # Eight openers race on each of five fresh files: switching a new file to WAL needs an
    # exclusive lock for which SQLite does not call the busy handler (a race seen in CI).
    for round_ in range(5):
        path = tmp_path / f"b{round_}.db"
        errors: list[BaseException] = []

        def open_one(path: Path = path, errors: list[BaseException] = errors) -> None:
            try:
                SQLiteStore(path, runtime_dir=str(tmp_path / "run")).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        conn = sqlite3.connect(path)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        conn.close()
        assert {"jobs", "workers", "metrics"} <= tables and mode == "wal"


def test_a_row_that_cannot_be_read_fails_its_job_at_claim(tmp_path: Path) -> None:
    # A payload that is not JSON, a mode this version does not know (a newer writer, a hand
    # edit): the claim fails those jobs with the reason, in its transaction, and takes the
    # next readable one; nothing stays running and the worker's step does not raise.
    from opsjobs.model import JobSpec

    path = tmp_path / "a.db"
    store = SQLiteStore(path, runtime_dir=str(tmp_path / "run"))
    spec = JobSpec(name="job", kind="command", payload={"source": "pass"}).validated()
    bad_json = store.submit(spec, now=100.0)
    bad_mode = store.submit(spec, now=101.0)
    good = store.submit(spec, now=102.0)
    raw = sqlite3.connect(path)
    raw.execute("UPDATE jobs SET payload = '{not json' WHERE id = ?", (bad_json.id,))
    raw.execute("UPDATE jobs SET mode = 'gpu' WHERE id = ?", (bad_mode.id,))
    raw.commit()
    job = store.claim("w1", "host", ["default"], now=200.0, lease=30.0)
    assert job is not None and job.id == good.id
    for bad, what in ((bad_json, "JSONDecodeError"), (bad_mode, "KeyError: 'gpu'")):
        state, error, worker, attempt, finished = raw.execute(
            "SELECT state, error, worker_id, attempt, finished_at FROM jobs WHERE id = ?",
            (bad.id,),
        ).fetchone()
        assert (state, worker, attempt, finished) == ("failed", "w1", 1, 200.0)
        assert "cannot be read" in error and what in error, error
    assert store.claim("w1", "host", ["default"], now=201.0, lease=30.0) is None
    raw.close()
    store.close()


def test_the_rowid_cache_stays_bounded_and_a_finish_without_it_still_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A claimed job whose end this store never records (a cancel, another worker's recovery)
    # must not stay in the cache forever; a finish whose rowid was dropped goes by id.
    from opsjobs.model import JobSpec, JobState
    from opsjobs.store import Finish

    monkeypatch.setattr("opsjobs.store.sqlite.ROWID_CACHE", 3)
    store = SQLiteStore(tmp_path / "a.db", runtime_dir=str(tmp_path / "run"))
    spec = JobSpec(name="job", kind="command", payload={"source": "pass"}).validated()
    for i in range(5):
        store.submit(spec, now=100.0 + i)
    claimed = [store.claim("w1", "host", ["default"], now=200.0, lease=30.0) for _ in range(5)]
    assert all(j is not None for j in claimed)
    assert len(store._rowids) <= 3
    for job in claimed:
        assert job is not None
        assert store.finish(job.id, "w1", job.attempt, Finish(JobState.SUCCEEDED), now=201.0)
        assert store.get(job.id).state is JobState.SUCCEEDED
    assert store._rowids == {}
    store.close()


def test_the_doorbell_works_under_a_runtime_dir_too_deep_for_a_socket_path(tmp_path: Path) -> None:
    # A Unix socket path holds at most 107 bytes; a deep data or runtime folder (CI's per-worker
    # temporary folders, a long home) once made every idle worker die with "AF_UNIX path too long".
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    store = SQLiteStore(tmp_path / "a.db", runtime_dir=str(deep))
    other = SQLiteStore(tmp_path / "a.db", runtime_dir=str(deep))
    waiter = store.waiter("w1-with-a-rather-long-worker-identifier")
    try:
        assert not waiter.wait(0.01)
        other.submit(JobSpec(name="rung", kind="command", payload={"source": "pass"}), now=1.0)
        assert waiter.wait(5.0)
    finally:
        waiter.close()
        store.close()
        other.close()
