"""The alert evaluator: rules are judged when metrics are recorded, off the recording thread.

A worker hands every metric it records to :meth:`AlertEvaluator.observe`, which only queues it
(a full queue drops the metric from evaluation with a warning — it is stored regardless) and
returns. One background thread, started at the first metric, drains the queue in batches: it
reads the enabled rules once per batch, judges each (rule, series) pair once on the series'
recent points in the store (:func:`~opsjobs.alerts.verdicts.judge`) and moves its alert:

* no open alert and the rule fires → open one (``opened`` event);
* an open alert and the condition no longer holds → resolve it (``resolved`` event);
* an open alert that still holds → refresh its value.

Opening and resolving are atomic in the store (at most one open alert per rule and series, a
resolve only of an open alert), so several workers judging the same series store each change
once, and only the one that stored it posts it to the webhooks.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from opsjobs.alerts.model import Alert, AlertEvent, AlertRule, AlertState, series_key, series_labels
from opsjobs.alerts.verdicts import MAX_POINTS, judge, lookback
from opsjobs.alerts.webhooks import WebhookSender, alert_payload
from opsjobs.errors import OpsJobsError
from opsjobs.model import Metric

if TYPE_CHECKING:
    from opsjobs.config import Settings
    from opsjobs.store import Store

__all__ = ["AlertEvaluator", "Change"]

log = logging.getLogger("opsjobs.alerts")

Change = tuple[Alert, AlertEvent]
_STOP = object()


def _labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "no labels"


def _value_text(value: float | None) -> str:
    return "no value" if value is None else f"{value:.4g}"


class AlertEvaluator:
    """Judges alert rules on recorded metrics, on a background thread.

    Parameters
    ----------
    store
        Rules, alerts, events and the metric points they are judged on.
    settings
        Its ``webhooks`` receive every change (unless ``sender`` is given).
    sender
        Posts the changes (default: a :class:`~opsjobs.alerts.webhooks.WebhookSender` on the
        settings' URLs).
    max_queue
        Metrics waiting for evaluation before further ones are dropped from it.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        *,
        sender: WebhookSender | None = None,
        max_queue: int = 10_000,
    ) -> None:
        self.store = store
        urls = settings.webhooks if settings is not None else ()
        self.sender = sender if sender is not None else WebhookSender(urls)
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._dropped = 0

    # -- the recording side -------------------------------------------------------------------
    def observe(self, metric: Metric) -> None:
        """Queue a just-recorded metric for evaluation; never blocks."""
        if self._closed:
            return
        self._start()
        try:
            self._queue.put_nowait(metric)
        except queue.Full:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log.warning("alert evaluation is behind: %d metrics not judged", self._dropped)

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="opsjobs-alerts", daemon=True
                )
                self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued metric was judged (True) or ``timeout`` passed."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, name="opsjobs-alerts-flush", daemon=True).start()
        return done.wait(timeout)

    def close(self, grace: float = 5.0) -> None:
        """Judge what is queued (within ``grace``), deliver pending webhooks, stop."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self.flush(grace)
            with contextlib.suppress(queue.Full):
                self._queue.put(_STOP, timeout=grace)
            thread.join(grace)
        self.sender.close(grace)

    # -- the evaluating side ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 1000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            metrics = [m for m in batch if isinstance(m, Metric)]
            try:
                self.evaluate(metrics)
            except Exception:  # the evaluator must outlive a bad rule or a store hiccup
                log.exception("alert evaluation failed")
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    def evaluate(self, metrics: Iterable[Metric]) -> list[Change]:
        """Judge the rules on ``metrics`` now (on this thread); returns the changes stored,
        which are also sent to the webhooks."""
        metrics = list(metrics)
        if not metrics:
            return []
        try:
            rules = [r for r in self.store.list_alert_rules() if r.enabled]
        except OpsJobsError as exc:
            log.warning("cannot read alert rules: %s", exc)
            return []
        latest: dict[tuple[str, str], tuple[AlertRule, Metric]] = {}
        for metric in metrics:
            for rule in rules:
                if rule.matches(metric):
                    key = (rule.id, series_key(metric))
                    seen = latest.get(key)
                    if seen is None or metric.at >= seen[1].at:
                        latest[key] = (rule, metric)
        changes: list[Change] = []
        for rule, metric in latest.values():
            try:
                change = self._judge(rule, metric)
            except OpsJobsError as exc:
                log.warning("alert rule %s not judged: %s", rule.name, exc)
                continue
            if change is not None:
                changes.append(change)
                self.sender.send(alert_payload(*change))
        return changes

    def _judge(self, rule: AlertRule, metric: Metric) -> Change | None:
        points = self.store.series_points(
            metric.name,
            metric.labels,
            metric.host,
            since=metric.at - lookback(rule),
            limit=MAX_POINTS,
        )
        if not points:
            points = [metric]
        newest = points[-1]
        verdict = judge(rule, points)
        key = series_key(metric)
        current = self.store.find_open_alert(rule.id, key)
        labels = series_labels(metric)
        if current is None and verdict.fires:
            message = (
                f"{rule.name}: {rule.condition_text} — {_value_text(verdict.value)} "
                f"({_labels_text(labels)})"
            )
            alert = Alert(
                id=str(uuid.uuid4()),
                rule_id=rule.id,
                rule_name=rule.name,
                metric=rule.metric,
                series=key,
                labels=dict(metric.labels),
                host=metric.host,
                severity=rule.severity,
                state=AlertState.OPEN,
                value=verdict.value,
                message=message,
                opened_at=newest.at,
                updated_at=newest.at,
            )
            event = AlertEvent(alert.id, "opened", newest.at, verdict.value, message)
            return (alert, event) if self.store.open_alert(alert, event) else None
        if current is not None and not verdict.holds:
            message = (
                f"{rule.name} resolved: {rule.metric} now {_value_text(verdict.value)} "
                f"({_labels_text(labels)})"
            )
            event = AlertEvent(current.id, "resolved", newest.at, verdict.value, message)
            resolved = self.store.resolve_alert(current.id, event)
            return (resolved, event) if resolved is not None else None
        if current is not None and verdict.value is not None:
            self.store.refresh_alert(current.id, verdict.value, now=newest.at)
        return None


def resolve_rule_alerts(store: Store, rule: AlertRule, *, now: float) -> Sequence[Change]:
    """Resolve the open alerts of a rule being removed (events stored, nothing posted)."""
    changes: list[Change] = []
    for alert in store.list_alerts(open_only=True, limit=10_000):
        if alert.rule_id != rule.id:
            continue
        message = f"{rule.name} resolved: the rule was removed"
        event = AlertEvent(alert.id, "resolved", now, alert.value, message)
        resolved = store.resolve_alert(alert.id, event)
        if resolved is not None:
            changes.append((resolved, event))
    return changes
