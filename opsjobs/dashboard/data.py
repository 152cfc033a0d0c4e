"""The dashboard's data layer: everything the widgets show or change, for one user, no widgets.

:class:`DashboardData` applies the REST API's rules (:mod:`opsjobs.auth`): a user sees, cancels
and deletes their own jobs and schedules; admins (``system_admin``, ``site_admin``) may switch
to everyone's; submitting and managing schedules needs a submitting role. Listings are sorted,
filtered and paged in the store, so 100,000 results cost one page query and one stats query
(which counts them too).

Open alerts are about hosts, not jobs: like the REST API's ``/alerts``, every signed-in user
sees all of them (the header's counts and the Memory tab's table).
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsjobs.alerts import Alert, Severity, alert_summary, open_alerts
from opsjobs.auth import Auth, RunPolicy, User
from opsjobs.client import Client
from opsjobs.errors import JobNotFound, OpsJobsError, ValidationError
from opsjobs.model import (
    ACTIVE_STATES,
    Attempt,
    Job,
    JobSpec,
    JobState,
    Mode,
    Stats,
    WorkerInfo,
    attempts_of,
    validate_job_id,
)
from opsjobs.notebooks import Catalog, NotebookInfo
from opsjobs.outputs import list_job_files, read_log
from opsjobs.schedules import Schedule

__all__ = [
    "PAGE_SIZES",
    "SORTABLE",
    "TIME_RANGES",
    "WINDOWS",
    "DashboardData",
    "MemoryView",
    "ResultsPage",
    "ResultsState",
    "SubmitForm",
]

#: Columns of the results table: (key, title); sortable by the key.
SORTABLE = (
    ("name", "Job Name"),
    ("state", "Status"),
    ("started_at", "Started"),
    ("runtime", "Runtime"),
    ("mode", "Mode"),
    ("host", "Host"),
)
PAGE_SIZES = (10, 25, 50, 100, 250, 500)
#: The results' time filter (on the time a job was submitted): key → (label, seconds back
#: from now); ``custom`` takes the state's ``since``/``until``.
TIME_RANGES: dict[str, tuple[str, float | None]] = {
    "": ("Any time", None),
    "hour": ("Last hour", 3600.0),
    "day": ("Last day", 86400.0),
    "week": ("Last week", 7 * 86400.0),
    "custom": ("Custom range", None),
}
#: Memory windows offered: label → seconds.
WINDOWS = {"6 h": 6 * 3600.0, "24 h": 24 * 3600.0, "7 d": 7 * 86400.0}
#: Metrics the memory tab draws.
MEMORY_METRICS = ("rss_mb", "uss_mb")
GC_METRICS = ("gc_gen0_collections", "gc_gen1_collections", "gc_gen2_collections")
#: Most open alerts listed in the Memory tab (the header counts all of them).
MAX_ALERTS = 50
#: Runs shown in the history of a job name.
HISTORY_RUNS = 100
#: Bytes of a running job's log the detail view shows (its tail).
LIVE_TAIL = 64 << 10
_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class ResultsState:
    """What the results table shows: filters, sort and page (kept across refreshes)."""

    name: str = ""
    status: str = ""
    sort: str = "-submitted_at"
    page: int = 0
    page_size: int = 25
    #: A key of :data:`TIME_RANGES`; ``custom`` uses ``since`` and ``until`` (epoch seconds).
    time: str = ""
    since: float | None = None
    until: float | None = None

    def span(self, now: float) -> tuple[float | None, float | None]:
        """The submitted-at span the time filter asks for at ``now``: (since, until)."""
        if self.time == "custom":
            return self.since, self.until
        seconds = TIME_RANGES.get(self.time, ("", None))[1]
        return (now - seconds, None) if seconds else (None, None)

    def sorted_by(self, column: str) -> ResultsState:
        """Sort by ``column``; the same column again flips the direction. Back to page 1."""
        if column not in dict(SORTABLE):
            raise ValidationError(f"cannot sort by {column!r}")
        current = self.sort.lstrip("-")
        descending = not self.sort.startswith("-") if current == column else column != "name"
        return dataclasses.replace(self, sort=("-" if descending else "") + column, page=0)


@dataclass(frozen=True)
class ResultsPage:
    """One page of results with the totals behind the stat cards."""

    rows: list[Job]
    total: int
    stats: Stats
    state: ResultsState

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.state.page_size))

    @property
    def first(self) -> int:
        return self.state.page * self.state.page_size + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.total, (self.state.page + 1) * self.state.page_size)


@dataclass(frozen=True)
class SubmitForm:
    """The submit form's fields; ``target`` is the callable, the source or the notebook path."""

    name: str
    kind: str = "call"
    target: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "thread"
    queue: str = "default"
    timeout: float | None = None


@dataclass
class MemoryView:
    """Series for the memory charts, leak verdicts and the latest analysis."""

    since: float
    #: metric name → series label ("host / worker") → [(time, value)], oldest first.
    series: dict[str, dict[str, list[tuple[float, float]]]]
    #: series label → leak verdict of its rss_mb series (a ``LeakVerdict``).
    verdicts: dict[str, Any]
    latest_analysis: Job | None
    #: Open alerts, most severe first, then the most recently opened.
    alerts: list[Alert] = field(default_factory=list)
    #: The end of the window (now, when it was read).
    until: float = 0.0


def _label(host: str | None, worker: str | None) -> str:
    return f"{host or '?'} / {(worker or '?')[:8]}"


class DashboardData:
    """Everything the dashboard reads and changes, as ``user``.

    Parameters
    ----------
    client
        A client on the server's store.
    user
        The signed-in user (verified by :func:`opsjobs.dashboard.session.open_session`).
    clock
        Time source (tests).
    """

    def __init__(
        self,
        client: Client,
        user: User,
        *,
        clock: Callable[[], float] = time.time,
        policy: RunPolicy | None = None,
    ):
        self.client = client
        self.user = user
        self.clock = clock
        #: What the user may run without a code role (allowed calls, the notebook catalog).
        self.policy = policy or RunPolicy(allowed_calls=frozenset(client.settings.allowed_calls))
        #: Admins' switch to everyone's jobs and schedules (ignored for other users).
        self.everyone = False
        #: The notebooks the user may run by name (the server's catalog), if there is one.
        self.catalog = Catalog(self.policy.catalog) if self.policy.catalog is not None else None

    @property
    def owner(self) -> tuple[str, ...] | None:
        """The owner filter of every listing: the user's and the ``system`` owner's, None for
        an admin looking at everyone's."""
        return Auth.owner_scope(self.user, everyone=self.everyone)

    def may_change(self, job: Job) -> bool:
        """May the user stop or delete ``job`` (their own; any for admins)? The buttons for
        the ``system`` owner's jobs, which others only see, are not shown to them."""
        return Auth.may_change(self.user, job.owner)

    # -- results ----------------------------------------------------------------------------
    def results(self, state: ResultsState) -> ResultsPage:
        """The page ``state`` asks for (clamped to the last page), its total and the stats;
        the stat cards follow every filter (name, status, time)."""
        since, until = state.span(self.clock())
        filters: dict[str, Any] = {
            "states": (state.status,) if state.status else (),
            "name": state.name.strip() or None,
            "owner": self.owner,
            "since": since,
            "until": until,
        }
        stats = self.client.stats(**filters)
        total = stats.total  # the same filters: one query counts and sums
        pages = max(1, -(-total // state.page_size))
        if state.page >= pages or state.page < 0:
            state = dataclasses.replace(state, page=max(0, min(state.page, pages - 1)))
        offset = state.page * state.page_size
        limit = max(0, min(state.page_size, total - offset))
        if offset + limit / 2 <= total / 2:
            rows = self.client.results(limit=limit, offset=offset, sort=state.sort, **filters)
        else:  # past the middle: the walk from the end is the shorter one
            rows = self.client.results(
                limit=limit, offset=total - offset - limit, sort=state.sort, reverse=True, **filters
            )[::-1]
        return ResultsPage(rows, total, stats, state)

    def job(self, job_id: str) -> Job:
        """A job the user may see; :class:`~opsjobs.errors.JobNotFound` otherwise."""
        job_id = validate_job_id(job_id)
        job = self.client.get(job_id)
        if not Auth.may_access(self.user, job):
            raise JobNotFound(f"no job with id {job_id}")
        return job

    def attempts(self, job: Job) -> list[Attempt]:
        """Every attempt of ``job`` (a job the user may see: from :meth:`job`), oldest first."""
        return attempts_of(job, self.client.store.attempts(job.id))

    def delete(self, job_id: str) -> None:
        self.client.delete(self.deletable(job_id).id)

    def deletable(self, job_id: str) -> Job:
        """A job the user may delete: one they may see, and their own unless they are an
        admin (the server's ``system`` jobs, which every user sees, are refused)."""
        job = self.job(job_id)
        Auth.check_change(self.user, job.owner, f"job {job.name}")  # system's: admins only
        return job

    def delete_many(self, job_ids: Iterable[str]) -> tuple[int, list[str]]:
        """Delete every job of ``job_ids`` the user may delete that finished; returns how
        many went and a line for each that was kept (gone already, not theirs, active)."""
        done, kept = 0, []
        for job_id in dict.fromkeys(job_ids):
            try:
                job = self.deletable(job_id)
                if not job.finished:
                    raise ValidationError(f"{job.name} is {job.state.value}: stop it first")
                self.client.delete(job.id)
                done += 1
            except OpsJobsError as exc:
                kept.append(str(exc))
        return done, kept

    def cancel(self, job_id: str) -> Job:
        job = self.job(job_id)
        Auth.check_change(self.user, job.owner, f"job {job.id}")
        return self.client.cancel(job.id)

    def notebook_html(self, job: Job) -> str | None:
        """The executed notebook of a notebook job rendered as HTML, if it was written."""
        if job.kind != "notebook":
            return None
        path = Path(self.client.settings.outputs_dir) / f"{job.id}.html"
        try:
            return path.read_text("utf-8", errors="replace")
        except OSError:
            return None

    def files(self, job: Job) -> list[tuple[str, str, int]]:
        """(name, download URL, size) of the job's files (see :mod:`opsjobs.outputs`)."""
        found = list_job_files(self.client.settings, job.id)
        return [(f.name, f.url(job.id), f.size) for f in found]

    def live_output(self, job: Job) -> str:
        """The tail of a job's log as it is now (a running job's output so far)."""
        path = self.client.settings.logs_dir / f"{job.id}.log"
        try:
            size = path.stat().st_size
        except OSError:
            return ""
        text, _, _ = read_log(path, max(0, size - LIVE_TAIL), LIVE_TAIL)
        return text if size <= LIVE_TAIL else "…" + text

    def history(self, name: str) -> list[Job]:
        """The last runs of the job name ``name`` the user may see, oldest first."""
        jobs = self.client.results(
            limit=HISTORY_RUNS, exact_name=name, owner=self.owner, sort="-submitted_at"
        )
        return jobs[::-1]

    # -- notebooks ----------------------------------------------------------------------------
    def notebooks(self) -> list[NotebookInfo]:
        """The catalog's notebooks with their typed parameters."""
        return [] if self.catalog is None else self.catalog.list()

    def run_notebook(
        self,
        notebook: str,
        *,
        name: str,
        parameters: Mapping[str, Any],
        mode: str = "process",
        queue: str = "default",
        timeout: float | None = None,
        rerun_of: str | None = None,
    ) -> Job:
        """Queue the catalog notebook ``notebook`` with typed ``parameters`` as the user;
        ``rerun_of``: the job this run repeats."""
        Auth.check_submit(self.user)
        if self.catalog is None:
            raise ValidationError("the server has no notebook catalog")
        spec = self.client.build_spec(
            name or Path(notebook).stem,
            notebook=self.catalog.resolve(notebook),
            parameters=dict(parameters),
            mode=Mode.parse(mode),
            queue=queue.strip() or "default",
            timeout=timeout,
            owner=self.user.email,
        )
        if rerun_of is not None:
            spec = dataclasses.replace(spec, rerun_of=self.job(rerun_of).id).validated()
        Auth.check_run(self.user, spec, self.policy)
        return self.client.store.submit(spec, now=time.time())

    def rerun(self, job_id: str) -> Job:
        """Queue a finished job again as it was, linked to it."""
        Auth.check_submit(self.user)
        spec = self.client.rerun_spec(self.job(job_id), owner=self.user.email)
        Auth.check_run(self.user, spec, self.policy)
        return self.client.store.submit(spec, now=time.time())

    def catalog_name(self, spec: JobSpec) -> str | None:
        """The catalog name of a notebook job's notebook (None when it is not in the catalog)."""
        if spec.kind != "notebook" or self.catalog is None:
            return None
        path = Path(str(spec.payload.get("path", "")))
        try:
            return path.name if self.catalog.resolve(path.name) == path.resolve() else None
        except (OSError, OpsJobsError):
            return None

    # -- jobs, schedules, workers -------------------------------------------------------------
    def active_jobs(self) -> list[Job]:
        """Queued and running jobs, running first, newest first."""
        jobs = self.client.results(
            limit=500, states=[s.value for s in ACTIVE_STATES], owner=self.owner
        )
        return sorted(jobs, key=lambda j: (j.state is not JobState.RUNNING, -j.submitted_at))

    def schedules(self) -> list[Schedule]:
        owner = self.owner
        return [s for s in self.client.schedules.list() if owner is None or s.spec.owner in owner]

    def _schedule(self, name_or_id: str) -> Schedule:
        Auth.check_submit(self.user)
        return self.client.schedules.visible(
            name_or_id, owner=self.user.email, sees_all=self.user.sees_all
        )

    def pause(self, name_or_id: str) -> Schedule:
        return self.client.schedules.pause(self._schedule(name_or_id).id)

    def resume(self, name_or_id: str) -> Schedule:
        return self.client.schedules.resume(self._schedule(name_or_id).id)

    def schedule(self, name_or_id: str) -> Schedule:
        """A schedule the user may manage; :class:`~opsjobs.errors.NotFound` otherwise."""
        return self._schedule(name_or_id)

    def set_schedule_parameters(self, name_or_id: str, parameters: Mapping[str, Any]) -> Schedule:
        """Replace a notebook schedule's parameters (checked against the notebook now)."""
        current = self._schedule(name_or_id)
        spec = self.client.with_parameters(current.spec, parameters, replace=True)
        Auth.check_run(self.user, spec, self.policy)
        return self.client.schedules.update(current.id, dataclasses.replace(current, spec=spec))

    def run_now(self, name_or_id: str) -> Job:
        return self.client.schedules.run_now(self._schedule(name_or_id).id)

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker, alive first, then by host."""
        now = self.clock()
        found = self.client.store.workers()
        return sorted(found, key=lambda w: (not w.alive(now), w.stopped_at is not None, w.host))

    # -- memory -------------------------------------------------------------------------------
    def memory(self, window: float) -> MemoryView:
        """rss/uss and gc series per host and worker over the last ``window`` seconds, leak
        verdicts on each rss series and the latest analysis the user may see."""
        from opsjobs.analyzer.job import JOB_NAME, RESULT_MARK
        from opsjobs.analyzer.leaks import leak_verdict

        now = self.clock()
        since = now - window
        series: dict[str, dict[str, list[tuple[float, float]]]] = {}
        shown: list[tuple[float, str]] = []  # (time, job id) of the memory chart's points
        for name in (*MEMORY_METRICS, *GC_METRICS):
            by: dict[str, list[tuple[float, float]]] = {}
            for m in self.client.store.metrics(name, since=since, limit=10_000):
                host = m.labels.get("host") or m.host
                worker = m.labels.get("worker") or m.worker_id
                by.setdefault(_label(host, worker), []).append((m.at, m.value))
                if name in MEMORY_METRICS and m.job_id:
                    shown.append((m.at, m.job_id))
            series[name] = by
        verdicts = {label: leak_verdict(pts) for label, pts in series["rss_mb"].items()}
        # the newest analysis the chart shows (that the user may see), else the newest one
        latest = self._shown_analysis(shown, RESULT_MARK)
        newest = self.client.results(
            limit=20, states=["succeeded"], name=JOB_NAME, owner=self.owner, sort="-finished_at"
        )
        for job in newest if latest is None else []:
            if isinstance(job.result, dict) and job.result.get("analyzer") == RESULT_MARK:
                latest = job
                break
        return MemoryView(since, series, verdicts, latest, self.open_alerts(), now)

    def _shown_analysis(self, shown: list[tuple[float, str]], mark: str) -> Job | None:
        """The newest succeeded analysis among the jobs of the chart's points."""
        seen: set[str] = set()
        for _, job_id in sorted(shown, reverse=True):
            if job_id in seen or len(seen) >= 50:
                continue
            seen.add(job_id)
            try:
                job = self.job(job_id)
            except OpsJobsError:
                continue
            result = job.result if job.state is JobState.SUCCEEDED else None
            if isinstance(result, dict) and result.get("analyzer") == mark:
                return job
        return None

    # -- alerts -------------------------------------------------------------------------------
    def open_alerts(self, limit: int = MAX_ALERTS) -> list[Alert]:
        """Open alerts (any user sees all: they are about hosts), most severe first, then
        the most recently opened."""
        found = open_alerts(self.client.store, limit=10_000)
        found.sort(key=lambda a: (_SEVERITY_ORDER.get(a.severity, 3), -a.opened_at))
        return found[:limit]

    def alert_counts(self) -> dict[str, int]:
        """How many alerts are open: ``open`` in all, and per severity (the header's badge)."""
        return alert_summary(self.client.store)

    # -- submitting ---------------------------------------------------------------------------
    def submit(self, form: SubmitForm) -> Job:
        """Queue the form's job as the user (needs a submitting role)."""
        Auth.check_submit(self.user)
        target = form.target.strip()
        if not target:
            raise ValidationError(f"give the {_TARGET_NAMES.get(form.kind, 'target')}")
        params = dict(form.parameters)
        args: dict[str, Any]
        if form.kind == "call":
            args = {"call": target, "kwargs": params}
        elif form.kind == "command":
            if params:
                raise ValidationError("a command takes no parameters (use call or notebook)")
            args = {"command": form.target}
        elif form.kind == "argv":
            if params:
                raise ValidationError("a command line takes no parameters (use call or notebook)")
            try:
                argv = shlex.split(target)  # as a POSIX shell splits it; no shell runs it
            except ValueError as exc:
                raise ValidationError(f"command line: {exc}") from exc
            args = {"argv": argv}
        elif form.kind == "notebook":
            if self.catalog is not None and not Path(target).is_absolute():
                target = str(self.catalog.resolve(target))  # a catalog name
            args = {"kind": "notebook", "payload": {"path": target, "parameters": params}}
        else:
            raise ValidationError(f"unknown kind {form.kind!r} (call, command, argv or notebook)")
        spec = self.client.build_spec(
            form.name,
            mode=Mode.parse(form.mode),
            queue=form.queue.strip() or "default",
            timeout=form.timeout,
            owner=self.user.email,
            **args,
        )
        Auth.check_run(self.user, spec, self.policy)
        return self.client.store.submit(spec, now=time.time())


_TARGET_NAMES = {
    "call": "callable (pkg.module:function)",
    "command": "source",
    "argv": "command line",
    "notebook": "path",
}
