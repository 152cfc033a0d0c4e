"""Alert routes: ``/alerts`` (open or all alerts) and ``/alerts/rules`` (list, add, remove).

Alerts are about hosts and workers, not about anyone's jobs, so every authenticated user may
list alerts and rules; adding or removing a rule changes what everyone is alerted about, so it
needs an admin role (``system_admin`` or ``site_admin``, :data:`opsjobs.auth.ADMIN_ROLES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsjobs.alerts import AlertRule, AlertRules, alert_summary
from opsjobs.auth import ADMIN_ROLES, User
from opsjobs.errors import PermissionDenied, ValidationError
from opsjobs.server.handlers import ApiHandler, keyed
from opsjobs.server.openapi import API
from opsjobs.server.service import ApiService

__all__ = ["AlertService", "alert_routes"]


class AlertService:
    """The synchronous core of the alert routes."""

    def __init__(self, api: ApiService) -> None:
        self.store = api.client.store

    @staticmethod
    def check_admin(user: User) -> None:
        if not user.sees_all:
            raise PermissionDenied(
                f"changing alert rules needs one of the roles {', '.join(sorted(ADMIN_ROLES))}"
            )

    def alerts(self, *, state: str | None, limit: int) -> dict[str, Any]:
        if state not in (None, "open", "all"):
            raise ValidationError("state must be open or all")
        found = self.store.list_alerts(open_only=state != "all", limit=limit)
        return {
            "count": len(found),
            "open": alert_summary(self.store),
            "alerts": [a.to_dict() for a in found],
        }

    def rules(self) -> list[AlertRule]:
        return AlertRules(self.store).list()

    def add_rule(self, user: User, body: Mapping[str, Any]) -> AlertRule:
        self.check_admin(user)
        rules = AlertRules(self.store)
        return rules.add(rules.build(body))

    def remove_rule(self, user: User, name_or_id: str) -> str:
        self.check_admin(user)
        return AlertRules(self.store).remove(name_or_id).id


def _service(handler: ApiHandler) -> AlertService:
    return AlertService(handler.service)


@keyed
class AlertsHandler(ApiHandler):
    async def get(self) -> None:
        limit = self.int_arg("limit", 100, 1, 1000)
        data = await self.call(_service(self).alerts, state=self.arg("state"), limit=limit)
        self.reply(data)


@keyed
class AlertRulesHandler(ApiHandler):
    async def get(self) -> None:
        rules = await self.call(_service(self).rules)
        self.reply({"rules": [r.to_dict() for r in rules]})

    async def post(self) -> None:
        body = self.body("AlertRuleRequest")
        rule = await self.call(_service(self).add_rule, self.user, body)
        self.reply({"rule": rule.to_dict()}, status=201)


@keyed
class AlertRuleHandler(ApiHandler):
    async def delete(self, name_or_id: str) -> None:
        removed = await self.call(_service(self).remove_rule, self.user, name_or_id)
        self.reply({"id": removed})


def alert_routes() -> dict[str, type[ApiHandler]]:
    """OpenAPI path → handler of the alert routes."""
    return {
        f"{API}/alerts": AlertsHandler,
        f"{API}/alerts/rules": AlertRulesHandler,
        f"{API}/alerts/rules/{{name_or_id}}": AlertRuleHandler,
    }
