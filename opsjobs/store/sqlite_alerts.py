"""Alert rules, alerts and events of the SQLite store."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..alerts.model import Alert, AlertEvent, AlertRule
from ..errors import Conflict, NotFound, StoreError
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

__all__ = ["SQLiteAlerts"]


class SQLiteAlerts(AlertStore):
    """The alerts domain on the SQLite store's helpers (``_tx``, ``_read``, ``_write``, ``_q``)."""

    _q: dict[str, str]

    if TYPE_CHECKING:  # provided by SQLiteStore

        def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def _read(self, sql: str, params: Any = ()) -> list[sqlite3.Row]: ...
        def _write(self, sql: str, params: Any = ()) -> sqlite3.Cursor: ...

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"{what}: already exists") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{what} failed: {exc}") from exc

    # -- rules ----------------------------------------------------------------------------
    def add_alert_rule(self, rule: AlertRule) -> None:
        with self._errors(f"alert rule {rule.name}"), self._tx() as conn:
            conn.execute(self._q["alerts_insert_rule"], rule_params(rule))

    def get_alert_rule(self, name_or_id: str) -> AlertRule:
        rows = self._read(self._q["alerts_get_rule"], {"key": name_or_id})
        if not rows:
            raise NotFound(f"no alert rule {name_or_id!r}")
        return row_to_rule(rows[0])

    def list_alert_rules(self) -> list[AlertRule]:
        return [row_to_rule(r) for r in self._read(self._q["alerts_list_rules"])]

    def remove_alert_rule(self, rule_id: str) -> None:
        if not self._write(self._q["alerts_delete_rule"], {"id": rule_id}).rowcount:
            raise NotFound(f"no alert rule with id {rule_id}")

    # -- alerts ---------------------------------------------------------------------------
    def open_alert(self, alert: Alert, event: AlertEvent) -> bool:
        with self._errors(f"opening alert {alert.rule_name}"), self._tx() as conn:
            if not conn.execute(self._q["alerts_insert_alert"], alert_params(alert)).rowcount:
                return False
            conn.execute(self._q["alerts_insert_event"], event_params(event))
        return True

    def find_open_alert(self, rule_id: str, series: str) -> Alert | None:
        params = {"rule_id": rule_id, "series": series}
        rows = self._read(self._q["alerts_find_open"], params)
        return row_to_alert(rows[0]) if rows else None

    def refresh_alert(self, alert_id: str, value: float, *, now: float) -> None:
        self._write(self._q["alerts_refresh"], {"id": alert_id, "value": value, "now": now})

    def resolve_alert(self, alert_id: str, event: AlertEvent) -> Alert | None:
        params = event_params(event)
        with self._errors(f"resolving alert {alert_id}"), self._tx() as conn:
            row = conn.execute(self._q["alerts_resolve"], params).fetchone()
            if row is None:
                return None
            conn.execute(self._q["alerts_insert_event"], params)
        return row_to_alert(row)

    def list_alerts(self, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
        query = self._q["alerts_list_open" if open_only else "alerts_list"]
        return [row_to_alert(r) for r in self._read(query, {"limit": limit})]

    def purge_alerts(self, resolved_before: float) -> int:
        params = {"before": resolved_before}
        with self._errors("purging alerts"), self._tx() as conn:
            conn.execute(self._q["alerts_purge_events"], params)
            return int(conn.execute(self._q["alerts_purge"], params).rowcount)

    def alert_events(self, *, alert_id: str | None = None, limit: int = 100) -> list[AlertEvent]:
        if alert_id is None:
            rows = self._read(self._q["alerts_events"], {"limit": limit})
        else:
            rows = self._read(self._q["alerts_events_of"], {"alert_id": alert_id, "limit": limit})
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
        rows = self._read(self._q["alerts_series_points"], params)
        return [row_to_metric(r) for r in reversed(rows)]

    def latest_metrics(self, *, since: float) -> list[Metric]:
        rows = self._read(self._q["alerts_latest_metrics"], {"since": since})
        return [row_to_metric(r) for r in rows]

    def job_counts(self) -> list[tuple[str, str, int]]:
        rows = self._read(self._q["alerts_job_counts"])
        return [(r["queue"], r["state"], int(r["n"])) for r in rows]
