"""Schedules of the SQL backends (and job retention), written once over the :class:`~.db.Db`
port; the firing transaction is :mod:`.firing`.

The conditional ``advance_schedule`` and the fire table's primary key make firing exactly-once
on every dialect: SQLite serialises the transactions by its write lock, PostgreSQL by the
schedule's row lock (a second scheduler waits, then finds ``next_fire_at`` moved on and updates
nothing). See :mod:`opsjobs.store.schedules`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opsjobs.errors import NotFound
from opsjobs.model import Job, JobSpec, JobState, Mode, parse_retry_on
from opsjobs.schedules import FireOutcome, FirePlan, Misfire, Schedule, ScheduleFire, TriggerKind
from opsjobs.store.schedules import FireResult, ScheduleStore, pick_schedule
from opsjobs.store.sql.db import Db, Tx
from opsjobs.store.sql.firing import apply_plan, run_now
from opsjobs.store.sql.rows import from_columns

__all__ = ["SqlSchedules", "row_to_fire", "row_to_schedule", "schedule_params"]


class SqlSchedules(ScheduleStore):
    """The schedules domain of a SQL store (a mixin: the store sets ``_db``)."""

    _db: Db

    def add_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        params = schedule_params(schedule, now)

        def insert(tx: Tx) -> None:
            tx.run("insert_schedule", params)
            tx.wake()

        self._db.transaction("adding the schedule", insert, conflict=_taken(schedule))
        return self.get_schedule(schedule.id)

    def get_schedule(self, name_or_id: str, *, owner: str | None = None) -> Schedule:
        rows = self._db.read("get schedule", "get_schedule", {"key": name_or_id, "owner": owner})
        return row_to_schedule(pick_schedule(rows, name_or_id, lambda r: str(r["id"])))

    def list_schedules(self) -> list[Schedule]:
        return [row_to_schedule(r) for r in self._db.read("schedules", "list_schedules")]

    def update_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        params = schedule_params(schedule, now)

        def update(tx: Tx) -> int:
            count = int(tx.run("update_schedule", params).rowcount)
            tx.wake()
            return count

        if self._db.transaction("updating the schedule", update, conflict=_taken(schedule)) != 1:
            raise NotFound(f"no schedule named {schedule.name!r}")
        return self.get_schedule(schedule.id)

    def remove_schedule(self, schedule_id: str) -> None:
        def delete(tx: Tx) -> int:
            count = int(tx.run("delete_schedule", {"id": schedule_id}).rowcount)
            tx.wake()
            return count

        if self._db.transaction("removing the schedule", delete) != 1:
            raise NotFound(f"no schedule with id {schedule_id}")

    def next_due_at(self) -> float | None:
        value = self._db.read("next due time", "next_due_at")[0]["at"]
        return None if value is None else float(value)

    def due_schedules(self, now: float) -> list[Schedule]:
        rows = self._db.read("due schedules", "due_schedules", {"now": now})
        return [row_to_schedule(r) for r in rows]

    def fire_schedule(
        self, schedule: Schedule, plan: FirePlan, *, now: float, fired_by: str
    ) -> FireResult | None:
        def fire(tx: Tx) -> FireResult | None:
            result = apply_plan(tx, schedule, plan, now=now, fired_by=fired_by)
            if result is not None and result.jobs:
                tx.wake()
            return result

        return self._db.transaction("firing the schedule", fire)

    def run_schedule_now(self, schedule: Schedule, *, now: float, fired_by: str) -> Job:
        def fire(tx: Tx) -> Job:
            # The row lock (PostgreSQL; SQLite's write lock is held already) serialises this
            # with fires of the same schedule, so the instance count cannot be raced.
            if tx.run("lock_schedule", {"id": schedule.id}).fetchone() is None:
                raise NotFound(f"no schedule named {schedule.name!r}")
            job = run_now(tx, schedule, now=now, fired_by=fired_by)
            tx.wake()
            return job

        return self._db.transaction("running the schedule", fire)

    def schedule_fires(self, schedule_id: str, *, limit: int = 50) -> list[ScheduleFire]:
        rows = self._db.read("fires", "list_fires", {"id": schedule_id, "limit": limit})
        return [row_to_fire(r) for r in rows]

    # -- retention ------------------------------------------------------------------------
    def purge_keeping(self, finished_before: float, keep_last: int) -> list[str]:
        params = {"before": finished_before, "keep": max(int(keep_last), 0)}
        rows = self._db.transaction(
            "purging", lambda tx: tx.run("purge_keeping", params).fetchall()
        )
        return [r["id"] for r in rows]

    def existing_job_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return set()
        params = {"ids": self._db.array(wanted)}
        return {r["id"] for r in self._db.read("existing jobs", "existing_job_ids", params)}


def _taken(schedule: Schedule) -> str:
    return f"a schedule named {schedule.name!r} exists already"


# Row mapping ----------------------------------------------------------------------------------
_SPEC_FIELDS = (
    "name",
    "kind",
    "payload",
    "mode",
    "queue",
    "description",
    "owner",
    "priority",
    "timeout",
    "retries",
    "retry_delay",
    "retry_backoff",
    "retry_max",
    "retry_on",
)


def spec_json(spec: JobSpec) -> str:
    data = {name: getattr(spec, name) for name in _SPEC_FIELDS}
    data["payload"] = dict(spec.payload)
    data["mode"] = spec.mode.value
    data["retry_on"] = [s.value for s in spec.retry_on]
    return json.dumps(data, separators=(",", ":"))


def spec_from(value: Any, schedule_id: str) -> JobSpec:
    data = value if isinstance(value, dict) else json.loads(value)
    data = {k: data[k] for k in _SPEC_FIELDS if k in data}
    data["mode"] = Mode(data.get("mode", "thread"))
    if "retry_on" in data:  # a schedule stored before retry policies has the defaults
        data["retry_on"] = parse_retry_on(data["retry_on"])
    return JobSpec(**data, schedule_id=schedule_id)


def schedule_params(schedule: Schedule, now: float) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "owner": schedule.spec.owner or "",
        "name": schedule.name,
        "spec": spec_json(schedule.spec),
        "trigger": schedule.trigger.value,
        "every_seconds": schedule.every_seconds,
        "cron": schedule.cron,
        "tz": schedule.tz,
        "enabled": schedule.enabled,
        "misfire": schedule.misfire.value,
        "grace_seconds": schedule.grace_seconds,
        "catchup_cap": schedule.catchup_cap,
        "max_instances": schedule.max_instances,
        "next_fire_at": schedule.next_fire_at,
        "now": now,
    }


def row_to_schedule(row: Any) -> Schedule:
    schedule_id = str(row["id"])
    return from_columns(
        Schedule,
        row,
        id=str,
        spec=lambda spec: spec_from(spec, schedule_id),
        trigger=TriggerKind,
        enabled=bool,
        misfire=Misfire,
        last_job_state=lambda state: JobState(state) if state else None,
    )


def row_to_fire(row: Any) -> ScheduleFire:
    return from_columns(ScheduleFire, row, outcome=FireOutcome)
