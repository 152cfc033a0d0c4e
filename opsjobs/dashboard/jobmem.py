"""The memory a job's detail view draws: what the store records of the process memory (RSS)
of one run, no widgets.

* A memory-analysis job: the ``rss_mb`` trend of the process it analysed (its host / worker)
  over the week up to that analysis, the analysis itself marked.
* A job that recorded ``rss_mb`` points itself: those points over its run, its peak marked.
* Any other job whose peak RSS the worker measured (``process`` and ``notebook`` jobs): the
  peak of each run of its name up to this one, this run marked.

Nothing is drawn for a job that has none of these.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsjobs.client import Client
from opsjobs.model import Job

__all__ = ["TREND_SPAN", "JobMemory", "job_memory"]

#: How far back the trend before a memory analysis reaches.
TREND_SPAN = 7 * 86400.0
#: Earlier runs of a name whose peak RSS is drawn beside this run's.
PEAK_RUNS = 100
MiB = float(2**20)


@dataclass(frozen=True)
class JobMemory:
    """One chart of a job's memory: series of (time, MB), oldest first, and the marked point."""

    title: str
    #: series label → [(epoch seconds, MB)].
    series: dict[str, list[tuple[float, float]]]
    #: (time, MB, label) of this analysis / this run.
    mark: tuple[float, float, str] | None
    #: The peak RSS of the run in MB, when the worker measured it.
    peak_mb: float | None = None
    #: The narrowest time axis, seconds (a run of a few seconds: a minute).
    min_span: float = 3600.0


def _label(host: str | None, worker: str | None) -> str:
    return f"{host or '?'} / {(worker or '?')[:8]}"


def job_memory(
    client: Client, job: Job, *, owner: str | tuple[str, ...] | None
) -> JobMemory | None:
    """What :mod:`opsjobs.dashboard.charts` draws for ``job`` (one the user may see), or None.
    ``owner``: the user's scope for the earlier runs of the name (None: everyone's)."""
    from opsjobs.analyzer.job import JOB_NAME, RESULT_MARK

    store = client.store
    peak = None if job.peak_rss is None else job.peak_rss / MiB
    own = store.metrics("rss_mb", job_id=job.id, limit=10_000)
    analysis = (
        job.name == JOB_NAME
        and isinstance(job.result, dict)
        and job.result.get("analyzer") == RESULT_MARK
    )
    if analysis and own:
        last = own[-1]
        label = _label(last.labels.get("host") or last.host, last.labels.get("worker"))
        since = last.at - TREND_SPAN
        trend = [
            (m.at, m.value)
            for m in store.metrics("rss_mb", since=since, limit=10_000)
            if m.at <= last.at
            and _label(m.labels.get("host") or m.host, m.labels.get("worker") or m.worker_id)
            == label
        ]
        return JobMemory(
            f"RSS of {label}, the week up to this analysis",
            {f"rss {label}": trend or [(last.at, last.value)]},
            (last.at, last.value, "this analysis"),
            peak,
        )
    if own:
        points = [(m.at, m.value) for m in own]
        top = max(points, key=lambda p: p[1])
        return JobMemory(
            "RSS this run recorded", {"rss": points}, (top[0], top[1], "highest"), peak, 60.0
        )
    if peak is None:
        return None
    earlier = client.results(
        limit=PEAK_RUNS - 1,
        exact_name=job.name,
        owner=owner,
        until=job.submitted_at,
        sort="-submitted_at",
    )
    points = [
        (j.submitted_at, j.peak_rss / MiB) for j in reversed(earlier) if j.peak_rss is not None
    ]
    points.append((job.submitted_at, peak))
    return JobMemory(
        f"Peak RSS per run of {job.name}, up to this one",
        {"peak rss": points},
        (job.submitted_at, peak, "this run"),
        peak,
    )
