"""Schedules in the SQLite store (a mixin of :class:`~opsjobs.store.sqlite.SQLiteStore`).

Every write runs in the store's ``BEGIN IMMEDIATE`` transaction, so firing is serialised across
processes by SQLite's write lock; the conditional update and the fire table's primary key make
it exactly-once all the same (see :mod:`opsjobs.store.schedules`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, NotFound, StoreError
from ..model import Job
from ..schedules import FirePlan, Schedule, ScheduleFire
from .firing import apply_plan, run_now
from .schedules import FireResult, ScheduleStore, pick_schedule
from .sql.schedule_rows import row_to_fire, row_to_schedule, schedule_params

if TYPE_CHECKING:
    from .doorbell import Doorbell

__all__ = ["SQLiteSchedules"]

_CHUNK = 500  # bound parameters per IN (...) list, well under SQLite's limit


class SQLiteSchedules(ScheduleStore):
    """The :class:`ScheduleStore` part of the SQLite store."""

    _q: dict[str, str]
    _doorbell: Doorbell

    if TYPE_CHECKING:

        def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def _read(self, sql: str, params: Any = ()) -> list[sqlite3.Row]: ...

    @contextlib.contextmanager
    def _sched_tx(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            with self._tx() as conn:
                yield conn
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"{what}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{what} failed: {exc}") from exc

    def add_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        try:
            with self._sched_tx("adding the schedule") as conn:
                conn.execute(self._q["insert_schedule"], schedule_params(schedule, now))
        except Conflict:
            raise Conflict(f"a schedule named {schedule.name!r} exists already") from None
        self._doorbell.ring()
        return self.get_schedule(schedule.id)

    def get_schedule(self, name_or_id: str, *, owner: str | None = None) -> Schedule:
        rows = self._read(self._q["get_schedule"], {"key": name_or_id, "owner": owner})
        return row_to_schedule(pick_schedule(rows, name_or_id, lambda r: str(r["id"])))

    def list_schedules(self) -> list[Schedule]:
        return [row_to_schedule(r) for r in self._read(self._q["list_schedules"])]

    def update_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        with self._sched_tx("updating the schedule") as conn:
            cur = conn.execute(self._q["update_schedule"], schedule_params(schedule, now))
        if cur.rowcount != 1:
            raise NotFound(f"no schedule named {schedule.name!r}")
        self._doorbell.ring()
        return self.get_schedule(schedule.id)

    def remove_schedule(self, schedule_id: str) -> None:
        with self._sched_tx("removing the schedule") as conn:
            cur = conn.execute(self._q["delete_schedule"], {"id": schedule_id})
        if cur.rowcount != 1:
            raise NotFound(f"no schedule with id {schedule_id}")
        self._doorbell.ring()

    def next_due_at(self) -> float | None:
        value = self._read(self._q["next_due_at"])[0][0]
        return None if value is None else float(value)

    def due_schedules(self, now: float) -> list[Schedule]:
        return [row_to_schedule(r) for r in self._read(self._q["due_schedules"], {"now": now})]

    def _runner(self, conn: sqlite3.Connection) -> tuple[Any, Any]:
        def run(name: str, params: dict[str, Any]) -> sqlite3.Cursor:
            return conn.execute(self._q[name], params)

        def count_active(schedule_id: str) -> int:
            row = conn.execute(self._q["active_instances"], {"id": schedule_id}).fetchone()
            return int(row[0])

        return run, count_active

    def fire_schedule(
        self, schedule: Schedule, plan: FirePlan, *, now: float, fired_by: str
    ) -> FireResult | None:
        with self._sched_tx("firing the schedule") as conn:
            run, count = self._runner(conn)
            result = apply_plan(
                run, lambda: count(schedule.id), schedule, plan, now=now, fired_by=fired_by
            )
        if result is not None and result.jobs:
            self._doorbell.ring()
        return result

    def run_schedule_now(self, schedule: Schedule, *, now: float, fired_by: str) -> Job:
        with self._sched_tx("running the schedule") as conn:
            if (
                conn.execute(
                    self._q["get_schedule"], {"key": schedule.id, "owner": None}
                ).fetchone()
                is None
            ):
                raise NotFound(f"no schedule named {schedule.name!r}")
            run, count = self._runner(conn)
            job = run_now(run, lambda: count(schedule.id), schedule, now=now, fired_by=fired_by)
        self._doorbell.ring()
        return job

    def schedule_fires(self, schedule_id: str, *, limit: int = 50) -> list[ScheduleFire]:
        rows = self._read(self._q["list_fires"], {"id": schedule_id, "limit": limit})
        return [row_to_fire(r) for r in rows]

    # -- retention ------------------------------------------------------------------------
    def purge_keeping(self, finished_before: float, keep_last: int) -> list[str]:
        params = {"before": finished_before, "keep": max(int(keep_last), 0)}
        with self._sched_tx("purging") as conn:
            ids = [r[0] for r in conn.execute(self._q["purge_keeping_select"], params)]
            conn.executemany(self._q["delete_job_by_id"], [{"id": i} for i in ids])
        return ids

    def existing_job_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = self._read(f"SELECT id FROM jobs WHERE id IN ({marks})", chunk)
            found.update(r[0] for r in rows)
        return found
