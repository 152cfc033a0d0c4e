"""The alerts domain of the store: rules, alerts, alert events (interface only), and the metric
reads that alerting and the Prometheus exposition need.

At most one alert per (rule, series) is open at a time: :meth:`AlertStore.open_alert` inserts it
only if none is (a unique index on open alerts in the SQL backends), and
:meth:`AlertStore.resolve_alert` changes only an open alert. Each stores its event in the same
transaction, so every change of state is recorded exactly once however many evaluators race.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

from opsjobs.alerts.model import Alert, AlertEvent, AlertRule
from opsjobs.model import Metric

__all__ = ["AlertStore"]


class AlertStore(abc.ABC):
    """Alert rules, alerts and their events. Each method is one transaction."""

    # -- rules ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_alert_rule(self, rule: AlertRule) -> None:
        """Insert a validated rule (id and created_at set); Conflict if the name is taken."""

    @abc.abstractmethod
    def get_alert_rule(self, name_or_id: str) -> AlertRule:
        """The rule with this name or id; :class:`~opsjobs.errors.NotFound` otherwise."""

    @abc.abstractmethod
    def list_alert_rules(self) -> list[AlertRule]:
        """Every rule, by name."""

    @abc.abstractmethod
    def remove_alert_rule(self, rule_id: str) -> None:
        """Delete a rule (its alerts and events stay); NotFound if absent."""

    # -- alerts ---------------------------------------------------------------------------
    @abc.abstractmethod
    def open_alert(self, alert: Alert, event: AlertEvent) -> bool:
        """Insert ``alert`` (open) and its ``opened`` event, unless an alert of the same rule
        and series is open already (then nothing changes and the answer is False)."""

    @abc.abstractmethod
    def find_open_alert(self, rule_id: str, series: str) -> Alert | None:
        """The open alert of a rule on a series, if any."""

    @abc.abstractmethod
    def refresh_alert(self, alert_id: str, value: float, *, now: float) -> None:
        """Record the latest value of an open alert."""

    @abc.abstractmethod
    def resolve_alert(self, alert_id: str, event: AlertEvent) -> Alert | None:
        """Resolve an open alert at ``event.at`` and store the event; None (and nothing
        stored) when the alert is not open."""

    @abc.abstractmethod
    def list_alerts(self, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
        """Alerts, most recently opened first."""

    @abc.abstractmethod
    def alert_events(self, *, alert_id: str | None = None, limit: int = 100) -> list[AlertEvent]:
        """Events (of one alert, or all), newest first."""

    @abc.abstractmethod
    def purge_alerts(self, resolved_before: float) -> int:
        """Delete the alerts resolved before ``resolved_before`` with their events (open
        alerts stay, whatever their age); returns how many alerts went."""

    # -- metric reads ---------------------------------------------------------------------
    @abc.abstractmethod
    def series_points(
        self,
        name: str,
        labels: Mapping[str, str],
        host: str | None,
        *,
        since: float,
        limit: int,
    ) -> list[Metric]:
        """The newest ``limit`` points at or after ``since`` of one series (exactly these
        labels on this host), oldest first."""

    @abc.abstractmethod
    def latest_metrics(self, *, since: float) -> list[Metric]:
        """The latest point of every series that has one at or after ``since``."""

    @abc.abstractmethod
    def job_counts(self) -> list[tuple[str, str, int]]:
        """``(queue, state, count)`` of the jobs in the store."""
