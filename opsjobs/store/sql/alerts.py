"""Alert rules, alerts and events of the SQL backends, written once over the :class:`~.db.Db`
port, and the metric reads of alerting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsjobs.alerts.model import Alert, AlertEvent, AlertRule, AlertState, Condition, Severity
from opsjobs.errors import NotFound
from opsjobs.model import Metric
from opsjobs.store.alerts import AlertStore
from opsjobs.store.sql.db import Db, Tx
from opsjobs.store.sql.rows import (
    columns,
    enum_value,
    from_columns,
    json_text,
    json_value,
    row_to_metric,
)

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
    return json_text(dict(labels))


def _labels(value: Any) -> Any:
    return json_value(value) or {}


def rule_params(rule: AlertRule) -> dict[str, Any]:
    return columns(rule, labels=labels_text, condition=enum_value, severity=enum_value)


def row_to_rule(row: Any) -> AlertRule:
    return from_columns(
        AlertRule, row, labels=_labels, condition=Condition, severity=Severity, enabled=bool
    )


def alert_params(alert: Alert) -> dict[str, Any]:
    return columns(alert, labels=labels_text, severity=enum_value, state=enum_value)


def row_to_alert(row: Any) -> Alert:
    return from_columns(Alert, row, labels=_labels, severity=Severity, state=AlertState)


def event_params(event: AlertEvent) -> dict[str, Any]:
    return columns(event)  # the id is the table's own: the insert leaves it out


def row_to_event(row: Any) -> AlertEvent:
    return from_columns(AlertEvent, row, id=int)
