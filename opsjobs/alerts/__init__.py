"""Alerts on metrics: rules in the store, evaluation when metrics are recorded, webhooks.

See :mod:`opsjobs.alerts.model` for what a rule means, :mod:`opsjobs.alerts.evaluator` for when
and where rules are judged, :mod:`opsjobs.alerts.webhooks` for delivery, and
:mod:`opsjobs.alerts.rules` for the default rules and the functions the CLI, the REST API and
the dashboard share (:func:`open_alerts`, :func:`alert_summary`, :class:`AlertRules`).
"""

from __future__ import annotations

from opsjobs.alerts.evaluator import AlertEvaluator
from opsjobs.alerts.model import Alert, AlertEvent, AlertRule, AlertState, Condition, Severity
from opsjobs.alerts.rules import (
    AlertRules,
    alert_summary,
    default_rules,
    ensure_default_rules,
    open_alerts,
)
from opsjobs.alerts.webhooks import (
    WebhookSender,
    alert_payload,
    parse_webhooks,
    validate_webhook_url,
)

__all__ = [
    "Alert",
    "AlertEvaluator",
    "AlertEvent",
    "AlertRule",
    "AlertRules",
    "AlertState",
    "Condition",
    "Severity",
    "WebhookSender",
    "alert_payload",
    "alert_summary",
    "default_rules",
    "ensure_default_rules",
    "open_alerts",
    "parse_webhooks",
    "validate_webhook_url",
]
