"""Alert rules, alerts and their events: the dataclasses and the validation of every field.

A rule watches one metric (optionally only the series whose labels match ``labels``) and a
condition on it: ``above`` / ``below`` a threshold, or ``rate_above`` / ``rate_below`` — the
increase of a counter over ``window_seconds``, per ``per_seconds`` (a counter reset counts from
zero). It must hold at the ``for_points`` latest points of a series and, when ``for_seconds`` is
set, at every point of the last ``for_seconds`` too. Each matching *series* (one label set on one
host) has its own alert: it opens when the rule holds, stays open while the condition holds and
resolves at the first point where it does not.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from opsjobs.errors import ValidationError
from opsjobs.model import Metric, iso

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "Condition",
    "Severity",
    "series_key",
    "series_labels",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:@-]{0,119}$")
_METRIC_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:]{0,119}$")
_LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_FOR_POINTS = 100
MAX_SECONDS = 30 * 86400.0


class Condition(str, Enum):
    """What a rule compares with its threshold: the value, or the counter's rate."""

    ABOVE = "above"
    BELOW = "below"
    RATE_ABOVE = "rate_above"
    RATE_BELOW = "rate_below"

    @property
    def is_rate(self) -> bool:
        return self in (Condition.RATE_ABOVE, Condition.RATE_BELOW)

    def holds(self, value: float, threshold: float) -> bool:
        if self in (Condition.ABOVE, Condition.RATE_ABOVE):
            return value > threshold
        return value < threshold


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(str, Enum):
    OPEN = "open"
    RESOLVED = "resolved"


def _enum(cls: type[Any], value: object, what: str) -> Any:
    try:
        return cls(value.value if isinstance(value, Enum) else str(value).strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in cls)
        raise ValidationError(f"invalid {what} {str(value)[:40]!r} (expected: {choices})") from None


def _seconds(value: object, what: str, lo: float, hi: float = MAX_SECONDS) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what} must be a number of seconds")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValidationError(f"{what} must be between {lo:g} and {hi:g} seconds")
    return float(value)


def validate_labels(labels: object) -> dict[str, str]:
    """A label filter: names like Prometheus label names, values 1-200 characters."""
    if not isinstance(labels, Mapping):
        raise ValidationError("labels must be an object of name → value")
    if len(labels) > 20:
        raise ValidationError("at most 20 labels")
    out: dict[str, str] = {}
    for name, value in labels.items():
        if not isinstance(name, str) or not _LABEL_RE.match(name):
            raise ValidationError(f"invalid label name {str(name)[:40]!r}")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValidationError(f"label {name} must be a string")
        text = str(value)
        if not 1 <= len(text) <= 200 or any(ord(c) < 32 for c in text):
            raise ValidationError(f"label {name} must be 1-200 printable characters")
        out[name] = text
    return out


@dataclass(frozen=True)
class AlertRule:
    """A condition on a metric that opens an alert per matching series."""

    name: str
    metric: str
    condition: Condition
    threshold: float
    labels: Mapping[str, str] = field(default_factory=dict)
    for_points: int = 1
    for_seconds: float = 0.0
    window_seconds: float = 600.0
    per_seconds: float = 60.0
    severity: Severity = Severity.WARNING
    description: str = ""
    enabled: bool = True
    id: str = ""
    created_at: float = 0.0

    def validated(self) -> AlertRule:
        """A copy with every field checked (raises :class:`ValidationError`)."""
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not _NAME_RE.match(name):
            raise ValidationError(
                f"invalid rule name {str(self.name)[:60]!r}: 1-120 characters of letters, "
                "digits, spaces and _.:@- (starting with a letter or digit)"
            )
        metric = self.metric.strip() if isinstance(self.metric, str) else ""
        if not _METRIC_RE.match(metric):
            raise ValidationError(f"invalid metric name {str(self.metric)[:60]!r}")
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValidationError("threshold must be a number")
        if not math.isfinite(threshold):
            raise ValidationError("threshold must be finite")
        points = self.for_points
        if isinstance(points, bool) or not isinstance(points, int):
            raise ValidationError("for_points must be an integer")
        if not 1 <= points <= MAX_FOR_POINTS:
            raise ValidationError(f"for_points must be between 1 and {MAX_FOR_POINTS}")
        description = self.description if isinstance(self.description, str) else None
        if description is None or len(description) > 1000:
            raise ValidationError("description must be text of at most 1000 characters")
        if not isinstance(self.enabled, bool):
            raise ValidationError("enabled must be true or false")
        return dataclasses.replace(
            self,
            name=name,
            metric=metric,
            condition=_enum(Condition, self.condition, "condition"),
            threshold=float(threshold),
            labels=validate_labels(self.labels),
            for_seconds=_seconds(self.for_seconds, "for_seconds", 0.0),
            window_seconds=_seconds(self.window_seconds, "window_seconds", 1.0),
            per_seconds=_seconds(self.per_seconds, "per_seconds", 1.0),
            severity=_enum(Severity, self.severity, "severity"),
            description=description.strip(),
        )

    def matches(self, metric: Metric) -> bool:
        """True when ``metric`` is of this rule's metric and carries every filter label
        (``host`` also matches the metric's host)."""
        if metric.name != self.metric:
            return False
        labels = series_labels(metric)
        return all(labels.get(k) == v for k, v in self.labels.items())

    @property
    def condition_text(self) -> str:
        """``rss_mb > 1024``, ``rate(gc_gen2_collections) > 1/60s over 3600s``."""
        op = ">" if self.condition in (Condition.ABOVE, Condition.RATE_ABOVE) else "<"
        what = self.metric
        if self.condition.is_rate:
            what = f"rate({self.metric})"
            text = f"{what} {op} {self.threshold:g}/{self.per_seconds:g}s"
            text += f" over {self.window_seconds:g}s"
        else:
            text = f"{what} {op} {self.threshold:g}"
        if self.labels:
            text += " {" + ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items())) + "}"
        hold = []
        if self.for_points > 1:
            hold.append(f"{self.for_points} points")
        if self.for_seconds:
            hold.append(f"{self.for_seconds:g}s")
        return text + (f" for {' and '.join(hold)}" if hold else "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "name": self.name,
            "metric": self.metric,
            "condition": self.condition.value,
            "threshold": self.threshold,
            "labels": dict(self.labels),
            "for_points": self.for_points,
            "for_seconds": self.for_seconds,
            "window_seconds": self.window_seconds,
            "per_seconds": self.per_seconds,
            "severity": self.severity.value,
            "description": self.description,
            "enabled": self.enabled,
            "created_at": iso(self.created_at),
            "text": self.condition_text,
        }


def series_labels(metric: Metric) -> dict[str, str]:
    """The labels that name a metric's series: its own, plus ``host`` unless it has one."""
    labels = dict(metric.labels)
    if "host" not in labels and metric.host:
        labels["host"] = metric.host
    return labels


def series_key(metric: Metric) -> str:
    """A canonical text naming the series of ``metric`` (its labels and its host)."""
    return json.dumps([metric.host or "", dict(sorted(metric.labels.items()))])


@dataclass(frozen=True)
class Alert:
    """One series of one rule whose condition held: open until it stops holding."""

    id: str
    rule_id: str
    rule_name: str
    metric: str
    series: str
    labels: Mapping[str, str]
    host: str | None
    severity: Severity
    state: AlertState
    value: float | None
    message: str
    opened_at: float
    updated_at: float
    resolved_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.state is AlertState.OPEN

    @property
    def shown_labels(self) -> dict[str, str]:
        labels = dict(self.labels)
        if "host" not in labels and self.host:
            labels["host"] = self.host
        return labels

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO-8601 UTC strings)."""
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "rule": self.rule_name,
            "metric": self.metric,
            "labels": self.shown_labels,
            "severity": self.severity.value,
            "state": self.state.value,
            "value": self.value,
            "message": self.message,
            "opened_at": iso(self.opened_at),
            "updated_at": iso(self.updated_at),
            "resolved_at": iso(self.resolved_at),
        }


@dataclass(frozen=True)
class AlertEvent:
    """A change of an alert's state: ``opened`` or ``resolved``."""

    alert_id: str
    kind: str
    at: float
    value: float | None
    message: str
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alert_id": self.alert_id,
            "kind": self.kind,
            "at": iso(self.at),
            "value": self.value,
            "message": self.message,
        }
