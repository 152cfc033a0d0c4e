"""The recurring analysis: a ``memory-analysis`` schedule aimed at one worker's process."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from opsjobs.analyzer.job import JOB_NAME, TARGET, job_kwargs
from opsjobs.errors import Conflict, NotFound, ValidationError
from opsjobs.schedules import Schedule

if TYPE_CHECKING:
    from opsjobs.client import Client

__all__ = ["DEFAULT_EVERY", "JOB_TIMEOUT", "ensure_schedule"]

#: The seed's cadence: every 30 minutes.
DEFAULT_EVERY = 1800.0
#: Seconds one scheduled analysis may run before the worker marks it timed out.
JOB_TIMEOUT = 600.0


def _same(a: Schedule, b: Schedule) -> bool:
    fields = ("trigger", "every_seconds", "cron", "tz")
    spec = ("name", "kind", "payload", "mode", "queue", "timeout", "description")
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
    )
    for _ in range(2):  # a concurrent creator may win the name between get and add
        try:
            current = client.schedules.get(name)
        except NotFound:
            try:
                return client.schedules.add_schedule(wanted)
            except Conflict:
                continue
        if _same(current, wanted):
            return current
        return client.schedules.update(current.id, dataclasses.replace(wanted, id=current.id))
    return client.schedules.get(name)
