"""The threads a worker runs its ``thread`` and ``process`` jobs on.

A worker keeps at most ``threads`` pool jobs running and dispatches each the moment it claims
it, so what it needs of a pool is small: run an item now, on an idle thread or a new one (up to
``size``), keep the threads for the next items, and drop what has not started when it stops.
``concurrent.futures.ThreadPoolExecutor`` does that and more (a future per item, a lock and a
condition for each, a semaphore for idle threads): on a PostgreSQL worker draining no-op jobs
those were a third of the worker's CPU per job (``python bench/pg_profile.py --steps 100``:
35 -> 25 us a job; bench/README.md, issue 21).

Threads are daemons: a job thread stuck in a call cannot hold the process open once the
worker has recorded its end (its shutdown gives every job its grace first).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["JobThreads"]

log = logging.getLogger("opsjobs.worker")

_Item = tuple[Callable[[Any], object], Any]


class JobThreads:
    """Runs ``fn(arg)`` items on up to ``size`` threads named ``<prefix>_<n>``."""

    def __init__(self, size: int, prefix: str) -> None:
        self._size = size
        self._prefix = prefix
        self._items: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: Under _lock: threads started; threads waiting for an item that no submit has
        #: counted on yet (each submit takes one, or starts a thread); shut down.
        self._started = 0
        self._idle = 0
        self._closed = False

    @property
    def started(self) -> int:
        return self._started

    @property
    def idle(self) -> int:
        return self._idle

    def submit(self, fn: Callable[[Any], object], arg: Any) -> None:
        """Run ``fn(arg)`` on an idle thread, or on a new one while fewer than ``size`` run;
        else it waits for the first thread free."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the job threads are shut down")
            new = 0
            if self._idle > 0:
                self._idle -= 1
            elif self._started < self._size:
                self._started += 1
                new = self._started
        self._items.put((fn, arg))
        if new:
            threading.Thread(
                target=self._serve, name=f"{self._prefix}_{new - 1}", daemon=True
            ).start()

    def _serve(self) -> None:
        items = self._items
        while True:
            item = items.get()
            if item is None:
                return
            fn, arg = item
            try:
                fn(arg)
            except BaseException:  # the item's own handler failed: keep serving
                log.exception("a job thread's work failed")
            del item, fn, arg
            with self._lock:
                if self._closed:
                    return
                self._idle += 1

    def shutdown(self) -> None:
        """Drop the items not started; idle threads end now, busy ones after their item."""
        with self._lock:
            self._closed = True
            threads = self._started
        while True:
            try:
                self._items.get_nowait()
            except queue.Empty:
                break
        for _ in range(threads):
            self._items.put(None)
