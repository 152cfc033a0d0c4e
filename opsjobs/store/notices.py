"""The notifications domain of the store (interface only): notification rules, the once-only
record of each job end a rule handled with its grouping window, and the log of every send.

Several workers may share a store and each reports the ends it recorded; a job end is still
handled once per rule, because :meth:`NoticeStore.note_job_end` stores the pair (rule, job end)
under a unique key and moves the rule's grouping window of that job name in the same
transaction: only the caller that stored it is told to send.
"""

from __future__ import annotations

import abc

from opsjobs.alerts.notices import NotifyRule, NotifySend

__all__ = ["NoticeStore"]


class NoticeStore(abc.ABC):
    """Notification rules, job ends handled, sends. Each method is one transaction."""

    @abc.abstractmethod
    def add_notify_rule(self, rule: NotifyRule) -> None:
        """Insert a validated rule (id and created_at set); Conflict if the name is taken."""

    @abc.abstractmethod
    def get_notify_rule(self, name_or_id: str) -> NotifyRule:
        """The rule with this name or id; :class:`~opsjobs.errors.NotFound` otherwise."""

    @abc.abstractmethod
    def list_notify_rules(self) -> list[NotifyRule]:
        """Every rule, by name."""

    @abc.abstractmethod
    def remove_notify_rule(self, rule_id: str) -> None:
        """Delete a rule with its windows and handled ends (its sends stay); NotFound if absent."""

    @abc.abstractmethod
    def note_job_end(
        self, rule_id: str, job_id: str, attempt: int, job_name: str, *, at: float, window: float
    ) -> int | None:
        """Record that ``rule_id`` handles this end of a job (once per rule, job and attempt).

        Returns None when it was handled already (by this or another worker); else the number
        of ends of ``job_name`` the message to send now reports (the ends held since the last
        message, this one included), or 0 when the end falls in the rule's open window for that
        name (``window`` seconds from the last message's end) and is only counted.
        """

    @abc.abstractmethod
    def record_notify_send(self, send: NotifySend) -> None:
        """Store one send or failure to send."""

    @abc.abstractmethod
    def notify_sends(
        self, *, rule_id: str | None = None, owner: str | None = None, limit: int = 100
    ) -> list[NotifySend]:
        """Sends, newest first (of one rule and/or of one owner's jobs)."""

    @abc.abstractmethod
    def purge_notices(self, before: float) -> int:
        """Delete the handled job ends and the sends recorded before ``before`` (rules and
        their grouping windows stay); returns how many rows went."""
