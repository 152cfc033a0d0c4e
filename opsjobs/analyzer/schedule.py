"""The recurring analysis: a ``memory-analysis`` schedule aimed at one worker's process.

Which schedule belongs to which worker
--------------------------------------
A worker's id changes at every start, so schedules are keyed by something that survives a
restart (:func:`schedule_name`):

* the server's hosted worker (``opsjobs serve``): ``memory-analysis``;
* a standalone worker (``opsjobs worker --memory-analysis``, ``opsjobs.embed(...,
  memory_analysis="30m")``): ``memory-analysis@<host>:<key>``, where the key is the worker's
  ``--name`` or, by default, its named queues joined by ``:``.

Every analysis schedule, and so every analysis it queues, belongs to the ``system`` owner
(:data:`opsjobs.auth.SYSTEM_OWNER`), whichever OS user started the worker: all signed-in users
see them, only admins change them.

At start-up a worker that opts in calls :func:`opt_in`: it creates its schedule, or re-aims
the existing one at its new private queue ``worker:<id>`` (history, pause state kept; an
analysis still queued for the previous process is cancelled, as it would block the schedule's
instance limit forever). Then it removes the analysis schedules of workers gone for longer than
:data:`STALE_AFTER` (7 days without a heartbeat: decommissioned, or renamed), so schedules of
dead workers do not pile up; a worker that comes back later simply creates its schedule again.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opsjobs.analyzer.job import JOB_NAME, TARGET, job_kwargs
from opsjobs.auth.model import SYSTEM_OWNER
from opsjobs.errors import Conflict, NotFound, ValidationError
from opsjobs.schedules import Schedule

if TYPE_CHECKING:
    from opsjobs.client import Client

__all__ = [
    "DEFAULT_EVERY",
    "JOB_TIMEOUT",
    "STALE_AFTER",
    "ensure_schedule",
    "opt_in",
    "prune_schedules",
    "schedule_name",
    "validate_every",
]

log = logging.getLogger("opsjobs.analyzer")

#: The seed's cadence: every 30 minutes.
DEFAULT_EVERY = 1800.0
#: Seconds one scheduled analysis may run before the worker marks it timed out.
JOB_TIMEOUT = 600.0
#: A worker silent for this long no longer keeps its analysis schedule (:func:`prune_schedules`).
STALE_AFTER = 7 * 86400.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:@-]+")
_MAX_NAME = 120


def _same(a: Schedule, b: Schedule) -> bool:
    fields = ("trigger", "every_seconds", "cron", "tz")
    spec = ("name", "owner", "kind", "payload", "mode", "queue", "timeout", "description")
    return all(getattr(a, f) == getattr(b, f) for f in fields) and all(
        getattr(a.spec, f) == getattr(b.spec, f) for f in spec
    )


def ensure_schedule(
    client: Client,
    worker_id: str,
    *,
    name: str = JOB_NAME,
    every: float | str = DEFAULT_EVERY,
    **analysis: Any,
) -> Schedule:
    """Create or re-aim the schedule ``name`` that analyses worker ``worker_id`` every
    ``every`` (seconds or a duration such as ``"30m"``); idempotent.

    If the schedule exists with the same definition it is returned unchanged; if it differs
    (typically: the worker restarted under a new id) its definition is replaced, keeping its
    history and its paused/enabled state. A worker that opts in calls this at start-up.

    Parameters
    ----------
    client
        Where the schedule is stored.
    worker_id
        The worker whose process is analysed (its private queue ``worker:<id>``).
    name
        Schedule name; one schedule per analysed worker, so give each worker its own when
        several opt in.
    every
        Interval between analyses.
    **analysis
        Keyword arguments of the analysis job (``deep``, ``top_count``, ``export_csv``,
        ``time_budget``, ``thresholds``, ``history_hours``), validated here.
    """
    if not isinstance(worker_id, str) or not worker_id or ":" in worker_id:
        raise ValidationError(f"invalid worker id {str(worker_id)[:60]!r}")
    wanted = client.schedules.build(
        name,
        every=every,
        call=TARGET,
        kwargs=job_kwargs(**analysis),
        job_name=JOB_NAME,
        mode="thread",
        queue=f"worker:{worker_id}",
        description=f"recurring live memory analysis of worker {worker_id}",
        timeout=JOB_TIMEOUT,
        owner=SYSTEM_OWNER,
    )
    for _ in range(2):  # a concurrent creator may win the name between get and add
        try:
            current = client.schedules.get(name, owner=SYSTEM_OWNER)
        except NotFound:
            legacy = _legacy(client, name)
            if legacy is not None:  # made by an older opsjobs as the OS user: now system's
                current = legacy
            else:
                try:
                    return client.schedules.add_schedule(wanted)
                except Conflict:
                    continue
        if _same(current, wanted):
            return current
        if current.spec.kind != "call" or current.spec.payload.get("target") != TARGET:
            raise Conflict(
                f"schedule {name!r} exists and is not a memory analysis; rename or remove it"
            )
        updated = client.schedules.update(current.id, dataclasses.replace(wanted, id=current.id))
        if current.spec.queue != updated.spec.queue:
            _cancel_left_behind(client, current)
        return updated
    return client.schedules.get(name, owner=SYSTEM_OWNER)


def _legacy(client: Client, name: str) -> Schedule | None:
    """An analysis schedule ``name`` an older opsjobs made under a person's name (the server's
    OS user): re-aimed by :func:`ensure_schedule`, it becomes the ``system`` owner's."""
    for schedule in client.schedules.list():
        spec = schedule.spec
        if (
            schedule.name == name
            and spec.owner != SYSTEM_OWNER
            and spec.kind == "call"
            and spec.payload.get("target") == TARGET
            and spec.queue.startswith("worker:")
        ):
            return schedule
    return None


def _cancel_left_behind(client: Client, old: Schedule) -> None:
    """Cancel analyses of ``old`` still queued on its previous worker's private queue: that
    process is gone, and the queued job would count against the instance limit forever."""
    for job in client.results(states=["queued"], queue=old.spec.queue, limit=1000):
        if job.spec.schedule_id == old.id:
            client.cancel(job.id)


def validate_every(every: float | str) -> float:
    """An analysis interval (seconds, or a duration such as ``"30m"``) in seconds;
    :class:`~opsjobs.errors.ValidationError` when it is no valid schedule interval."""
    from opsjobs.client import parse_duration
    from opsjobs.schedules import MAX_INTERVAL, MIN_INTERVAL

    seconds = parse_duration(every) if isinstance(every, str) else float(every)
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise ValidationError(
            f"memory-analysis interval {every!r} must be between {MIN_INTERVAL:g} s "
            f"and {MAX_INTERVAL / 86400:g} days"
        )
    return seconds


def schedule_name(host: str | None = None, key: str | Sequence[str] | None = None) -> str:
    """The name of a worker's analysis schedule: ``memory-analysis`` for the server's worker
    (``host`` None), else ``memory-analysis@<host>:<key>``.

    ``key`` is the worker's stable name or its named queues (private ``worker:`` queues are
    left out); characters a schedule name may not hold become ``-``, and a name that would be
    longer than 120 characters is cut.
    """
    if host is None:
        return JOB_NAME
    if key is None or isinstance(key, str):
        parts = [key or "default"]
    else:
        parts = sorted(q for q in key if not q.startswith("worker:")) or ["default"]
    text = f"{JOB_NAME}@{_UNSAFE.sub('-', host) or 'host'}:{_UNSAFE.sub('-', ':'.join(parts))}"
    return text[:_MAX_NAME]


def prune_schedules(
    client: Client, *, stale_after: float = STALE_AFTER, now: float | None = None
) -> list[str]:
    """Remove analysis schedules aimed at workers that have sent no heartbeat (or stopped)
    more than ``stale_after`` seconds ago; returns their names.

    Only schedules this module makes are touched (named ``memory-analysis`` or
    ``memory-analysis@…``, calling the analysis job on a private ``worker:`` queue). A schedule
    whose worker is not in the registry at all is kept (it may be starting right now).
    """
    now = time.time() if now is None else now
    last_seen = {w.id: max(w.heartbeat_at, w.stopped_at or 0.0) for w in client.store.workers()}
    removed = []
    for schedule in client.schedules.list():
        spec = schedule.spec
        if not (schedule.name == JOB_NAME or schedule.name.startswith(f"{JOB_NAME}@")):
            continue
        if spec.kind != "call" or spec.payload.get("target") != TARGET:
            continue
        if not spec.queue.startswith("worker:"):
            continue
        seen = last_seen.get(spec.queue.removeprefix("worker:"))
        if seen is None or now - seen <= stale_after:
            continue
        _cancel_left_behind(client, schedule)
        client.schedules.remove(schedule.id)
        removed.append(schedule.name)
    return removed


def opt_in(
    client: Client,
    worker_id: str,
    *,
    host: str | None = None,
    key: str | Sequence[str] | None = None,
    every: float | str = DEFAULT_EVERY,
    analyse_now: bool = True,
    **analysis: Any,
) -> Schedule:
    """What a worker that opts in does at start-up: :func:`ensure_schedule` under
    :func:`schedule_name` (``host`` None: the server's worker), then :func:`prune_schedules`,
    then (``analyse_now``) one analysis at once — a fresh process has memory figures within a
    minute instead of one interval later; the schedule's instance limit applies (an analysis
    already queued or running for this schedule is enough).

    Returns the worker's schedule.
    """
    schedule = ensure_schedule(
        client, worker_id, name=schedule_name(host, key), every=every, **analysis
    )
    removed = prune_schedules(client)
    if removed:
        log.info("removed analysis schedules of long-gone workers: %s", ", ".join(removed))
    if analyse_now:
        try:
            client.schedules.run_now(schedule.id)
        except Conflict:
            log.info("an analysis for schedule %s is already queued or running", schedule.name)
    return schedule
