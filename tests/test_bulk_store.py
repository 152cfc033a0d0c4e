"""A batch submit is all or nothing and wakes workers once (issue 17, point 4), on the real
databases: a row refused mid-batch (by a trigger, the database's own refusal) leaves no job of
the batch behind; on PostgreSQL one batch is one NOTIFY."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import pytest

from opsjobs.errors import StoreError
from opsjobs.model import JobSpec, ResultQuery
from opsjobs.store import Store, open_store

T0 = 1_800_000_000.0


def spec(name: str) -> JobSpec:
    return JobSpec(name=name, kind="command", payload={"source": "pass"}).validated()


def _batch_with_a_refused_row(store: Store) -> None:
    specs = [spec(f"ok-{i}") for i in range(50)] + [spec("boom")] + [spec("after")]
    with pytest.raises(StoreError, match="boom"):
        store.submit_many(specs, now=T0)
    assert store.count(ResultQuery().validated()) == 0  # not the 50 before it either
    assert len(store.submit_many(specs[:50], now=T0)) == 50  # the store still works


def test_sqlite_batch_is_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = open_store(f"sqlite://{path}", runtime_dir=str(tmp_path / "run"))
    try:
        # closing(): sqlite3's own context manager commits but never closes (3.13 reported it)
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON jobs WHEN NEW.name = 'boom' "
                "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
            )
        _batch_with_a_refused_row(store)
    finally:
        store.close()


def test_postgres_batch_is_one_statement_and_one_notify() -> None:
    from pg import schema_store

    store = schema_store()
    try:
        import psycopg
        from pg import BASE_URL

        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {store.schema}")
            conn.execute(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'boom refused'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON jobs FOR EACH ROW "
                "WHEN (NEW.name = 'boom') EXECUTE FUNCTION boom()"
            )
        _batch_with_a_refused_row(store)

        with psycopg.connect(BASE_URL, autocommit=True) as listener:
            listener.execute(f'LISTEN "{store.channel}"')
            store.submit_many([spec(f"n-{i}") for i in range(500)], now=T0)
            store.submit(spec("single"), now=T0)
            got = []
            deadline = time.monotonic() + 5
            while len(got) < 2 and time.monotonic() < deadline:
                got.extend(listener.notifies(timeout=0.5, stop_after=2 - len(got)))
            # nothing else arrives: drain briefly after the expected two
            got.extend(listener.notifies(timeout=0.3))
        assert len(got) == 2  # one for the batch of 500, one for the single submit
    finally:
        store.close()
