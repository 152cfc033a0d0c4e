"""The worker's pool threads (opsjobs.runners.threads.JobThreads): every item runs at once on
its own thread while fewer than ``size`` run, threads are kept and reused, an item that raises
does not stop its thread, and shutdown drops what has not started and ends idle threads."""

from __future__ import annotations

import threading
import time

import pytest
from harness import wait_for

from opsjobs.runners.threads import JobThreads


def test_items_run_at_once_up_to_size_on_threads_that_are_reused() -> None:
    pool = JobThreads(4, "t")
    gate = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def hold(tag: str) -> None:
        with lock:
            started.append(threading.current_thread().name)
        gate.wait(30)

    try:
        for k in range(4):
            pool.submit(hold, str(k))
        wait_for(lambda: len(started) == 4, 10, "four items running at once")
        assert len(set(started)) == 4 and all(n.startswith("t_") for n in started)
        gate.set()
        wait_for(lambda: pool.idle == 4, 10, "the threads to be idle")
        before = set(started)
        gate.clear()
        for k in range(4):
            pool.submit(hold, str(k))
        wait_for(lambda: len(started) == 8, 10, "four more")
        assert set(started[4:]) == before  # no new thread
        assert pool.started == 4
    finally:
        gate.set()
        pool.shutdown()


def test_an_idle_thread_takes_the_next_item_while_others_are_busy() -> None:
    pool = JobThreads(3, "t")
    gate = threading.Event()
    done = threading.Event()
    try:
        pool.submit(lambda _: gate.wait(30), None)
        pool.submit(lambda _: None, None)
        wait_for(lambda: pool.idle == 1, 10, "one idle thread")
        pool.submit(lambda _: done.set(), None)
        assert done.wait(10)
        assert pool.started == 2
    finally:
        gate.set()
        pool.shutdown()


def test_an_item_that_raises_leaves_its_thread_serving(caplog: pytest.LogCaptureFixture) -> None:
    pool = JobThreads(1, "t")
    ran = threading.Event()

    def boom(_: object) -> None:
        raise RuntimeError("boom")

    try:
        pool.submit(boom, None)
        pool.submit(lambda _: ran.set(), None)
        assert ran.wait(10)
        assert pool.started == 1
        assert "boom" in caplog.text
    finally:
        pool.shutdown()


def test_shutdown_drops_items_not_started_and_ends_the_threads() -> None:
    pool = JobThreads(1, "t")
    gate = threading.Event()
    later = threading.Event()
    pool.submit(lambda _: gate.wait(30), None)
    wait_for(lambda: pool.idle == 0 and pool.started == 1, 10, "the thread busy")
    pool.submit(lambda _: later.set(), None)  # waits: the one thread is busy
    pool.shutdown()
    gate.set()
    deadline = time.monotonic() + 10
    while any(t.name.startswith("t_") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the pool thread did not end"
        time.sleep(0.01)
    assert not later.is_set()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda _: None, None)
