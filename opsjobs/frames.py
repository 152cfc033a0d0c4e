"""pandas frames of a store, shaped for exploration (the :class:`~opsjobs.client.Client`'s
``*_frame`` methods).

Every frame has typed columns: times are tz-aware UTC datetimes, names, states, hosts, workers
and severities are categories, durations are float seconds (``*_s``) and memory is MiB
(``*_mb``). An empty frame still has every column, with its type, so code over it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opsjobs.errors import ConfigError
from opsjobs.model import Attempt, Job, JobState, Metric, attempts_of

if TYPE_CHECKING:
    import pandas

    from opsjobs.alerts.model import Alert, AlertEvent

__all__ = [
    "ALERT_EVENT_COLUMNS",
    "ATTEMPT_COLUMNS",
    "METRIC_COLUMNS",
    "RUN_COLUMNS",
    "alert_events_frame",
    "attempts_frame",
    "metrics_frame",
    "pandas_module",
    "runs_frame",
]

_TIME, _CAT, _FLOAT, _INT, _TEXT = "time", "category", "float64", "Int64", "string"

#: Column → kind of :func:`runs_frame`.
RUN_COLUMNS: dict[str, str] = {
    "id": _TEXT,
    "name": _CAT,
    "state": _CAT,
    "owner": _CAT,
    "queue": _CAT,
    "host": _CAT,
    "worker_id": _CAT,
    "submitted_at": _TIME,
    "started_at": _TIME,
    "finished_at": _TIME,
    "wait_s": _FLOAT,
    "runtime_s": _FLOAT,
    "peak_rss_mb": _FLOAT,
    "attempt": _INT,
    "exit_code": _INT,
    "error": _TEXT,
}
#: Column → kind of :func:`metrics_frame` (label columns follow, as categories).
METRIC_COLUMNS: dict[str, str] = {
    "at": _TIME,
    "name": _CAT,
    "value": _FLOAT,
    "host": _CAT,
    "worker": _CAT,
    "job_id": _TEXT,
}
#: Column → kind of :func:`attempts_frame`.
ATTEMPT_COLUMNS: dict[str, str] = {
    "job_id": _TEXT,
    "name": _CAT,
    "attempt": _INT,
    "retries": _INT,
    "state": _CAT,
    "host": _CAT,
    "worker_id": _CAT,
    "started_at": _TIME,
    "finished_at": _TIME,
    "runtime_s": _FLOAT,
    "error": _TEXT,
}
#: Column → kind of :func:`alert_events_frame`.
ALERT_EVENT_COLUMNS: dict[str, str] = {
    "at": _TIME,
    "kind": _CAT,
    "alert_id": _TEXT,
    "rule_name": _CAT,
    "metric": _CAT,
    "series": _CAT,
    "host": _CAT,
    "severity": _CAT,
    "value": _FLOAT,
    "message": _TEXT,
}

_STATES = [s.value for s in JobState]


def pandas_module() -> Any:
    """pandas, or a :class:`ConfigError` naming the extra that brings it."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ConfigError("frames need pandas: pip install 'opsjobs[pandas]'") from exc
    return pd


def _typed(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str]) -> pandas.DataFrame:
    pd = pandas_module()
    extra = sorted({k for row in rows for k in row if k not in columns})
    frame = pd.DataFrame(list(rows), columns=[*columns, *extra])
    for column in frame.columns:
        kind = columns.get(column, _CAT)
        values = frame[column]
        if kind == _TIME:
            # whole microseconds: the store's precision, without float noise in the nanoseconds
            micros = (values.astype("float64") * 1e6).round()
            frame[column] = pd.to_datetime(micros, unit="us", utc=True)
        elif kind == _CAT:
            frame[column] = values.astype("string").astype("category")
        elif kind == _TEXT:
            frame[column] = values.astype("string")
        else:
            frame[column] = pd.to_numeric(values).astype(kind)
    if "state" in frame and columns.get("state") == _CAT:
        frame["state"] = frame["state"].cat.set_categories(_STATES)
    return frame


def _mb(value: int | None) -> float | None:
    return None if value is None else value / 2**20


def runs_frame(jobs: Iterable[Job]) -> pandas.DataFrame:
    """One row per job, oldest submission first (see :data:`RUN_COLUMNS`)."""
    rows = [
        {
            "id": job.id,
            "name": job.name,
            "state": job.state.value,
            "owner": job.owner,
            "queue": job.queue,
            "host": job.host,
            "worker_id": job.worker_id,
            "submitted_at": job.submitted_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "wait_s": None if job.started_at is None else job.started_at - job.submitted_at,
            "runtime_s": job.runtime,
            "peak_rss_mb": _mb(job.peak_rss),
            "attempt": job.attempt,
            "exit_code": job.exit_code,
            "error": job.error,
        }
        for job in sorted(jobs, key=lambda j: (j.submitted_at, j.id))
    ]
    return _typed(rows, RUN_COLUMNS)


def attempts_frame(
    jobs: Iterable[Job], earlier: Callable[[str], Iterable[Attempt]] | None = None
) -> pandas.DataFrame:
    """One row per attempt, oldest first (see :data:`ATTEMPT_COLUMNS`): each job's current
    attempt from its row and, through ``earlier(job_id)`` (the store's ``attempts``), the
    earlier attempts its retries kept; asked only of jobs past their first attempt."""
    rows = []
    for job in jobs:
        kept = earlier(job.id) if earlier is not None and job.attempt > 1 else ()
        for a in attempts_of(job, kept):
            rows.append(
                {
                    "job_id": job.id,
                    "name": job.name,
                    "attempt": a.attempt,
                    "retries": job.spec.retries,
                    "state": a.state.value,
                    "host": a.host,
                    "worker_id": a.worker_id,
                    "started_at": a.started_at,
                    "finished_at": a.finished_at,
                    "runtime_s": a.runtime,
                    "error": a.error,
                }
            )
    rows.sort(key=lambda r: (r["started_at"] or 0.0, r["job_id"], r["attempt"]))
    return _typed(rows, ATTEMPT_COLUMNS)


def metrics_frame(points: Iterable[Metric]) -> pandas.DataFrame:
    """One row per point, oldest first (see :data:`METRIC_COLUMNS`); each label is a column
    of its own, and ``worker`` is the ``worker`` label or else the recording worker's id."""
    rows = []
    for m in sorted(points, key=lambda p: (p.at, p.name)):
        labels = {k: v for k, v in m.labels.items() if k not in METRIC_COLUMNS}
        worker = m.labels.get("worker") or m.worker_id
        rows.append(
            {
                "at": m.at,
                "name": m.name,
                "value": m.value,
                "host": m.host,
                "worker": worker,
                "job_id": m.job_id,
                **labels,
            }
        )
    return _typed(rows, METRIC_COLUMNS)


def alert_events_frame(events: Iterable[AlertEvent], alerts: Iterable[Alert]) -> pandas.DataFrame:
    """One row per alert event (opened, resolved), oldest first, with its alert's rule,
    metric, series, host and severity (see :data:`ALERT_EVENT_COLUMNS`)."""
    by_id = {a.id: a for a in alerts}
    rows = []
    for e in sorted(events, key=lambda e: (e.at, e.id or 0)):
        alert = by_id.get(e.alert_id)
        rows.append(
            {
                "at": e.at,
                "kind": e.kind,
                "alert_id": e.alert_id,
                "rule_name": alert.rule_name if alert else None,
                "metric": alert.metric if alert else None,
                "series": alert.series if alert else None,
                "host": alert.host if alert else None,
                "severity": alert.severity.value if alert else None,
                "value": e.value,
                "message": e.message,
            }
        )
    return _typed(rows, ALERT_EVENT_COLUMNS)
