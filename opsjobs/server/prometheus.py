"""Prometheus text exposition at ``/opsjobs/metrics``, built from the store at scrape time.

:class:`StoreCollector` is a ``prometheus_client`` custom collector: each scrape registers it in
a fresh :class:`~prometheus_client.CollectorRegistry` (no global registry, nothing kept between
scrapes) and reads the store once per family:

===================================  ===========================================================
family                               samples
===================================  ===========================================================
``opsjobs_metric_<name>``            latest value of every series of a recorded metric (seen in
                                     the last day), labelled with its labels and ``host``
``opsjobs_jobs``                     jobs by ``state`` (every state, zeros included)
``opsjobs_queue_depth``              queued jobs by ``queue``
``opsjobs_worker_up``                1 alive / 0 dead, for each worker not stopped
                                     (``worker_id``, ``host``, ``pid``)
``opsjobs_workers``                  workers by ``state`` (alive, dead, stopped)
``opsjobs_scheduler_lag_seconds``    now - the oldest due ``next_fire_at`` of enabled schedules
                                     (0 when nothing is due)
``opsjobs_alerts_open``              open alerts by ``severity``
===================================  ===========================================================

The route takes the same bearer keys as the REST API; any authenticated user may scrape it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from opsjobs.alerts import Severity, alert_summary
from opsjobs.alerts.model import series_labels
from opsjobs.model import JobState
from opsjobs.server.handlers import ApiHandler, keyed
from opsjobs.server.openapi import PROMETHEUS
from opsjobs.store import Store

__all__ = ["PrometheusHandler", "StoreCollector", "exposition", "prometheus_routes"]

#: Recorded metrics older than this (seconds) are not exposed.
FRESH_FOR = 86_400.0
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def _name(text: str) -> str:
    name = _INVALID.sub("_", text)
    return name if re.match(r"[a-zA-Z_]", name) else f"_{name}"


def _label(text: str) -> str:
    name = _name(text)
    return f"label_{name}" if name.startswith("__") else name


class StoreCollector:
    """Produces the opsjobs families from ``store`` when collected (see the module docs)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        yield from self._recorded(now)
        yield from self._jobs()
        yield from self._workers(now)
        lag = GaugeMetricFamily(
            "opsjobs_scheduler_lag_seconds",
            "Seconds since the oldest due fire time of the enabled schedules (0: none due).",
        )
        due = self.store.next_due_at()
        lag.add_metric([], max(now - due, 0.0) if due is not None else 0.0)
        yield lag
        alerts = GaugeMetricFamily(
            "opsjobs_alerts_open", "Open alerts by severity.", labels=["severity"]
        )
        summary = alert_summary(self.store)
        for severity in Severity:
            alerts.add_metric([severity.value], summary[severity.value])
        yield alerts

    def _recorded(self, now: float) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for point in self.store.latest_metrics(since=now - FRESH_FOR):
            name = f"opsjobs_metric_{_name(point.name)}"
            family = families.get(name)
            if family is None:
                family = families[name] = Metric(
                    name, f"Latest recorded value of the metric {point.name}.", "gauge"
                )
            labels = {_label(k): v for k, v in sorted(series_labels(point).items())}
            family.add_sample(name, labels, point.value)
        yield from families.values()

    def _jobs(self) -> Iterator[Metric]:
        by_state = dict.fromkeys((s.value for s in JobState), 0)
        depth: dict[str, int] = {}
        for queue, state, count in self.store.job_counts():
            by_state[state] = by_state.get(state, 0) + count
            if state == JobState.QUEUED.value:
                depth[queue] = depth.get(queue, 0) + count
        jobs = GaugeMetricFamily("opsjobs_jobs", "Jobs in the store by state.", labels=["state"])
        for state, count in by_state.items():
            jobs.add_metric([state], count)
        yield jobs
        queues = GaugeMetricFamily("opsjobs_queue_depth", "Queued jobs by queue.", labels=["queue"])
        for queue, count in sorted(depth.items()):
            queues.add_metric([queue], count)
        yield queues

    def _workers(self, now: float) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "opsjobs_worker_up",
            "1 when a (not stopped) worker's heartbeat is within its lease, else 0.",
            labels=["worker_id", "host", "pid"],
        )
        states = {"alive": 0, "dead": 0, "stopped": 0}
        for info in self.store.workers():
            if info.stopped_at is not None:
                states["stopped"] += 1
                continue
            alive = info.alive(now)
            states["alive" if alive else "dead"] += 1
            up.add_metric([info.id, info.host, str(info.pid)], 1.0 if alive else 0.0)
        yield up
        workers = GaugeMetricFamily(
            "opsjobs_workers", "Workers in the registry by state.", labels=["state"]
        )
        for state, count in states.items():
            workers.add_metric([state], count)
        yield workers


def exposition(store: Store) -> bytes:
    """The text exposition of ``store`` now, from a registry made for this scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return generate_latest(registry)


@keyed
class PrometheusHandler(ApiHandler):
    async def get(self) -> None:
        body = await self.call(exposition, self.service.client.store)
        self.finish(body, set_content_type=CONTENT_TYPE_LATEST)


def prometheus_routes() -> dict[str, type[ApiHandler]]:
    """OpenAPI path → handler of the exposition route."""
    return {PROMETHEUS: PrometheusHandler}
