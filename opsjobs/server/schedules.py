"""Schedule and analysis routes: ``/schedules`` CRUD and run-now, ``/analyze``.

Schedules belong to whoever created them (their job's owner); like jobs, another user's schedule
answers 404, and admins (``system_admin``, ``site_admin``) see and manage everyone's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsjobs.auth import SYSTEM_OWNER, Auth, User
from opsjobs.errors import NotFound, PermissionDenied, ValidationError
from opsjobs.model import Job
from opsjobs.schedule_api import Schedules
from opsjobs.schedules import Schedule
from opsjobs.server.handlers import ApiHandler, keyed
from opsjobs.server.openapi import API
from opsjobs.server.service import ApiService

__all__ = ["ScheduleService", "schedule_routes"]

#: Body fields of a schedule and the ``Schedules.build`` argument each one maps to.
_BUILD = {
    "every": "every",
    "cron": "cron",
    "tz": "tz",
    "command": "command",
    "call": "call",
    "kwargs": "kwargs",
    "argv": "argv",
    "notebook": "notebook",
    "parameters": "parameters",
    "kernel": "kernel",
    "allow_unknown": "allow_unknown",
    "job_name": "job_name",
    "mode": "mode",
    "queue": "queue",
    "description": "description",
    "timeout": "timeout",
    "retries": "retries",
    "retry_delay": "retry_delay",
    "retry_backoff": "retry_backoff",
    "retry_max": "retry_max",
    "retry_on": "retry_on",
    "priority": "priority",
    "misfire": "misfire",
    "grace": "grace",
    "catchup_cap": "catchup_cap",
    "max_instances": "max_instances",
    "enabled": "enabled",
}


class ScheduleService:
    """The synchronous core of the schedule and analysis routes."""

    def __init__(self, api: ApiService) -> None:
        self.api = api

    @property
    def _schedules(self) -> Schedules:
        return self.api.client.schedules

    def visible(self, user: User, name_or_id: str) -> Schedule:
        """A schedule ``user`` may change: their own (any, for admins)."""
        try:
            return self._schedules.visible(name_or_id, owner=user.email, sees_all=user.sees_all)
        except NotFound:
            self.readable(user, name_or_id)  # NotFound when it is not even readable
            raise PermissionDenied(
                f"schedule {name_or_id!r} belongs to the server (system): "
                "only an admin may change it"
            ) from None

    def readable(self, user: User, name_or_id: str) -> Schedule:
        """A schedule ``user`` may read: one they may change, or the ``system`` owner's."""
        try:
            return self._schedules.visible(name_or_id, owner=user.email, sees_all=user.sees_all)
        except NotFound:
            found = self._schedules.get(name_or_id, owner=SYSTEM_OWNER)
            if found.spec.owner != SYSTEM_OWNER:  # found by another user's id
                raise NotFound(f"no schedule named {name_or_id!r}") from None
            return found

    def list(self, user: User, *, everyone: bool = False) -> list[Schedule]:
        owners = Auth.owner_scope(user, everyone=everyone)
        return [s for s in self._schedules.list() if owners is None or s.spec.owner in owners]

    def _build(self, user: User, body: Mapping[str, Any]) -> Schedule:
        Auth.check_submit(user)
        args = {_BUILD[k]: v for k, v in body.items() if k != "name"}
        if "notebook" in args:
            args["notebook"] = self.api.catalog_notebook(args["notebook"])
        schedule = self._schedules.build(body["name"], owner=user.email, **args)
        Auth.check_run(user, schedule.spec, self.api.policy)
        return schedule

    def add(self, user: User, body: Mapping[str, Any]) -> Schedule:
        return self._schedules.add_schedule(self._build(user, body))

    def replace(self, user: User, name_or_id: str, body: Mapping[str, Any]) -> Schedule:
        current = self.visible(user, name_or_id)
        return self._schedules.update(current.id, self._build(user, body))

    def patch(self, user: User, name_or_id: str, body: Mapping[str, Any]) -> Schedule:
        """Pause or resume (``enabled``), change a notebook schedule's ``parameters``."""
        Auth.check_submit(user)
        current = self.visible(user, name_or_id)
        if "parameters" in body or body.get("allow_unknown"):
            current = self._schedules.set_parameters(
                current.id,
                body.get("parameters") or {},
                allow_unknown=bool(body.get("allow_unknown")),
            )
            Auth.check_run(user, current.spec, self.api.policy)
        if "enabled" in body:
            return self.set_enabled(user, current.id, bool(body["enabled"]))
        return current

    def set_enabled(self, user: User, name_or_id: str, enabled: bool) -> Schedule:
        Auth.check_submit(user)
        current = self.visible(user, name_or_id)
        if enabled:
            return self._schedules.resume(current.id)
        return self._schedules.pause(current.id)

    def remove(self, user: User, name_or_id: str) -> str:
        Auth.check_submit(user)
        current = self.visible(user, name_or_id)
        self._schedules.remove(current.id)
        return current.id

    def run_now(self, user: User, name_or_id: str, body: Mapping[str, Any] | None = None) -> Job:
        Auth.check_submit(user)
        body = body or {}
        return self._schedules.run_now(
            self.visible(user, name_or_id).id,
            parameters=body.get("parameters"),
            allow_unknown=bool(body.get("allow_unknown")),
        )

    def analyze(self, user: User, body: Mapping[str, Any]) -> Job:
        """Queue a live memory analysis of this server's process (or of the workers on
        ``queue``) as a ``call`` job in thread mode."""
        from opsjobs.analyzer.job import JOB_NAME, TARGET, job_kwargs

        # a thread job inside the server's (or a worker's) process: for roles that run code
        Auth.check_code(user, "a live analysis")
        args = dict(body)
        queue = args.pop("queue", None)
        if queue is None:
            if not self.api.worker_ids:
                raise ValidationError("this server hosts no worker: give the queue to analyse")
            queue = f"worker:{self.api.worker_ids[0]}"
        kwargs = job_kwargs(**args)
        submit = {"name": JOB_NAME, "call": TARGET, "kwargs": kwargs, "mode": "thread"}
        return self.api.submit(user, {**submit, "queue": queue, "timeout": 600.0})


def _service(handler: ApiHandler) -> ScheduleService:
    return ScheduleService(handler.service)


@keyed
class SchedulesHandler(ApiHandler):
    async def get(self) -> None:
        found = await self.call(_service(self).list, self.user, everyone=self.flag("all"))
        self.reply({"schedules": [s.to_dict() for s in found]})

    async def post(self) -> None:
        body = self.body("ScheduleRequest")
        schedule = await self.call(_service(self).add, self.user, body)
        self.reply({"schedule": schedule.to_dict()}, status=201)


@keyed
class ScheduleHandler(ApiHandler):
    async def get(self, name_or_id: str) -> None:
        schedule = await self.call(_service(self).readable, self.user, name_or_id)
        self.reply({"schedule": schedule.to_dict()})

    async def put(self, name_or_id: str) -> None:
        body = self.body("ScheduleRequest")
        schedule = await self.call(_service(self).replace, self.user, name_or_id, body)
        self.reply({"schedule": schedule.to_dict()})

    async def patch(self, name_or_id: str) -> None:
        body = self.body("SchedulePatch")
        schedule = await self.call(_service(self).patch, self.user, name_or_id, body)
        self.reply({"schedule": schedule.to_dict()})

    async def delete(self, name_or_id: str) -> None:
        removed = await self.call(_service(self).remove, self.user, name_or_id)
        self.reply({"id": removed})


@keyed
class RunNowHandler(ApiHandler):
    async def post(self, name_or_id: str) -> None:
        body = self.body("RunNowRequest", optional=True)
        job = await self.call(_service(self).run_now, self.user, name_or_id, body)
        self.reply({"job": job.to_dict()}, status=201)


@keyed
class AnalyzeHandler(ApiHandler):
    async def post(self) -> None:
        body = self.body("AnalyzeRequest")
        job = await self.call(_service(self).analyze, self.user, body)
        self.reply({"job": job.to_dict()}, status=201)


def schedule_routes() -> dict[str, type[ApiHandler]]:
    """OpenAPI path → handler of the schedule and analysis routes."""
    return {
        f"{API}/schedules": SchedulesHandler,
        f"{API}/schedules/{{name_or_id}}": ScheduleHandler,
        f"{API}/schedules/{{name_or_id}}/run": RunNowHandler,
        f"{API}/analyze": AnalyzeHandler,
    }
