"""The :class:`Store` interface: every backend (memory, SQLite, PostgreSQL) implements it.

The store is a narrow persistence layer. It knows states and transactions, not policy: the
worker decides when to claim, renew and recover; the store makes each transition atomic and
refuses transitions that are not allowed (a finish from a worker or attempt that no longer owns
the job, a delete of an active job).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from opsjobs.errors import OpsJobsError
from opsjobs.model import Attempt, Job, JobSpec, JobState, Metric, ResultQuery, Stats, WorkerInfo
from opsjobs.store.alerts import AlertStore
from opsjobs.store.auth import AuthStore
from opsjobs.store.notices import NoticeStore
from opsjobs.store.schedules import ScheduleStore

__all__ = ["PURGE_BATCH", "End", "Finish", "Recovered", "Store", "Waiter"]

log = logging.getLogger("opsjobs.store")

#: Metric points deleted per transaction by :meth:`Store.purge_metrics`.
PURGE_BATCH = 5000


class Finish(NamedTuple):
    """The outcome of a run as the worker reports it (a named tuple: one per job, on the
    worker's hot path)."""

    state: JobState
    output: str = ""
    result_json: str | None = None
    error: str | None = None
    exit_code: int | None = None
    #: Peak resident memory of the run in bytes (None: not measured).
    peak_rss: int | None = None


class End(NamedTuple):
    """One job end for :meth:`Store.finish_and_claim_many`: which attempt, how, and when (the
    moment the job ended, which may be a little before the transaction that records it). A
    named tuple: one is built per job on the worker's hot path."""

    job_id: str
    attempt: int
    outcome: Finish
    at: float


@dataclass(frozen=True)
class Recovered:
    """A running job whose lease lapsed: re-queued (``requeued``) or marked ``lost``."""

    job_id: str
    worker_id: str | None
    requeued: bool


class Waiter(abc.ABC):
    """Lets an idle worker sleep until a job is submitted (or cancelled), without polling."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block until woken or ``timeout`` seconds passed. True when woken."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Store(AlertStore, NoticeStore, AuthStore, ScheduleStore, abc.ABC):
    """Persistence of jobs, workers and metrics. Thread-safe; each method is one transaction."""

    url: str
    #: Does the store live on this host (a file, or this process)? Its reads are then short and
    #: never wait on a network, so the server runs them on its event loop.
    local: bool = False
    #: How many worker steps (ends plus claims, one round trip) of one process may be out at
    #: once: 2 where each has its own connection and round trips dominate (PostgreSQL), 1 where
    #: writes are serialised anyway (an SQLite file, memory).
    step_lanes: int = 1
    #: Is a worker step a round trip to a database server, whose fixed cost per call is worth
    #: several jobs' (PostgreSQL: ~0.1 ms of the server's CPU and ~0.1 ms of the worker's a
    #: call, ~0.03 ms each a job)? Then a worker batches its steps: each claims for every free
    #: slot, and the ends of pool jobs wait a little to go out together (see
    #: :class:`opsjobs.Worker`). Where a step is a local write (SQLite), the worker measures it.
    batch_steps: bool = False

    def serialize_writes(self) -> None:
        """Prefer the latency of concurrent writers (a server's requests) to the throughput of
        one process's workers, where the backend has that choice (SQLite); by default nothing
        changes."""

    # -- jobs ------------------------------------------------------------------------------
    @abc.abstractmethod
    def submit(self, spec: JobSpec, *, now: float) -> Job:
        """Insert a queued job for an already validated ``spec`` and wake idle workers."""

    def submit_many(self, specs: Sequence[JobSpec], *, now: float) -> list[Job]:
        """Insert queued jobs for already validated ``specs``, in their order, and wake idle
        workers. Backends insert them in one statement where they can (PostgreSQL); this
        default submits them one at a time."""
        return [self.submit(spec, now=now) for spec in specs]

    @abc.abstractmethod
    def get(self, job_id: str) -> Job:
        """The job with this id; :class:`~opsjobs.errors.JobNotFound` if there is none."""

    @abc.abstractmethod
    def claim(
        self, worker_id: str, host: str, queues: Sequence[str], *, now: float, lease: float
    ) -> Job | None:
        """Atomically move the best queued job of ``queues`` to running, owned by the worker."""

    @abc.abstractmethod
    def finish(
        self, job_id: str, worker_id: str, attempt: int, outcome: Finish, *, now: float
    ) -> bool:
        """End a running job. Accepted (True) only from the worker and attempt that own it."""

    def finish_and_claim(
        self,
        job_id: str,
        worker_id: str,
        attempt: int,
        outcome: Finish,
        *,
        now: float,
        host: str,
        queues: Sequence[str],
        lease: float,
    ) -> tuple[bool, Job | None]:
        """:meth:`finish` then :meth:`claim`; backends may do both in one transaction."""
        accepted = self.finish(job_id, worker_id, attempt, outcome, now=now)
        return accepted, self.claim(worker_id, host, queues, now=now, lease=lease)

    def finish_and_claim_many(
        self,
        ends: Sequence[End],
        *,
        worker_id: str,
        host: str,
        queues: Sequence[str],
        now: float,
        lease: float,
        want: int,
    ) -> tuple[list[bool], list[Job]]:
        """Record ``ends`` (each accepted only from the worker and attempt that own the job) and
        claim up to ``want`` jobs. Returns one accepted flag per end and the claimed jobs.

        A worker calls this with the ends that piled up while it was busy, so a backlog is
        recorded in one transaction where the backend can (SQLite); this default uses
        :meth:`finish_and_claim` for the first pair, then single calls. A claim that fails after
        the ends were recorded returns the jobs claimed so far instead of raising, so no claimed
        job is left without its worker knowing."""
        accepted: list[bool] = []
        jobs: list[Job] = []
        rest = list(ends)
        if rest and want > 0:
            first = rest.pop(0)
            ok, job = self.finish_and_claim(
                first.job_id,
                worker_id,
                first.attempt,
                first.outcome,
                now=first.at,
                host=host,
                queues=queues,
                lease=lease,
            )
            accepted.append(ok)
            if job is None:
                want = 0
            else:
                jobs.append(job)
        for end in rest:
            ok = self.finish(end.job_id, worker_id, end.attempt, end.outcome, now=end.at)
            accepted.append(ok)
        while len(jobs) < want:
            try:
                job = self.claim(worker_id, host, queues, now=now, lease=lease)
            except OpsJobsError as exc:
                if not (jobs or ends):
                    raise
                log.warning("claim failed after recording the ends, retried later: %s", exc)
                break
            if job is None:
                break
            jobs.append(job)
        return accepted, jobs

    @abc.abstractmethod
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
        """End a running job's attempt as ``outcome``, keep that attempt (see
        :meth:`attempts`) and queue the job again, not to be claimed before ``run_after``;
        ``note`` becomes the job's error while it waits. Accepted (True) only from the worker
        and attempt that own the job; idle workers are woken (they learn the due time from
        :meth:`next_due`). Whether and when to retry is the worker's policy
        (:mod:`opsjobs.retry`)."""

    @abc.abstractmethod
    def attempts(self, job_id: str) -> list[Attempt]:
        """The attempts of the job that a retry or a lease recovery ended, oldest first (the
        job row holds the current one: see :func:`opsjobs.model.attempts_of`)."""

    @abc.abstractmethod
    def next_due(self, queues: Sequence[str], *, now: float) -> float | None:
        """The earliest time after ``now`` at which a queued job of ``queues`` that waits
        (``run_after``) becomes due; None when none waits."""

    @abc.abstractmethod
    def request_cancel(self, job_id: str, *, now: float) -> Job:
        """Cancel a job: queued → cancelled at once; running inline/thread → cancelled at once
        with the cancel flag set (the code is told cooperatively); running process → flag set,
        the owning worker kills it and marks it. Finished jobs are returned unchanged."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> None:
        """Delete a finished job; :class:`~opsjobs.errors.Conflict` if it is queued or running."""

    @abc.abstractmethod
    def results(self, query: ResultQuery) -> list[Job]:
        """Jobs matching ``query``, sorted and paged in the store."""

    @abc.abstractmethod
    def count(self, query: ResultQuery) -> int:
        """How many jobs match ``query`` (ignoring its limit and offset)."""

    @abc.abstractmethod
    def stats(self, query: ResultQuery) -> Stats:
        """Totals and average runtime of the jobs matching ``query``, computed in the store."""

    @abc.abstractmethod
    def purge(self, finished_before: float) -> list[str]:
        """Delete finished jobs that ended before the cut-off; return their ids."""

    # -- leases and workers ---------------------------------------------------------------
    @abc.abstractmethod
    def heartbeat(
        self, worker_id: str, held: Sequence[str], *, now: float, lease: float
    ) -> list[str]:
        """Renew the worker's registry entry and the leases of its running jobs.

        ``held`` are the ids the worker is running. Returns those among them it should stop:
        cancelled (or cancel requested), timed out, or no longer its own.
        """

    @abc.abstractmethod
    def recover_expired(self, *, now: float) -> list[Recovered]:
        """Running jobs whose lease lapsed: re-queue while retries remain, else mark lost."""

    @abc.abstractmethod
    def register_worker(self, info: WorkerInfo) -> None: ...

    @abc.abstractmethod
    def stop_worker(self, worker_id: str, *, now: float) -> None: ...

    @abc.abstractmethod
    def workers(self) -> list[WorkerInfo]: ...

    def connection_counts(self) -> dict[tuple[int, str], int]:
        """Database connections held per process, by (pid, host) as workers register them;
        empty for stores without connections of their own (memory, SQLite)."""
        return {}

    # -- metrics --------------------------------------------------------------------------
    @abc.abstractmethod
    def record_metrics(self, metrics: Sequence[Metric]) -> None: ...

    @abc.abstractmethod
    def metrics(
        self,
        name: str,
        *,
        since: float | None = None,
        job_id: str | None = None,
        limit: int = 10_000,
    ) -> list[Metric]:
        """Points of one metric, oldest first."""

    @abc.abstractmethod
    def purge_metrics(self, before: float) -> int:
        """Delete the points recorded before ``before`` that belong to no job, or to a job
        that is gone (a kept job keeps its points); returns how many went. Large deletes go
        in batches, each its own short transaction."""

    # -- wake-up --------------------------------------------------------------------------
    @abc.abstractmethod
    def waiter(self, worker_id: str) -> Waiter:
        """A :class:`Waiter` woken by submits and cancels on this store."""

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
