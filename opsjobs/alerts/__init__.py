"""Alerts on metrics: rules in the store, evaluation when metrics are recorded, webhooks; and
notifications on job outcomes (e-mail and webhooks).

See :mod:`opsjobs.alerts.model` for what a rule means, :mod:`opsjobs.alerts.evaluator` for when
and where rules are judged, :mod:`opsjobs.alerts.webhooks` for delivery, and
:mod:`opsjobs.alerts.rules` for the default rules and the functions the CLI, the REST API and
the dashboard share (:func:`open_alerts`, :func:`alert_summary`, :class:`AlertRules`).
Notifications: :mod:`~opsjobs.alerts.notices` (rules and send records),
:mod:`~opsjobs.alerts.notify_rules` (:class:`NotifyRules`, managing them in a user's scope),
:mod:`~opsjobs.alerts.notifier` (:class:`Notifier`, the background sender) and
:mod:`~opsjobs.alerts.mail` (SMTP).
"""

from __future__ import annotations

from opsjobs.alerts.evaluator import AlertEvaluator
from opsjobs.alerts.model import Alert, AlertEvent, AlertRule, AlertState, Condition, Severity
from opsjobs.alerts.notices import NotifyRule, NotifySend
from opsjobs.alerts.notifier import Notifier
from opsjobs.alerts.notify_rules import NotifyRules
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
    "Notifier",
    "NotifyRule",
    "NotifyRules",
    "NotifySend",
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
