"""Notification rules, handled job ends and sends of the in-memory store."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from typing import Any

from opsjobs.alerts.notices import NotifyRule, NotifySend
from opsjobs.errors import Conflict, NotFound
from opsjobs.store.notices import NoticeStore

__all__ = ["MemoryNotices"]


class _Tables:
    def __init__(self) -> None:
        self.rules: dict[str, NotifyRule] = {}
        self.ends: set[tuple[str, str, int]] = set()
        self.end_times: dict[tuple[str, str, int], float] = {}
        #: (rule id, job name) → [window start, ends held]
        self.groups: dict[tuple[str, str], list[Any]] = {}
        self.sends: list[NotifySend] = []
        self.ids = itertools.count(1)


class MemoryNotices(NoticeStore):
    """The notifications domain in dictionaries, guarded by the store's lock."""

    _lock: threading.RLock

    def _notice_tables(self) -> _Tables:
        # Created lazily so the host class's __init__ needs no edit.
        tables: Any = self.__dict__.get("_notices")
        if tables is None:
            tables = self.__dict__.setdefault("_notices", _Tables())
        assert isinstance(tables, _Tables)
        return tables

    def add_notify_rule(self, rule: NotifyRule) -> None:
        with self._lock:
            t = self._notice_tables()
            if rule.id in t.rules or any(r.name == rule.name for r in t.rules.values()):
                raise Conflict(f"a notification rule named {rule.name!r} exists")
            t.rules[rule.id] = rule

    def get_notify_rule(self, name_or_id: str) -> NotifyRule:
        with self._lock:
            t = self._notice_tables()
            found = t.rules.get(name_or_id) or next(
                (r for r in t.rules.values() if r.name == name_or_id), None
            )
        if found is None:
            raise NotFound(f"no notification rule {name_or_id!r}")
        return found

    def list_notify_rules(self) -> list[NotifyRule]:
        with self._lock:
            return sorted(self._notice_tables().rules.values(), key=lambda r: r.name)

    def remove_notify_rule(self, rule_id: str) -> None:
        with self._lock:
            t = self._notice_tables()
            if t.rules.pop(rule_id, None) is None:
                raise NotFound(f"no notification rule with id {rule_id}")
            t.ends = {e for e in t.ends if e[0] != rule_id}
            t.end_times = {e: at for e, at in t.end_times.items() if e[0] != rule_id}
            t.groups = {k: v for k, v in t.groups.items() if k[0] != rule_id}

    def note_job_end(
        self, rule_id: str, job_id: str, attempt: int, job_name: str, *, at: float, window: float
    ) -> int | None:
        with self._lock:
            t = self._notice_tables()
            key = (rule_id, job_id, attempt)
            if key in t.ends:
                return None
            t.ends.add(key)
            t.end_times[key] = at
            group = t.groups.setdefault((rule_id, job_name), [None, 0])
            start, held = group
            if start is None or window <= 0 or at >= start + window:
                group[:] = [at, 0]
                return int(held) + 1
            group[1] = held + 1
            return 0

    def record_notify_send(self, send: NotifySend) -> None:
        with self._lock:
            t = self._notice_tables()
            t.sends.append(dataclasses.replace(send, id=next(t.ids)))

    def notify_sends(
        self, *, rule_id: str | None = None, owner: str | None = None, limit: int = 100
    ) -> list[NotifySend]:
        with self._lock:
            found = [
                s
                for s in self._notice_tables().sends
                if (rule_id is None or s.rule_id == rule_id) and (owner is None or s.owner == owner)
            ]
        return found[::-1][:limit]

    def purge_notices(self, before: float) -> int:
        with self._lock:
            t = self._notice_tables()
            sends = [s for s in t.sends if s.at >= before]
            gone = len(t.sends) - len(sends)
            t.sends = sends
            ends = {e for e, at in t.end_times.items() if at < before}
            t.ends -= ends
            for e in ends:
                del t.end_times[e]
        return gone + len(ends)
