"""The analyzer as a job: ``opsjobs.analyzer.job:run`` analyses the process that runs it.

Submitted as a ``call`` job in ``thread`` mode to a worker's private queue ``worker:<id>``, it
runs inside that worker's own process (a service with :func:`opsjobs.embed`, ``opsjobs worker``
or the server), and:

* prints the text report (the job's output);
* records the flat figures of :func:`~opsjobs.analyzer.report_metrics` as metrics labelled
  with ``host``, ``worker`` and ``pid``;
* compares with the previous analysis of the same worker (the latest earlier succeeded job
  whose result this function produced) and judges the stored ``rss_mb`` series of that worker
  with :func:`~opsjobs.analyzer.leak_verdict`, recorded as the metric ``leak_suspected`` (1 or 0)
  for the alert rules;
* with ``export_csv``, writes the tables to ``<data>/results/<job id>/``;
* returns a compact JSON result: summary, recommendations, growth, verdict and a snapshot
  (process figures, per-type census, globals) that a later run diffs against.

Store and data folder come from the job context: the worker hands in-process jobs its own
store and settings (``ctx.store``, ``ctx.settings``), so the job reads the very store the worker
claimed it from, whatever ``--store``/``--data`` the worker was started with, and no store URL
(with its password) travels in the job's kwargs. Only when the context has none (a ``process``
mode child) are they built from the environment at this edge, like the CLI does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping
from typing import Any

from opsjobs.analyzer.core import analyze
from opsjobs.analyzer.diff import ReportDiff, diff_reports
from opsjobs.analyzer.leaks import LeakVerdict, leak_verdict
from opsjobs.analyzer.model import Report
from opsjobs.analyzer.recommend import Thresholds, recommend
from opsjobs.analyzer.report import MiB, format_text, report_metrics
from opsjobs.analyzer.report import export_csv as write_csv
from opsjobs.config import Settings
from opsjobs.context import JobContext, context
from opsjobs.errors import OpsJobsError, ValidationError
from opsjobs.model import Job, JobState, ResultQuery
from opsjobs.store import Store, open_store

__all__ = ["JOB_NAME", "RESULT_MARK", "TARGET", "job_kwargs", "run"]

#: The ``call`` target of the analysis job.
TARGET = "opsjobs.analyzer.job:run"
#: Name of analysis jobs submitted by the CLI and the default schedule.
JOB_NAME = "memory-analysis"
#: ``result["analyzer"]`` of every result this job returns: how earlier snapshots are found.
RESULT_MARK = "opsjobs.analyzer"
#: Types kept in the result's snapshot so that the next run's diff sees more than the top.
SNAPSHOT_TYPES = 100
#: Earlier succeeded jobs looked at when searching the previous analysis.
HISTORY_JOBS = 50
MAX_TOP = 1000


def _thresholds(values: Mapping[str, Any] | None) -> Thresholds:
    if not values:
        return Thresholds()
    if not isinstance(values, Mapping):
        raise ValidationError("thresholds must be a JSON object of Thresholds fields")
    defaults = Thresholds()
    known = {f.name for f in dataclasses.fields(Thresholds)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValidationError(
            f"unknown threshold(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValidationError(f"threshold {name} must be a non-negative number")
        clean[name] = int(value) if isinstance(getattr(defaults, name), int) else float(value)
    return Thresholds(**clean)


def job_kwargs(
    *,
    deep: bool = False,
    top_count: int = 20,
    export_csv: bool = False,
    time_budget: float = 10.0,
    thresholds: Mapping[str, Any] | None = None,
    history_hours: float = 24.0,
) -> dict[str, Any]:
    """Validated kwargs for :func:`run`, for the CLI and schedules to submit.

    Raises :class:`~opsjobs.errors.ValidationError` with a readable message on bad values.
    """
    if not isinstance(deep, bool) or not isinstance(export_csv, bool):
        raise ValidationError("deep and export_csv must be true or false")
    if isinstance(top_count, bool) or not isinstance(top_count, int):
        raise ValidationError("top count must be an integer")
    if not 1 <= top_count <= MAX_TOP:
        raise ValidationError(f"top count must be between 1 and {MAX_TOP}")
    for name, value, hi in (("time budget", time_budget, 3600), ("history", history_hours, 8760)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= hi:
            raise ValidationError(f"{name} must be a number above 0 and at most {hi}")
    out: dict[str, Any] = {
        "deep": deep,
        "top_count": top_count,
        "export_csv": export_csv,
        "time_budget": float(time_budget),
        "history_hours": float(history_hours),
    }
    if thresholds:
        _thresholds(thresholds)
        out["thresholds"] = dict(thresholds)
    return out


@contextlib.contextmanager
def _edge(ctx: JobContext) -> Iterator[tuple[Store | None, Settings, str | None]]:
    """The worker's store and settings, or ones built from the environment in a child."""
    settings = ctx.settings or Settings.from_env()
    if ctx.store is not None:
        yield ctx.store, settings, None
        return
    try:
        store = open_store(
            settings.store_url,
            runtime_dir=settings.runtime_dir,
            data_dir=settings.data_dir,
            settings=settings,
        )
    except OpsJobsError as exc:
        yield None, settings, f"history unavailable: {exc}"
        return
    try:
        yield store, settings, None
    finally:
        store.close()


def _is_analysis(job: Job, ctx: JobContext) -> bool:
    result = job.result
    return (
        job.id != ctx.job_id
        and job.worker_id == ctx.worker_id
        and isinstance(result, dict)
        and result.get("analyzer") == RESULT_MARK
        and isinstance(result.get("snapshot"), dict)
    )


def previous_analysis(store: Store, ctx: JobContext) -> Job | None:
    """The latest earlier succeeded analysis job run by the same worker, if any."""
    queries = [
        ResultQuery(queue=f"worker:{ctx.worker_id}", states=(JobState.SUCCEEDED,)),
        ResultQuery(name=JOB_NAME, states=(JobState.SUCCEEDED,)),
    ]
    for query in queries:
        query = dataclasses.replace(query, sort="-finished_at", limit=HISTORY_JOBS).validated()
        for job in store.results(query):
            if _is_analysis(job, ctx):
                return job
    return None


def rss_series(store: Store, worker_id: str | None, since: float) -> list[tuple[float, float]]:
    """``(time, rss_mb)`` points this worker recorded since ``since``, oldest first."""
    return [
        (m.at, m.value) for m in store.metrics("rss_mb", since=since) if m.worker_id == worker_id
    ]


def _snapshot(report: Report) -> dict[str, Any]:
    r = report.to_dict()
    return {
        "pid": r["pid"],
        "analysed_at": r["analysed_at"],
        "top_count": r["top_count"],
        "process": r["process"],
        "heap": {**r["heap"], "types": r["heap"]["types"][:SNAPSHOT_TYPES]},
        "globals": r["globals"],
        "coverage": r["coverage"],
    }


def _record(ctx: JobContext, metrics: Mapping[str, float], pid: int) -> None:
    labels = {"host": ctx.host or "", "worker": ctx.worker_id or "", "pid": pid}
    for name, value in metrics.items():
        ctx.record_metric(name, value, **labels)


def run(
    deep: bool = False,
    top_count: int = 20,
    export_csv: bool = False,
    time_budget: float = 10.0,
    thresholds: Mapping[str, Any] | None = None,
    history_hours: float = 24.0,
) -> dict[str, Any]:
    """Analyse this process as a job; print the report, record metrics, return the summary.

    Parameters
    ----------
    deep, top_count, time_budget
        As for :func:`~opsjobs.analyzer.analyze`.
    export_csv
        Also write the tables as CSV files into ``<data>/results/<job id>/``.
    thresholds
        Overrides of :class:`~opsjobs.analyzer.Thresholds` fields, e.g. ``{"rss_warning": 5e8}``.
    history_hours
        How far back the ``rss_mb`` series for the leak verdict reaches.

    Returns
    -------
    dict
        ``analyzer``, ``pid``, ``host``, ``worker_id``, ``summary`` (the recorded metrics),
        ``recommendations``, ``diff`` (or None on the first run), ``leak``, ``csv`` and
        ``snapshot`` (what the next run compares against).
    """
    kwargs = job_kwargs(
        deep=deep,
        top_count=top_count,
        export_csv=export_csv,
        time_budget=time_budget,
        thresholds=thresholds,
        history_hours=history_hours,
    )
    th = _thresholds(kwargs.get("thresholds"))
    ctx = context()
    report = analyze(deep=deep, top_count=top_count, time_budget=kwargs["time_budget"])
    metrics = report_metrics(report)
    _record(ctx, metrics, report.pid)
    diff: ReportDiff | None = None
    earlier: Mapping[str, Any] | None = None
    notes: list[str] = []
    files: list[str] = []
    with _edge(ctx) as (store, settings, problem):
        series: list[tuple[float, float]] = []
        if store is not None:
            before = previous_analysis(store, ctx)
            if before is not None:
                diff = diff_reports(
                    before.result["snapshot"], report, top_count=top_count, previous=before.id
                )
                if isinstance(before.result.get("diff"), Mapping):
                    earlier = before.result["diff"]  # the one before: growth in a row
            series = rss_series(store, ctx.worker_id, time.time() - 3600 * history_hours)
        else:
            notes.append(str(problem))
        if export_csv:
            folder = settings.results_dir / ctx.job_id
            files = [str(p) for p in write_csv(report, folder)]
    limit = report.process.cgroup_limit
    verdict: LeakVerdict = leak_verdict(series, limit=limit / MiB if limit else None)
    _record(ctx, {"leak_suspected": float(verdict.leaking)}, report.pid)
    recs = recommend(report, th, verdict, diff, earlier)
    text = format_text(report, recs, diff=diff, verdict=verdict)
    print(text + "".join(f"\nNote: {n}\n" for n in notes), end="")
    if files:
        print(f"\nCSV tables: {', '.join(files)}")
    return {
        "analyzer": RESULT_MARK,
        "version": report.version,
        "pid": report.pid,
        "host": ctx.host,
        "worker_id": ctx.worker_id,
        "analysed_at": report.analysed_at,
        "deep": deep,
        "summary": metrics,
        "recommendations": [r.to_dict() for r in recs],
        "diff": None if diff is None else diff.to_dict(),
        "leak": verdict.to_dict(),
        "csv": files,
        "snapshot": _snapshot(report),
    }
