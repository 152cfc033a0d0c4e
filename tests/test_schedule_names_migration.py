"""Migration 5 on a store made before it: schedule names become unique per owner, and every
schedule and recorded fire of the old store is kept (SQLite rebuilds both tables)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from harness import settings_for
from pg import isolated_schema

from opsjobs.client import Client
from opsjobs.errors import Conflict
from opsjobs.store import Store
from opsjobs.store.postgres import PostgresStore
from opsjobs.store.sql import load_migrations, load_queries
from opsjobs.store.sqlite import SQLiteStore, _statements

T0 = 1_800_000_000.0
SPEC = {"name": "nightly", "kind": "command", "payload": {"source": "pass"}, "mode": "thread"}


def _old_rows(param: Callable[[str], str], jsonb: str) -> list[tuple[str, dict[str, object]]]:
    schedule = (
        "INSERT INTO schedules (id, name, spec, trigger, every_seconds, tz, enabled, misfire,"
        " grace_seconds, catchup_cap, max_instances, next_fire_at, created_at, updated_at)"
        f" VALUES ({param('id')}, {param('name')}, {param('spec')}{jsonb}, 'interval', 60, 'UTC',"
        f" {param('enabled')}, 'coalesce', 60, 10, 1, {T0 + 60}, {T0}, {T0})"
    )
    fire = (
        "INSERT INTO schedule_fires (schedule_id, fire_at, outcome, reason, at, fired_by)"
        f" VALUES ({param('id')}, {T0}, 'fired', '', {T0}, 'scheduler')"
    )
    spec = json.dumps({**SPEC, "owner": "a@example.org"})
    values = {"id": "s-1", "name": "nightly", "spec": spec, "enabled": True}
    return [(schedule, values), (fire, {"id": "s-1"})]


def sqlite_v4(tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path)
    for version, _name, script in load_migrations("sqlite"):
        if version <= 4:
            for statement in _statements(script):
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    for sql, values in _old_rows(lambda n: f":{n}", ""):
        conn.execute(sql, values)
    conn.commit()
    conn.close()
    store = SQLiteStore(path, runtime_dir=str(tmp_path / "run"))
    yield store
    store.close()


def postgres_v4(tmp_path: Path) -> Iterator[Store]:
    with isolated_schema() as url:
        queries = load_queries("postgres")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(queries["schema_version_table"])
            for version, name, script in load_migrations("postgres"):
                if version <= 4:
                    conn.execute(script.encode())
                    conn.execute(queries["record_migration"], {"version": version, "name": name})
            for sql, values in _old_rows(lambda n: f"%({n})s", "::jsonb"):
                conn.execute(sql.encode(), values)
        store = PostgresStore(url)
        yield store
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from (sqlite_v4 if request.param == "sqlite" else postgres_v4)(tmp_path)


def test_old_schedules_and_fires_survive_and_names_become_per_owner(
    old_store: Store, tmp_path: Path
) -> None:
    assert old_store.schema_version() >= 5
    kept = old_store.get_schedule("nightly", owner="a@example.org")
    assert kept.id == "s-1" and kept.spec.owner == "a@example.org"
    assert [(f.fire_at, f.outcome.value) for f in old_store.schedule_fires("s-1")] == [
        (T0, "fired")
    ]
    schedules = Client(old_store, settings_for(tmp_path)).schedules
    other = schedules.add("nightly", every=60, command="pass", owner="b@example.org")
    assert other.id != "s-1"
    with pytest.raises(Conflict):
        schedules.add("nightly", every=60, command="pass", owner="a@example.org")
    old_store.remove_schedule("s-1")  # the rebuilt fires table still cascades
    assert old_store.schedule_fires("s-1") == []
