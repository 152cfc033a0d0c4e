"""The firing transaction, written once for the SQL backends over named statements.

Both entry points run inside the caller's open transaction (a :class:`~opsjobs.store.sql.db.Tx`).
See :mod:`opsjobs.store.schedules` for why this is exactly-once.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from opsjobs.errors import Conflict
from opsjobs.model import Job, JobSpec, JobState
from opsjobs.schedules import FireOutcome, FirePlan, PlannedFire, Schedule, ScheduleFire
from opsjobs.store.schedules import LIMIT_REASON, FireResult
from opsjobs.store.sql.db import Tx
from opsjobs.store.sql.rows import columns, enum_value, job_params

__all__ = ["apply_plan", "count_active", "fire_params", "run_now"]


def count_active(tx: Tx, schedule_id: str) -> int:
    """The queued and running jobs of a schedule."""
    return int(tx.run("active_instances", {"id": schedule_id}).fetchone()["n"])


def fire_params(fire: ScheduleFire) -> dict[str, Any]:
    return columns(fire, outcome=enum_value)


def _job_spec(schedule: Schedule) -> JobSpec:
    return dataclasses.replace(schedule.spec, schedule_id=schedule.id)


def apply_plan(
    tx: Tx,
    schedule: Schedule,
    plan: FirePlan,
    *,
    now: float,
    fired_by: str,
) -> FireResult | None:
    """Advance ``next_fire_at`` conditionally, record the fires, queue the jobs."""
    moved = tx.run(
        "advance_schedule",
        {"id": schedule.id, "expected": schedule.next_fire_at, "next_fire_at": plan.next_fire_at},
    )
    if moved.rowcount != 1:
        return None  # another scheduler fired it, or it changed since it was read
    active = count_active(tx, schedule.id)
    spec = _job_spec(schedule)
    fires: list[ScheduleFire] = []
    jobs: list[Job] = []
    for planned in plan.fires:
        fire = _decide(schedule, planned, active, now, fired_by)
        if tx.run("insert_fire", fire_params(fire)).rowcount != 1:
            continue  # this fire time is recorded already: it never fires twice
        fires.append(fire)
        if fire.job_id is not None:
            tx.run("insert_job", job_params(fire.job_id, spec, now))
            jobs.append(Job(id=fire.job_id, spec=spec, state=JobState.QUEUED, submitted_at=now))
            active += 1
    if fires:
        tx.run(
            "set_last_fire",
            {
                "id": schedule.id,
                "fire_at": max(f.fire_at for f in fires),
                "job_id": jobs[-1].id if jobs else None,
            },
        )
    return FireResult(fires, jobs)


def _decide(
    schedule: Schedule, planned: PlannedFire, active: int, now: float, fired_by: str
) -> ScheduleFire:
    outcome, reason, job_id = planned.outcome, planned.reason, None
    if planned.runs:
        if active >= schedule.max_instances:
            outcome = FireOutcome.SKIPPED
            limit = LIMIT_REASON.format(limit=schedule.max_instances)
            reason = f"{reason}; {limit}" if reason else limit
        else:
            job_id = str(uuid.uuid4())
    return ScheduleFire(schedule.id, planned.fire_at, outcome, job_id, reason, now, fired_by)


def run_now(tx: Tx, schedule: Schedule, *, now: float, fired_by: str) -> Job:
    """Queue one job of ``schedule`` outside its fire times (the caller holds its row lock)."""
    if count_active(tx, schedule.id) >= schedule.max_instances:
        raise Conflict(
            f"schedule {schedule.name!r} has "
            + LIMIT_REASON.format(limit=schedule.max_instances)
            + "; wait for them or raise --max-instances"
        )
    spec = _job_spec(schedule)
    job_id = str(uuid.uuid4())
    fire = ScheduleFire(schedule.id, now, FireOutcome.FIRED, job_id, "run now", now, fired_by)
    if tx.run("insert_fire", fire_params(fire)).rowcount != 1:
        raise Conflict(f"schedule {schedule.name!r} was fired at this very instant already")
    tx.run("insert_job", job_params(job_id, spec, now))
    tx.run("set_last_fire", {"id": schedule.id, "fire_at": now, "job_id": job_id})
    return Job(id=job_id, spec=spec, state=JobState.QUEUED, submitted_at=now)
