"""Schedules in the in-memory store (a mixin of :class:`~opsjobs.store.memory.MemoryStore`).

One lock guards jobs and schedules, so a fire is atomic like the SQL transaction it mirrors.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opsjobs.errors import Conflict, NotFound
from opsjobs.model import ACTIVE_STATES, TERMINAL_STATES, Job, JobState
from opsjobs.schedules import FireOutcome, FirePlan, Schedule, ScheduleFire
from opsjobs.store.schedules import LIMIT_REASON, FireResult, ScheduleStore, pick_schedule

__all__ = ["MemorySchedules"]


class MemorySchedules(ScheduleStore):
    """The :class:`ScheduleStore` part of the memory store."""

    _lock: threading.RLock
    _jobs: dict[str, Job]

    if TYPE_CHECKING:

        def _ring(self) -> None: ...

    @property
    def _schedules(self) -> dict[str, Schedule]:
        # Created lazily: the memory store's __init__ is not ours to extend.
        try:
            return self.__dict__["_sched_rows"]
        except KeyError:
            return self.__dict__.setdefault("_sched_rows", {})

    @property
    def _fires(self) -> dict[tuple[str, float], ScheduleFire]:
        try:
            return self.__dict__["_sched_fires"]
        except KeyError:
            return self.__dict__.setdefault("_sched_fires", {})

    def _with_state(self, schedule: Schedule) -> Schedule:
        job = self._jobs.get(schedule.last_job_id or "")
        return dataclasses.replace(schedule, last_job_state=job.state if job else None)

    def _find(self, name_or_id: str, owner: str | None = None) -> Schedule:
        found = self._schedules.get(name_or_id)
        if found is not None:
            return found
        named = sorted(
            (
                s
                for s in self._schedules.values()
                if s.name == name_or_id and (owner is None or (s.spec.owner or "") == owner)
            ),
            key=lambda s: s.spec.owner or "",
        )
        return pick_schedule(named, name_or_id, lambda s: s.id)

    def add_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        with self._lock:
            if any(_same_name(s, schedule) for s in self._schedules.values()):
                raise Conflict(f"a schedule named {schedule.name!r} exists already")
            if schedule.id in self._schedules:
                raise Conflict(f"a schedule with id {schedule.id} exists already")
            stored = dataclasses.replace(
                schedule,
                created_at=now,
                updated_at=now,
                last_fire_at=None,
                last_job_id=None,
                last_job_state=None,
            )
            self._schedules[schedule.id] = stored
        self._ring()
        return self.get_schedule(schedule.id)

    def get_schedule(self, name_or_id: str, *, owner: str | None = None) -> Schedule:
        with self._lock:
            return self._with_state(self._find(name_or_id, owner))

    def list_schedules(self) -> list[Schedule]:
        with self._lock:
            return [
                self._with_state(s) for s in sorted(self._schedules.values(), key=lambda s: s.name)
            ]

    def update_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        with self._lock:
            old = self._schedules.get(schedule.id)
            if old is None:
                raise NotFound(f"no schedule named {schedule.name!r}")
            if any(_same_name(s, schedule) and s.id != old.id for s in self._schedules.values()):
                raise Conflict(f"a schedule named {schedule.name!r} exists already")
            self._schedules[old.id] = dataclasses.replace(
                schedule,
                created_at=old.created_at,
                updated_at=now,
                last_fire_at=old.last_fire_at,
                last_job_id=old.last_job_id,
                last_job_state=None,
            )
        self._ring()
        return self.get_schedule(schedule.id)

    def remove_schedule(self, schedule_id: str) -> None:
        with self._lock:
            if self._schedules.pop(schedule_id, None) is None:
                raise NotFound(f"no schedule with id {schedule_id}")
            for key in [k for k in self._fires if k[0] == schedule_id]:
                del self._fires[key]
        self._ring()

    def next_due_at(self) -> float | None:
        with self._lock:
            times = [
                s.next_fire_at
                for s in self._schedules.values()
                if s.enabled and s.next_fire_at is not None
            ]
        return min(times) if times else None

    def due_schedules(self, now: float) -> list[Schedule]:
        with self._lock:
            due = [
                s
                for s in self._schedules.values()
                if s.enabled and s.next_fire_at is not None and s.next_fire_at <= now
            ]
        return sorted(due, key=lambda s: s.next_fire_at or 0.0)

    def _active(self, schedule_id: str) -> int:
        return sum(
            1
            for j in self._jobs.values()
            if j.spec.schedule_id == schedule_id and j.state in ACTIVE_STATES
        )

    def _queue(self, schedule: Schedule, now: float) -> Job:
        spec = dataclasses.replace(schedule.spec, schedule_id=schedule.id)
        job = Job(id=str(uuid.uuid4()), spec=spec, state=JobState.QUEUED, submitted_at=now)
        self._jobs[job.id] = job
        return dataclasses.replace(job)

    def fire_schedule(
        self, schedule: Schedule, plan: FirePlan, *, now: float, fired_by: str
    ) -> FireResult | None:
        with self._lock:
            current = self._schedules.get(schedule.id)
            if (
                current is None
                or not current.enabled
                or current.next_fire_at != schedule.next_fire_at
            ):
                return None
            active = self._active(schedule.id)
            fires: list[ScheduleFire] = []
            jobs: list[Job] = []
            for planned in plan.fires:
                if (schedule.id, planned.fire_at) in self._fires:
                    continue
                outcome, reason, job_id = planned.outcome, planned.reason, None
                if planned.runs:
                    if active >= current.max_instances:
                        outcome = FireOutcome.SKIPPED
                        limit = LIMIT_REASON.format(limit=current.max_instances)
                        reason = f"{reason}; {limit}" if reason else limit
                    else:
                        job = self._queue(current, now)
                        jobs.append(job)
                        job_id = job.id
                        active += 1
                fire = ScheduleFire(
                    schedule.id, planned.fire_at, outcome, job_id, reason, now, fired_by
                )
                self._fires[(schedule.id, planned.fire_at)] = fire
                fires.append(fire)
            last_fire = max([f.fire_at for f in fires] + [current.last_fire_at or -1e300])
            self._schedules[schedule.id] = dataclasses.replace(
                current,
                next_fire_at=plan.next_fire_at,
                last_fire_at=last_fire if fires or current.last_fire_at else None,
                last_job_id=jobs[-1].id if jobs else current.last_job_id,
            )
        if jobs:
            self._ring()
        return FireResult(fires, jobs)

    def run_schedule_now(self, schedule: Schedule, *, now: float, fired_by: str) -> Job:
        with self._lock:
            current = self._find(schedule.id)
            if self._active(current.id) >= current.max_instances:
                raise Conflict(
                    f"schedule {current.name!r} has "
                    + LIMIT_REASON.format(limit=current.max_instances)
                    + "; wait for them or raise --max-instances"
                )
            if (current.id, now) in self._fires:
                raise Conflict(f"schedule {current.name!r} was fired at this very instant already")
            job = self._queue(current, now)
            self._fires[(current.id, now)] = ScheduleFire(
                current.id, now, FireOutcome.FIRED, job.id, "run now", now, fired_by
            )
            self._schedules[current.id] = dataclasses.replace(
                current,
                last_fire_at=max(now, current.last_fire_at or now),
                last_job_id=job.id,
            )
        self._ring()
        return job

    def schedule_fires(self, schedule_id: str, *, limit: int = 50) -> list[ScheduleFire]:
        with self._lock:
            fires = [f for (sid, _), f in self._fires.items() if sid == schedule_id]
        fires.sort(key=lambda f: f.fire_at, reverse=True)
        return fires[:limit]

    # -- retention ------------------------------------------------------------------------
    def purge_keeping(self, finished_before: float, keep_last: int) -> list[str]:
        with self._lock:
            by_name: dict[str, list[Job]] = {}
            for job in self._jobs.values():
                if job.state in TERMINAL_STATES:
                    by_name.setdefault(job.name, []).append(job)
            ids: list[str] = []
            for jobs in by_name.values():
                jobs.sort(key=lambda j: (j.finished_at or 0.0, j.id), reverse=True)
                ids += [
                    j.id
                    for j in jobs[max(keep_last, 0) :]
                    if (j.finished_at or 0) < finished_before
                ]
            for job_id in ids:
                del self._jobs[job_id]
        return ids

    def existing_job_ids(self, ids: Iterable[str]) -> set[str]:
        with self._lock:
            return {i for i in ids if i in self._jobs}


def _same_name(a: Schedule, b: Schedule) -> bool:
    """Names are unique per owner."""
    return a.name == b.name and (a.spec.owner or "") == (b.spec.owner or "")
