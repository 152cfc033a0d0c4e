"""The Python API: :func:`connect` gives a :class:`Client` that mirrors the CLI."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opsjobs.auth import login
from opsjobs.auth.model import SYSTEM_OWNER
from opsjobs.config import Settings
from opsjobs.errors import ConfigError, JobNotFound, OpsJobsError, PermissionDenied, ValidationError
from opsjobs.model import (
    Attempt,
    Job,
    JobSpec,
    JobState,
    Mode,
    ResultQuery,
    Stats,
    attempts_of,
    parse_duration,
    parse_retry_on,
    parse_states,
    seconds,
    validate_job_id,
)
from opsjobs.runners.kinds import KindRegistry, default_registry
from opsjobs.schedule_api import Schedules
from opsjobs.specs import JOB_ARGS, SpecBatch, kind_payload, paused_gc
from opsjobs.store import Store, open_store

if TYPE_CHECKING:
    import pandas

__all__ = ["SUBMIT_FIELDS", "Client", "connect", "parse_duration"]

#: Fields of a submit body (REST ``POST /jobs``, a line of ``opsjobs submit --from-file``),
#: each an argument of :meth:`Client.build_spec`.
SUBMIT_FIELDS = frozenset(
    {"name", "command", "call", "kwargs", "argv", "mode", "queue", "description", "timeout"}
    | {"retries", "priority", "notebook", "parameters", "kernel", "allow_unknown"}
    | {"retry_delay", "retry_backoff", "retry_max", "retry_on"}
)


class Client:
    """Submit, inspect, cancel and delete jobs on one store.

    Parameters
    ----------
    store
        An open store (the client closes it on :meth:`close`).
    settings
        Data folder (for logs) and the local user recorded as owner.
    """

    def __init__(self, store: Store, settings: Settings, kinds: KindRegistry | None = None) -> None:
        self.store = store
        self.settings = settings
        self.kinds = kinds or default_registry()
        #: Who this client acts as, and why (set by :func:`connect`).
        self.identity = login.Identity(settings.user, "settings")

    # -- submitting -----------------------------------------------------------------------
    def submit(self, name: str, **fields: Any) -> Job:
        """Queue a job; ``fields`` are those of :meth:`build_spec`. Give exactly one of
        ``command``, ``call`` (+ ``kwargs``), ``argv``, ``notebook`` (+ ``parameters``,
        ``kernel``: a papermill run) or ``kind`` + ``payload``. Raises
        :class:`~opsjobs.errors.ValidationError` on bad input."""
        return self.store.submit(self.build_spec(name, **fields), now=time.time())

    def submit_many(self, specs: Sequence[JobSpec]) -> list[Job]:
        """Queue many jobs at once (specs made by :meth:`build_spec`), in their order, all or
        none: one statement on PostgreSQL, one transaction on SQLite, and idle workers woken
        once."""
        with paused_gc():
            return self.store.submit_many(specs, now=time.time())

    def build_specs(self, jobs: Iterable[Mapping[str, Any]]) -> list[JobSpec]:
        """Validated specs of many jobs, each a mapping of :meth:`build_spec`'s arguments
        with its ``name``; the whole batch is checked, and the first invalid job raises
        :class:`~opsjobs.errors.ValidationError` naming its index (``job 3: ...``). Accepts and
        makes exactly what :meth:`build_spec` does job by job, checking values that repeat
        across the batch once (see :mod:`opsjobs.specs`): for :meth:`submit_many`."""
        with paused_gc():
            return self._build_specs(jobs)

    def _build_specs(self, jobs: Iterable[Mapping[str, Any]]) -> list[JobSpec]:
        batch = self.spec_batch()
        specs = []
        for i, job in enumerate(jobs):
            try:
                if not isinstance(job, Mapping):
                    raise ValidationError("a job must be a mapping of build_spec's arguments")
                if not isinstance(job.get("name"), str):
                    raise ValidationError("name is required and must be a string")
                if not job.keys() <= JOB_ARGS:
                    names = ", ".join(sorted(map(str, job.keys() - JOB_ARGS)))
                    raise ValidationError(f"unknown field(s): {names}")
                specs.append(batch.build_job(job))
            except ValidationError as exc:
                raise ValidationError(f"job {i}: {exc}") from None
        return specs

    def spec_batch(self) -> SpecBatch:
        """A builder for one batch's specs (:meth:`build_specs`, :meth:`spec_from_body`)."""
        return SpecBatch(self.build_spec, self.kinds)

    def spec_from_body(
        self, body: Mapping[str, Any], *, batch: SpecBatch | None = None, **fixed: Any
    ) -> JobSpec:
        """A validated spec from a submit body (a JSON object of :data:`SUBMIT_FIELDS`);
        ``fixed`` arguments of :meth:`build_spec` (``owner``, a resolved ``notebook``) win.
        ``batch``: one batch's builder (:meth:`spec_batch`), for many bodies."""
        unknown = set(body) - SUBMIT_FIELDS
        if unknown:
            raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}")
        args = dict(body)
        name = args.pop("name", None)
        if not isinstance(name, str):
            raise ValidationError("name is required and must be a string")
        args.update(fixed)
        if batch is not None:
            return batch.build(name, **args)
        return self.build_spec(name, **args)

    def build_spec(
        self,
        name: str,
        *,
        command: str | None = None,
        call: str | None = None,
        kwargs: Mapping[str, Any] | None = None,
        argv: Sequence[str] | None = None,
        kind: str | None = None,
        payload: Mapping[str, Any] | None = None,
        mode: str | Mode = Mode.THREAD,
        queue: str = "default",
        description: str = "",
        timeout: float | None = None,
        retries: int = 0,
        retry_delay: float | str = 10.0,
        retry_backoff: float = 2.0,
        retry_max: float | str = 600.0,
        retry_on: Sequence[str] | str = ("failed", "timed_out"),
        priority: int = 0,
        owner: str | None = None,
        schedule_id: str | None = None,
        notebook: str | os.PathLike[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        kernel: str | None = None,
        allow_unknown: bool = False,
    ) -> JobSpec:
        """A validated :class:`JobSpec` from the same arguments as :meth:`submit`.

        A notebook's ``parameters`` are checked against its ``parameters`` cell: a name it does
        not declare is refused unless ``allow_unknown``. ``retries`` with ``retry_delay`` and
        ``retry_max`` (seconds, or durations such as ``"10s"``, ``"10m"``), ``retry_backoff``
        and ``retry_on`` are the retry policy (see :mod:`opsjobs.retry`)."""
        kind, payload = kind_payload(
            command, call, kwargs, argv, kind, payload, notebook, parameters, kernel, allow_unknown
        )
        parsed_mode = Mode.parse(mode)
        clean = self.kinds.validate(kind, payload, parsed_mode)
        return JobSpec(
            name=name,
            kind=kind,
            payload=clean,
            mode=parsed_mode,
            queue=queue,
            description=description,
            owner=self._me() if owner is None else owner,
            priority=priority,
            timeout=timeout,
            retries=retries,
            schedule_id=schedule_id,
            retry_delay=seconds(retry_delay, "retry_delay"),
            retry_backoff=retry_backoff,
            retry_max=seconds(retry_max, "retry_max"),
            retry_on=parse_retry_on(retry_on),
        ).validated()

    def rerun(
        self,
        job_id: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        mode: str | Mode | None = None,
        queue: str | None = None,
        timeout: float | None = None,
        allow_unknown: bool = False,
        owner: str | None = None,
    ) -> Job:
        """Queue job ``job_id`` again as a new job linked to it (``rerun_of``): the same spec,
        with ``parameters`` (a notebook's; merged over the old ones and checked against the
        notebook as it is now), ``mode``, ``queue`` and ``timeout`` changed when given."""
        return self.store.submit(
            self.rerun_spec(
                self.get(job_id),
                parameters=parameters,
                mode=mode,
                queue=queue,
                timeout=timeout,
                allow_unknown=allow_unknown,
                owner=owner,
            ),
            now=time.time(),
        )

    def rerun_spec(
        self,
        old: Job,
        *,
        parameters: Mapping[str, Any] | None = None,
        mode: str | Mode | None = None,
        queue: str | None = None,
        timeout: float | None = None,
        allow_unknown: bool = False,
        owner: str | None = None,
    ) -> JobSpec:
        """The validated spec of a rerun of ``old`` (see :meth:`rerun`)."""
        spec = self.with_parameters(old.spec, parameters, allow_unknown=allow_unknown, mode=mode)
        return dataclasses.replace(
            spec,
            queue=old.spec.queue if queue is None else queue,
            timeout=old.spec.timeout if timeout is None else timeout,
            owner=self._me() if owner is None else owner,
            schedule_id=None,
            rerun_of=old.id,
        ).validated()

    def with_parameters(
        self,
        spec: JobSpec,
        parameters: Mapping[str, Any] | None,
        *,
        allow_unknown: bool = False,
        mode: str | Mode | None = None,
        replace: bool = False,
    ) -> JobSpec:
        """``spec`` with a notebook's ``parameters`` merged over its own (``replace``: instead
        of them) and its mode changed, the payload checked again by its kind."""
        payload = dict(spec.payload)
        if parameters is not None or allow_unknown:
            if spec.kind != "notebook":
                raise ValidationError("parameters and allow_unknown go with notebook jobs")
            old = {} if replace else dict(payload.get("parameters") or {})
            payload["parameters"] = {**old, **(parameters or {})}
            if allow_unknown:
                payload["allow_unknown"] = True
        parsed_mode = Mode.parse(mode) if mode is not None else spec.mode
        return dataclasses.replace(
            spec, payload=self.kinds.validate(spec.kind, payload, parsed_mode), mode=parsed_mode
        )

    def _me(self) -> str:
        """The owner of what this client submits; :class:`ConfigError` without an identity
        (a shared store opened without a key: see :mod:`opsjobs.auth.login`)."""
        if not self.settings.user:
            raise ConfigError(
                "no identity on this shared store: run `opsjobs login` (or set OPSJOBS_KEY; "
                "OPSJOBS_USER names a user without a key)"
            )
        return self.settings.user

    # -- reading --------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        job = self.store.get(validate_job_id(job_id))
        scope = self.settings.scope_owner
        if scope and job.owner not in (scope, SYSTEM_OWNER):
            raise JobNotFound(f"no job with id {job.id}")  # as the REST API answers
        return job

    def _own(self, job_id: str) -> None:
        """A scoped client changes only its owner's jobs (the ``system`` ones it only sees)."""
        scope = self.settings.scope_owner
        if scope:
            job = self.get(job_id)
            if job.owner != scope:
                raise PermissionDenied(
                    f"job {job.id} belongs to the server (system): only an admin may change it"
                )

    def _owner(self, owner: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
        """The owner filter of a read: with ``settings.scope_owner``, that owner's jobs and the
        ``system`` owner's (another owner is refused), else ``owner`` (one, or any of a
        sequence)."""
        scope = self.settings.scope_owner
        if not scope:
            return owner if owner is None or isinstance(owner, str) else tuple(owner)
        visible = (scope, SYSTEM_OWNER)
        if owner is None:
            return visible
        wanted = (owner,) if isinstance(owner, str) else tuple(owner)
        if any(o not in visible for o in wanted):
            raise PermissionDenied(f"this client sees only the jobs of {scope} and system")
        return wanted

    def attempts(self, job_id: str) -> list[Attempt]:
        """Every attempt of the job, oldest first (earlier ones kept by retries)."""
        job = self.get(job_id)
        return attempts_of(job, self.store.attempts(job.id))

    def results(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        states: Sequence[str | JobState] = (),
        name: str | None = None,
        owner: str | Sequence[str] | None = None,
        queue: str | None = None,
        sort: str = "-submitted_at",
        exact_name: str | None = None,
        since: float | None = None,
        until: float | None = None,
        reverse: bool = False,
    ) -> list[Job]:
        """Jobs, newest first by default; filter and sort in the store (``name``: names
        containing the text; ``exact_name``: that name only; ``since``/``until``: submitted
        in that span, epoch seconds; ``reverse``: the order read from its end)."""
        query = self._query(
            limit, offset, states, name, self._owner(owner), queue, sort, exact_name, since, until
        )
        return self.store.results(dataclasses.replace(query, reverse=reverse))

    def count(self, **filters: Any) -> int:
        """How many jobs match the filters :meth:`results` takes."""
        return self.store.count(self._filtered(filters))

    def stats(self, **filters: Any) -> Stats:
        """The stat cards' totals over the jobs matching the filters :meth:`results` takes."""
        return self.store.stats(self._filtered(filters))

    def _filtered(self, filters: dict[str, Any]) -> ResultQuery:
        return self._query(
            0,
            0,
            filters.get("states", ()),
            filters.get("name"),
            self._owner(filters.get("owner")),
            filters.get("queue"),
            "name",
            filters.get("exact_name"),
            filters.get("since"),
            filters.get("until"),
        )

    @staticmethod
    def _query(
        limit: int,
        offset: int,
        states: Sequence[str | JobState],
        name: str | None,
        owner: str | tuple[str, ...] | None,
        queue: str | None,
        sort: str,
        exact_name: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> ResultQuery:
        return ResultQuery(
            owner=owner,
            states=parse_states(str(s.value if isinstance(s, JobState) else s) for s in states),
            name=name,
            queue=queue,
            sort=sort,
            limit=limit,
            offset=offset,
            exact_name=exact_name,
            since=since,
            until=until,
        ).validated()

    def results_frame(self, **kwargs: Any) -> pandas.DataFrame:
        """:meth:`results` as a pandas DataFrame (one row per job, every field a column)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ConfigError("results_frame needs pandas: pip install 'opsjobs[pandas]'") from exc
        rows = [job.to_dict() for job in self.results(**kwargs)]
        frame = pd.DataFrame(rows)
        for column in ("submitted_at", "started_at", "finished_at"):
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    # -- exploration frames (issue 19; see opsjobs.frames) ---------------------------------
    def runs_frame(
        self,
        name: str | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
        owner: str | None = None,
        limit: int = 10_000,
    ) -> pandas.DataFrame:
        """The runs of job ``name`` (of every name: None) over time, oldest first: one row
        per job with typed columns (tz-aware times, categories, ``wait_s``, ``runtime_s``,
        ``peak_rss_mb``; see :data:`opsjobs.frames.RUN_COLUMNS`). ``since``/``until``:
        submitted in that window (epoch seconds); ``limit``: the newest that many."""
        from opsjobs.frames import runs_frame

        jobs = self.results(limit=limit, exact_name=name, owner=owner, sort="-submitted_at")
        return runs_frame(_in_window(jobs, since, until))

    def metrics_frame(
        self,
        name: str,
        *,
        since: float | None = None,
        until: float | None = None,
        host: str | None = None,
        worker: str | None = None,
        limit: int = 100_000,
    ) -> pandas.DataFrame:
        """The points of metric ``name`` (``rss_mb`` ...), oldest first: ``at``, ``value``,
        ``host``, ``worker`` and one column per label (see
        :data:`opsjobs.frames.METRIC_COLUMNS`), for one ``host`` or ``worker`` when given."""
        from opsjobs.frames import metrics_frame

        points = self.store.metrics(name, since=since, limit=limit)
        return metrics_frame(
            p
            for p in points
            if (until is None or p.at <= until)
            and (host is None or p.host == host)
            and (worker is None or (p.labels.get("worker") or p.worker_id) == worker)
        )

    def attempts_frame(
        self, name: str | None = None, *, owner: str | None = None, limit: int = 10_000
    ) -> pandas.DataFrame:
        """Attempts of the jobs (of job ``name`` when given) that ran, oldest first (see
        :data:`opsjobs.frames.ATTEMPT_COLUMNS`): a row for each attempt, the earlier ones
        being those a retry policy kept (:meth:`attempts`)."""
        from opsjobs.frames import attempts_frame

        jobs = self.results(limit=limit, exact_name=name, owner=owner, sort="-submitted_at")
        return attempts_frame(jobs, self.store.attempts)

    def alert_events_frame(self, *, limit: int = 10_000) -> pandas.DataFrame:
        """Alert events (``opened``, ``resolved``), oldest first, with their alert's rule,
        metric, series, host and severity (see :data:`opsjobs.frames.ALERT_EVENT_COLUMNS`)."""
        from opsjobs.frames import alert_events_frame

        events = self.store.alert_events(limit=limit)
        return alert_events_frame(events, self.store.list_alerts(limit=limit))

    def log_path(self, job_id: str) -> Any:
        """Where the complete output of a job is kept."""
        return self.settings.logs_dir / f"{validate_job_id(job_id)}.log"

    # -- changing -------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job:
        self._own(job_id)
        return self.store.request_cancel(validate_job_id(job_id), now=time.time())

    def delete(self, job_id: str) -> None:
        """Delete a finished job and its files. Queued or running jobs must be cancelled
        first (:class:`~opsjobs.errors.Conflict`)."""
        job_id = validate_job_id(job_id)
        self._own(job_id)
        self.store.delete(job_id)
        self._remove_files(job_id)

    def purge(self, older_than: float, *, keep_last: int = 0) -> int:
        """Delete jobs that finished more than ``older_than`` seconds ago (but the
        ``keep_last`` latest of each job name) with their files, and sweep files of ids that
        are no job (see :mod:`opsjobs.retention`); returns how many jobs went."""
        from opsjobs.retention import purge

        self.check_store_wide("purge")
        return purge(self.store, self.settings, older_than=older_than, keep_last=keep_last).jobs

    def check_store_wide(self, what: str) -> None:
        """A scoped client (a key of a user without an admin role) may not do ``what``, which
        touches every owner's jobs: :class:`~opsjobs.errors.PermissionDenied`."""
        if self.settings.scope_owner:
            raise PermissionDenied(
                f"{what} touches every owner's jobs; {self.settings.scope_owner} is no admin"
            )

    def _remove_files(self, job_id: str) -> None:
        from opsjobs.retention import remove_job_files

        remove_job_files(self.settings, job_id)

    @property
    def schedules(self) -> Schedules:
        """Schedules on this store: ``add``, ``list``, ``get``, ``pause``, ``resume``,
        ``run_now``, ``remove``, ``fires`` (see :class:`opsjobs.schedule_api.Schedules`)."""
        return Schedules(self)

    # -- waiting --------------------------------------------------------------------------
    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        *,
        on_progress: Callable[[Job], None] | None = None,
        interval: float = 0.1,
    ) -> Job:
        """Block until the job finishes; ``on_progress`` is called with each fresh state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job_id = validate_job_id(job_id)
        while True:
            job = self.store.get(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise OpsJobsError(f"job {job_id} still {job.state.value} after {timeout:g} s")
            time.sleep(interval)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _in_window(jobs: Sequence[Job], since: float | None, until: float | None) -> list[Job]:
    return [
        j
        for j in jobs
        if (since is None or j.submitted_at >= since) and (until is None or j.submitted_at <= until)
    ]


def connect(url: str | None = None, *, settings: Settings | None = None) -> Client:
    """Open the store named by ``url`` (default: ``OPSJOBS_STORE`` or ``data/opsjobs.db``),
    acting as the configured user: ``OPSJOBS_KEY``, ``OPSJOBS_USER``, the key saved by
    ``opsjobs login``, or the OS user on a local store (see :mod:`opsjobs.auth.login`). With
    a key of a user without an admin role, the client sees that user's jobs and the server's
    (``system``) ones, and changes only the user's own."""
    if settings is None:
        settings = Settings.from_env(store_url=url)
    elif url is not None:
        settings = dataclasses.replace(settings, store_url=url)
    store = open_store(
        settings.store_url,
        runtime_dir=settings.runtime_dir,
        data_dir=settings.data_dir,
        settings=settings,
    )
    try:
        identity, settings = login.resolve(store, settings)
    except BaseException:
        store.close()
        raise
    client = Client(store, settings)
    client.identity = identity
    return client
