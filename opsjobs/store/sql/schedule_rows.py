"""Mapping between schedule rows and :mod:`opsjobs.schedules` objects (SQL backends)."""

from __future__ import annotations

import json
from typing import Any

from opsjobs.model import JobSpec, JobState, Mode
from opsjobs.schedules import FireOutcome, Misfire, Schedule, ScheduleFire, TriggerKind

__all__ = ["fire_params", "row_to_fire", "row_to_schedule", "schedule_params"]

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
)


def spec_json(spec: JobSpec) -> str:
    data = {name: getattr(spec, name) for name in _SPEC_FIELDS}
    data["payload"] = dict(spec.payload)
    data["mode"] = spec.mode.value
    return json.dumps(data, separators=(",", ":"))


def spec_from(value: Any, schedule_id: str) -> JobSpec:
    data = value if isinstance(value, dict) else json.loads(value)
    data = {k: data[k] for k in _SPEC_FIELDS if k in data}
    data["mode"] = Mode(data.get("mode", "thread"))
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
    state = row["last_job_state"]
    return Schedule(
        id=str(row["id"]),
        name=row["name"],
        spec=spec_from(row["spec"], str(row["id"])),
        trigger=TriggerKind(row["trigger"]),
        every_seconds=row["every_seconds"],
        cron=row["cron"],
        tz=row["tz"],
        enabled=bool(row["enabled"]),
        misfire=Misfire(row["misfire"]),
        grace_seconds=row["grace_seconds"],
        catchup_cap=row["catchup_cap"],
        max_instances=row["max_instances"],
        next_fire_at=row["next_fire_at"],
        last_fire_at=row["last_fire_at"],
        last_job_id=row["last_job_id"],
        last_job_state=JobState(state) if state else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def fire_params(fire: ScheduleFire) -> dict[str, Any]:
    return {
        "schedule_id": fire.schedule_id,
        "fire_at": fire.fire_at,
        "outcome": fire.outcome.value,
        "job_id": fire.job_id,
        "reason": fire.reason,
        "at": fire.at,
        "fired_by": fire.fired_by,
    }


def row_to_fire(row: Any) -> ScheduleFire:
    return ScheduleFire(
        schedule_id=row["schedule_id"],
        fire_at=row["fire_at"],
        outcome=FireOutcome(row["outcome"]),
        job_id=row["job_id"],
        reason=row["reason"],
        at=row["at"],
        fired_by=row["fired_by"],
    )
