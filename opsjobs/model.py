"""Data model: job specs, jobs, workers, metrics, queries — and validation of every user field.

Times are UTC seconds since the epoch (floats) everywhere inside opsjobs; they are turned into
ISO-8601 strings only at the edges (CLI, REST API, dashboard).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, ClassVar

from opsjobs.errors import ValidationError

__all__ = [
    "ACTIVE_STATES",
    "FAILED_STATES",
    "QUEUE_PATTERN",
    "RETRY_STATES",
    "SORT_COLUMNS",
    "TERMINAL_STATES",
    "Attempt",
    "Job",
    "JobSpec",
    "JobState",
    "Metric",
    "Mode",
    "ResultQuery",
    "Stats",
    "WorkerInfo",
    "attempts_of",
    "iso",
    "json_size_checked",
    "parse_retry_on",
    "seconds",
    "validate_job_id",
    "validate_kind",
    "validate_name",
    "validate_queue",
]


class JobState(str, Enum):
    """Where a job is in its life: ``queued → running → succeeded | failed | cancelled |
    timed_out | lost``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    LOST = "lost"

    @classmethod
    def parse(cls, value: str | JobState) -> JobState:
        if isinstance(value, JobState):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValidationError(f"unknown state {value!r} (expected one of: {names})") from None


TERMINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT, JobState.LOST}
)
ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})
#: States counted as failures in statistics.
FAILED_STATES = frozenset({JobState.FAILED, JobState.TIMED_OUT, JobState.LOST})
#: Outcomes a retry policy may name (``lost`` is re-queued by lease recovery, see README).
RETRY_STATES = (JobState.FAILED, JobState.TIMED_OUT)


class Mode(str, Enum):
    """Where a job runs. The seed's names are accepted as aliases."""

    INLINE = "inline"  # seed: MainLoop — in the worker's main loop; blocks it
    THREAD = "thread"  # seed: Runspace — a pool thread in the worker's process
    PROCESS = "process"  # seed: BackgroundJob — a child process, killed with its tree

    @property
    def seed_name(self) -> str:
        return _SEED_NAMES[self]

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        if isinstance(value, Mode):
            return value
        key = str(value).strip().lower()
        mode = _MODE_ALIASES.get(key)
        if mode is None:
            raise ValidationError(
                f"unknown mode {value!r} (expected inline, thread or process; "
                "or the seed's MainLoop, Runspace, BackgroundJob)"
            )
        return mode


_SEED_NAMES = {Mode.INLINE: "MainLoop", Mode.THREAD: "Runspace", Mode.PROCESS: "BackgroundJob"}
_MODE_ALIASES = {m.value: m for m in Mode} | {v.lower(): k for k, v in _SEED_NAMES.items()}

#: The grammar of a queue name (also the OpenAPI pattern): 1-120 characters of letters, digits
#: and ``_.:@-``, starting with a letter or digit. :func:`validate_queue` also refuses names
#: that read as a number or a duration (``nan``, ``1e5``, ``99999999999d``): such a name is a
#: value sent in the wrong field, and its jobs would wait on a queue nobody serves.
QUEUE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,119}$"
_QUEUE_RE = re.compile(QUEUE_PATTERN)
_NUMBER_LIKE = re.compile(
    r"^(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:e[+-]?[0-9]+)?[smhdw]?|nan|inf|infinity)$", re.IGNORECASE
)
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

MAX_NAME = 200
MAX_DESCRIPTION = 4000
MAX_TIMEOUT = 7 * 24 * 3600.0
MAX_RETRIES = 100
MAX_RETRY_DELAY = 7 * 24 * 3600.0
MAX_RETRY_BACKOFF = 10.0
MAX_PAYLOAD_BYTES = 1 << 20


def validate_job_id(value: object) -> str:
    """Return the canonical form of a job id, or raise :class:`ValidationError`.

    Ids are UUIDs; this is checked before any lookup or file path is built from them.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationError(f"malformed job id {str(value)[:60]!r} (expected a UUID)")
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise ValidationError(f"malformed job id {value[:60]!r} (expected a UUID)") from None


def validate_queue(value: object) -> str:
    """``value`` if it is a queue name (see :data:`QUEUE_PATTERN`); else ValidationError."""
    if not isinstance(value, str) or not _QUEUE_RE.match(value) or _NUMBER_LIKE.match(value):
        raise ValidationError(
            f"invalid queue {str(value)[:60]!r}: 1-120 characters of letters, digits and _.:@-, "
            "starting with a letter or digit, not a number or duration"
        )
    return value


def _text(value: object, what: str, max_len: int, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string")
    value = value.strip()
    if required and not value:
        raise ValidationError(f"{what} is required")
    if len(value) > max_len:
        raise ValidationError(f"{what} is longer than {max_len} characters")
    if _CONTROL_RE.search(value):
        raise ValidationError(f"{what} contains control characters")
    return value


def validate_name(value: object) -> str:
    """A job's name, stripped (1-200 characters, no control characters); else ValidationError."""
    return _text(value, "name", MAX_NAME, required=True)


def validate_kind(value: object) -> str:
    """``value`` if it is a well-formed kind name; else ValidationError."""
    if not isinstance(value, str) or not _KIND_RE.match(value):
        raise ValidationError(f"invalid kind {str(value)[:40]!r}")
    return value


def _number(value: object, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what} must be a number")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValidationError(f"{what} must be between {lo:g} and {hi:g}")
    return float(value)


def _integer(value: object, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer")
    if not lo <= value <= hi:
        raise ValidationError(f"{what} must be between {lo} and {hi}")
    return value


#: ``json.dumps(value, allow_nan=False, separators=(",", ":"))`` made once (``json.dumps`` with
#: options builds a new encoder per call; ``encode`` keeps no state between calls).
_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def json_size_checked(value: object, what: str) -> str:
    """Serialise ``value`` as JSON, raising :class:`ValidationError` when it cannot be."""
    try:
        text = _JSON.encode(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None
    if len(text) > MAX_PAYLOAD_BYTES:
        raise ValidationError(f"{what} is larger than {MAX_PAYLOAD_BYTES} bytes")
    return text


@dataclass(frozen=True)
class JobSpec:
    """What to run: everything a user supplies when submitting a job.

    ``payload`` depends on ``kind``: ``call`` → ``{"target": "pkg.mod:func", "kwargs": {...}}``,
    ``command`` → ``{"source": "..."}``, ``argv`` → ``{"argv": [...]}``; each kind validates its
    own payload (see :mod:`opsjobs.runners.kinds`). A spec is immutable, its payload too: the
    payload's JSON made when it was validated is the text stored (:meth:`payload_json`).
    """

    _payload_json: ClassVar[str | None] = None

    name: str
    kind: str
    payload: Mapping[str, Any]
    mode: Mode = Mode.THREAD
    queue: str = "default"
    description: str = ""
    owner: str = ""
    priority: int = 0
    timeout: float | None = None
    retries: int = 0
    schedule_id: str | None = None
    #: The job this one runs again (``POST /jobs/{id}/rerun``, ``opsjobs rerun``).
    rerun_of: str | None = None
    #: The retry policy (see :mod:`opsjobs.retry`): an attempt that ends in one of
    #: ``retry_on`` while attempts remain (``retries``) is queued again after
    #: ``retry_delay * retry_backoff ** (attempt - 1)`` seconds, at most ``retry_max``, ±10 %.
    retry_delay: float = 10.0
    retry_backoff: float = 2.0
    retry_max: float = 600.0
    retry_on: tuple[JobState, ...] = RETRY_STATES

    def validated(self) -> JobSpec:
        """Return a copy with every field checked and normalised (raises ValidationError)."""
        validate_kind(self.kind)
        if not isinstance(self.payload, Mapping):
            raise ValidationError("payload must be a JSON object")
        payload = dict(self.payload)
        text = json_size_checked(payload, "payload")
        timeout = self.timeout
        if timeout is not None:
            timeout = _number(timeout, "timeout", 0.001, MAX_TIMEOUT)
        spec = dataclasses.replace(
            self,
            name=validate_name(self.name),
            description=_text(self.description, "description", MAX_DESCRIPTION, required=False),
            owner=_text(self.owner, "owner", 320, required=False),
            mode=Mode.parse(self.mode),
            queue=validate_queue(self.queue),
            priority=_integer(self.priority, "priority", -1000, 1000),
            timeout=timeout,
            retries=_integer(self.retries, "retries", 0, MAX_RETRIES),
            payload=payload,
            schedule_id=self.schedule_id,
            rerun_of=None if self.rerun_of is None else validate_job_id(self.rerun_of),
            retry_delay=_number(self.retry_delay, "retry_delay", 0.0, MAX_RETRY_DELAY),
            retry_backoff=_number(self.retry_backoff, "retry_backoff", 1.0, MAX_RETRY_BACKOFF),
            retry_max=_number(self.retry_max, "retry_max", 0.0, MAX_RETRY_DELAY),
            retry_on=parse_retry_on(self.retry_on),
        )
        object.__setattr__(spec, "_payload_json", text)  # kept for payload_json
        return spec

    @classmethod
    def checked(
        cls, name: str, kind: str, payload: dict[str, Any], text: str, fields: Mapping[str, Any]
    ) -> JobSpec:
        """A spec of values already checked and normalised (``fields`` by :meth:`validated` on
        another spec, ``payload`` by its kind, ``text`` its JSON), for a batch builder
        (:mod:`opsjobs.specs`). Made without ``__init__``, which for a frozen dataclass sets
        each field through ``object.__setattr__``: five times slower."""
        spec = cls.__new__(cls)
        values = spec.__dict__
        values.update(fields)
        values["name"], values["kind"], values["payload"] = name, kind, payload
        values["_payload_json"] = text
        return spec

    def payload_json(self) -> str:
        """The payload as compact JSON: the text validation made, else made now."""
        if self._payload_json is not None:
            return self._payload_json
        return json.dumps(dict(self.payload), separators=(",", ":"))


def parse_retry_on(value: object) -> tuple[JobState, ...]:
    """The outcomes of a retry policy: a list of states or a comma-separated text of
    ``failed`` and ``timed_out`` (empty: retry only a lost worker's job)."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise ValidationError("retry_on must be a list of states")
    states = []
    for item in value:
        state = JobState.parse(item) if isinstance(item, str | JobState) else None
        if state not in RETRY_STATES:
            raise ValidationError(f"retry_on accepts failed and timed_out, not {str(item)[:40]!r}")
        if state not in states:
            states.append(state)
    return tuple(sorted(states, key=RETRY_STATES.index))


@dataclass
class Job:
    """A job as stored: its spec plus everything that happened to it."""

    id: str
    spec: JobSpec
    state: JobState
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    runtime: float | None = None
    worker_id: str | None = None
    host: str | None = None
    attempt: int = 0
    lease_until: float | None = None
    cancel_requested: bool = False
    exit_code: int | None = None
    output: str = ""
    result: Any = None
    error: str | None = None
    #: Peak resident memory of the run in bytes, as the worker measured it (None: unknown).
    peak_rss: int | None = None
    #: A queued job is not claimed before this time (a retry waiting out its delay).
    run_after: float | None = None

    # Convenience views of the spec, so callers can write job.name, job.mode, ...
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def mode(self) -> Mode:
        return self.spec.mode

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def owner(self) -> str:
        return self.spec.owner

    @property
    def queue(self) -> str:
        return self.spec.queue

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field (times as ISO-8601 UTC strings)."""
        spec = self.spec
        return {
            "id": self.id,
            "name": spec.name,
            "description": spec.description,
            "owner": spec.owner,
            "kind": spec.kind,
            "payload": dict(spec.payload),
            "mode": spec.mode.value,
            "queue": spec.queue,
            "priority": spec.priority,
            "timeout": spec.timeout,
            "retries": spec.retries,
            "schedule_id": spec.schedule_id,
            "rerun_of": spec.rerun_of,
            "retry_delay": spec.retry_delay,
            "retry_backoff": spec.retry_backoff,
            "retry_max": spec.retry_max,
            "retry_on": [s.value for s in spec.retry_on],
            "state": self.state.value,
            "submitted_at": iso(self.submitted_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "runtime": self.runtime,
            "worker_id": self.worker_id,
            "host": self.host,
            "attempt": self.attempt,
            "cancel_requested": self.cancel_requested,
            "exit_code": self.exit_code,
            "output": self.output,
            "result": self.result,
            "error": self.error,
            "peak_rss": self.peak_rss,
            "run_after": iso(self.run_after),
        }


@dataclass(frozen=True)
class Attempt:
    """One run of a job: the earlier ones are kept when a retry queues the job again; the
    job row holds the current one (see :func:`attempts_of`)."""

    job_id: str
    attempt: int
    state: JobState
    started_at: float | None = None
    finished_at: float | None = None
    runtime: float | None = None
    worker_id: str | None = None
    host: str | None = None
    exit_code: int | None = None
    output: str = ""
    error: str | None = None
    peak_rss: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["state"] = self.state.value
        data["started_at"] = iso(self.started_at)
        data["finished_at"] = iso(self.finished_at)
        return data


def attempts_of(job: Job, earlier: Iterable[Attempt]) -> list[Attempt]:
    """Every attempt of ``job``, oldest first: the ``earlier`` ones its store kept and the
    current one from the job row (unless the job waits for its next attempt)."""
    out = sorted(earlier, key=lambda a: a.attempt)
    kept = {a.attempt for a in out}
    # a job waiting for its next attempt (or cancelled while waiting) has no run of its own
    if job.attempt > 0 and job.started_at is not None and job.attempt not in kept:
        out.append(
            Attempt(
                job.id,
                job.attempt,
                job.state,
                job.started_at,
                job.finished_at,
                job.runtime,
                job.worker_id,
                job.host,
                job.exit_code,
                job.output,
                job.error,
                job.peak_rss,
            )
        )
    return out


@dataclass
class WorkerInfo:
    """A worker's entry in the registry (the seed's "Runspaces" view)."""

    id: str
    host: str
    pid: int
    queues: list[str]
    threads: int
    started_at: float
    heartbeat_at: float
    lease_seconds: float
    stopped_at: float | None = None
    busy: int = 0

    def alive(self, now: float) -> bool:
        return self.stopped_at is None and now - self.heartbeat_at <= self.lease_seconds

    def to_dict(self, now: float) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("started_at", "heartbeat_at", "stopped_at"):
            data[key] = iso(data[key])
        data["alive"] = self.alive(now)
        return data


@dataclass(frozen=True)
class Metric:
    """One named numeric measurement recorded by a job."""

    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    at: float = 0.0
    job_id: str | None = None
    worker_id: str | None = None
    host: str | None = None

    def validated(self) -> Metric:
        name = _text(self.name, "metric name", 120, required=True)
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.:]*$", name):
            raise ValidationError(f"invalid metric name {name!r}")
        value = _number(self.value, "metric value", -math.inf, math.inf)
        labels = {str(k): str(v) for k, v in self.labels.items()}
        json_size_checked(labels, "metric labels")
        return dataclasses.replace(self, name=name, value=value, labels=labels)


#: Columns the results listing can be sorted by (API name → store column).
SORT_COLUMNS = {
    "name": "name",
    "state": "state",
    "status": "state",
    "submitted": "submitted_at",
    "submitted_at": "submitted_at",
    "started": "started_at",
    "started_at": "started_at",
    "finished": "finished_at",
    "finished_at": "finished_at",
    "runtime": "runtime",
    "mode": "mode",
    "host": "host",
    "queue": "queue",
    "owner": "owner",
    "kind": "kind",
}


@dataclass(frozen=True)
class ResultQuery:
    """A filter, sort and page over jobs.

    ``sort`` is a column name from :data:`SORT_COLUMNS`, with a leading ``-`` for descending.
    ``name`` matches job names containing the text (case-insensitive); ``exact_name`` only the
    job name equal to it; ``since``/``until`` the jobs submitted at or after ``since`` and
    before ``until`` (UTC epoch seconds). ``owner`` is one owner, or a tuple of owners any of
    which matches (a user's own jobs and the ``system`` user's:
    :meth:`opsjobs.auth.Auth.owner_scope`). ``reverse`` reads the same order from its other
    end (the exact reverse, NULLs and ties included): a page near the end of a long listing
    is then a short walk from that end instead of a long OFFSET from the start.
    """

    owner: str | tuple[str, ...] | None = None
    states: tuple[JobState, ...] = ()
    name: str | None = None
    queue: str | None = None
    sort: str = "-submitted_at"
    limit: int = 100
    offset: int = 0
    exact_name: str | None = None
    since: float | None = None
    until: float | None = None
    reverse: bool = False

    def validated(self) -> ResultQuery:
        column = self.sort.lstrip("-+")
        if column not in SORT_COLUMNS:
            raise ValidationError(
                f"cannot sort by {column!r} (one of: {', '.join(sorted(SORT_COLUMNS))})"
            )
        return dataclasses.replace(
            self,
            states=tuple(JobState.parse(s) for s in self.states),
            limit=_integer(self.limit, "limit", 0, 10_000),
            offset=_integer(self.offset, "offset", 0, 10**9),
            name=_text(self.name, "name filter", MAX_NAME, required=False) or None,
            exact_name=_text(self.exact_name, "name", MAX_NAME, required=False) or None,
            queue=validate_queue(self.queue) if self.queue else None,
            owner=_owners(self.owner),
            since=None if self.since is None else _number(self.since, "since", 0, 1e11),
            until=None if self.until is None else _number(self.until, "until", 0, 1e11),
        )

    @property
    def sort_column(self) -> str:
        return SORT_COLUMNS[self.sort.lstrip("-+")]

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


def _owners(owner: object) -> str | tuple[str, ...] | None:
    """An owner filter: None, one owner, or a non-empty tuple of distinct owners."""
    if owner is None or isinstance(owner, str):
        return owner
    if isinstance(owner, list | tuple | set | frozenset):
        found = tuple(dict.fromkeys(str(o) for o in owner))
        if not found:
            raise ValidationError("an owner filter needs at least one owner")
        return found[0] if len(found) == 1 else found
    raise ValidationError(f"invalid owner filter {str(owner)[:60]!r}")


@dataclass(frozen=True)
class Stats:
    """The seed's stat cards: Total / Successful / Failed / Avg Runtime."""

    total: int
    succeeded: int
    failed: int
    running: int
    queued: int
    avg_runtime: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def iso(ts: float | None) -> str | None:
    """UTC ISO-8601 text of an epoch timestamp (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def parse_states(values: Iterable[str]) -> tuple[JobState, ...]:
    return tuple(JobState.parse(v) for v in values)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``"30s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` or plain seconds → seconds."""
    value = str(text).strip().lower()
    try:
        if value and value[-1] in _UNITS:
            number = float(value[:-1])
            seconds = number * _UNITS[value[-1]]
        else:
            seconds = float(value)
    except ValueError:
        raise ValidationError(f"invalid duration {text!r} (examples: 90s, 30m, 12h, 7d)") from None
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValidationError(f"invalid duration {text!r}")
    return seconds


def seconds(value: object, what: str) -> float:
    """A number of seconds given as a number or as a duration text (``"10s"``, ``"10m"``)."""
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValidationError:
            raise ValidationError(
                f"{what}: invalid duration {value[:40]!r} (examples: 10s, 10m)"
            ) from None
    return _number(value, what, 0.0, math.inf)
