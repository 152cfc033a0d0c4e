"""The schedules part of the :class:`~opsjobs.store.Store` interface (and job retention).

Exactly once
------------
:meth:`ScheduleStore.fire_schedule` applies a :class:`~opsjobs.schedules.FirePlan` in ONE
transaction: it first moves ``next_fire_at`` on *only if it still holds the value the scheduler
read* (a conditional update — the loser of a race between schedulers changes nothing and gets
``None``), then records each fire time in ``schedule_fires`` under the unique key
``(schedule_id, fire_at)`` (a fire time already recorded is left alone and queues nothing), and
queues a job for each fire that runs — unless the schedule's ``max_instances`` queued-or-running
jobs exist already, in which case the fire is recorded ``skipped`` with the reason. Idle
waiters (workers, schedulers) are woken after commit.

Names are unique per owner (``spec.owner``), not globally: one user's name tells nothing of
another's schedules. A name shared by several owners is found by its id, or with its owner.

Schedule changes (add, pause, resume, edit, remove) wake waiters too, so a sleeping scheduler
recomputes its next due time at once.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from opsjobs.errors import Conflict, NotFound
from opsjobs.model import Job
from opsjobs.schedules import FirePlan, Schedule, ScheduleFire

__all__ = ["FireResult", "ScheduleStore", "pick_schedule"]

T = TypeVar("T")

#: Outcome reason when the instance limit stops a fire.
LIMIT_REASON = "max_instances ({limit}) queued or running already"


class FireResult:
    """What :meth:`ScheduleStore.fire_schedule` did: the fires recorded and jobs queued."""

    def __init__(self, fires: list[ScheduleFire], jobs: list[Job]) -> None:
        self.fires = fires
        self.jobs = jobs

    def __repr__(self) -> str:
        return f"FireResult(fires={len(self.fires)}, jobs={len(self.jobs)})"


class ScheduleStore(abc.ABC):
    """Persistence of schedules and their fire times. Each method is one transaction."""

    @abc.abstractmethod
    def add_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        """Insert a validated schedule (its ``id`` and ``next_fire_at`` set by the caller);
        :class:`~opsjobs.errors.Conflict` when its owner has one of that name already."""

    @abc.abstractmethod
    def get_schedule(self, name_or_id: str, *, owner: str | None = None) -> Schedule:
        """The schedule with this id, else the one with this name (``owner``'s, when given);
        :class:`~opsjobs.errors.NotFound` when none, :class:`~opsjobs.errors.Conflict` when
        owners share the name and no owner was given."""

    @abc.abstractmethod
    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name, with the state of its last job."""

    @abc.abstractmethod
    def update_schedule(self, schedule: Schedule, *, now: float) -> Schedule:
        """Replace the definition (spec, trigger, policy, enabled, next fire time) of the
        schedule with ``schedule.id``; fire history and last job are kept."""

    @abc.abstractmethod
    def remove_schedule(self, schedule_id: str) -> None:
        """Delete a schedule and its fire records (its jobs stay)."""

    @abc.abstractmethod
    def next_due_at(self) -> float | None:
        """The earliest ``next_fire_at`` of the enabled schedules (None when there is none)."""

    @abc.abstractmethod
    def due_schedules(self, now: float) -> list[Schedule]:
        """Enabled schedules whose ``next_fire_at`` is at or before ``now``."""

    @abc.abstractmethod
    def fire_schedule(
        self,
        schedule: Schedule,
        plan: FirePlan,
        *,
        now: float,
        fired_by: str,
    ) -> FireResult | None:
        """Apply ``plan`` to ``schedule`` (as read, with its ``next_fire_at``) atomically.

        None when the schedule's ``next_fire_at`` changed since it was read (another scheduler
        fired it, or it was edited, paused or removed).
        """

    @abc.abstractmethod
    def run_schedule_now(self, schedule: Schedule, *, now: float, fired_by: str) -> Job:
        """Queue one job of ``schedule`` now, recorded as a fire; the regular fire times are
        unchanged. :class:`~opsjobs.errors.Conflict` at the instance limit."""

    @abc.abstractmethod
    def schedule_fires(self, schedule_id: str, *, limit: int = 50) -> list[ScheduleFire]:
        """Recorded fire times of a schedule, newest first."""

    # -- retention ------------------------------------------------------------------------
    @abc.abstractmethod
    def purge_keeping(self, finished_before: float, keep_last: int) -> list[str]:
        """Delete finished jobs that ended before the cut-off, except the ``keep_last`` most
        recently finished jobs of each job name; return the deleted ids."""

    @abc.abstractmethod
    def existing_job_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that are jobs in the store."""


def pick_schedule(found: Sequence[T], key: str, id_of: Callable[[T], str]) -> T:
    """What ``get_schedule(key)`` answers from ``found``: the schedules whose id is ``key``
    (first) or whose name is ``key``."""
    if not found:
        raise NotFound(f"no schedule named {key!r}")
    if id_of(found[0]) == key or len(found) == 1:
        return found[0]
    raise Conflict(f"{len(found)} schedules are named {key!r} (different owners): give its id")
