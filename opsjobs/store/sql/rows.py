"""Mapping between job, worker and metric rows and model objects, shared by the SQL backends."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from opsjobs.errors import UnreadableRow
from opsjobs.model import Attempt, Job, JobSpec, JobState, Metric, Mode, WorkerInfo
from opsjobs.store.base import Finish

__all__ = [
    "UNREADABLE",
    "attempt_from_row",
    "claimed_job",
    "columns",
    "enum_value",
    "finish_params",
    "from_columns",
    "job_params",
    "job_row",
    "json_text",
    "json_value",
    "like_escape",
    "metric_params",
    "new_job_ids",
    "read_job",
    "retry_on_text",
    "row_to_job",
    "row_to_metric",
    "row_to_worker",
    "unreadable_error",
]

#: What building a job from a row that this version cannot read raises (a payload that is not
#: JSON, a mode it does not know, a wrong type): the claim fails that job instead of the worker.
UNREADABLE = (ValueError, KeyError, TypeError)

T = TypeVar("T")


def unreadable_reason(exc: BaseException) -> str:
    return (
        f"its stored row cannot be read ({type(exc).__name__}: {exc}); another opsjobs "
        "version wrote it, or it was changed by hand"
    )


def unreadable_error(exc: BaseException) -> str:
    """The error recorded on a job whose row the worker could not read."""
    return unreadable_reason(exc) + "; it was not run"


def new_job_ids(n: int) -> list[str]:
    """``n`` fresh job ids: random (version 4) UUIDs as ``str(uuid.uuid4())`` makes them, from
    one read of the system's random source for the lot."""
    hexes = os.urandom(16 * n).hex()
    out = []
    for k in range(0, 32 * n, 32):
        h = hexes[k : k + 32]
        # version nibble 4, variant bits 10 (as uuid.uuid4 sets them)
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")
    return out


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def job_row(job_id: str, spec: JobSpec, now: float) -> tuple[Any, ...]:
    """:func:`job_params` as a tuple in the order of the ``insert_job_row`` statements."""
    return (
        job_id,
        spec.name,
        spec.description,
        spec.owner,
        spec.kind,
        spec.payload_json(),
        _MODE_TEXT[spec.mode],
        spec.queue,
        spec.priority,
        spec.timeout,
        spec.retries,
        spec.schedule_id,
        spec.rerun_of,
        spec.retry_delay,
        spec.retry_backoff,
        spec.retry_max,
        _retry_text(spec.retry_on),
        now,
    )


_MODE_TEXT = {m: m.value for m in Mode}
#: retry_on_text of the usual policies (a tuple of states)
_RETRY_ON_TEXT = {
    (JobState.FAILED, JobState.TIMED_OUT): "failed,timed_out",
    (JobState.FAILED,): "failed",
    (JobState.TIMED_OUT,): "timed_out",
    (): "",
}


def _retry_text(states: Any) -> str:
    text = _RETRY_ON_TEXT.get(states) if states.__class__ is tuple else None
    return retry_on_text(states) if text is None else text


def job_params(job_id: str, spec: JobSpec, now: float) -> dict[str, Any]:
    """Bind parameters for inserting a queued job."""
    return {
        "id": job_id,
        "name": spec.name,
        "description": spec.description,
        "owner": spec.owner,
        "kind": spec.kind,
        "payload": spec.payload_json(),
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
        "retry_on": retry_on_text(spec.retry_on),
        "now": now,
    }


def retry_on_text(states: Any) -> str:
    """The ``retry_on`` column: the states' values, comma-separated."""
    return ",".join(s.value for s in states)


def _retry_on(text: str) -> tuple[JobState, ...]:
    found = _RETRY_ON.get(text)
    if found is None:
        found = _RETRY_ON[text] = tuple(_STATES[v] for v in text.split(",") if v)
    return found


#: The init fields of each mapped dataclass (a cache: dataclasses.fields is slow).
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    return found


def columns(obj: Any, **encode: Callable[[Any], Any]) -> dict[str, Any]:
    """The bind parameters of the dataclass instance ``obj``: one per field, named as it;
    ``encode`` turns a field's value into its column's (JSON text, an enum's value)."""
    out = {}
    for name in _fields(type(obj)):
        value = getattr(obj, name)
        out[name] = encode[name](value) if name in encode else value
    return out


def from_columns(cls: type[T], row: Any, **decode: Callable[[Any], Any]) -> T:
    """An instance of the dataclass ``cls`` from the columns of ``row`` named as its fields;
    ``decode`` turns a column's value into its field's (JSON, an enum, a bool)."""
    values = {}
    for name in _fields(cls):
        value = row[name]
        values[name] = decode[name](value) if name in decode else value
    return cls(**values)


def enum_value(member: Enum) -> Any:
    return member.value


def json_text(value: Any) -> str:
    """A JSON column's text (keys sorted: equal values store equal texts)."""
    return json.dumps(value, sort_keys=True)


def json_value(value: Any) -> Any:
    """A JSON column's value, from its text (both stores read JSON columns as text: see
    postgres._json_as_text); a value already decoded is passed through."""
    return _json(value)


def _json(value: Any) -> Any:
    if value is None or not isinstance(value, str | bytes):
        return value  # already decoded (an object, a list, a number...)
    return json.loads(value)


# Enum(value) goes through EnumMeta.__call__, slow on the claim path: look the members up.
_MODES = {m.value: m for m in Mode}
_STATES = {s.value: s for s in JobState}
#: retry_on column texts already parsed (a handful of distinct values).
_RETRY_ON: dict[str, tuple[JobState, ...]] = {}


def row_to_job(row: Any) -> Job:
    """The job of a ``jobs`` row; :class:`UnreadableRow` (one clear line) if this version
    cannot read it."""
    try:
        return read_job(row)
    except UNREADABLE as exc:
        raise UnreadableRow(f"job {row['id']}: {unreadable_reason(exc)}") from None


def read_job(row: Any) -> Job:
    """:func:`row_to_job` that raises what the row's parsing raised (see ``UNREADABLE``)."""
    spec = JobSpec(
        name=row["name"],
        kind=row["kind"],
        payload=_json(row["payload"]) or {},
        mode=_MODES[row["mode"]],
        queue=row["queue"],
        description=row["description"],
        owner=row["owner"],
        priority=row["priority"],
        timeout=row["timeout"],
        retries=row["retries"],
        schedule_id=row["schedule_id"],
        rerun_of=row["rerun_of"],
        retry_delay=row["retry_delay"],
        retry_backoff=row["retry_backoff"],
        retry_max=row["retry_max"],
        retry_on=_retry_on(row["retry_on"]),
    )
    return Job(
        id=str(row["id"]),
        spec=spec,
        state=_STATES[row["state"]],
        submitted_at=row["submitted_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        runtime=row["runtime"],
        worker_id=row["worker_id"],
        host=row["host"],
        attempt=row["attempt"],
        lease_until=row["lease_until"],
        cancel_requested=bool(row["cancel_requested"]),
        exit_code=row["exit_code"],
        output=row["output"] or "",
        result=_json(row["result"]),
        error=row["error"],
        peak_rss=row["peak_rss"],
        run_after=row["run_after"],
    )


_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in its __init__


def _loads(text: str) -> Any:
    """``json.loads`` for the compact JSON the store writes, through the C scanner directly (the
    two Python frames and the whitespace regex of ``loads`` were a third of building a claimed
    job); anything else goes through ``json.loads``."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # raises the usual JSONDecodeError
    return value if end == len(text) else json.loads(text)


def claimed_job(row: Any, worker_id: str, host: str, now: float, lease_until: float) -> Job:
    """The job a worker just claimed, from a ``claim_pick`` row (``rowid, id, name,
    description, owner, kind, payload, mode, queue, priority, timeout, retries, schedule_id,
    submitted_at, attempt, cancel_requested, error, retry_delay, retry_backoff, retry_max,
    retry_on, rerun_of``; the attempt before the claim; PostgreSQL's ``finish_and_claim_many``
    rows have the same layout) and what the claim set."""
    payload = row[6]
    spec = JobSpec(
        row[2],
        row[5],
        (_loads(payload) if isinstance(payload, str) else payload) or {},
        _MODES[row[7]],
        row[8],
        row[3],
        row[4],
        row[9],
        row[10],
        row[11],
        row[12],
        row[21],
        row[17],
        row[18],
        row[19],
        _retry_on(row[20]),
    )
    # positional: id, spec, state, submitted_at, started_at, finished_at, runtime, worker_id,
    # host, attempt, lease_until, cancel_requested, exit_code, output, result, error
    return Job(
        row[1],
        spec,
        JobState.RUNNING,
        row[13],
        now,
        None,
        None,
        worker_id,
        host,
        row[14] + 1,
        lease_until,
        bool(row[15]),
        None,
        "",
        None,
        row[16],
    )


def worker_params(info: WorkerInfo) -> dict[str, Any]:
    return columns(info, queues=lambda q: json.dumps(list(q)))


def row_to_worker(row: Any) -> WorkerInfo:
    return from_columns(WorkerInfo, row, queues=lambda q: list(_json(q)))


def metric_params(metric: Metric) -> dict[str, Any]:
    return columns(metric, labels=lambda labels: json_text(dict(labels)))


def row_to_metric(row: Any) -> Metric:
    return from_columns(Metric, row, labels=lambda labels: _json(labels) or {})


def attempt_from_row(row: Any) -> Attempt:
    return from_columns(Attempt, row, job_id=str, state=lambda v: _STATES[v])


def finish_params(
    job_id: str, worker_id: str, attempt: int, outcome: Finish, now: float
) -> dict[str, Any]:
    """The parameters of the ``finish`` statements."""
    return {
        "id": job_id,
        "worker_id": worker_id,
        "attempt": attempt,
        "state": outcome.state.value,
        "now": now,
        "output": outcome.output,
        "result": outcome.result_json,
        "error": outcome.error,
        "exit_code": outcome.exit_code,
        "peak_rss": outcome.peak_rss,
    }


def like_escape(text: str) -> str:
    """``text`` for a ``LIKE … ESCAPE '\\'`` pattern: its wildcards match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
