"""Alert rules, alerts and events of the SQL backends: their rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opsjobs.alerts.model import Alert, AlertEvent, AlertRule, AlertState, Condition, Severity

__all__ = [
    "alert_params",
    "event_params",
    "labels_text",
    "row_to_alert",
    "row_to_event",
    "row_to_rule",
    "rule_params",
]


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
