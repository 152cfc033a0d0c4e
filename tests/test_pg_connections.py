"""Lean PostgreSQL connections (issue 21): an idle ``opsjobs worker`` holds at most two (its
LISTEN connection and one pooled), counted in ``pg_stat_activity`` by the application name
each process gives its connections (``opsjobs <pid>@<host>``), once its pool's idle period
has passed (its threads' first calls overlap), and ``opsjobs workers`` shows that count; after
a burst the pool shrinks back to one within a few ``OPSJOBS_PG_POOL_IDLE`` periods."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fleet import Fleet
from harness import client_for, run_cli, settings_for, wait_for
from pg import isolated_schema

from opsjobs.store.postgres import application_name

pytestmark = pytest.mark.postgres


def _connections(client: object, pid: int) -> int:
    store = client.store  # type: ignore[attr-defined]
    rows = store._read(
        "count",
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = %(name)s",
        {"name": application_name(pid)},
    )
    return int(rows[0]["n"])


def _settles_at_two(client: object, pid: int, hold: float = 2.0, within: float = 30.0) -> None:
    """Within ``within`` s, ``pid`` holds one or two connections (found by name) for ``hold``
    s in a row."""
    deadline = time.monotonic() + within
    since = None
    while time.monotonic() < deadline:
        n = _connections(client, pid)
        if 1 <= n <= 2:
            since = since or time.monotonic()
            if time.monotonic() - since >= hold:
                return
        else:
            since = None
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still holds {n} connections after {within:g} s")


def test_an_idle_worker_holds_two_connections_and_shrinks_back_after_a_burst(
    tmp_path: Path,
) -> None:
    with isolated_schema() as url:
        settings = settings_for(tmp_path, store_url=url)
        client = client_for(settings)
        fleet = Fleet(settings, tmp_path, OPSJOBS_PG_POOL="4", OPSJOBS_PG_POOL_IDLE="0.5")
        try:
            proc = fleet.start("w", "worker", "--threads", "4")
            wait_for(lambda: len(client.store.workers()) == 1, 30, "the worker to register")
            # when its threads' calls overlap (claim, heartbeat, recovery; many at start) the
            # pool opens a second connection, closed after an idle period (0.5 s here)
            _settles_at_two(client, proc.pid)
            fleet.check_alive()
            shown = run_cli(settings, "workers", "--json")  # the count per worker, too
            assert shown.returncode == 0, shown.stderr
            (row,) = json.loads(shown.stdout)
            assert row["pid"] == proc.pid and row["connections"] in (1, 2)
            specs = [
                client.build_spec(f"nap{i}", command="import time; time.sleep(0.2)")
                for i in range(16)
            ]
            client.submit_many(specs)
            wait_for(
                lambda: client.count(states=["queued", "running"]) == 0, 60, "the burst to end"
            )
            _settles_at_two(client, proc.pid)
            fleet.check_alive()
        finally:
            fleet.stop()
            client.close()
