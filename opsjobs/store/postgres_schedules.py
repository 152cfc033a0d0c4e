"""Schedules in the PostgreSQL store (a mixin of :class:`~opsjobs.store.postgres.PostgresStore`).

The firing transaction's conditional ``UPDATE … WHERE next_fire_at = %(expected)s`` takes the
schedule's row lock: a second scheduler firing the same schedule waits for the first to commit,
then finds ``next_fire_at`` moved on and updates nothing (READ COMMITTED re-checks the WHERE on
the new row version). The primary key of ``schedule_fires`` backs this up. Jobs queued by a fire
send ``NOTIFY`` in the same transaction, delivered on commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.rows import DictRow

from ..errors import Conflict, NotFound, StoreError
from ..model import Job
from ..schedules import FirePlan, Schedule, ScheduleFire
from .firing import apply_plan, run_now
from .schedules import FireResult, ScheduleStore, pick_schedule
from .sql.schedule_rows import row_to_fire, row_to_schedule, schedule_params

__all__ = ["PostgresSchedules"]

T = TypeVar("T")
Conn = psycopg.Connection[DictRow]


class PostgresSchedules(ScheduleStore):
    """The :class:`ScheduleStore` part of the PostgreSQL store."""

    _q: dict[str, str]

    if TYPE_CHECKING:

        def _run(self, what: str, work: Callable[[Conn], T], *, write: bool = True) -> T: ...
        def _read(self, what: str, query: str, params: Any = None) -> list[DictRow]: ...
        def _notify(self, conn: Conn) -> None: ...

    def _exec(self, conn: Conn, name: str, params: dict[str, Any]) -> Any:
        return conn.execute(self._q[name], params)

    def add_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        params = schedule_params(schedule, now)

        def insert(conn: Conn) -> None:
            self._exec(conn, "insert_schedule", params)
            self._notify(conn)

        try:
            self._run("adding the schedule", insert)
        except StoreError as exc:
            if isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
                raise Conflict(f"a schedule named {schedule.name!r} exists already") from None
            raise
        return self.get_schedule(schedule.id)

    def get_schedule(self, name_or_id: str, *, owner: str | None = None) -> Schedule:
        rows = self._read(
            "get schedule", self._q["get_schedule"], {"key": name_or_id, "owner": owner}
        )
        return row_to_schedule(pick_schedule(rows, name_or_id, lambda r: str(r["id"])))

    def list_schedules(self) -> list[Schedule]:
        return [row_to_schedule(r) for r in self._read("schedules", self._q["list_schedules"])]

    def update_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        params = schedule_params(schedule, now)

        def update(conn: Conn) -> int:
            count = int(self._exec(conn, "update_schedule", params).rowcount)
            self._notify(conn)
            return count

        try:
            changed = self._run("updating the schedule", update)
        except StoreError as exc:
            if isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
                raise Conflict(f"a schedule named {schedule.name!r} exists already") from None
            raise
        if changed != 1:
            raise NotFound(f"no schedule named {schedule.name!r}")
        return self.get_schedule(schedule.id)

    def remove_schedule(self, schedule_id: str) -> None:
        def delete(conn: Conn) -> int:
            count = int(self._exec(conn, "delete_schedule", {"id": schedule_id}).rowcount)
            self._notify(conn)
            return count

        if self._run("removing the schedule", delete) != 1:
            raise NotFound(f"no schedule with id {schedule_id}")

    def next_due_at(self) -> float | None:
        value = self._read("next due time", self._q["next_due_at"])[0]["at"]
        return None if value is None else float(value)

    def due_schedules(self, now: float) -> list[Schedule]:
        rows = self._read("due schedules", self._q["due_schedules"], {"now": now})
        return [row_to_schedule(r) for r in rows]

    def _count_active(self, conn: Conn, schedule_id: str) -> int:
        row = self._exec(conn, "active_instances", {"id": schedule_id}).fetchone()
        return int(row["n"])

    def fire_schedule(
        self, schedule: Schedule, plan: FirePlan, *, now: float, fired_by: str
    ) -> FireResult | None:
        def fire(conn: Conn) -> FireResult | None:
            result = apply_plan(
                lambda name, params: self._exec(conn, name, params),
                lambda: self._count_active(conn, schedule.id),
                schedule,
                plan,
                now=now,
                fired_by=fired_by,
            )
            if result is not None and result.jobs:
                self._notify(conn)
            return result

        return self._run("firing the schedule", fire)

    def run_schedule_now(self, schedule: Schedule, *, now: float, fired_by: str) -> Job:
        def fire(conn: Conn) -> Job:
            # The row lock serialises this with fires of the same schedule, so the instance
            # count below cannot be raced.
            if self._exec(conn, "lock_schedule", {"id": schedule.id}).fetchone() is None:
                raise NotFound(f"no schedule named {schedule.name!r}")
            job = run_now(
                lambda name, params: self._exec(conn, name, params),
                lambda: self._count_active(conn, schedule.id),
                schedule,
                now=now,
                fired_by=fired_by,
            )
            self._notify(conn)
            return job

        return self._run("running the schedule", fire)

    def schedule_fires(self, schedule_id: str, *, limit: int = 50) -> list[ScheduleFire]:
        rows = self._read("fires", self._q["list_fires"], {"id": schedule_id, "limit": limit})
        return [row_to_fire(r) for r in rows]

    # -- retention ------------------------------------------------------------------------
    def purge_keeping(self, finished_before: float, keep_last: int) -> list[str]:
        params = {"before": finished_before, "keep": max(int(keep_last), 0)}
        rows = self._run(
            "purging", lambda conn: self._exec(conn, "purge_keeping", params).fetchall()
        )
        return [r["id"] for r in rows]

    def existing_job_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return set()
        rows = self._read("existing jobs", self._q["existing_job_ids"], {"ids": wanted})
        return {r["id"] for r in rows}
