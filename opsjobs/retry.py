"""The retry policy: whether a failed attempt runs again, and when.

Policy, above the store (the store only makes "end this attempt and queue the job again, due
at this time" one transaction, :meth:`~opsjobs.store.Store.requeue_after`). A job's
``retries`` counts the attempts after the first, whatever ended them: a lost worker's job is
re-queued by lease recovery at once, a ``failed`` or ``timed_out`` one (as its ``retry_on``
says) after a delay that grows by ``retry_backoff`` per attempt up to ``retry_max``, with
±10 % jitter so that jobs failing together do not all come back together.
"""

from __future__ import annotations

import random

from opsjobs.model import Job, JobSpec, JobState

__all__ = ["JITTER", "next_attempt_at", "retry_delay"]

#: The jitter: a delay is its base times a factor in [1 - JITTER, 1 + JITTER], never above
#: ``retry_max``.
JITTER = 0.1


def retry_delay(spec: JobSpec, attempt: int, *, key: str = "") -> float:
    """Seconds to wait after attempt number ``attempt`` (1 = the first run) failed.

    The jitter is drawn from a generator seeded by ``key`` (the job id) and the attempt, so one
    job's delays are reproducible."""
    base = min(spec.retry_delay * spec.retry_backoff ** max(attempt - 1, 0), spec.retry_max)
    factor = random.Random(f"{key}:{attempt}").uniform(1 - JITTER, 1 + JITTER)
    return min(base * factor, spec.retry_max)


def next_attempt_at(job: Job, state: JobState, *, now: float) -> float | None:
    """When ``job``, whose current attempt just ended in ``state``, runs again; None when it
    does not (a success, a cancel, an outcome its policy does not name, no attempt left)."""
    spec = job.spec
    if not spec.retries or job.attempt > spec.retries or state not in spec.retry_on:
        return None
    return now + retry_delay(spec, job.attempt, key=job.id)
