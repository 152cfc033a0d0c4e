"""The scheduler: turns due schedules into jobs, exactly once per fire time.

Any number of schedulers may run on one store (one per host, one inside each ``opsjobs worker
--scheduler``, one in the server): each fire is one store transaction guarded by a conditional
update and a unique key (see :mod:`opsjobs.store.schedules`), so the losers of a race simply
find nothing to do.

Timing
------
The scheduler sleeps until the earliest ``next_fire_at`` of the enabled schedules and fires then,
so a fire is late only by the wake-up latency (milliseconds on an idle machine). It wakes early
through the store's :class:`~opsjobs.store.Waiter` — the same channel that wakes idle workers
(a doorbell for SQLite on this host, LISTEN/NOTIFY for PostgreSQL across hosts, a condition for
the memory store). Schedule changes ring it, so an added, resumed or edited schedule is seen at
once, without a poll. Submits ring it too; that costs one indexed ``min(next_fire_at)`` query
per wake-up, which is cheaper than a second channel. A sleep never exceeds the settings' poll
interval: the fallback should a ring be lost (a dropped PostgreSQL connection).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable

from opsjobs.config import Settings, redact_url
from opsjobs.errors import OpsJobsError
from opsjobs.schedules import plan_fires
from opsjobs.store import Store, Waiter
from opsjobs.store.schedules import FireResult

__all__ = ["Scheduler", "SchedulerHandle"]

log = logging.getLogger("opsjobs.scheduler")

#: Pause after a failed round (store unreachable), so a broken store is not hammered.
ERROR_BACKOFF = 1.0


class Scheduler:
    """Fires the due schedules of ``store``.

    Parameters
    ----------
    store
        Where schedules live and jobs go.
    settings
        The poll interval caps each sleep.
    clock
        Returns the current epoch time; injectable for tests.
    """

    def __init__(
        self, store: Store, settings: Settings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.id = f"scheduler:{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self._wake = threading.Event()

    # -- one round ------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[FireResult]:
        """Fire every schedule due at ``now`` (default: the clock) once; return what fired."""
        now = self.clock() if now is None else now
        results: list[FireResult] = []
        for schedule in self.store.due_schedules(now):
            plan = plan_fires(schedule, now)
            if plan is None:
                continue
            result = self.store.fire_schedule(schedule, plan, now=now, fired_by=self.id)
            if result is None:
                log.debug("schedule %s was fired by another scheduler", schedule.name)
                continue
            for fire in result.fires:
                log.info(
                    "schedule %s fire %.3f: %s%s",
                    schedule.name,
                    fire.fire_at,
                    fire.outcome.value,
                    f" ({fire.reason})" if fire.reason else "",
                )
            results.append(result)
        return results

    def seconds_to_next(self, now: float | None = None) -> float:
        """How long to sleep before the next fire (capped at the poll interval)."""
        now = self.clock() if now is None else now
        due = self.store.next_due_at()
        cap = self.settings.poll_interval
        return cap if due is None else min(max(due - now, 0.0), cap)

    # -- lifetime -------------------------------------------------------------------------
    def run(self) -> None:
        """Fire schedules on the calling thread until :meth:`stop`."""
        waiter = self.store.waiter(self.id)  # listening before the first round: no ring lost
        threading.Thread(
            target=self._bell, args=(waiter,), name="opsjobs-scheduler-bell", daemon=True
        ).start()
        log.debug("scheduler %s on %s", self.id, redact_url(self.store.url))
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    self.tick()
                    wait = self.seconds_to_next()
                except OpsJobsError as exc:
                    log.warning("scheduler round failed, retrying: %s", exc)
                    wait = ERROR_BACKOFF
                except Exception:  # a bug must not stop every schedule: log, back off, go on
                    log.exception("scheduler round crashed, retrying")
                    wait = ERROR_BACKOFF
                if wait > 0:
                    # A hair past the due time, so the next round finds it due.
                    self._wake.wait(wait + 0.001)
        finally:
            self._stopping.set()

    def _bell(self, waiter: Waiter) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    woken = waiter.wait(self.settings.poll_interval)
                except (OpsJobsError, OSError) as exc:
                    log.warning("scheduler wake-up channel failed: %s", exc)
                    woken = self._stopping.wait(ERROR_BACKOFF) or True
                if woken:
                    self._wake.set()
        finally:
            waiter.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return (at once, even mid-sleep)."""
        self._stopping.set()
        self._wake.set()

    def start(self) -> SchedulerHandle:
        """Run on a background thread of this process; returns a handle with ``stop()``."""
        return SchedulerHandle(self)


class SchedulerHandle:
    """A scheduler running on a background thread (see :meth:`Scheduler.start`)."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self._thread = threading.Thread(target=scheduler.run, name="opsjobs-scheduler", daemon=True)
        self._thread.start()

    @property
    def id(self) -> str:
        return self.scheduler.id

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the scheduler and wait for its thread."""
        self.scheduler.stop()
        self._thread.join(timeout)

    def __enter__(self) -> SchedulerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
