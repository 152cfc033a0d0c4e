"""Notification routes: ``/notifications/rules`` (list, add), ``/notifications/rules/{name}``
(remove) and ``/notifications/sends`` (the send log).

A rule reports job outcomes, so it is scoped like jobs: a user whose roles may submit jobs may
make rules, and those rules watch only that user's jobs; admins (``sees_all``) may watch anyone's
and see every rule and send. Everyone else sees only their own rules and the sends about their
own jobs; a user without a submitting role may read but not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsjobs.alerts.notices import NotifyRule, NotifySend
from opsjobs.alerts.notify_rules import NotifyRules
from opsjobs.auth import User
from opsjobs.errors import PermissionDenied
from opsjobs.server.handlers import ApiHandler, keyed
from opsjobs.server.openapi import API
from opsjobs.server.service import ApiService

__all__ = ["NotifyService", "notify_routes"]


class NotifyService:
    """The synchronous core of the notification routes."""

    def __init__(self, api: ApiService) -> None:
        self.store = api.client.store

    def _rules(self, user: User) -> NotifyRules:
        return NotifyRules(self.store, user.email, sees_all=user.sees_all)

    @staticmethod
    def _check_may_change(user: User) -> None:
        if not (user.sees_all or user.may_submit):
            raise PermissionDenied("changing notification rules needs a role that submits jobs")

    def rules(self, user: User) -> list[NotifyRule]:
        return self._rules(user).list()

    def add_rule(self, user: User, body: Mapping[str, Any]) -> NotifyRule:
        self._check_may_change(user)
        rules = self._rules(user)
        return rules.add(rules.build(body))

    def remove_rule(self, user: User, name_or_id: str) -> str:
        self._check_may_change(user)
        return self._rules(user).remove(name_or_id).id

    def sends(self, user: User, *, rule: str | None, limit: int) -> list[NotifySend]:
        return self._rules(user).sends(rule=rule, limit=limit)


def _service(handler: ApiHandler) -> NotifyService:
    return NotifyService(handler.service)


@keyed
class NotifyRulesHandler(ApiHandler):
    async def get(self) -> None:
        rules = await self.call(_service(self).rules, self.user)
        self.reply({"rules": [r.to_dict() for r in rules]})

    async def post(self) -> None:
        body = self.body("NotifyRuleRequest")
        rule = await self.call(_service(self).add_rule, self.user, body)
        self.reply({"rule": rule.to_dict()}, status=201)


@keyed
class NotifyRuleHandler(ApiHandler):
    async def delete(self, name_or_id: str) -> None:
        removed = await self.call(_service(self).remove_rule, self.user, name_or_id)
        self.reply({"id": removed})


@keyed
class NotifySendsHandler(ApiHandler):
    async def get(self) -> None:
        limit = self.int_arg("limit", 100, 1, 1000)
        sends = await self.call(_service(self).sends, self.user, rule=self.arg("rule"), limit=limit)
        self.reply({"count": len(sends), "sends": [s.to_dict() for s in sends]})


def notify_routes() -> dict[str, type[ApiHandler]]:
    """OpenAPI path → handler of the notification routes."""
    return {
        f"{API}/notifications/rules": NotifyRulesHandler,
        f"{API}/notifications/rules/{{name_or_id}}": NotifyRuleHandler,
        f"{API}/notifications/sends": NotifySendsHandler,
    }
