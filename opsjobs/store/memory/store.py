"""An in-memory store: the whole contract in plain Python, for tests and embedded use.

It lives and dies with its process, so only ``inline`` and ``thread`` jobs of workers in the same
process can use it (a ``process`` job's child still reports through its parent worker).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
import uuid
from collections.abc import Sequence

from opsjobs.errors import Conflict, JobNotFound
from opsjobs.model import (
    ACTIVE_STATES,
    FAILED_STATES,
    Attempt,
    Job,
    JobSpec,
    JobState,
    Metric,
    Mode,
    ResultQuery,
    Stats,
    WorkerInfo,
)
from opsjobs.store.base import Finish, Recovered, Store, Waiter
from opsjobs.store.memory.alerts import MemoryAlerts
from opsjobs.store.memory.auth import MemoryAuth
from opsjobs.store.memory.notices import MemoryNotices
from opsjobs.store.memory.schedules import MemorySchedules

__all__ = ["MemoryStore"]

_COOPERATIVE = (Mode.INLINE, Mode.THREAD)


class _ConditionWaiter(Waiter):
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._seen = store._generation

    def wait(self, timeout: float) -> bool:
        with self._store._wake:
            woken = self._store._wake.wait_for(
                lambda: self._store._generation != self._seen, timeout=max(timeout, 0.0)
            )
            self._seen = self._store._generation
        return bool(woken)

    def close(self) -> None:
        pass


class MemoryStore(MemoryAlerts, MemoryNotices, MemoryAuth, MemorySchedules, Store):
    """Every job, worker and metric in dictionaries guarded by one lock."""

    local = True

    def __init__(self) -> None:
        self.url = "memory://"
        self._lock = threading.RLock()
        self._wake = threading.Condition(threading.Lock())
        self._generation = 0
        self._jobs: dict[str, Job] = {}
        self._workers: dict[str, WorkerInfo] = {}
        self._metrics: list[Metric] = []
        self._attempts: dict[str, list[Attempt]] = {}

    def _ring(self) -> None:
        with self._wake:
            self._generation += 1
            self._wake.notify_all()

    def _job(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFound(f"no job with id {job_id}") from None

    # -- jobs ------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, *, now: float) -> Job:
        job = Job(id=str(uuid.uuid4()), spec=spec, state=JobState.QUEUED, submitted_at=now)
        with self._lock:
            self._jobs[job.id] = job
        self._ring()
        return copy.deepcopy(job)

    def submit_many(self, specs: Sequence[JobSpec], *, now: float) -> list[Job]:
        jobs = [
            Job(id=str(uuid.uuid4()), spec=spec, state=JobState.QUEUED, submitted_at=now)
            for spec in specs
        ]
        with self._lock:  # all at once: no claimer sees half a batch
            self._jobs.update((job.id, job) for job in jobs)
        if jobs:
            self._ring()
        return copy.deepcopy(jobs)

    def get(self, job_id: str) -> Job:
        with self._lock:
            return copy.deepcopy(self._job(job_id))

    def claim(
        self, worker_id: str, host: str, queues: Sequence[str], *, now: float, lease: float
    ) -> Job | None:
        wanted = set(queues)
        with self._lock:
            queued = [
                j
                for j in self._jobs.values()
                if j.state is JobState.QUEUED
                and j.queue in wanted
                and (j.run_after is None or j.run_after <= now)
            ]
            if not queued:
                return None
            job = min(queued, key=lambda j: (-j.spec.priority, j.submitted_at))
            job.state = JobState.RUNNING
            job.worker_id, job.host = worker_id, host
            job.attempt += 1
            job.started_at, job.lease_until = now, now + lease
            return copy.deepcopy(job)

    def finish(
        self, job_id: str, worker_id: str, attempt: int, outcome: Finish, *, now: float
    ) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if (
                job is None
                or job.state is not JobState.RUNNING
                or job.worker_id != worker_id
                or job.attempt != attempt
            ):
                return False
            job.state = outcome.state
            job.finished_at = now
            job.runtime = max(now - (job.started_at or now), 0.0)
            job.output = outcome.output
            job.result = json.loads(outcome.result_json) if outcome.result_json else None
            job.error, job.exit_code, job.lease_until = outcome.error, outcome.exit_code, None
            job.peak_rss = outcome.peak_rss
            return True

    def requeue_after(
        self,
        job_id: str,
        worker_id: str,
        attempt: int,
        outcome: Finish,
        *,
        now: float,
        run_after: float,
        note: str,
    ) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if (
                job is None
                or job.state is not JobState.RUNNING
                or job.worker_id != worker_id
                or job.attempt != attempt
            ):
                return False
            self._keep_attempt(job, outcome.state, now, outcome)
            job.state, job.run_after, job.error = JobState.QUEUED, run_after, note
            job.worker_id = job.host = job.started_at = job.lease_until = None
            job.output, job.result, job.exit_code, job.peak_rss = "", None, None, None
        self._ring()
        return True

    def _keep_attempt(
        self, job: Job, state: JobState, now: float, outcome: Finish | None = None
    ) -> None:
        o = outcome or Finish(state, error=job.error)
        self._attempts.setdefault(job.id, []).append(
            Attempt(
                job.id,
                job.attempt,
                state,
                job.started_at,
                now,
                max(now - (job.started_at or now), 0.0),
                job.worker_id,
                job.host,
                o.exit_code,
                o.output,
                o.error,
                o.peak_rss,
            )
        )

    def attempts(self, job_id: str) -> list[Attempt]:
        with self._lock:
            return list(self._attempts.get(job_id, ()))

    def next_due(self, queues: Sequence[str], *, now: float) -> float | None:
        wanted = set(queues)
        with self._lock:
            due = [
                j.run_after
                for j in self._jobs.values()
                if j.state is JobState.QUEUED
                and j.queue in wanted
                and j.run_after is not None
                and j.run_after > now
            ]
        return min(due) if due else None

    def request_cancel(self, job_id: str, *, now: float) -> Job:
        with self._lock:
            job = self._job(job_id)
            if job.state is JobState.QUEUED:
                job.state, job.finished_at, job.runtime = JobState.CANCELLED, now, 0.0
                job.cancel_requested = True
                job.error = (
                    f"cancelled while waiting for attempt {job.attempt + 1}"
                    if job.attempt
                    else "cancelled before it started"
                )
            elif job.state is JobState.RUNNING:
                job.cancel_requested = True
                if job.mode in _COOPERATIVE:
                    job.state, job.finished_at, job.lease_until = JobState.CANCELLED, now, None
                    job.runtime = max(now - (job.started_at or now), 0.0)
                    job.error = "cancelled while running"
            result = copy.deepcopy(job)
        self._ring()
        return result

    def delete(self, job_id: str) -> None:
        with self._lock:
            job = self._job(job_id)
            if job.state in ACTIVE_STATES:
                raise Conflict(f"job {job_id} is {job.state.value}: cancel it before deleting it")
            del self._jobs[job_id]
            self._attempts.pop(job_id, None)

    def _matching(self, query: ResultQuery) -> list[Job]:
        needle = query.name.lower() if query.name else None
        owners = (query.owner,) if isinstance(query.owner, str) else query.owner
        return [
            j
            for j in self._jobs.values()
            if (owners is None or j.owner in owners)
            and (not query.states or j.state in query.states)
            and (needle is None or needle in j.name.lower())
            and (query.exact_name is None or j.name == query.exact_name)
            and (query.queue is None or j.queue == query.queue)
            and (query.since is None or j.submitted_at >= query.since)
            and (query.until is None or j.submitted_at < query.until)
        ]

    def results(self, query: ResultQuery) -> list[Job]:
        column = query.sort_column
        with self._lock:
            jobs = self._matching(query)

            def value(job: Job) -> object:
                if column in {f.name for f in dataclasses.fields(JobSpec)}:
                    v = getattr(job.spec, column)
                else:
                    v = getattr(job, column)
                return v.value if hasattr(v, "value") else v

            present = [j for j in jobs if value(j) is not None]
            missing = [j for j in jobs if value(j) is None]
            present.sort(key=lambda j: (value(j), j.submitted_at), reverse=query.descending)
            missing.sort(key=lambda j: j.submitted_at, reverse=query.descending)
            ordered = present + missing
            if query.reverse:
                ordered.reverse()
            page = ordered[query.offset : query.offset + query.limit]
            return copy.deepcopy(page)

    def count(self, query: ResultQuery) -> int:
        with self._lock:
            return len(self._matching(query))

    def stats(self, query: ResultQuery) -> Stats:
        with self._lock:
            jobs = self._matching(query)
        runtimes = [j.runtime for j in jobs if j.runtime is not None]
        return Stats(
            total=len(jobs),
            succeeded=sum(j.state is JobState.SUCCEEDED for j in jobs),
            failed=sum(j.state in FAILED_STATES for j in jobs),
            running=sum(j.state is JobState.RUNNING for j in jobs),
            queued=sum(j.state is JobState.QUEUED for j in jobs),
            avg_runtime=sum(runtimes) / len(runtimes) if runtimes else None,
        )

    def purge(self, finished_before: float) -> list[str]:
        with self._lock:
            ids = [
                j.id
                for j in self._jobs.values()
                if j.state not in ACTIVE_STATES and (j.finished_at or 0) < finished_before
            ]
            for job_id in ids:
                del self._jobs[job_id]
                self._attempts.pop(job_id, None)
        return ids

    # -- leases and workers ---------------------------------------------------------------
    def heartbeat(
        self, worker_id: str, held: Sequence[str], *, now: float, lease: float
    ) -> list[str]:
        stop = []
        with self._lock:
            for job in self._jobs.values():
                if job.state is JobState.RUNNING and job.worker_id == worker_id:
                    job.lease_until = now + lease
            info = self._workers.get(worker_id)
            if info is not None:
                info.heartbeat_at, info.lease_seconds = now, lease
                info.busy, info.stopped_at = len(held), None
            for job_id in held:
                mine = self._jobs.get(job_id)
                if (
                    mine is None
                    or mine.state is not JobState.RUNNING
                    or mine.worker_id != worker_id
                    or mine.cancel_requested
                ):
                    stop.append(job_id)
        return stop

    def recover_expired(self, *, now: float) -> list[Recovered]:
        out = []
        with self._lock:
            for job in self._jobs.values():
                if job.state is not JobState.RUNNING or (job.lease_until or now) >= now:
                    continue
                requeued = job.attempt <= job.spec.retries
                out.append(Recovered(job.id, job.worker_id, requeued))
                if requeued:
                    self._keep_attempt(
                        job,
                        JobState.LOST,
                        now,
                        Finish(
                            JobState.LOST,
                            error="the worker running it stopped responding (lease expired)",
                        ),
                    )
                    job.state, job.worker_id, job.host = JobState.QUEUED, None, None
                    job.started_at = job.lease_until = None
                    job.error = f"attempt {job.attempt} lost its worker; re-queued"
                else:
                    job.state, job.finished_at, job.lease_until = JobState.LOST, now, None
                    job.runtime = max(now - (job.started_at or now), 0.0)
                    job.error = "the worker running it stopped responding (lease expired)"
        if any(r.requeued for r in out):
            self._ring()
        return out

    def register_worker(self, info: WorkerInfo) -> None:
        with self._lock:
            self._workers[info.id] = copy.deepcopy(info)

    def stop_worker(self, worker_id: str, *, now: float) -> None:
        with self._lock:
            info = self._workers.get(worker_id)
            if info is not None:
                info.stopped_at, info.busy = now, 0

    def workers(self) -> list[WorkerInfo]:
        with self._lock:
            infos = sorted(self._workers.values(), key=lambda w: w.started_at, reverse=True)
            return copy.deepcopy(infos)

    # -- metrics --------------------------------------------------------------------------
    def record_metrics(self, metrics: Sequence[Metric]) -> None:
        with self._lock:
            self._metrics.extend(metrics)

    def metrics(
        self,
        name: str,
        *,
        since: float | None = None,
        job_id: str | None = None,
        limit: int = 10_000,
    ) -> list[Metric]:
        with self._lock:
            found = [
                m
                for m in self._metrics
                if m.name == name
                and (since is None or m.at >= since)
                and (job_id is None or m.job_id == job_id)
            ]
        found.sort(key=lambda m: m.at)
        return found[-limit:] if limit else []

    def purge_metrics(self, before: float) -> int:
        with self._lock:
            jobs = self._jobs
            kept = [m for m in self._metrics if m.at >= before or (m.job_id in jobs)]
            gone = len(self._metrics) - len(kept)
            self._metrics[:] = kept
        return gone

    def waiter(self, worker_id: str) -> Waiter:
        return _ConditionWaiter(self)
