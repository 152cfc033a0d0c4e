"""Schedules: what to run and when, and the pure arithmetic of fire times.

Nothing here touches a store or a clock: times come in as epoch seconds (UTC) and go out the
same way, so every rule below is testable with plain numbers.

Triggers
--------
``interval``
    Every ``every_seconds`` of real (absolute) time, on the grid ``anchor + k * every`` with
    ``k ≥ 1``; the anchor is the schedule's creation time. Time zones and DST do not apply.
``cron``
    A five-field cron expression (or ``@hourly``, ``@daily``, …) read on the wall clock of
    ``tz`` (an IANA zone, default ``UTC``). Across DST changes:

    * a wall time that does not exist (spring forward, e.g. 02:30 in Europe/Berlin on the last
      Sunday of March) fires once, shifted forward by the gap (03:30 local — the PEP 495
      ``fold=0`` reading); several gap times that land on the same instant fire once;
    * a wall time that happens twice (fall back) fires once, at its first occurrence.

Missed fire times
-----------------
A fire time is *due* once ``now >= fire_at``; it is *on time* while ``now - fire_at`` is within
the schedule's ``grace_seconds``, and *missed* after that (the scheduler was down or blocked).
On-time fires each run a job. Missed ones follow the schedule's :class:`Misfire` policy — see
:func:`plan_fires`. Every due fire time is recorded, run or not, so skips are visible.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from opsjobs.errors import ValidationError
from opsjobs.model import JobSpec, JobState, iso

__all__ = [
    "FireOutcome",
    "FirePlan",
    "Misfire",
    "PlannedFire",
    "Schedule",
    "ScheduleFire",
    "TriggerKind",
    "describe_trigger",
    "due_times",
    "next_fire",
    "plan_fires",
    "validate_cron",
    "validate_tz",
]

#: Most fire times recorded one by one for one backlog; older ones share one summary row.
MAX_BACKLOG = 100
MIN_INTERVAL = 1.0
MAX_INTERVAL = 366 * 86400.0
MAX_GRACE = 7 * 86400.0
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@ -]{0,119}$")
_DST_MARGIN = timedelta(hours=3)  # larger than any UTC offset change


class TriggerKind(str, Enum):
    INTERVAL = "interval"
    CRON = "cron"


class Misfire(str, Enum):
    """What to do with fire times missed by more than the grace window."""

    COALESCE = "coalesce"  # one run stands for all of them (default)
    SKIP = "skip"  # none runs; each is recorded as skipped
    CATCHUP = "catchup"  # each runs, up to catchup_cap of the most recent ones

    @classmethod
    def parse(cls, value: str | Misfire) -> Misfire:
        if isinstance(value, Misfire):
            return value
        try:
            return cls(str(value).strip().lower().replace("-", ""))
        except ValueError:
            raise ValidationError(
                f"unknown misfire policy {value!r} (expected coalesce, skip or catchup)"
            ) from None


class FireOutcome(str, Enum):
    FIRED = "fired"  # a job was queued for this fire time
    SKIPPED = "skipped"  # no job: missed (policy skip / beyond the cap) or instance limit
    COALESCED = "coalesced"  # no job of its own: folded into the run of another fire time


@dataclass(frozen=True)
class Schedule:
    """A named job spec and when to run it."""

    name: str
    spec: JobSpec
    trigger: TriggerKind
    every_seconds: float | None = None
    cron: str | None = None
    tz: str = "UTC"
    enabled: bool = True
    misfire: Misfire = Misfire.COALESCE
    grace_seconds: float = 60.0
    catchup_cap: int = 10
    max_instances: int = 1
    id: str = ""
    next_fire_at: float | None = None
    last_fire_at: float | None = None
    last_job_id: str | None = None
    last_job_state: JobState | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def validated(self) -> Schedule:
        """A copy with every field checked (raises :class:`ValidationError`)."""
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not _NAME_RE.match(name):
            raise ValidationError(
                f"invalid schedule name {str(self.name)[:60]!r}: 1-120 characters of letters, "
                "digits, spaces and _.:@- (starting with a letter or digit)"
            )
        trigger = TriggerKind(self.trigger)
        every, cron, tz = self.every_seconds, self.cron, validate_tz(self.tz)
        if trigger is TriggerKind.INTERVAL:
            if every is None or not isinstance(every, int | float) or isinstance(every, bool):
                raise ValidationError("an interval schedule needs every_seconds")
            if not math.isfinite(every) or not MIN_INTERVAL <= every <= MAX_INTERVAL:
                raise ValidationError(
                    f"interval must be between {MIN_INTERVAL:g} s and {MAX_INTERVAL / 86400:g} days"
                )
            every, cron = float(every), None
        else:
            cron, every = validate_cron(cron or ""), None
        grace = self.grace_seconds
        if isinstance(grace, bool) or not isinstance(grace, int | float):
            raise ValidationError("grace must be a number of seconds")
        if not 0 <= grace <= MAX_GRACE:
            raise ValidationError("grace must be between 0 s and 7 days")
        for value, what, hi in ((self.catchup_cap, "catchup cap", 1000),):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
                raise ValidationError(f"{what} must be an integer between 1 and {hi}")
        limit = self.max_instances
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError("max instances must be an integer between 1 and 10000")
        spec = dataclasses.replace(self.spec, name=self.spec.name or name).validated()
        return dataclasses.replace(
            self,
            name=name,
            spec=spec,
            trigger=trigger,
            every_seconds=every,
            cron=cron,
            tz=tz,
            misfire=Misfire.parse(self.misfire),
            grace_seconds=float(grace),
        )

    @property
    def trigger_text(self) -> str:
        return describe_trigger(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO-8601 UTC strings)."""
        spec = self.spec
        return {
            "id": self.id,
            "name": self.name,
            "trigger": self.trigger.value,
            "every_seconds": self.every_seconds,
            "cron": self.cron,
            "tz": self.tz,
            "enabled": self.enabled,
            "misfire": self.misfire.value,
            "grace_seconds": self.grace_seconds,
            "catchup_cap": self.catchup_cap,
            "max_instances": self.max_instances,
            "next_fire_at": iso(self.next_fire_at),
            "last_fire_at": iso(self.last_fire_at),
            "last_job_id": self.last_job_id,
            "last_job_state": self.last_job_state.value if self.last_job_state else None,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "job": {
                "name": spec.name,
                "kind": spec.kind,
                "payload": dict(spec.payload),
                "mode": spec.mode.value,
                "queue": spec.queue,
                "description": spec.description,
                "owner": spec.owner,
                "priority": spec.priority,
                "timeout": spec.timeout,
                "retries": spec.retries,
                "retry_delay": spec.retry_delay,
                "retry_backoff": spec.retry_backoff,
                "retry_max": spec.retry_max,
                "retry_on": [s.value for s in spec.retry_on],
            },
        }


@dataclass(frozen=True)
class ScheduleFire:
    """One recorded fire time of a schedule and what became of it."""

    schedule_id: str
    fire_at: float
    outcome: FireOutcome
    job_id: str | None = None
    reason: str = ""
    at: float = 0.0
    fired_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule_id": self.schedule_id,
            "fire_at": iso(self.fire_at),
            "outcome": self.outcome.value,
            "job_id": self.job_id,
            "reason": self.reason,
            "at": iso(self.at),
            "fired_by": self.fired_by,
        }


@dataclass(frozen=True)
class PlannedFire:
    """A fire time and what the policy decided; ``runs`` fires queue a job (subject to the
    instance limit, checked by the store)."""

    fire_at: float
    outcome: FireOutcome
    reason: str = ""

    @property
    def runs(self) -> bool:
        return self.outcome is FireOutcome.FIRED


@dataclass(frozen=True)
class FirePlan:
    """Everything one firing of a schedule does, applied by the store in one transaction."""

    fires: tuple[PlannedFire, ...]
    next_fire_at: float


# -- validation ---------------------------------------------------------------------------
def validate_tz(tz: object) -> str:
    if not isinstance(tz, str) or not tz.strip():
        raise ValidationError("time zone must be an IANA name such as Europe/Berlin")
    try:
        ZoneInfo(tz.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {tz!r} (use an IANA name)") from None
    return tz.strip()


def validate_cron(expr: object) -> str:
    """A five-field cron expression (``@daily`` and friends too), normalised."""
    text = " ".join(str(expr).split()) if isinstance(expr, str) else ""
    fields = text.split(" ") if text else []
    ok = (len(fields) == 5 or (len(fields) == 1 and text.startswith("@"))) and (
        croniter.is_valid(text)
    )
    if not ok:
        raise ValidationError(
            f"invalid cron expression {str(expr)[:80]!r} (five fields: minute hour day month "
            "weekday, e.g. '0 2 * * *')"
        )
    return text


# -- arithmetic ---------------------------------------------------------------------------
def next_fire(schedule: Schedule, after: float) -> float:
    """The first fire time of ``schedule`` strictly later than ``after`` (epoch seconds)."""
    if schedule.trigger is TriggerKind.INTERVAL:
        every = float(schedule.every_seconds or 0)
        anchor = schedule.created_at
        if after < anchor:
            return anchor + every
        k = math.floor((after - anchor) / every) + 1
        fire = anchor + k * every
        while fire <= after:  # floating point: never return a time that is not later
            k += 1
            fire = anchor + k * every
        return fire
    return _cron_next(schedule.cron or "", schedule.tz, after)


def _wall_to_epoch(wall: datetime, zone: ZoneInfo) -> float:
    # fold=0: the first occurrence of an ambiguous time; a time in a gap reads with the
    # offset from before the gap, i.e. lands the gap's length later.
    return wall.replace(tzinfo=zone, fold=0).timestamp()


def _cron_next(expr: str, tz: str, after: float) -> float:
    zone = ZoneInfo(tz)
    wall_after = datetime.fromtimestamp(after, zone).replace(tzinfo=None)
    # Walk wall-clock candidates from a little before ``after`` (mapping to epoch is not
    # monotonic around DST changes) and keep the earliest epoch later than ``after``.
    it = croniter(expr, wall_after - _DST_MARGIN)
    best: float | None = None
    best_wall: datetime | None = None
    while True:
        wall = it.get_next(datetime)
        if best_wall is not None and wall > best_wall + _DST_MARGIN:
            assert best is not None
            return best
        epoch = _wall_to_epoch(wall, zone)
        if epoch > after and (best is None or epoch < best):
            best, best_wall = epoch, wall


def due_times(schedule: Schedule, now: float, limit: int = MAX_BACKLOG) -> tuple[list[float], int]:
    """The due fire times from ``schedule.next_fire_at`` up to ``now``: the most recent
    ``limit`` of them, oldest first, and how many earlier ones were left out."""
    first = schedule.next_fire_at
    if first is None or first > now:
        return [], 0
    if schedule.trigger is TriggerKind.INTERVAL:
        every = float(schedule.every_seconds or 0)
        total = math.floor((now - first) / every + 1e-9) + 1
        grid = [first + k * every for k in range(max(total - limit, 0), total)]
        return [t for t in grid if t <= now] or [first], max(total - limit, 0)
    times: list[float] = []
    dropped = 0
    for t in _walk(schedule, first):
        if t > now:
            break
        times.append(t)
        if len(times) > limit:
            times.pop(0)
            dropped += 1
    return times, dropped


def _walk(schedule: Schedule, first: float) -> Iterator[float]:
    t = first
    while True:
        yield t
        t = next_fire(schedule, t)


def plan_fires(schedule: Schedule, now: float, limit: int = MAX_BACKLOG) -> FirePlan | None:
    """What firing ``schedule`` at ``now`` does; None when nothing is due.

    On-time fires (within ``grace_seconds``) each run. Missed ones, by policy:

    * ``coalesce`` — folded into one run: the first on-time fire's, or else one run for the
      most recent missed fire time;
    * ``skip`` — recorded as skipped, none runs;
    * ``catchup`` — the most recent ``catchup_cap`` each run, oldest first; older ones skipped.

    Fire times beyond ``limit`` are summarised in one row at the oldest recorded time.
    """
    times, dropped = due_times(schedule, now, limit)
    if not times:
        return None
    grace = schedule.grace_seconds
    missed = [t for t in times if now - t > grace]
    on_time = [t for t in times if now - t <= grace]
    fires: list[PlannedFire] = [PlannedFire(t, FireOutcome.FIRED) for t in on_time]
    late = [f"missed by {now - t:.0f} s (grace {grace:g} s)" for t in missed]
    policy = schedule.misfire
    if policy is Misfire.COALESCE:
        if on_time:
            into = f"coalesced into the run at {iso(on_time[0])}"
            missed_fires = [PlannedFire(t, FireOutcome.COALESCED, into) for t in missed]
        else:
            into = f"coalesced into the run at {iso(missed[-1])}"
            missed_fires = [PlannedFire(t, FireOutcome.COALESCED, into) for t in missed[:-1]]
            missed_fires.append(PlannedFire(missed[-1], FireOutcome.FIRED, "late: " + late[-1]))
    elif policy is Misfire.SKIP:
        missed_fires = [
            PlannedFire(t, FireOutcome.SKIPPED, why) for t, why in zip(missed, late, strict=True)
        ]
    else:
        cap = schedule.catchup_cap
        cut = max(len(missed) - cap, 0)
        missed_fires = [
            PlannedFire(t, FireOutcome.SKIPPED, f"beyond the catch-up cap of {cap}")
            for t in missed[:cut]
        ] + [
            PlannedFire(t, FireOutcome.FIRED, "catch-up: " + why)
            for t, why in zip(missed[cut:], late[cut:], strict=True)
        ]
    fires = missed_fires + fires
    if dropped:
        outcome = FireOutcome.COALESCED if policy is Misfire.COALESCE else FireOutcome.SKIPPED
        head = fires[0]
        fires[0] = dataclasses.replace(
            head,
            outcome=outcome if not head.runs else head.outcome,
            reason=f"{head.reason}; {dropped} earlier fire time(s) were not run either "
            "(backlog longer than the recording limit)".lstrip("; "),
        )
    return FirePlan(tuple(fires), next_fire(schedule, max(now, times[-1])))


def describe_trigger(schedule: Schedule) -> str:
    """``every 30m`` or ``cron 0 2 * * * (Europe/Berlin)``."""
    if schedule.trigger is TriggerKind.INTERVAL:
        return f"every {format_seconds(schedule.every_seconds or 0)}"
    tz = "" if schedule.tz == "UTC" else f" ({schedule.tz})"
    return f"cron {schedule.cron}{tz}"


def format_seconds(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
