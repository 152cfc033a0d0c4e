"""Alert rules, alerts and events of the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from ..alerts.model import Alert, AlertEvent, AlertRule
from ..errors import Conflict, NotFound
from ..model import Metric
from .alerts import AlertStore
from .sql.alerts import (
    alert_params,
    event_params,
    labels_text,
    row_to_alert,
    row_to_event,
    row_to_rule,
    rule_params,
)
from .sql.rows import row_to_metric

__all__ = ["PostgresAlerts"]

T = TypeVar("T")


class PostgresAlerts(AlertStore):
    """The alerts domain on the PostgreSQL store's helpers (``_run``, ``_read``, ``_q``)."""

    _q: dict[str, str]

    if TYPE_CHECKING:  # provided by PostgresStore

        def _run(self, what: str, work: Callable[[Any], T], *, write: bool = True) -> T: ...
        def _read(self, what: str, query: str, params: Any = None) -> list[Any]: ...

    # -- rules ----------------------------------------------------------------------------
    def add_alert_rule(self, rule: AlertRule) -> None:
        params = rule_params(rule)

        def insert(conn: Any) -> None:
            try:
                with conn.transaction():  # a savepoint: the error is ours to translate
                    conn.execute(self._q["alerts_insert_rule"], params)
            except psycopg.errors.UniqueViolation as exc:
                raise Conflict(f"alert rule {rule.name}: already exists") from exc

        self._run("add alert rule", insert)

    def get_alert_rule(self, name_or_id: str) -> AlertRule:
        rows = self._read("get alert rule", self._q["alerts_get_rule"], {"key": name_or_id})
        if not rows:
            raise NotFound(f"no alert rule {name_or_id!r}")
        return row_to_rule(rows[0])

    def list_alert_rules(self) -> list[AlertRule]:
        rows = self._read("list alert rules", self._q["alerts_list_rules"])
        return [row_to_rule(r) for r in rows]

    def remove_alert_rule(self, rule_id: str) -> None:
        query, params = self._q["alerts_delete_rule"], {"id": rule_id}
        n = self._run("remove alert rule", lambda conn: conn.execute(query, params).rowcount)
        if not n:
            raise NotFound(f"no alert rule with id {rule_id}")

    # -- alerts ---------------------------------------------------------------------------
    def open_alert(self, alert: Alert, event: AlertEvent) -> bool:
        params = alert_params(alert)

        def insert(conn: Any) -> bool:
            if not conn.execute(self._q["alerts_insert_alert"], params).rowcount:
                return False
            conn.execute(self._q["alerts_insert_event"], event_params(event))
            return True

        return self._run("open alert", insert)

    def find_open_alert(self, rule_id: str, series: str) -> Alert | None:
        params = {"rule_id": rule_id, "series": series}
        rows = self._read("find open alert", self._q["alerts_find_open"], params)
        return row_to_alert(rows[0]) if rows else None

    def refresh_alert(self, alert_id: str, value: float, *, now: float) -> None:
        query, params = self._q["alerts_refresh"], {"id": alert_id, "value": value, "now": now}
        self._run("refresh alert", lambda conn: conn.execute(query, params))

    def resolve_alert(self, alert_id: str, event: AlertEvent) -> Alert | None:
        params = event_params(event)

        def resolve(conn: Any) -> Any:
            row = conn.execute(self._q["alerts_resolve"], params).fetchone()
            if row is not None:
                conn.execute(self._q["alerts_insert_event"], params)
            return row

        row = self._run("resolve alert", resolve)
        return row_to_alert(row) if row is not None else None

    def list_alerts(self, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
        query = self._q["alerts_list_open" if open_only else "alerts_list"]
        return [row_to_alert(r) for r in self._read("list alerts", query, {"limit": limit})]

    def purge_alerts(self, resolved_before: float) -> int:
        params = {"before": resolved_before}

        def purge(conn: Any) -> int:
            conn.execute(self._q["alerts_purge_events"], params)
            return int(conn.execute(self._q["alerts_purge"], params).rowcount)

        return self._run("purging alerts", purge)

    def alert_events(self, *, alert_id: str | None = None, limit: int = 100) -> list[AlertEvent]:
        if alert_id is None:
            rows = self._read("alert events", self._q["alerts_events"], {"limit": limit})
        else:
            params = {"alert_id": alert_id, "limit": limit}
            rows = self._read("alert events", self._q["alerts_events_of"], params)
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
        rows = self._read("series points", self._q["alerts_series_points"], params)
        return [row_to_metric(r) for r in reversed(rows)]

    def latest_metrics(self, *, since: float) -> list[Metric]:
        rows = self._read("latest metrics", self._q["alerts_latest_metrics"], {"since": since})
        return [row_to_metric(r) for r in rows]

    def job_counts(self) -> list[tuple[str, str, int]]:
        rows = self._read("job counts", self._q["alerts_job_counts"])
        return [(r["queue"], r["state"], int(r["n"])) for r in rows]
