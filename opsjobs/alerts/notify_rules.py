"""Managing notification rules and reading the send log, shared by the CLI, the REST API and the
dashboard, with the scope of the one acting.

``sees_all`` (an admin, or the CLI on a local store) may make rules about anyone's jobs and see
every rule and send. Anyone else's rules carry their own name as the ``owner`` filter, so they
report only that user's jobs, and that user sees and removes only the rules they made and the
sends about their own jobs.
"""

from __future__ import annotations

import builtins
import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opsjobs.alerts.notices import RULE_FIELDS, NotifyRule, NotifySend
from opsjobs.errors import NotFound, PermissionDenied, ValidationError

if TYPE_CHECKING:
    from opsjobs.store import Store

__all__ = ["NotifyRules"]


class NotifyRules:
    """Add, list and remove notification rules, and list sends, as ``user``.

    Parameters
    ----------
    store
        Where rules and sends live.
    user
        Who acts (recorded as the rules' ``created_by``).
    sees_all
        May act on every rule and see every job's sends (admins; the local CLI).
    """

    def __init__(
        self,
        store: Store,
        user: str,
        *,
        sees_all: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.user = user
        self.sees_all = sees_all
        self._clock = clock

    def build(self, fields: Mapping[str, Any]) -> NotifyRule:
        """A validated rule from JSON-like ``fields`` (name, states, job_name, email, …)."""
        if not isinstance(fields, Mapping):
            raise ValidationError("a rule must be an object")
        unknown = sorted(set(fields) - RULE_FIELDS)
        if unknown:
            raise ValidationError(f"unknown rule field(s): {', '.join(unknown)}")
        if "name" not in fields:
            raise ValidationError("a rule needs name")
        values = dict(fields)
        owner = values.get("owner") or ""
        if not self.sees_all:
            if owner and owner != self.user:
                raise PermissionDenied("a rule may watch only your own jobs")
            values["owner"] = self.user
        rule = NotifyRule(**values).validated()
        return dataclasses.replace(
            rule, id=str(uuid.uuid4()), created_at=self._clock(), created_by=self.user
        )

    def add(self, rule: NotifyRule) -> NotifyRule:
        self.store.add_notify_rule(rule)
        return rule

    def _mine(self, rule: NotifyRule) -> bool:
        return self.sees_all or rule.created_by == self.user

    def list(self) -> list[NotifyRule]:
        return [r for r in self.store.list_notify_rules() if self._mine(r)]

    def get(self, name_or_id: str) -> NotifyRule:
        rule = self.store.get_notify_rule(name_or_id)
        if not self._mine(rule):
            raise NotFound(f"no notification rule {name_or_id!r}")
        return rule

    def remove(self, name_or_id: str) -> NotifyRule:
        rule = self.get(name_or_id)
        self.store.remove_notify_rule(rule.id)
        return rule

    def sends(self, *, rule: str | None = None, limit: int = 100) -> builtins.list[NotifySend]:
        """Sends (of one rule), newest first: every one for ``sees_all``, else those about
        the user's own jobs."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError("limit must be between 1 and 10000")
        rule_id = self.get(rule).id if rule else None
        owner = None if self.sees_all else self.user
        return self.store.notify_sends(rule_id=rule_id, owner=owner, limit=limit)
