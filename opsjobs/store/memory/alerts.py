"""Alert rules, alerts and events of the in-memory store."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Mapping
from typing import Any

from opsjobs.alerts.model import Alert, AlertEvent, AlertRule, AlertState
from opsjobs.errors import Conflict, NotFound
from opsjobs.model import Job, Metric
from opsjobs.store.alerts import AlertStore

__all__ = ["MemoryAlerts"]


class _Tables:
    def __init__(self) -> None:
        self.rules: dict[str, AlertRule] = {}
        self.alerts: dict[str, Alert] = {}
        self.events: list[AlertEvent] = []
        self.ids = itertools.count(1)


class MemoryAlerts(AlertStore):
    """The alerts domain in dictionaries, guarded by the store's lock."""

    _lock: threading.RLock
    _metrics: list[Metric]
    _jobs: dict[str, Job]

    def _alert_tables(self) -> _Tables:
        # Created lazily so the host class's __init__ needs no edit.
        tables: Any = self.__dict__.get("_alerting")
        if tables is None:
            tables = self.__dict__.setdefault("_alerting", _Tables())
        assert isinstance(tables, _Tables)
        return tables

    # -- rules ----------------------------------------------------------------------------
    def add_alert_rule(self, rule: AlertRule) -> None:
        with self._lock:
            t = self._alert_tables()
            if rule.id in t.rules or any(r.name == rule.name for r in t.rules.values()):
                raise Conflict(f"an alert rule named {rule.name!r} exists")
            t.rules[rule.id] = rule

    def get_alert_rule(self, name_or_id: str) -> AlertRule:
        with self._lock:
            t = self._alert_tables()
            found = t.rules.get(name_or_id) or next(
                (r for r in t.rules.values() if r.name == name_or_id), None
            )
        if found is None:
            raise NotFound(f"no alert rule {name_or_id!r}")
        return found

    def list_alert_rules(self) -> list[AlertRule]:
        with self._lock:
            return sorted(self._alert_tables().rules.values(), key=lambda r: r.name)

    def remove_alert_rule(self, rule_id: str) -> None:
        with self._lock:
            if self._alert_tables().rules.pop(rule_id, None) is None:
                raise NotFound(f"no alert rule with id {rule_id}")

    # -- alerts ---------------------------------------------------------------------------
    def _add_event(self, t: _Tables, event: AlertEvent) -> None:
        t.events.append(dataclasses.replace(event, id=next(t.ids)))

    def open_alert(self, alert: Alert, event: AlertEvent) -> bool:
        with self._lock:
            t = self._alert_tables()
            if self.find_open_alert(alert.rule_id, alert.series) is not None:
                return False
            if alert.id in t.alerts:
                raise Conflict(f"alert {alert.id} exists")
            t.alerts[alert.id] = dataclasses.replace(alert, state=AlertState.OPEN)
            self._add_event(t, event)
            return True

    def find_open_alert(self, rule_id: str, series: str) -> Alert | None:
        with self._lock:
            return next(
                (
                    a
                    for a in self._alert_tables().alerts.values()
                    if a.is_open and a.rule_id == rule_id and a.series == series
                ),
                None,
            )

    def refresh_alert(self, alert_id: str, value: float, *, now: float) -> None:
        with self._lock:
            t = self._alert_tables()
            alert = t.alerts.get(alert_id)
            if alert is not None and alert.is_open:
                t.alerts[alert_id] = dataclasses.replace(alert, value=value, updated_at=now)

    def resolve_alert(self, alert_id: str, event: AlertEvent) -> Alert | None:
        with self._lock:
            t = self._alert_tables()
            alert = t.alerts.get(alert_id)
            if alert is None or not alert.is_open:
                return None
            alert = t.alerts[alert_id] = dataclasses.replace(
                alert,
                state=AlertState.RESOLVED,
                value=event.value,
                updated_at=event.at,
                resolved_at=event.at,
            )
            self._add_event(t, event)
            return alert

    def purge_alerts(self, resolved_before: float) -> int:
        with self._lock:
            t = self._alert_tables()
            gone = {
                a.id
                for a in t.alerts.values()
                if not a.is_open and a.resolved_at is not None and a.resolved_at < resolved_before
            }
            for alert_id in gone:
                del t.alerts[alert_id]
            t.events[:] = [e for e in t.events if e.alert_id not in gone]
        return len(gone)

    def list_alerts(self, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
        with self._lock:
            found = [a for a in self._alert_tables().alerts.values() if a.is_open or not open_only]
        found.sort(key=lambda a: (a.opened_at, a.id), reverse=True)
        return found[:limit]

    def alert_events(self, *, alert_id: str | None = None, limit: int = 100) -> list[AlertEvent]:
        with self._lock:
            found = [
                e for e in self._alert_tables().events if alert_id is None or e.alert_id == alert_id
            ]
        return found[::-1][:limit]

    # -- metric reads ---------------------------------------------------------------------
    def series_points(
        self,
        name: str,
        labels: Mapping[str, str],
        host: str | None,
        *,
        since: float,
        limit: int,
    ) -> list[Metric]:
        wanted = dict(labels)
        with self._lock:
            found = [
                m
                for m in self._metrics
                if m.name == name and m.at >= since and m.host == host and dict(m.labels) == wanted
            ]
        found.sort(key=lambda m: m.at)
        return found[-limit:] if limit else []

    def latest_metrics(self, *, since: float) -> list[Metric]:
        latest: dict[tuple[str, str, str | None], Metric] = {}
        with self._lock:
            for m in self._metrics:
                if m.at < since:
                    continue
                key = (m.name, repr(sorted(m.labels.items())), m.host)
                if key not in latest or m.at >= latest[key].at:
                    latest[key] = m
        return sorted(latest.values(), key=lambda m: (m.name, m.at))

    def job_counts(self) -> list[tuple[str, str, int]]:
        counts: dict[tuple[str, str], int] = {}
        with self._lock:
            for job in self._jobs.values():
                key = (job.queue, job.state.value)
                counts[key] = counts.get(key, 0) + 1
        return [(q, s, n) for (q, s), n in sorted(counts.items())]
