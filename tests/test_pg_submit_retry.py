"""README promises that a statement failed by a lost connection is retried: Python-client submits
on PostgreSQL survive every backend of the client being terminated again and again (every 0.1 s),
and each acknowledged submit is stored exactly once."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from harness import settings_for
from pg import BASE_URL, isolated_schema

from opsjobs.client import Client
from opsjobs.errors import StoreError
from opsjobs.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(240)]

SUBMITTERS = 4
PER_SUBMITTER = 400
KILL_EVERY = 0.1  # seconds between terminations of all the client's backends


def terminate(app: str) -> int:
    """Terminate every backend whose application_name is ``app``; how many there were."""
    import psycopg

    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        return len(
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND pid <> pg_backend_pid()",
                (app,),
            ).fetchall()
        )


@pytest.mark.parametrize("batch", [0, 10], ids=["submit", "submit_many"])
def test_submits_survive_terminated_connections(tmp_path: Path, batch: int) -> None:
    # batch 0: Client.submit, one statement; 10: Client.submit_many, a COPY transaction whose
    # retry is an INSERT ... ON CONFLICT DO NOTHING (the first run may have committed); four
    # times the jobs, so that the kills keep coming while they are submitted
    with isolated_schema() as url:
        app = f"opsjobs_submit_{uuid.uuid4().hex[:8]}"
        store = open_store(f"{url}&application_name={app}")
        client = Client(store, settings_for(tmp_path, store_url=url))
        acknowledged: list[str] = []
        errors: list[str] = []
        lock = threading.Lock()
        done = threading.Event()
        kills = 0

        def submitter(n: int) -> None:
            for i in range(0, PER_SUBMITTER * (4 if batch else 1), batch or 1):
                try:
                    if batch:
                        specs = [
                            client.build_spec(f"s{n}-{i + k}", command="1") for k in range(batch)
                        ]
                        ids = [job.id for job in client.submit_many(specs)]
                    else:
                        ids = [client.submit(f"s{n}-{i}", command="1").id]
                except StoreError as exc:
                    with lock:
                        errors.append(str(exc))
                    continue
                with lock:
                    acknowledged.extend(ids)

        threads = [threading.Thread(target=submitter, args=(n,)) for n in range(SUBMITTERS)]
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                if terminate(app):
                    kills += 1
                done.wait(KILL_EVERY)
        finally:
            for t in threads:
                t.join(120)
        try:
            assert kills >= 5, kills
            assert not errors, f"{len(errors)} of {SUBMITTERS * PER_SUBMITTER}: {errors[:3]}"
            stored = [j.id for j in client.results(limit=10_000)]
            assert sorted(stored) == sorted(acknowledged)
        finally:
            store.close()
