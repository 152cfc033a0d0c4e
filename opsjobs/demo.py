"""A small, deterministic sample store for exploration, the dashboard and the notebooks' saved
outputs (``opsjobs demo-data``).

Everything comes from a fixed seed and a fixed base time (:data:`BASE_TIME`), through the
store's own interface (submit, claim, finish, metrics, alerts), so two builds hold the same
jobs, times, outputs, metrics and alert events. Only the job ids differ: the store makes them
(random UUIDs); compare builds with :func:`content`, which names jobs by their order.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsjobs.alerts.model import Alert, AlertEvent, AlertRule, AlertState, Condition, Severity
from opsjobs.model import JobSpec, JobState, Metric, Mode, ResultQuery, WorkerInfo
from opsjobs.store import Store
from opsjobs.store.base import Finish

__all__ = ["BASE_TIME", "SEED", "DemoSummary", "build", "content"]

#: 2026-11-01T00:00:00Z: the sample week starts here, whatever the clock says.
BASE_TIME = 1_793_491_200.0
#: The random seed of every choice the builder makes.
SEED = 19
DAY = 86_400.0

#: host → its workers.
HOSTS = {"web-1": ("w-web-1a", "w-web-1b"), "web-2": ("w-web-2a",), "batch-1": ("w-batch-1a",)}
#: job name → (runs per day, median runtime s, failure chance, owner).
NAMES = {
    "nightly-report": (1, 95.0, 0.15, "alice"),
    "cache-warm": (12, 4.0, 0.05, "bob"),
    "health-check": (24, 0.8, 0.02, "system"),
    "memory-analysis": (6, 12.0, 0.0, "system"),
    "import-orders": (4, 40.0, 0.25, "alice"),
}


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`build` wrote."""

    jobs: int
    metrics: int
    alert_events: int


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _job_outcome(rng: random.Random, name: str, fail: float) -> tuple[JobState, str, str | None]:
    roll = rng.random()
    if roll < fail * 0.7:
        return JobState.FAILED, "", f"{name}: ValueError: upstream answered 503"
    if roll < fail:
        return JobState.TIMED_OUT, "", "timed out"
    return JobState.SUCCEEDED, f"{name} done\n", None


def _run_jobs(store: Store, rng: random.Random, days: int) -> int:
    """Every job of the week, one after another (each submitted, claimed and ended at its own
    sample time), on the worker of a host chosen by the seed."""
    workers = [(host, w) for host, ws in HOSTS.items() for w in ws]
    planned: list[tuple[float, str]] = []
    for name, (per_day, _median, _fail, _owner) in NAMES.items():
        step = DAY / per_day
        for i in range(days * per_day):
            planned.append((round(BASE_TIME + i * step + rng.uniform(0, step / 4), 3), name))
    planned.sort()
    for submitted, name in planned:
        _per_day, median, fail, owner = NAMES[name]
        host, worker = rng.choice(workers)
        spec = JobSpec(
            name=name,
            kind="command",
            payload={"source": f"print('{name}')"},
            mode=Mode.PROCESS,
            queue=worker,
            owner=owner,
            timeout=median * 4,
        ).validated()
        job = store.submit(spec, now=submitted)
        started = round(submitted + rng.uniform(0.05, 3.0), 3)
        claimed = store.claim(worker, host, [worker], now=started, lease=60.0)
        assert claimed is not None and claimed.id == job.id
        state, output, error = _job_outcome(rng, name, fail)
        runtime = round(median * rng.lognormvariate(0, 0.35), 3)
        if state is JobState.TIMED_OUT:
            runtime = median * 4
        finish = Finish(
            state=state,
            output=output,
            error=error,
            exit_code=0 if state is JobState.SUCCEEDED else 1,
            peak_rss=int(rng.uniform(40, 400) * 2**20),
        )
        store.finish(job.id, worker, claimed.attempt, finish, now=started + runtime)
    # a few that never ran: queued for a host that was away, then cancelled
    for i in range(5):
        spec = JobSpec(
            name="cache-warm",
            kind="command",
            payload={"source": "print(1)"},
            queue="web-3",
            owner="bob",
        ).validated()
        at = BASE_TIME + (i + 1) * DAY + 600.0
        job = store.submit(spec, now=at)
        store.request_cancel(job.id, now=at + 600.0)
    return len(planned) + 5


def _metrics(store: Store, rng: random.Random, days: int) -> int:
    """rss_mb per worker every hour (one worker leaks a little each hour), and the cpu of each
    host, as the memory analysis and the health check record them."""
    points: list[Metric] = []
    for host, workers in HOSTS.items():
        for w_index, worker in enumerate(workers):
            base = 180.0 + 60.0 * w_index + rng.uniform(0, 40)
            leak = 1.2 if worker == "w-web-1b" else 0.0
            for hour in range(days * 24):
                at = BASE_TIME + hour * 3600.0 + 30.0
                value = round(base + leak * hour + rng.gauss(0, 4.0), 1)
                labels = {"worker": worker}
                points.append(Metric("rss_mb", value, labels, at, None, worker, host))
        for hour in range(days * 24):
            at = BASE_TIME + hour * 3600.0 + 45.0
            cpu = round(min(100.0, max(0.0, 35 + 25 * rng.random() + rng.gauss(0, 5))), 1)
            points.append(Metric("health.cpu_pct", cpu, {}, at, None, None, host))
    store.record_metrics([p.validated() for p in points])
    return len(points)


def _alerts(store: Store, rng: random.Random) -> int:
    rule = AlertRule(
        name="worker memory high",
        metric="rss_mb",
        condition=Condition.ABOVE,
        threshold=300.0,
        severity=Severity.WARNING,
        id=_uuid(rng),
        created_at=BASE_TIME,
    ).validated()
    store.add_alert_rule(rule)
    events = 0
    for day in (2, 4, 6):
        opened = BASE_TIME + day * DAY + 3 * 3600.0
        alert = Alert(
            id=_uuid(rng),
            rule_id=rule.id,
            rule_name=rule.name,
            metric="rss_mb",
            series="rss_mb{worker=w-web-1b}",
            labels={"worker": "w-web-1b"},
            host="web-1",
            severity=Severity.WARNING,
            state=AlertState.OPEN,
            value=300.0 + day * 10,
            message=f"rss_mb {300 + day * 10} above 300",
            opened_at=opened,
            updated_at=opened,
        )
        store.open_alert(alert, AlertEvent(alert.id, "opened", opened, alert.value, alert.message))
        events += 1
        if day < 6:
            resolved = opened + 2 * 3600.0
            store.resolve_alert(
                alert.id, AlertEvent(alert.id, "resolved", resolved, 290.0, "rss_mb back below 300")
            )
            events += 1
    return events


def build(store: Store, *, days: int = 7) -> DemoSummary:
    """Fill an empty ``store`` with the sample week (raises if it already holds jobs)."""
    if store.count(ResultQuery().validated()):
        from opsjobs.errors import Conflict

        raise Conflict("the store already holds jobs: demo data goes into an empty store")
    rng = random.Random(SEED)
    for host, workers in HOSTS.items():
        for worker in workers:
            store.register_worker(
                WorkerInfo(worker, host, 1000, [worker], 4, BASE_TIME, BASE_TIME, 30.0)
            )
    jobs = _run_jobs(store, rng, days)
    for workers in HOSTS.values():
        for worker in workers:
            store.stop_worker(worker, now=BASE_TIME + days * DAY)
    metrics = _metrics(store, rng, days)
    events = _alerts(store, rng)
    return DemoSummary(jobs=jobs, metrics=metrics, alert_events=events)


def content(store: Store) -> dict[str, Any]:
    """What a store holds, job ids replaced by the jobs' order (for comparing builds)."""
    jobs = store.results(ResultQuery(sort="submitted_at", limit=10_000).validated())
    order = {job.id: f"job-{i}" for i, job in enumerate(jobs)}
    rows = []
    for job in jobs:
        data = job.to_dict()
        data["id"] = order[job.id]
        rows.append(data)
    names = sorted({"rss_mb", "health.cpu_pct"})
    metrics = [
        (m.name, m.value, dict(m.labels), m.at, order.get(m.job_id or ""), m.worker_id, m.host)
        for name in names
        for m in store.metrics(name, limit=100_000)
    ]
    alerts = [(a.id, a.state.value, a.opened_at, a.resolved_at) for a in store.list_alerts()]
    events = [(e.alert_id, e.kind, e.at, e.value) for e in store.alert_events(limit=10_000)]
    return {"jobs": rows, "metrics": metrics, "alerts": alerts, "events": events}


def path_of(target: str | Path) -> Path:
    """The SQLite file of ``target`` (a folder gets ``opsjobs.db`` inside it)."""
    found = Path(target)
    return found / "opsjobs.db" if found.is_dir() or not found.suffix else found
