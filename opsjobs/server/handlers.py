"""The native REST routes under ``/opsjobs/api/v1`` and their one thin async adapter.

:class:`ApiHandler` is that adapter: it answers 401 without a valid key, reads JSON bodies (size
limit, schema from the OpenAPI document), runs one :class:`~opsjobs.server.service.ApiService`
call on the API's thread pool and turns :class:`~opsjobs.errors.OpsJobsError` into a 4xx
``{"success": false, "error": ...}``. Unexpected errors answer 500 with no traceback.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from tornado import web

from opsjobs.auth import User
from opsjobs.errors import OpsJobsError, ValidationError
from opsjobs.model import validate_job_id
from opsjobs.server.identity import opsjobs_user
from opsjobs.server.openapi import API, check_body, document, query_names
from opsjobs.server.service import ApiService, JobFilter, job_summary, metric_dict, user_dict

__all__ = [
    "MAX_BODY",
    "MAX_DEPTH",
    "ApiFailure",
    "ApiHandler",
    "NoRouteHandler",
    "keyed",
    "native_routes",
    "parse_json",
]

T = TypeVar("T")
H = TypeVar("H", bound=type)

#: Largest request body accepted (bytes).
MAX_BODY = 1 << 20
#: Deepest nesting of arrays and objects accepted in a JSON body.
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")
_METHODS = ("get", "post", "put", "patch", "delete")


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """A request body as JSON: strict UTF-8, arrays and objects nested at most ``max_depth``
    deep, no lone surrogate (``"\\ud800"``) in any key or string; else ValidationError.

    A lone surrogate cannot be encoded again (store, logs, replies), so it is refused here,
    not found later as a 500. The nesting is bounded after parsing, by an iterative walk; a
    body nested deeper than the parser's own recursion limit is refused by that limit.
    """
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise ValidationError("malformed JSON: the body is not valid UTF-8") from None
    except RecursionError:
        raise ValidationError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise ValidationError(f"malformed JSON: {str(exc)[:200]}") from None
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise ValidationError("invalid Unicode in JSON: a lone surrogate")
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise ValidationError(f"JSON nested deeper than {max_depth} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    stack.append((key, depth))
                stack.append((item, depth + 1))
    return data


def keyed(cls: H) -> H:
    """Mark a handler's HTTP methods as checked by :class:`ApiHandler` itself (401 JSON without
    a key) rather than by jupyter_server's login redirect."""
    for name in _METHODS:
        method = cls.__dict__.get(name)
        if method is not None:
            setattr(cls, name, allow_unauthenticated(method))
    return cls


class ApiFailure(web.HTTPError):
    """A 4xx answer whose JSON ``error`` is ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status)
        self.message = message


class ApiHandler(APIHandler):
    """Base of every opsjobs route (native and seed)."""

    user: User
    #: The OpenAPI path this handler serves (given at registration).
    route = ""

    def initialize(self, route: str = "") -> None:
        self.route = route

    @property
    def service(self) -> ApiService:
        return self.settings["opsjobs_service"]

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        length = self.request.headers.get("Content-Length", "0")
        if len(self.request.body or b"") > MAX_BODY or (
            length.isdigit() and int(length) > MAX_BODY
        ):
            raise ApiFailure(413, f"request body larger than {MAX_BODY} bytes")
        user = opsjobs_user(self)
        if user is None:
            raise ApiFailure(401, "a valid API key is required (Authorization: Bearer <key>)")
        self.user = user
        known = query_names(self.route, self.request.method or "") | {"_xsrf"}
        unknown = sorted(set(self.request.query_arguments) - known)
        if unknown:
            raise ApiFailure(422, f"unknown query parameter(s): {', '.join(unknown)[:200]}")

    def check_xsrf_cookie(self) -> None:
        # Bearer requests are exempt (as Jupyter's token requests are); cookie sessions are not.
        if getattr(self, "_token_authenticated", False):
            return
        super().check_xsrf_cookie()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiFailure):
            message = exc.message
        elif isinstance(exc, web.HTTPError) and status_code < 500:
            message = exc.log_message % exc.args if exc.log_message else (exc.reason or "error")
            if status_code == 403 and self.current_user is None:
                status_code, message = 401, "a valid API key is required"
                self.set_status(401)
        else:
            message = "internal error (logged on the server)"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"success": False, "error": message}))

    async def call(self, fn: Callable[..., T], *args: Any, read: bool = False, **kwargs: Any) -> T:
        """Run one service call on the API's thread pool; opsjobs errors become 4xx answers.

        ``read=True`` marks a pure read: on a local store (SQLite, memory) it runs right here on
        the event loop — WAL readers never wait for writers, and the pool hop cost more than
        the read. Writes always go to the pool (they may wait on another process's lock)."""
        try:
            if read and self.settings.get("opsjobs_local_store"):
                return fn(*args, **kwargs)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self.settings.get("opsjobs_executor"), lambda: fn(*args, **kwargs)
            )
        except OpsJobsError as exc:
            status = exc.status if 400 <= exc.status < 500 else 503
            raise ApiFailure(status, str(exc)) from None

    def body(self, schema: str, *, optional: bool = False) -> dict[str, Any]:
        if optional and not self.request.body:
            return {}
        ctype = self.request.headers.get("Content-Type", "application/json")
        if "json" not in ctype.lower():
            raise ApiFailure(
                415 if self.request.body else 400, "send a JSON body (application/json)"
            )
        try:
            data = parse_json(self.request.body or b"null")
        except ValidationError as exc:
            raise ApiFailure(400, str(exc)) from None
        try:
            return check_body(schema, data)
        except ValidationError as exc:
            raise ApiFailure(422, str(exc)) from None

    def reply(self, data: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps({"success": True, **data}, allow_nan=False, default=str))

    # -- query parameters -----------------------------------------------------------------------
    def arg(self, name: str) -> str | None:
        values = self.get_query_arguments(name)
        if len(values) > 1:
            raise ApiFailure(422, f"give {name} once")
        return values[0] if values else None

    def int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        text = self.arg(name)
        if text is None:
            return default
        if not re.fullmatch(r"[+-]?\d{1,12}", text.strip()) or not lo <= int(text) <= hi:
            raise ApiFailure(422, f"{name} must be an integer between {lo} and {hi}")
        return int(text)

    def flag(self, name: str) -> bool:
        text = self.arg(name)
        text = "0" if text is None else text.strip().lower()
        if text not in ("0", "1", "true", "false"):
            raise ApiFailure(422, f"{name} must be 0, 1, true or false")
        return text in ("1", "true")


@keyed
class JobsHandler(ApiHandler):
    async def post(self) -> None:
        body = self.body("SubmitRequest")
        job = await self.call(self.service.submit, self.user, body)
        self.reply({"job": job.to_dict()}, status=201)

    async def get(self) -> None:
        states = [s.strip() for s in (self.arg("state") or "").split(",") if s.strip()]
        f = JobFilter(
            states=tuple(states),
            name=self.arg("name_like"),
            exact_name=self.arg("name"),
            queue=self.arg("queue"),
            sort=self.arg("sort") or "-submitted_at",
            limit=self.int_arg("limit", 50, 0, 1000),
            offset=self.int_arg("offset", 0, 0, 10**9),
            everyone=self.flag("all"),
            total=self.flag("total"),
        )
        jobs, total = await self.call(self.service.list_jobs, self.user, f, read=True)
        self.reply(
            {
                "count": len(jobs),
                "total": total,
                "limit": f.limit,
                "offset": f.offset,
                "jobs": [job_summary(j) for j in jobs],
            }
        )


@keyed
class JobsBatchHandler(ApiHandler):
    async def post(self) -> None:
        body = self.body("BatchSubmitRequest")
        jobs = await self.call(self.service.submit_many, self.user, body["jobs"])
        self.reply({"count": len(jobs), "jobs": [job_summary(j) for j in jobs]}, status=201)


@keyed
class JobHandler(ApiHandler):
    async def get(self, job_id: str) -> None:
        job = await self.call(self.service.visible_job, self.user, job_id, read=True)
        self.reply({"job": job.to_dict()})

    async def delete(self, job_id: str) -> None:
        await self.call(self.service.delete, self.user, job_id)
        self.reply({"id": validate_job_id(job_id)})


@keyed
class AttemptsHandler(ApiHandler):
    async def get(self, job_id: str) -> None:
        attempts = await self.call(self.service.attempts, self.user, job_id, read=True)
        self.reply({"job_id": validate_job_id(job_id), "attempts": [a.to_dict() for a in attempts]})


@keyed
class RerunHandler(ApiHandler):
    async def post(self, job_id: str) -> None:
        body = self.body("RerunRequest", optional=True)
        job = await self.call(self.service.rerun, self.user, job_id, body)
        self.reply({"job": job.to_dict()}, status=201)


@keyed
class CancelHandler(ApiHandler):
    async def post(self, job_id: str) -> None:
        job = await self.call(self.service.cancel, self.user, job_id)
        self.reply({"job": job.to_dict()})


@keyed
class StatsHandler(ApiHandler):
    async def get(self) -> None:
        stats = await self.call(
            self.service.stats,
            self.user,
            everyone=self.flag("all"),
            name=self.arg("name_like"),
            exact_name=self.arg("name"),
        )
        self.reply({"stats": stats.to_dict()})


@keyed
class HistoryHandler(ApiHandler):
    async def get(self, name: str) -> None:
        data = await self.call(
            self.service.history,
            self.user,
            name,
            limit=self.int_arg("limit", 100, 1, 1000),
            everyone=self.flag("all"),
            read=True,
        )
        self.reply(data)


@keyed
class WorkersHandler(ApiHandler):
    async def get(self) -> None:
        self.reply({"workers": await self.call(self.service.workers)})


@keyed
class MetricsHandler(ApiHandler):
    async def get(self, name: str) -> None:
        since_text = self.arg("since")
        since: float | None = None
        if since_text:
            try:
                since = float(since_text)
            except ValueError:
                raise ApiFailure(422, "since must be a number (epoch seconds)") from None
            if since != since or since in (float("inf"), float("-inf")):
                raise ApiFailure(422, "since must be a finite number")
        points = await self.call(
            self.service.metrics,
            name,
            since=since,
            job_id=self.arg("job_id"),
            limit=self.int_arg("limit", 10_000, 1, 100_000),
        )
        self.reply({"name": name, "points": [metric_dict(p) for p in points]})


@keyed
class MeHandler(ApiHandler):
    async def get(self) -> None:
        self.reply({"user": user_dict(self.user)})


@keyed
class NotebooksHandler(ApiHandler):
    async def get(self) -> None:
        found = await self.call(self.service.notebooks)
        folder = self.service.catalog.root if self.service.catalog is not None else ""
        self.reply({"folder": str(folder), "notebooks": [n.to_dict() for n in found]})


@keyed
class OpenApiHandler(ApiHandler):
    async def get(self) -> None:
        self.finish(json.dumps(document()))


class NoRouteHandler(ApiHandler):
    """Any other path under the API: a JSON 404 (not Jupyter's HTML page)."""

    async def prepare(self) -> None:  # type: ignore[override]
        raise ApiFailure(404, "no such API route")


def native_routes() -> dict[str, type[ApiHandler]]:
    """OpenAPI path → handler of the native routes."""
    return {
        f"{API}/jobs": JobsHandler,
        f"{API}/jobs:batch": JobsBatchHandler,
        f"{API}/jobs/{{job_id}}": JobHandler,
        f"{API}/jobs/{{job_id}}/attempts": AttemptsHandler,
        f"{API}/jobs/{{job_id}}/cancel": CancelHandler,
        f"{API}/jobs/{{job_id}}/rerun": RerunHandler,
        f"{API}/stats": StatsHandler,
        f"{API}/history/{{name}}": HistoryHandler,
        f"{API}/workers": WorkersHandler,
        f"{API}/metrics/{{name}}": MetricsHandler,
        f"{API}/me": MeHandler,
        f"{API}/notebooks": NotebooksHandler,
        f"{API}/openapi.json": OpenApiHandler,
    }
