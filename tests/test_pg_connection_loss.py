"""Connection loss on PostgreSQL: every backend of the workers terminated while jobs flow.

``pg_terminate_backend`` of all the workers' connections — pooled ones and the LISTEN one —
several times mid-run: the workers reconnect and carry on, and every job runs exactly once.
The workers' URL carries an ``application_name`` of the test's own, which is how their backends
are found in ``pg_stat_activity`` (other engineers' tests share the server).

A server *restart* is not done on the shared server; see ``test_pg_restart.py`` for one on a
private cluster.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from pathlib import Path

import pytest
from fleet import RECORD_RUN, Fleet
from harness import client_for, settings_for, wait_for
from pg import BASE_URL, isolated_schema

from opsjobs import JobState

JOBS = 1500
ROUNDS = 4


def terminate(app: str) -> list[str]:
    """Terminate every backend whose application_name is ``app``; their last queries."""
    import psycopg

    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query, pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (app,),
        ).fetchall()
    return [str(r[0]) for r in rows]


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_reconnect_after_all_their_backends_are_terminated(tmp_path: Path) -> None:
    with isolated_schema() as url:
        app = f"opsjobs_loss_{uuid.uuid4().hex[:8]}"
        settings = settings_for(tmp_path, store_url=url)
        client = client_for(settings)
        fleet = Fleet(settings, tmp_path, OPSJOBS_STORE=f"{url}&application_name={app}")
        ran = tmp_path / "ran.log"
        source = RECORD_RUN.format(log=str(ran))
        ids: list[str] = []
        try:
            for k in range(2):
                fleet.start(f"worker-{k}", "worker", "--threads", "4")
            wait_for(lambda: len(client.store.workers()) == 2, 30, "two workers to register")

            def submit() -> None:
                for i in range(JOBS):
                    mode = "inline" if i % 2 else "thread"
                    ids.append(client.submit(f"cl-{i}", command=source, mode=mode).id)
                    if i % 100 == 99:
                        time.sleep(0.1)  # a steady flow over the kills

            submitter = threading.Thread(target=submit)
            submitter.start()
            killed: list[str] = []
            for _ in range(ROUNDS):
                wait_for(lambda: len(ids) > 0, what="jobs to flow")
                time.sleep(0.4)
                killed += terminate(app)
            submitter.join(timeout=120)
            assert not submitter.is_alive()
            assert len(killed) >= 2 * ROUNDS
            assert any(q.startswith("LISTEN") for q in killed)  # the wake-up connections too

            def drained() -> bool:
                fleet.check_alive()
                return client.count(states=["queued", "running"]) == 0

            wait_for(drained, 60, f"{JOBS} jobs to finish")
            jobs = client.results(limit=JOBS + 10)
            assert collections.Counter(j.state for j in jobs) == {JobState.SUCCEEDED: JOBS}
            runs = collections.Counter(ran.read_text().split())
            assert runs == dict.fromkeys(ids, 1)

            # The LISTEN connection is back: a new job starts at once, not at the next poll.
            terminate(app)
            time.sleep(0.5)
            probe = client.submit("probe", command="pass", mode="thread")
            done = client.wait(probe.id, timeout=30)
            assert done.state is JobState.SUCCEEDED
            assert (done.started_at or 0) - done.submitted_at < settings.poll_interval / 2
        finally:
            fleet.stop()
            client.close()
