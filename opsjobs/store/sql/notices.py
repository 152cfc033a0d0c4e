"""Notification rules, handled job ends and sends of the SQL backends, written once over the
:class:`~.db.Db` port."""

from __future__ import annotations

from typing import Any

from opsjobs.alerts.notices import NotifyRule, NotifySend
from opsjobs.errors import NotFound
from opsjobs.store.notices import NoticeStore
from opsjobs.store.sql.db import Db, Tx
from opsjobs.store.sql.rows import columns, from_columns, json_text, json_value

__all__ = ["SqlNotices", "row_to_notify_rule", "row_to_notify_send"]


class SqlNotices(NoticeStore):
    """The notifications domain of a SQL store (a mixin: the store sets ``_db``)."""

    _db: Db

    def add_notify_rule(self, rule: NotifyRule) -> None:
        params = columns(rule, states=_list_text, email=_list_text)
        self._db.transaction(
            f"notification rule {rule.name}",
            lambda tx: tx.run("notify_insert_rule", params),
            conflict=f"a notification rule named {rule.name!r} exists",
        )

    def get_notify_rule(self, name_or_id: str) -> NotifyRule:
        rows = self._db.read("get notification rule", "notify_get_rule", {"key": name_or_id})
        if not rows:
            raise NotFound(f"no notification rule {name_or_id!r}")
        return row_to_notify_rule(rows[0])

    def list_notify_rules(self) -> list[NotifyRule]:
        rows = self._db.read("list notification rules", "notify_list_rules")
        return [row_to_notify_rule(r) for r in rows]

    def remove_notify_rule(self, rule_id: str) -> None:
        params = {"id": rule_id}

        def remove(tx: Tx) -> int:
            tx.run("notify_delete_ends", params)
            tx.run("notify_delete_groups", params)
            return int(tx.run("notify_delete_rule", params).rowcount)

        if not self._db.transaction("remove notification rule", remove):
            raise NotFound(f"no notification rule with id {rule_id}")

    def note_job_end(
        self, rule_id: str, job_id: str, attempt: int, job_name: str, *, at: float, window: float
    ) -> int | None:
        end = {"rule_id": rule_id, "job_id": job_id, "attempt": attempt, "at": at}
        group = {"rule_id": rule_id, "job_name": job_name, "at": at}

        def note(tx: Tx) -> int | None:
            if not tx.run("notify_insert_end", end).rowcount:
                return None  # another worker (or an earlier call) handled it
            tx.run("notify_ensure_group", group)
            row = tx.run("notify_lock_group", group).fetchone()
            start, held = row["window_start"], int(row["held"])
            if start is None or window <= 0 or at >= float(start) + window:
                tx.run("notify_open_window", group)
                return held + 1
            tx.run("notify_hold", group)
            return 0

        return self._db.transaction(f"noting the end of job {job_id}", note)

    def record_notify_send(self, send: NotifySend) -> None:
        params = columns(send)
        self._db.transaction(
            "recording a notification", lambda tx: tx.run("notify_insert_send", params)
        )

    def purge_notices(self, before: float) -> int:
        params = {"before": before}

        def purge(tx: Tx) -> int:
            ends = int(tx.run("notify_purge_ends", params).rowcount)
            return ends + int(tx.run("notify_purge_sends", params).rowcount)

        return self._db.transaction("purging notification records", purge)

    def notify_sends(
        self, *, rule_id: str | None = None, owner: str | None = None, limit: int = 100
    ) -> list[NotifySend]:
        params = {"rule_id": rule_id, "owner": owner, "limit": limit}
        rows = self._db.read("notification sends", "notify_sends", params)
        return [row_to_notify_send(r) for r in rows]


def _list_text(value: Any) -> str:
    return json_text(list(value))


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(json_value(value) or ())


def row_to_notify_rule(row: Any) -> NotifyRule:
    return from_columns(NotifyRule, row, states=_tuple, email=_tuple, webhook=bool, enabled=bool)


def row_to_notify_send(row: Any) -> NotifySend:
    return from_columns(NotifySend, row, ok=bool, id=int)
