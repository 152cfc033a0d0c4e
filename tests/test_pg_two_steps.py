"""Two steps in flight on PostgreSQL (issue 21): while one step of a worker (its ends and
claims, one round trip) is out at the server, a pool thread may send the next on another pooled
connection, so the jobs of one step run while the next is out. Four workers draining short jobs
that way still run each job once, end every job, and never run more jobs than their slots; the
retry of a claim whose reply was lost takes only its own step's jobs; a SQLite worker keeps one
step at a time."""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from harness import client_for, settings_for, wait_for
from pg import isolated_schema

import opsjobs
from opsjobs.context import context

JOBS = 3000
WORKERS = 4
SLOTS = 25
#: A remote server's round trip, added to each step: the overlap starts only where steps cost
#: more than handing jobs to threads (see ``_DEAR_STEP`` in opsjobs/worker.py), which a fast
#: local server may not reach.
LATENCY = 0.002

_runs: collections.Counter[int] = collections.Counter()
_running: collections.Counter[str] = collections.Counter()
_most: dict[str, int] = {}
_lock = threading.Lock()


def note(i: int) -> None:
    """The job: counts its run, and how many jobs of its worker run at once."""
    worker = context().worker_id or ""
    with _lock:
        _runs[i] += 1
        _running[worker] += 1
        _most[worker] = max(_most.get(worker, 0), _running[worker])
    time.sleep(0)  # let another job thread in while this one counts as running
    with _lock:
        _running[worker] -= 1


class _Overlaps:
    """Wraps a store's ``finish_and_claim_many``: a round trip ``LATENCY`` longer, and the most
    calls out at once for each worker."""

    def __init__(self, store: Any) -> None:
        self.most: collections.Counter[str] = collections.Counter()
        self._out: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._call = store.finish_and_claim_many
        store.finish_and_claim_many = self

    def __call__(self, ends: Any, **kw: Any) -> Any:
        worker = kw["worker_id"]
        with self._lock:
            self._out[worker] += 1
            self.most[worker] = max(self.most[worker], self._out[worker])
        try:
            time.sleep(LATENCY)
            return self._call(ends, **kw)
        finally:
            with self._lock:
                self._out[worker] -= 1


@pytest.mark.postgres
def test_four_workers_with_two_steps_in_flight_run_every_job_once(tmp_path: Path) -> None:
    _runs.clear()
    _most.clear()
    with isolated_schema() as url:
        settings = settings_for(tmp_path, store_url=url, poll_interval=60.0)
        client = client_for(settings)
        clients = [client_for(settings) for _ in range(WORKERS)]
        overlaps = [_Overlaps(c.store) for c in clients]
        handles: list[opsjobs.WorkerHandle] = []
        try:
            assert all(c.store.step_lanes == 2 for c in clients)
            handles = [
                opsjobs.embed(store=c.store, settings=settings, threads=SLOTS) for c in clients
            ]
            wait_for(lambda: len(client.store.workers()) == WORKERS, 60, "the workers")
            for lo in range(0, JOBS, 1000):
                client.submit_many(
                    client.build_specs(
                        {"name": "n", "call": f"{__name__}:note", "kwargs": {"i": i}}
                        | {"mode": "thread"}
                        for i in range(lo, lo + 1000)
                    )
                )
            wait_for(
                lambda: client.count(states=["succeeded"]) == JOBS, 120, "every job to succeed"
            )
        finally:
            for h in handles:
                h.stop(timeout=120)
            for c in clients:
                c.close()
        try:
            (row,) = client.store._read(
                "jobs",
                "SELECT count(*) AS n, count(*) FILTER (WHERE state = 'succeeded' AND attempt = 1)"
                " AS once FROM jobs",
            )
            assert (row["n"], row["once"]) == (JOBS, JOBS)
        finally:
            client.close()
    assert sorted(_runs) == list(range(JOBS)) and set(_runs.values()) == {1}
    # two steps out at once (the most a worker sends), and no more jobs than slots at once
    most = [max(o.most.values()) for o in overlaps]
    assert max(most) == 2 and min(most) >= 1, most
    assert all(n <= SLOTS for n in _most.values()), _most
    for h in handles:
        w = h.worker
        assert (w._busy, w._claiming, w._freeing, w.busy) == (0, 0, 0, 0)


def test_a_sqlite_worker_keeps_one_step_at_a_time(tmp_path: Path) -> None:
    client = client_for(settings_for(tmp_path))
    try:
        worker = opsjobs.Worker(client.store, client.settings, threads=8)
        assert worker._lane2 is None
    finally:
        client.close()


@pytest.mark.postgres
def test_a_pool_of_one_connection_gives_one_step_at_a_time() -> None:
    from opsjobs.store.postgres import PostgresStore

    with isolated_schema() as url:
        store = PostgresStore(url, max_size=1)
        try:
            assert store.step_lanes == 1
        finally:
            store.close()


@pytest.mark.postgres
def test_overlapping_claims_of_a_worker_each_adopt_only_their_own_jobs() -> None:
    # Two steps of one worker out at once pass distinct `now`s (the worker sees to it): a
    # claim retried after a lost reply (_adopt) takes the jobs started at its own `now`, not
    # the other step's.
    import math

    from opsjobs.model import JobSpec
    from opsjobs.store.postgres import PostgresStore, _many_params

    t0 = 1_800_000_000.0
    spec = JobSpec(name="j", kind="command", payload={"source": "pass"}).validated()
    with isolated_schema() as url, PostgresStore(url) as store:
        store.submit_many([spec] * 6, now=t0)
        nows = [t0 + 10, math.nextafter(t0 + 10, math.inf)]
        taken = [
            store.finish_and_claim_many(
                (), worker_id="w1", host="h", queues=["default"], now=now, lease=30.0, want=2
            )[1]
            for now in nows
        ]
        for now, jobs in zip(nows, taken, strict=True):
            params = _many_params((), "w1", "h", ["default"], now, 30.0, 2)
            with store._pool.connection() as conn:
                rows = store._adopt(conn, params)
            assert sorted(r[1] for r in rows) == sorted(j.id for j in jobs)
