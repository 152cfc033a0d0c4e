"""Managing rules, the default rules, and the alert reads shared by the CLI, the REST API and the
dashboard."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opsjobs.alerts.evaluator import resolve_rule_alerts
from opsjobs.alerts.model import Alert, AlertRule, Condition, Severity
from opsjobs.errors import NotFound, ValidationError

if TYPE_CHECKING:
    from opsjobs.store import Store

__all__ = ["AlertRules", "alert_summary", "default_rules", "ensure_default_rules", "open_alerts"]

#: Fields a caller may give when adding a rule (everything but id and created_at).
RULE_FIELDS = frozenset(
    f.name for f in dataclasses.fields(AlertRule) if f.name not in ("id", "created_at")
)


def default_rules() -> list[AlertRule]:
    """The rules ``opsjobs init`` creates: memory above 1 GB over two analyses, more than one
    gen-2 collection a minute, and a leak suspected by the analyzer."""
    return [
        AlertRule(
            name="memory-above-1gb",
            metric="rss_mb",
            condition=Condition.ABOVE,
            threshold=1024.0,
            for_points=2,
            severity=Severity.WARNING,
            description="resident memory above 1 GiB in two analyses in a row",
        ),
        AlertRule(
            name="gc-gen2-rate",
            metric="gc_gen2_collections",
            condition=Condition.RATE_ABOVE,
            threshold=1.0,
            per_seconds=60.0,
            window_seconds=3600.0,
            severity=Severity.WARNING,
            description="more than one full (gen-2) collection per minute over the last hour",
        ),
        AlertRule(
            name="memory-leak-suspected",
            metric="leak_suspected",
            condition=Condition.ABOVE,
            threshold=0.5,
            severity=Severity.CRITICAL,
            description="the analyzer's leak verdict on the rss_mb series (metric 0/1)",
        ),
    ]


class AlertRules:
    """Add, list and remove rules on a store (validation, ids and times here)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    def build(self, fields: Mapping[str, Any]) -> AlertRule:
        """A validated rule from JSON-like ``fields`` (name, metric, condition, threshold, …)."""
        unknown = sorted(set(fields) - RULE_FIELDS)
        if unknown:
            raise ValidationError(f"unknown rule field(s): {', '.join(unknown)}")
        for required in ("name", "metric", "condition", "threshold"):
            if required not in fields:
                raise ValidationError(f"a rule needs {required}")
        rule = AlertRule(**fields)
        return dataclasses.replace(rule.validated(), id=str(uuid.uuid4()), created_at=self._clock())

    def add(self, rule: AlertRule) -> AlertRule:
        """Store ``rule`` (validated again, given an id if it has none)."""
        rule = rule.validated()
        if not rule.id:
            rule = dataclasses.replace(rule, id=str(uuid.uuid4()))
        if not rule.created_at:
            rule = dataclasses.replace(rule, created_at=self._clock())
        self.store.add_alert_rule(rule)
        return rule

    def list(self) -> list[AlertRule]:
        return self.store.list_alert_rules()

    def get(self, name_or_id: str) -> AlertRule:
        return self.store.get_alert_rule(name_or_id)

    def remove(self, name_or_id: str) -> AlertRule:
        """Delete a rule; its open alerts are resolved first (events stored)."""
        rule = self.store.get_alert_rule(name_or_id)
        resolve_rule_alerts(self.store, rule, now=self._clock())
        self.store.remove_alert_rule(rule.id)
        return rule


def ensure_default_rules(store: Store) -> list[tuple[AlertRule, str]]:
    """Add the :func:`default_rules` that are missing (by name); existing rules, possibly
    edited by an operator, are left alone. Returns ``(rule, "created" | "exists")`` pairs."""
    manager = AlertRules(store)
    out: list[tuple[AlertRule, str]] = []
    for rule in default_rules():
        try:
            out.append((store.get_alert_rule(rule.name), "exists"))
        except NotFound:
            out.append((manager.add(rule), "created"))
    return out


def open_alerts(
    store: Store,
    *,
    severity: Severity | str | None = None,
    metrics: Iterable[str] | None = None,
    host: str | None = None,
    limit: int = 100,
) -> list[Alert]:
    """The open alerts, most recently opened first — for the dashboard's header and Memory tab.

    Parameters
    ----------
    severity
        Only alerts of this severity.
    metrics
        Only alerts on these metrics (the Memory tab: ``rss_mb``, ``uss_mb``,
        ``gc_gen2_collections``, ``leak_suspected``).
    host
        Only alerts on series of this host.
    limit
        At most this many.
    """
    wanted = Severity(severity) if severity is not None else None
    names = set(metrics) if metrics is not None else None
    found = store.list_alerts(open_only=True, limit=10_000)
    return [
        a
        for a in found
        if (wanted is None or a.severity is wanted)
        and (names is None or a.metric in names)
        and (host is None or a.shown_labels.get("host") == host)
    ][:limit]


def alert_summary(store: Store) -> dict[str, int]:
    """How many alerts are open, in all and per severity (``open``, ``critical``, …)."""
    found = store.list_alerts(open_only=True, limit=10_000)
    summary = {"open": len(found)}
    for severity in Severity:
        summary[severity.value] = sum(a.severity is severity for a in found)
    return summary
