"""The synchronous core behind the REST routes: one method per operation, taking the caller and
already-parsed input, returning JSON-ready data and raising :class:`~opsjobs.errors.OpsJobsError`.

Handlers (native and seed) stay thin: they parse the request, call one method here on the API's
thread pool and write the answer. Every rule about who may see what lives here (and in
:mod:`opsjobs.auth`): a job the caller may not see answers exactly like a missing one; the
``system`` owner's jobs (the server's own) every caller sees, only admins cancel or delete.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opsjobs.auth import Auth, RunPolicy, User
from opsjobs.client import Client
from opsjobs.errors import JobNotFound, PermissionDenied, ValidationError
from opsjobs.model import (
    ACTIVE_STATES,
    Attempt,
    Job,
    JobSpec,
    Metric,
    Mode,
    attempts_of,
    iso,
    validate_job_id,
)
from opsjobs.notebooks import Catalog, NotebookInfo
from opsjobs.specs import SpecBatch, paused_gc

__all__ = ["MAX_BATCH", "ApiService", "JobFilter"]

#: Most jobs in one batch submit (``POST /jobs:batch``).
MAX_BATCH = 10_000


@dataclass(frozen=True)
class JobFilter:
    """Listing parameters of ``GET /jobs`` after parsing."""

    states: tuple[str, ...] = ()
    #: Names containing this text.
    name: str | None = None
    queue: str | None = None
    #: Exactly this name.
    exact_name: str | None = None
    sort: str = "-submitted_at"
    limit: int = 50
    offset: int = 0
    everyone: bool = False
    #: Count every match too (a scan of the caller's jobs: only when asked).
    total: bool = False


class ApiService:
    """Operations of the REST API over one :class:`~opsjobs.client.Client`.

    Parameters
    ----------
    client
        Submits and reads jobs.
    auth
        Keys and permission rules.
    worker_ids
        Ids of the workers hosted by this server (shown in ``/workers``).
    policy
        What users without a code role may run (allowed calls, the notebook catalog).
    """

    def __init__(
        self,
        client: Client,
        auth: Auth,
        worker_ids: Sequence[str] = (),
        *,
        policy: RunPolicy | None = None,
    ) -> None:
        self.client = client
        self.auth = auth
        self.worker_ids = list(worker_ids)
        self.policy = policy or RunPolicy()
        #: The notebooks REST, dashboard and schedule jobs may run (None: no catalog folder).
        self.catalog = Catalog(self.policy.catalog) if self.policy.catalog is not None else None

    # -- jobs -----------------------------------------------------------------------------------
    def submit(self, user: User, body: Mapping[str, Any]) -> Job:
        """Queue a job owned by ``user`` (needs a submitting role)."""
        Auth.check_submit(user)
        return self.client.store.submit(self._spec(user, body), now=time.time())

    def submit_many(self, user: User, bodies: Sequence[Mapping[str, Any]]) -> list[Job]:
        """Queue jobs owned by ``user``, all or none: every body is checked first (an invalid
        one refuses the batch, naming its index), then one insert wakes the workers once."""
        Auth.check_submit(user)
        if not 1 <= len(bodies) <= MAX_BATCH:
            raise ValidationError(f"a batch holds 1 to {MAX_BATCH} jobs")
        specs = []
        batch = self.client.spec_batch()  # checks values the bodies repeat once
        with paused_gc():
            for i, body in enumerate(bodies):
                try:
                    specs.append(self._spec(user, body, batch))
                except PermissionDenied as exc:
                    raise PermissionDenied(f"job {i}: {exc}") from None
                except ValidationError as exc:
                    raise ValidationError(f"job {i}: {exc}") from None
        return self.client.submit_many(specs)

    def _spec(self, user: User, body: Mapping[str, Any], batch: SpecBatch | None = None) -> JobSpec:
        """The validated spec of a submit body, owned by ``user``, that ``user`` may run."""
        fixed: dict[str, Any] = {"owner": user.email}
        if "notebook" in body:
            fixed["notebook"] = self.catalog_notebook(body["notebook"])
        spec = self.client.spec_from_body(body, batch=batch, **fixed)
        Auth.check_run(user, spec, self.policy)
        return spec

    def catalog_notebook(self, name: object) -> str:
        """The file of the catalog notebook ``name`` (its path relative to the catalog folder);
        :class:`ValidationError` for anything outside the folder."""
        if self.catalog is None:
            raise ValidationError("this server has no notebook catalog (OPSJOBS_NOTEBOOKS)")
        return str(self.catalog.resolve(name))

    def notebooks(self) -> list[NotebookInfo]:
        """The catalog: every notebook with its title and declared parameters."""
        return [] if self.catalog is None else self.catalog.list()

    def rerun(self, user: User, job_id: str, body: Mapping[str, Any]) -> Job:
        """Queue ``job_id`` again for ``user`` as a new job linked to it (``rerun_of``)."""
        Auth.check_submit(user)
        old = self.visible_job(user, job_id)
        spec = self.client.rerun_spec(old, owner=user.email, **body)
        Auth.check_run(user, spec, self.policy)
        return self.client.store.submit(spec, now=time.time())

    def visible_job(self, user: User, job_id: str) -> Job:
        """The job, if ``user`` may see it; otherwise :class:`JobNotFound` (ids don't leak)."""
        job_id = validate_job_id(job_id)
        job = self.client.get(job_id)
        if not Auth.may_access(user, job):
            raise JobNotFound(f"no job with id {job_id}")
        return job

    def attempts(self, user: User, job_id: str) -> list[Attempt]:
        """The attempts of a job ``user`` may see, oldest first."""
        job = self.visible_job(user, job_id)
        return attempts_of(job, self.client.store.attempts(job.id))

    def list_jobs(self, user: User, f: JobFilter) -> tuple[list[Job], int | None]:
        """A page of the jobs ``user`` may see, and how many match in all (if asked)."""
        owner = Auth.owner_scope(user, everyone=f.everyone)
        jobs = self.client.results(
            limit=f.limit,
            offset=f.offset,
            states=f.states,
            name=f.name,
            owner=owner,
            queue=f.queue,
            sort=f.sort,
            exact_name=f.exact_name,
        )
        if not f.total:
            return jobs, None
        total = self.client.count(
            states=f.states, name=f.name, owner=owner, queue=f.queue, exact_name=f.exact_name
        )
        return jobs, total

    def delete(self, user: User, job_id: str) -> None:
        job = self.visible_job(user, job_id)
        Auth.check_change(user, job.owner, f"job {job.id}")
        self.client.delete(job.id)

    def cancel(self, user: User, job_id: str) -> Job:
        job = self.visible_job(user, job_id)
        Auth.check_change(user, job.owner, f"job {job.id}")
        return self.client.cancel(job.id)

    def stats(
        self,
        user: User,
        *,
        everyone: bool = False,
        name: str | None = None,
        exact_name: str | None = None,
    ) -> Any:
        owner = Auth.owner_scope(user, everyone=everyone)
        return self.client.stats(owner=owner, name=name, exact_name=exact_name)

    def history(
        self, user: User, name: str, *, limit: int = 100, everyone: bool = False
    ) -> dict[str, Any]:
        """The last ``limit`` runs of the job name ``name`` (oldest first) with runtime,
        outcome and peak memory, and their success rate."""
        owner = Auth.owner_scope(user, everyone=everyone)
        jobs = self.client.results(limit=limit, exact_name=name, owner=owner, sort="-submitted_at")
        jobs.reverse()
        done = [j for j in jobs if j.finished]
        ok = sum(1 for j in done if j.state.value == "succeeded")
        runtimes = [j.runtime for j in done if j.runtime is not None]
        peaks = [j.peak_rss for j in jobs if j.peak_rss is not None]
        return {
            "name": name,
            "summary": {
                "runs": len(jobs),
                "finished": len(done),
                "succeeded": ok,
                "success_rate": ok / len(done) if done else None,
                "avg_runtime": sum(runtimes) / len(runtimes) if runtimes else None,
                "max_runtime": max(runtimes) if runtimes else None,
                "max_peak_rss": max(peaks) if peaks else None,
            },
            "runs": [
                {
                    "id": j.id,
                    "state": j.state.value,
                    "submitted_at": iso(j.submitted_at),
                    "started_at": iso(j.started_at),
                    "finished_at": iso(j.finished_at),
                    "runtime": j.runtime,
                    "peak_rss": j.peak_rss,
                    "rerun_of": j.spec.rerun_of,
                    "error": j.error,
                }
                for j in jobs
            ],
        }

    def active_jobs(self, user: User, *, everyone: bool = False) -> list[Job]:
        owner = Auth.owner_scope(user, everyone=everyone)
        states = [s.value for s in ACTIVE_STATES]
        return self.client.results(limit=1000, states=states, owner=owner, sort="-submitted_at")

    # -- workers and metrics --------------------------------------------------------------------
    def workers(self) -> list[dict[str, Any]]:
        now = time.time()
        out = []
        for w in self.client.store.workers():
            data = w.to_dict(now)
            data["hosted_here"] = w.id in self.worker_ids
            out.append(data)
        return out

    def metrics(
        self, name: str, *, since: float | None, job_id: str | None, limit: int
    ) -> list[Metric]:
        checked = Metric(name, 0.0).validated().name
        if job_id is not None:
            job_id = validate_job_id(job_id)
        return self.client.store.metrics(checked, since=since, job_id=job_id, limit=limit)


def metric_dict(m: Metric) -> dict[str, Any]:
    return {
        "name": m.name,
        "value": m.value,
        "labels": dict(m.labels),
        "at": iso(m.at),
        "job_id": m.job_id,
        "worker_id": m.worker_id,
        "host": m.host,
    }


def job_summary(job: Job) -> dict[str, Any]:
    """A job without its output and payload (listings); ``GET /jobs/{id}`` gives everything."""
    data = job.to_dict()
    data.pop("payload")
    data.pop("output")
    return data


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "roles": list(user.roles),
        "is_test": user.is_test,
        "may_submit": user.may_submit,
        "sees_all": user.sees_all,
    }


def seed_mode(mode: Mode) -> str:
    return mode.seed_name
