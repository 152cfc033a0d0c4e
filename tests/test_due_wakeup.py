"""A lost wake-up, pinned down: a waiting retry must not wait out the whole poll because a step
that began just before its due time ended just after it.

CI once saw a retry on PostgreSQL stay queued for the full 60 s poll
(test_retries.py::test_always_failing_job_ends_failed_after_four_attempts[postgres], delays of
50-100 ms). The sequence: the worker knows the retry is due at D and sleeps until then; a ring
(any submit, cancel or retry on its queues) wakes it shortly before D; its step claims with a
``now`` before D, so the retry is not yet due and nothing is claimed; the round trip ends after D;
the worker then asks the store for the next due time, which reports only times *after* now — the
retry, due and still queued, is not among them — and sleeps the whole poll interval. On
PostgreSQL under load a round trip takes milliseconds and a ring may come late, so the window is
real; here a store that answers claims slowly once (a real SQLite store, its claim delayed as a
slow network would) opens it every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import settings_for, wait_for

import opsjobs
from opsjobs.client import Client
from opsjobs.model import Job, JobState
from opsjobs.store import End, Finish
from opsjobs.store.sqlite import SQLiteStore

#: How long before the due time the ring comes, and how long the slow claim takes: the step
#: begins well before the due time and ends well after it.
EARLY = 0.3
SLOW = 0.6


class SlowOnceStore(SQLiteStore):
    """A SQLite store whose next claim, once armed, answers after :data:`SLOW` seconds (with
    the ``now`` the worker sent), and which keeps the due times it reported."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.armed = threading.Event()
        self.slow_claims = 0
        self.dues: list[float | None] = []

    def finish_and_claim_many(
        self, ends: Sequence[End], **kwargs: Any
    ) -> tuple[list[bool], list[Job]]:
        if self.armed.is_set() and kwargs.get("want"):
            self.armed.clear()
            time.sleep(SLOW)
            self.slow_claims += 1
        return super().finish_and_claim_many(ends, **kwargs)

    def next_due(self, queues: Sequence[str], *, now: float) -> float | None:
        due = super().next_due(queues, now=now)
        self.dues.append(due)
        return due


def test_a_retry_due_during_a_step_is_not_left_for_the_poll(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, poll_interval=60.0)  # a lost wake-up waits a minute
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SlowOnceStore(settings.data_dir / "opsjobs.db", runtime_dir=settings.runtime_dir)
    client = Client(store, settings)
    job = client.submit("retry-me", command="pass", mode="thread")
    # an attempt that failed elsewhere: the job waits to run again at `due`
    taken = store.claim("w-gone", "h", ["default"], now=time.time(), lease=30)
    assert taken is not None and taken.id == job.id
    handle = opsjobs.embed(store=store, settings=settings, threads=2)
    try:
        due = time.time() + 1.5
        assert store.requeue_after(
            job.id, "w-gone", 1, Finish(JobState.FAILED, error="boom"),
            now=time.time(), run_after=due, note="retry",
        )  # fmt: skip
        wait_for(lambda: due in store.dues, 5.0, "the worker to learn the due time")
        other = client.submit("elsewhere", command="pass", queue="other-queue")
        wait_for(lambda: time.time() >= due - EARLY, 5.0, "shortly before the due time")
        store.armed.set()
        client.cancel(other.id)  # a ring: the worker steps, slowly, across the due time
        wait_for(lambda: store.slow_claims == 1, 5.0, "the slow step")
        started = wait_for(
            lambda: client.get(job.id).started_at, 10.0, "the retry to start (not after the poll)"
        )
        assert due <= started < due + SLOW + 2.0
        done = client.wait(job.id, timeout=20)
        assert done.state is JobState.SUCCEEDED and done.attempt == 2
    finally:
        handle.stop(timeout=30)
        client.close()
