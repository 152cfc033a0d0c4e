"""Mapping between store rows and model objects, shared by the SQL backends."""

from __future__ import annotations

import json
from typing import Any

from ..errors import UnreadableRow
from ..model import Job, JobSpec, JobState, Metric, Mode, WorkerInfo

__all__ = [
    "UNREADABLE",
    "claimed_job",
    "job_params",
    "metric_params",
    "read_job",
    "row_to_job",
    "row_to_metric",
    "row_to_worker",
    "unreadable_error",
]

#: What building a job from a row that this version cannot read raises (a payload that is not
#: JSON, a mode it does not know, a wrong type): the claim fails that job instead of the worker.
UNREADABLE = (ValueError, KeyError, TypeError)


def unreadable_reason(exc: BaseException) -> str:
    return (
        f"its stored row cannot be read ({type(exc).__name__}: {exc}); another opsjobs "
        "version wrote it, or it was changed by hand"
    )


def unreadable_error(exc: BaseException) -> str:
    """The error recorded on a job whose row the worker could not read."""
    return unreadable_reason(exc) + "; it was not run"


def job_params(job_id: str, spec: JobSpec, now: float) -> dict[str, Any]:
    """Bind parameters for inserting a queued job."""
    return {
        "id": job_id,
        "name": spec.name,
        "description": spec.description,
        "owner": spec.owner,
        "kind": spec.kind,
        "payload": json.dumps(dict(spec.payload), separators=(",", ":")),
        "mode": spec.mode.value,
        "queue": spec.queue,
        "priority": spec.priority,
        "timeout": spec.timeout,
        "retries": spec.retries,
        "schedule_id": spec.schedule_id,
        "rerun_of": spec.rerun_of,
        "now": now,
    }


def _json(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value  # PostgreSQL's jsonb arrives decoded
    return json.loads(value)


# Enum(value) goes through EnumMeta.__call__, slow on the claim path: look the members up.
_MODES = {m.value: m for m in Mode}
_STATES = {s.value: s for s in JobState}


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
    submitted_at, attempt, cancel_requested, error``) and what the claim set."""
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
    return {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "queues": json.dumps(list(info.queues)),
        "threads": info.threads,
        "started_at": info.started_at,
        "heartbeat_at": info.heartbeat_at,
        "lease_seconds": info.lease_seconds,
    }


def row_to_worker(row: Any) -> WorkerInfo:
    return WorkerInfo(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        queues=list(_json(row["queues"])),
        threads=row["threads"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        lease_seconds=row["lease_seconds"],
        stopped_at=row["stopped_at"],
        busy=row["busy"],
    )


def metric_params(metric: Metric) -> dict[str, Any]:
    return {
        "name": metric.name,
        "value": metric.value,
        "labels": json.dumps(dict(metric.labels), sort_keys=True),
        "at": metric.at,
        "job_id": metric.job_id,
        "worker_id": metric.worker_id,
        "host": metric.host,
    }


def row_to_metric(row: Any) -> Metric:
    return Metric(
        name=row["name"],
        value=row["value"],
        labels=_json(row["labels"]) or {},
        at=row["at"],
        job_id=row["job_id"],
        worker_id=row["worker_id"],
        host=row["host"],
    )
