"""Batched steps on PostgreSQL (issue 21): a step (ends plus claims) is a round trip whose fixed
cost is worth several jobs', so the ends of short pool jobs wait a little for each other and a
worker records and claims them in full steps; an end beside a long job still goes out within
a few milliseconds."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from harness import client_for, settings_for, wait_for
from pg import isolated_schema

import opsjobs

JOBS = 400
SLOTS = 4

_release = threading.Event()


def noop(i: int) -> int:
    return i


def hold() -> str:
    """A long job: runs until the test lets it go (at most a minute)."""
    _release.wait(60)
    return "released"


#: A remote server's round trip, added to each step (the gathering waits about a step's cost).
LATENCY = 0.003


class _Calls:
    """Wraps a store's ``finish_and_claim_many``: a round trip ``LATENCY`` longer; the jobs each
    call claimed."""

    def __init__(self, store: Any) -> None:
        self.claimed: list[int] = []
        self._lock = threading.Lock()
        self._call = store.finish_and_claim_many
        store.finish_and_claim_many = self

    def __call__(self, ends: Any, **kw: Any) -> Any:
        time.sleep(LATENCY)
        out = self._call(ends, **kw)
        with self._lock:
            self.claimed.append(len(out[1]))
        return out


def _submit(client: Any, specs: list[dict[str, Any]]) -> list[str]:
    return [job.id for job in client.submit_many(client.build_specs(specs))]


@pytest.mark.postgres
def test_a_worker_records_and_claims_short_jobs_in_full_steps(tmp_path: Path) -> None:
    # Before: each pool thread stepped for its own end as soon as it ended (or, where a local
    # server answered fast, claimed only its own next job): 1-2 jobs a call with 4 slots.
    with isolated_schema() as url:
        settings = settings_for(tmp_path, store_url=url, poll_interval=60.0)
        client = client_for(settings)
        worker_client = client_for(settings)
        calls = _Calls(worker_client.store)
        try:
            handle = opsjobs.embed(store=worker_client.store, settings=settings, threads=SLOTS)
            try:
                wait_for(lambda: len(client.store.workers()) == 1, 60, "the worker")
                _submit(
                    client,
                    [
                        {"name": "n", "call": f"{__name__}:noop", "kwargs": {"i": i}}
                        | {"mode": "thread"}
                        for i in range(JOBS)
                    ],
                )
                wait_for(
                    lambda: client.count(states=["succeeded"]) == JOBS, 120, "every job to end"
                )
            finally:
                handle.stop(timeout=60)
        finally:
            worker_client.close()
            client.close()
    claiming = [n for n in calls.claimed if n]
    assert sum(claiming) == JOBS
    assert max(claiming) <= SLOTS
    # most steps carry all four slots' ends and claims
    assert JOBS / len(claiming) >= 2.5, sorted(claiming)


@pytest.mark.postgres
def test_short_jobs_beside_a_long_one_end_while_it_runs(tmp_path: Path) -> None:
    # The ends of the short jobs wait for more only a few milliseconds: the long job, still
    # running, never holds them back.
    _release.clear()
    with isolated_schema() as url:
        settings = settings_for(tmp_path, store_url=url, poll_interval=60.0)
        client = client_for(settings)
        try:
            handle = opsjobs.embed(store=client.store, settings=settings, threads=SLOTS)
            try:
                wait_for(lambda: len(client.store.workers()) == 1, 60, "the worker")
                (long_id,) = _submit(
                    client, [{"name": "hold", "call": f"{__name__}:hold", "mode": "thread"}]
                )
                wait_for(lambda: client.get(long_id).state.value == "running", 30, "the hold")
                short = _submit(
                    client,
                    [
                        {"name": "n", "call": f"{__name__}:noop", "kwargs": {"i": i}}
                        | {"mode": "thread"}
                        for i in range(30)
                    ],
                )
                wait_for(
                    lambda: all(client.get(j).state.value == "succeeded" for j in short),
                    30,
                    "the short jobs to end",
                )
                assert client.get(long_id).state.value == "running"
                _release.set()
                wait_for(lambda: client.get(long_id).state.value == "succeeded", 30, "the long job")
            finally:
                _release.set()
                handle.stop(timeout=60)
        finally:
            client.close()


def test_ends_never_wait_longer_than_the_gathering_bound(tmp_path: Path) -> None:
    # The wait is counted from the oldest end's wall-clock time: a clock set back an hour
    # must not hold the ends (and their slots) for an hour.
    from types import SimpleNamespace

    from opsjobs.model import JobState
    from opsjobs.store import End, Finish

    client = client_for(settings_for(tmp_path))
    try:
        worker = opsjobs.Worker(client.store, client.settings, threads=SLOTS)
        worker._batch_steps = True  # as on PostgreSQL
        end = End("j", 1, Finish(JobState.SUCCEEDED), time.time() + 3600)
        worker._ended.append(SimpleNamespace(end=end))  # type: ignore[arg-type]
        worker._busy = 2  # one more pool job still running
        wait = worker._gathering()
        assert 0 < wait <= 0.005
        worker._busy = 1  # none: the end goes out now
        assert worker._gathering() == 0
    finally:
        client.close()
