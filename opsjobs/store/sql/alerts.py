"""Alert rules, alerts and events of the SQL backends, written once over the :class:`~.db.Db`
port, and the metric reads of alerting."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opsjobs.alerts.model import Alert, AlertEvent, AlertRule, AlertState, Condition, Severity
from opsjobs.errors import NotFound
from opsjobs.model import Metric
from opsjobs.store.alerts import AlertStore
from opsjobs.store.sql.db import Db, Tx
from opsjobs.store.sql.rows import row_to_metric

__all__ = [
    "SqlAlerts",
    "alert_params",
    "event_params",
    "labels_text",
    "row_to_alert",
    "row_to_event",
    "row_to_rule",
    "rule_params",
]


class SqlAlerts(AlertStore):
    """The alerts domain of a SQL store (a mixin: the store sets ``_db``)."""

    _db: Db

    # -- rules ----------------------------------------------------------------------------
    def add_alert_rule(self, rule: AlertRule) -> None:
        params = rule_params(rule)
        self._db.transaction(
            f"alert rule {rule.name}", lambda tx: tx.run("alerts_insert_rule", params)
        )

    def get_alert_rule(self, name_or_id: str) -> AlertRule:
        rows = self._db.read("get alert rule", "alerts_get_rule", {"key": name_or_id})
        if not rows:
            raise NotFound(f"no alert rule {name_or_id!r}")
        return row_to_rule(rows[0])

    def list_alert_rules(self) -> list[AlertRule]:
        return [row_to_rule(r) for r in self._db.read("list alert rules", "alerts_list_rules")]

    def remove_alert_rule(self, rule_id: str) -> None:
        params = {"id": rule_id}
        n = self._db.transaction(
            "remove alert rule", lambda tx: tx.run("alerts_delete_rule", params).rowcount
        )
        if not n:
            raise NotFound(f"no alert rule with id {rule_id}")

    # -- alerts ---------------------------------------------------------------------------
    def open_alert(self, alert: Alert, event: AlertEvent) -> bool:
        def insert(tx: Tx) -> bool:
            if not tx.run("alerts_insert_alert", alert_params(alert)).rowcount:
                return False
            tx.run("alerts_insert_event", event_params(event))
            return True

        return self._db.transaction(f"opening alert {alert.rule_name}", insert)

    def find_open_alert(self, rule_id: str, series: str) -> Alert | None:
        params = {"rule_id": rule_id, "series": series}
        rows = self._db.read("find open alert", "alerts_find_open", params)
        return row_to_alert(rows[0]) if rows else None

    def refresh_alert(self, alert_id: str, value: float, *, now: float) -> None:
        params = {"id": alert_id, "value": value, "now": now}
        self._db.transaction("refresh alert", lambda tx: tx.run("alerts_refresh", params))

    def resolve_alert(self, alert_id: str, event: AlertEvent) -> Alert | None:
        params = event_params(event)

        def resolve(tx: Tx) -> Any:
            row = tx.run("alerts_resolve", params).fetchone()
            if row is not None:
                tx.run("alerts_insert_event", params)
            return row

        row = self._db.transaction(f"resolving alert {alert_id}", resolve)
        return row_to_alert(row) if row is not None else None

    def list_alerts(self, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
        name = "alerts_list_open" if open_only else "alerts_list"
        return [row_to_alert(r) for r in self._db.read("list alerts", name, {"limit": limit})]

    def purge_alerts(self, resolved_before: float) -> int:
        params = {"before": resolved_before}

        def purge(tx: Tx) -> int:
            tx.run("alerts_purge_events", params)
            return int(tx.run("alerts_purge", params).rowcount)

        return self._db.transaction("purging alerts", purge)

    def alert_events(self, *, alert_id: str | None = None, limit: int = 100) -> list[AlertEvent]:
        if alert_id is None:
            rows = self._db.read("alert events", "alerts_events", {"limit": limit})
        else:
            params = {"alert_id": alert_id, "limit": limit}
            rows = self._db.read("alert events", "alerts_events_of", params)
        return [row_to_event(r) for r in rows]

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
        params = {
            "name": name,
            "labels": labels_text(labels),
            "host": host,
            "since": since,
            "limit": limit,
        }
        rows = self._db.read("series points", "alerts_series_points", params)
        return [row_to_metric(r) for r in reversed(rows)]

    def latest_metrics(self, *, since: float) -> list[Metric]:
        rows = self._db.read("latest metrics", "alerts_latest_metrics", {"since": since})
        return [row_to_metric(r) for r in rows]

    def job_counts(self) -> list[tuple[str, str, int]]:
        rows = self._db.read("job counts", "alerts_job_counts")
        return [(r["queue"], r["state"], int(r["n"])) for r in rows]


# Row mapping ----------------------------------------------------------------------------------


def labels_text(labels: Mapping[str, str]) -> str:
    """Labels as the metrics table stores them (see ``rows.metric_params``)."""
    return json.dumps(dict(labels), sort_keys=True)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # jsonb arrives decoded


def rule_params(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "metric": rule.metric,
        "labels": labels_text(rule.labels),
        "condition": rule.condition.value,
        "threshold": rule.threshold,
        "for_points": rule.for_points,
        "for_seconds": rule.for_seconds,
        "window_seconds": rule.window_seconds,
        "per_seconds": rule.per_seconds,
        "severity": rule.severity.value,
        "description": rule.description,
        "enabled": rule.enabled,
        "created_at": rule.created_at,
    }


def row_to_rule(row: Any) -> AlertRule:
    return AlertRule(
        id=row["id"],
        name=row["name"],
        metric=row["metric"],
        labels=_json(row["labels"]) or {},
        condition=Condition(row["condition"]),
        threshold=row["threshold"],
        for_points=row["for_points"],
        for_seconds=row["for_seconds"],
        window_seconds=row["window_seconds"],
        per_seconds=row["per_seconds"],
        severity=Severity(row["severity"]),
        description=row["description"],
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
    )


def alert_params(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule_id": alert.rule_id,
        "rule_name": alert.rule_name,
        "metric": alert.metric,
        "series": alert.series,
        "labels": labels_text(alert.labels),
        "host": alert.host,
        "severity": alert.severity.value,
        "state": alert.state.value,
        "value": alert.value,
        "message": alert.message,
        "opened_at": alert.opened_at,
        "updated_at": alert.updated_at,
        "resolved_at": alert.resolved_at,
    }


def row_to_alert(row: Any) -> Alert:
    return Alert(
        id=row["id"],
        rule_id=row["rule_id"],
        rule_name=row["rule_name"],
        metric=row["metric"],
        series=row["series"],
        labels=_json(row["labels"]) or {},
        host=row["host"],
        severity=Severity(row["severity"]),
        state=AlertState(row["state"]),
        value=row["value"],
        message=row["message"],
        opened_at=row["opened_at"],
        updated_at=row["updated_at"],
        resolved_at=row["resolved_at"],
    )


def event_params(event: AlertEvent) -> dict[str, Any]:
    return {
        "alert_id": event.alert_id,
        "kind": event.kind,
        "at": event.at,
        "value": event.value,
        "message": event.message,
    }


def row_to_event(row: Any) -> AlertEvent:
    return AlertEvent(
        id=int(row["id"]),
        alert_id=row["alert_id"],
        kind=row["kind"],
        at=row["at"],
        value=row["value"],
        message=row["message"],
    )
