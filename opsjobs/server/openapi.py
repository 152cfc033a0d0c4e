"""The OpenAPI 3.1 document of the REST API, and request validation against its schemas.

Schemas are JSON Schema 2020-12 (OpenAPI 3.1), so the same text validates request bodies at run
time (:func:`check_body`) and responses in the test suite. A test keeps this document and the
registered routes equal.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from opsjobs.errors import ValidationError
from opsjobs.model import QUEUE_PATTERN

_QUEUE_DOC = (
    "1-120 characters of letters, digits and _.:@-, starting with a letter or digit; "
    "a name that reads as a number or a duration (nan, 1e5, 30m) is refused (422)"
)

__all__ = ["API", "PROMETHEUS", "SEED", "check_body", "document", "operations", "query_names"]

API = "/opsjobs/api/v1"
SEED = "/apps/WebHostTaskManagement/api/v1"
#: The Prometheus text exposition (same bearer keys as the API).
PROMETHEUS = "/opsjobs/metrics"

_S = {"type": "string"}
_NS = {"type": ["string", "null"]}
_NN = {"type": ["number", "null"]}
_NI = {"type": ["integer", "null"]}
_B = {"type": "boolean"}
_I = {"type": "integer"}
_TRUE = {"const": True}
_STATES = ["queued", "running", "succeeded", "failed", "cancelled", "timed_out", "lost"]
_MODES = ["inline", "thread", "process", "MainLoop", "Runspace", "BackgroundJob"]
_NOTIFY_STATES = ("failed", "timed_out", "lost", "succeeded", "recovered")


def _obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    schema["required"] = list(props) if required is None else required
    schema.update(extra)
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(props: dict[str, Any]) -> dict[str, Any]:
    return _obj({"success": _TRUE, **props})


_JOB_FIELDS: dict[str, Any] = {
    "id": {"type": "string", "format": "uuid"},
    "name": _S,
    "description": _S,
    "owner": _S,
    "kind": _S,
    "mode": {"enum": ["inline", "thread", "process"]},
    "queue": _S,
    "priority": _I,
    "timeout": _NN,
    "retries": _I,
    "schedule_id": _NS,
    "rerun_of": {"type": ["string", "null"], "description": "the job this one runs again"},
    "state": {"enum": _STATES},
    "submitted_at": _S,
    "started_at": _NS,
    "finished_at": _NS,
    "runtime": _NN,
    "worker_id": _NS,
    "host": _NS,
    "attempt": _I,
    "cancel_requested": _B,
    "exit_code": _NI,
    "result": {},
    "error": _NS,
    "peak_rss": {"type": ["integer", "null"], "description": "peak resident memory, bytes"},
    "retry_delay": {"type": "number", "description": "seconds before the first retry"},
    "retry_backoff": {"type": "number", "description": "factor of each next delay"},
    "retry_max": {"type": "number", "description": "the longest delay, seconds"},
    "retry_on": {"type": "array", "items": {"enum": ["failed", "timed_out"]}},
    "run_after": {
        "type": ["string", "null"],
        "description": "a queued job waiting for its next attempt is not run before this",
    },
}

_DURATION = {
    "type": ["number", "string"],
    "description": "seconds, or a duration such as 10s, 10m, 1h",
}

_ATTEMPT = _obj(
    {
        "job_id": _S,
        "attempt": _I,
        "state": {"enum": _STATES},
        "started_at": _NS,
        "finished_at": _NS,
        "runtime": _NN,
        "worker_id": _NS,
        "host": _NS,
        "exit_code": _NI,
        "output": _S,
        "error": _NS,
        "peak_rss": _NI,
    }
)

_SUBMIT_PROPS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "command": {"type": "string", "description": "Python source (the seed's command)"},
    "call": {"type": "string", "description": "a callable, package.module:function"},
    "kwargs": {"type": "object", "description": "keyword arguments of call"},
    "argv": {"type": "array", "items": _S, "minItems": 1, "maxItems": 1000},
    "mode": {"enum": _MODES, "default": "thread"},
    "queue": {"type": "string", "pattern": QUEUE_PATTERN, "description": _QUEUE_DOC},
    "description": {"type": "string", "maxLength": 4000},
    "timeout": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 604800},
    "retries": {
        "type": "integer",
        "minimum": 0,
        "maximum": 100,
        "description": "attempts after the first: on a lost worker, and on retry_on outcomes",
    },
    "retry_delay": {**_DURATION, "description": "delay before the first retry (default 10s)"},
    "retry_backoff": {"type": "number", "minimum": 1, "maximum": 10, "default": 2},
    "retry_max": {**_DURATION, "description": "the longest delay (default 10m)"},
    "retry_on": {
        "type": "array",
        "items": {"enum": ["failed", "timed_out"]},
        "description": "outcomes that are retried (default both)",
    },
    "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
}

_NOTEBOOK_PROPS: dict[str, Any] = {
    "notebook": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "description": "a notebook of the server's catalog: its path in the catalog folder "
        "(GET /notebooks); anything outside it is refused (422)",
    },
    "parameters": {
        "type": "object",
        "description": "parameters of notebook, checked against its parameters cell: an "
        "undeclared name or a value of the wrong type is refused (422)",
    },
    "kernel": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
    "allow_unknown": {
        "type": "boolean",
        "description": "pass parameters the notebook does not declare",
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"success": {"const": False}, "error": _S}),
    "SubmitRequest": _obj(
        {
            **_SUBMIT_PROPS,
            **_NOTEBOOK_PROPS,
        },
        ["name"],
        additionalProperties=False,
        description="Give exactly one of command, call (with kwargs), argv or notebook.",
    ),
    "BatchSubmitRequest": _obj(
        {
            "jobs": {
                "type": "array",
                "items": _ref("SubmitRequest"),
                "minItems": 1,
                "maxItems": 10_000,
            }
        },
        ["jobs"],
        additionalProperties=False,
        description="Jobs submitted all or none: an invalid one refuses the batch (422, the "
        "error names its index); the valid batch is inserted at once and wakes workers once.",
    ),
    "JobSummary": _obj(_JOB_FIELDS),
    "Job": _obj({**_JOB_FIELDS, "payload": {"type": "object"}, "output": _S}),
    "JobReply": _ok({"job": _ref("Job")}),
    "Attempt": _ATTEMPT,
    "AttemptList": _ok({"job_id": _S, "attempts": {"type": "array", "items": _ref("Attempt")}}),
    "BatchReply": _ok({"count": _I, "jobs": {"type": "array", "items": _ref("JobSummary")}}),
    "JobList": _ok(
        {
            "count": _I,
            "total": {"type": ["integer", "null"], "description": "with total=1"},
            "limit": _I,
            "offset": _I,
            "jobs": {"type": "array", "items": _ref("JobSummary")},
        }
    ),
    "Deleted": _ok({"id": _S}),
    "Stats": _ok(
        {
            "stats": _obj(
                {
                    "total": _I,
                    "succeeded": _I,
                    "failed": _I,
                    "running": _I,
                    "queued": _I,
                    "avg_runtime": _NN,
                }
            )
        }
    ),
    "Worker": _obj(
        {
            "id": _S,
            "host": _S,
            "pid": _I,
            "queues": {"type": "array", "items": _S},
            "threads": _I,
            "started_at": _S,
            "heartbeat_at": _S,
            "lease_seconds": {"type": "number"},
            "stopped_at": _NS,
            "busy": _I,
            "alive": _B,
            "hosted_here": _B,
        }
    ),
    "Workers": _ok({"workers": {"type": "array", "items": _ref("Worker")}}),
    "MetricPoint": _obj(
        {
            "name": _S,
            "value": {"type": "number"},
            "labels": {"type": "object", "additionalProperties": _S},
            "at": _S,
            "job_id": _NS,
            "worker_id": _NS,
            "host": _NS,
        }
    ),
    "Metrics": _ok({"name": _S, "points": {"type": "array", "items": _ref("MetricPoint")}}),
    "Me": _ok(
        {
            "user": _obj(
                {
                    "id": _S,
                    "email": _S,
                    "name": _S,
                    "roles": {"type": "array", "items": _S},
                    "is_test": _B,
                    "may_submit": _B,
                    "sees_all": _B,
                }
            )
        }
    ),
    "OpenApi": {"type": "object", "required": ["openapi", "paths"]},
    "JobOutput": _ok(
        {
            "job_id": _S,
            "state": {"enum": _STATES},
            "finished": _B,
            "text": {"type": "string", "description": "the log from offset on (a chunk)"},
            "offset": {"type": "integer", "description": "ask for this offset next"},
            "size": {"type": "integer", "description": "bytes in the log now"},
        }
    ),
    "JobFiles": _ok(
        {
            "job_id": _S,
            "files": {
                "type": "array",
                "items": _obj({"name": _S, "size": _I, "media_type": _S, "url": _S}),
            },
        }
    ),
    "History": _ok(
        {
            "name": _S,
            "summary": _obj(
                {
                    "runs": _I,
                    "finished": _I,
                    "succeeded": _I,
                    "success_rate": _NN,
                    "avg_runtime": _NN,
                    "max_runtime": _NN,
                    "max_peak_rss": _NI,
                }
            ),
            "runs": {
                "type": "array",
                "items": _obj(
                    {
                        "id": _S,
                        "state": {"enum": _STATES},
                        "submitted_at": _S,
                        "started_at": _NS,
                        "finished_at": _NS,
                        "runtime": _NN,
                        "peak_rss": _NI,
                        "rerun_of": _NS,
                        "error": _NS,
                    }
                ),
            },
        }
    ),
    "NotebookParameter": _obj(
        {
            "name": _S,
            "type": {"enum": ["int", "float", "bool", "str", "list", "dict", "any"]},
            "default": {"description": "the default's value (null if not a literal)"},
            "default_text": _S,
            "help": _S,
        }
    ),
    "Notebook": _obj(
        {
            "path": _S,
            "title": _S,
            "has_parameters_cell": _B,
            "parameters": {"type": "array", "items": _ref("NotebookParameter")},
        }
    ),
    "NotebookList": _ok({"folder": _S, "notebooks": {"type": "array", "items": _ref("Notebook")}}),
    "ScheduleRequest": _obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 120},
            "every": {
                "type": ["number", "string"],
                "description": "seconds, or a duration such as 30m (give every or cron)",
            },
            "cron": {"type": "string", "maxLength": 200},
            "tz": {"type": "string", "maxLength": 64},
            **{k: v for k, v in _SUBMIT_PROPS.items() if k != "name"},
            **_NOTEBOOK_PROPS,
            "job_name": {"type": "string", "minLength": 1, "maxLength": 200},
            "misfire": {"enum": ["coalesce", "skip", "catchup"]},
            "grace": {"type": ["number", "string"]},
            "catchup_cap": {"type": "integer", "minimum": 1, "maximum": 1000},
            "max_instances": {"type": "integer", "minimum": 1, "maximum": 10000},
            "enabled": _B,
        },
        ["name"],
        additionalProperties=False,
        description="Give exactly one of every or cron, and one of command, call, argv or "
        "notebook.",
    ),
    "SchedulePatch": _obj(
        {
            "enabled": _B,
            "parameters": {
                "type": "object",
                "description": "a notebook schedule's parameters, merged over its own",
            },
            "allow_unknown": _B,
        },
        [],
        additionalProperties=False,
        minProperties=1,
    ),
    "RerunRequest": _obj(
        {
            "parameters": {
                "type": "object",
                "description": "a notebook job's parameters, merged over the old run's",
            },
            "allow_unknown": _B,
            "mode": {"enum": _MODES},
            "queue": {"type": "string", "pattern": QUEUE_PATTERN, "description": _QUEUE_DOC},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 604800},
        },
        [],
        additionalProperties=False,
        description="Every field is optional: an empty body runs the job again as it was.",
    ),
    "RunNowRequest": _obj(
        {
            "parameters": {
                "type": "object",
                "description": "parameters of this run only, merged over the schedule's",
            },
            "allow_unknown": _B,
        },
        [],
        additionalProperties=False,
    ),
    "Schedule": _obj(
        {
            "id": _S,
            "name": _S,
            "trigger": {"enum": ["interval", "cron"]},
            "every_seconds": _NN,
            "cron": _NS,
            "tz": _S,
            "enabled": _B,
            "misfire": _S,
            "grace_seconds": {"type": "number"},
            "catchup_cap": _I,
            "max_instances": _I,
            "next_fire_at": _NS,
            "last_fire_at": _NS,
            "last_job_id": _NS,
            "last_job_state": _NS,
            "created_at": _NS,
            "updated_at": _NS,
            "job": {"type": "object"},
        }
    ),
    "ScheduleReply": _ok({"schedule": _ref("Schedule")}),
    "ScheduleList": _ok({"schedules": {"type": "array", "items": _ref("Schedule")}}),
    "AnalyzeRequest": _obj(
        {
            "deep": _B,
            "top_count": {"type": "integer", "minimum": 1, "maximum": 1000},
            "export_csv": _B,
            "time_budget": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
            "history_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 8760},
            "queue": {
                "type": "string",
                "pattern": QUEUE_PATTERN,
                "description": "whose process to analyse (default: this server's worker)",
            },
        },
        [],
        additionalProperties=False,
    ),
    # -- alerts ---------------------------------------------------------------------------------
    "AlertRuleRequest": _obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 120},
            "metric": {"type": "string", "minLength": 1, "maxLength": 120},
            "condition": {"enum": ["above", "below", "rate_above", "rate_below"]},
            "threshold": {"type": "number"},
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200},
                "maxProperties": 20,
                "description": "only series carrying these labels (host matches the host)",
            },
            "for_points": {"type": "integer", "minimum": 1, "maximum": 100},
            "for_seconds": {"type": "number", "minimum": 0, "maximum": 2592000},
            "window_seconds": {"type": "number", "minimum": 1, "maximum": 2592000},
            "per_seconds": {"type": "number", "minimum": 1, "maximum": 2592000},
            "severity": {"enum": ["info", "warning", "critical"]},
            "description": {"type": "string", "maxLength": 1000},
            "enabled": _B,
        },
        ["name", "metric", "condition", "threshold"],
        additionalProperties=False,
        description="Rates are the counter's increase per per_seconds over window_seconds.",
    ),
    "AlertRule": _obj(
        {
            "id": _S,
            "name": _S,
            "metric": _S,
            "condition": {"enum": ["above", "below", "rate_above", "rate_below"]},
            "threshold": {"type": "number"},
            "labels": {"type": "object", "additionalProperties": _S},
            "for_points": _I,
            "for_seconds": {"type": "number"},
            "window_seconds": {"type": "number"},
            "per_seconds": {"type": "number"},
            "severity": {"enum": ["info", "warning", "critical"]},
            "description": _S,
            "enabled": _B,
            "created_at": _NS,
            "text": _S,
        }
    ),
    "AlertRuleReply": _ok({"rule": _ref("AlertRule")}),
    "AlertRuleList": _ok({"rules": {"type": "array", "items": _ref("AlertRule")}}),
    "Alert": _obj(
        {
            "id": _S,
            "rule_id": _S,
            "rule": _S,
            "metric": _S,
            "labels": {"type": "object", "additionalProperties": _S},
            "severity": {"enum": ["info", "warning", "critical"]},
            "state": {"enum": ["open", "resolved"]},
            "value": _NN,
            "message": _S,
            "opened_at": _S,
            "updated_at": _S,
            "resolved_at": _NS,
        }
    ),
    "AlertList": _ok(
        {
            "count": _I,
            "open": _obj({"open": _I, "info": _I, "warning": _I, "critical": _I}),
            "alerts": {"type": "array", "items": _ref("Alert")},
        }
    ),
    # -- notifications on job outcomes --------------------------------------------------------
    "NotifyRuleRequest": _obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 120},
            "states": {
                "type": "array",
                "items": {"enum": list(_NOTIFY_STATES)},
                "minItems": 1,
                "description": "recovered: a success after a run that did not succeed",
            },
            "job_name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "a job name, exact or a glob (backup-*)",
            },
            "queue": {"type": "string", "maxLength": 120},
            "owner": {
                "type": "string",
                "maxLength": 200,
                "description": "only this owner's jobs (a non-admin's rules: always their own)",
            },
            "email": {"type": "array", "items": _S, "maxItems": 20},
            "webhook": {"type": "boolean", "description": "to the configured webhook receivers"},
            "group_seconds": {
                "type": "number",
                "minimum": 0,
                "maximum": 604800,
                "description": "one message per job name per window (0: every end)",
            },
            "description": {"type": "string", "maxLength": 1000},
            "enabled": _B,
        },
        ["name"],
        additionalProperties=False,
    ),
    "NotifyRule": _obj(
        {
            "id": _S,
            "name": _S,
            "states": {"type": "array", "items": {"enum": list(_NOTIFY_STATES)}},
            "job_name": _S,
            "queue": _S,
            "owner": _S,
            "email": {"type": "array", "items": _S},
            "webhook": _B,
            "group_seconds": {"type": "number"},
            "description": _S,
            "enabled": _B,
            "created_by": _S,
            "created_at": _NS,
            "text": _S,
        }
    ),
    "NotifyRuleReply": _ok({"rule": _ref("NotifyRule")}),
    "NotifyRuleList": _ok({"rules": {"type": "array", "items": _ref("NotifyRule")}}),
    "NotifySend": _obj(
        {
            "id": _NI,
            "rule_id": _S,
            "rule": _S,
            "job_id": _S,
            "job_name": _S,
            "owner": _S,
            "state": _S,
            "channel": {"enum": ["email", "webhook"]},
            "target": _S,
            "ok": _B,
            "detail": _S,
            "count": _I,
            "at": _NS,
        }
    ),
    "NotifySendList": _ok({"count": _I, "sends": {"type": "array", "items": _ref("NotifySend")}}),
    # -- the seed's shapes (its field names are a contract) ------------------------------------
    "SeedSubmitRequest": _obj(
        {
            "jobName": {"type": "string", "minLength": 1, "maxLength": 200},
            "command": {"type": "string", "description": "Python source"},
            "description": {"type": "string", "maxLength": 4000},
            "executionMode": {"enum": _MODES, "default": "Runspace"},
        },
        ["jobName", "command"],
        additionalProperties=False,
    ),
    "SeedSubmitReply": _ok(
        {
            "jobId": {"type": "string", "format": "uuid"},
            "message": _S,
            "executionMode": {"enum": _MODES[3:]},
        }
    ),
    "SeedResult": _obj(
        {
            "JobID": _S,
            "JobName": _S,
            "Command": _S,
            "Description": _S,
            "ExecutionMode": {"enum": _MODES[3:]},
            "DateStarted": _NS,
            "DateCompleted": _NS,
            "Runtime": _NN,
            "Output": _S,
            "Success": _B,
        }
    ),
    "SeedResults": _ok({"count": _I, "results": {"type": "array", "items": _ref("SeedResult")}}),
    "SeedMessage": _ok({"message": _S}),
    "SeedActiveJob": _obj(
        {
            "JobID": _S,
            "JobName": _S,
            "Command": _S,
            "Description": _S,
            "ExecutionMode": {"enum": _MODES[3:]},
            "Status": {"enum": ["queued", "running"]},
            "DateSubmitted": _S,
            "DateStarted": _NS,
            "Owner": _S,
        }
    ),
    "SeedJobs": _ok({"count": _I, "jobs": {"type": "array", "items": _ref("SeedActiveJob")}}),
    "SeedTask": _obj(
        {
            "TaskID": _S,
            "TaskName": _S,
            "Command": _S,
            "Description": _S,
            "ExecutionMode": {"enum": _MODES[3:]},
            "Schedule": _S,
            "Enabled": _B,
            "NextRun": _NS,
            "LastRun": _NS,
            "LastJobID": _NS,
            "LastStatus": _NS,
        }
    ),
    "SeedTasks": _ok({"count": _I, "tasks": {"type": "array", "items": _ref("SeedTask")}}),
    "SeedRunspace": _obj(
        {
            "RunspaceID": _S,
            "Host": _S,
            "ProcessID": _I,
            "Queues": {"type": "array", "items": _S},
            "Threads": _I,
            "Busy": _I,
            "State": {"enum": ["alive", "dead", "stopped"]},
            "Started": _S,
            "LastHeartbeat": _S,
        }
    ),
    "SeedRunspaces": _ok(
        {"count": _I, "runspaces": {"type": "array", "items": _ref("SeedRunspace")}}
    ),
}


def _param(name: str, where: str, schema: dict[str, Any], doc: str = "") -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "schema": schema, "required": where == "path"}
    if doc:
        p["description"] = doc
    return p


_ID = _param("job_id", "path", {"type": "string"}, "a job id (UUID)")
_NAME = _param("name_or_id", "path", {"type": "string"}, "a schedule's name or id")
_ALL = _param("all", "query", {"enum": ["0", "1", "true", "false"]}, "everyone's jobs (admins)")
_LIST_PARAMS = [
    _param("state", "query", {"type": "string"}, "comma-separated states"),
    _param("name", "query", {"type": "string", "maxLength": 200}, "exactly this job name"),
    _param("name_like", "query", {"type": "string", "maxLength": 200}, "name contains"),
    _param("queue", "query", {"type": "string"}),
    _param("sort", "query", {"type": "string"}, "column, '-' prefix for descending"),
    _param("limit", "query", {"type": "integer", "minimum": 0, "maximum": 1000}),
    _param("offset", "query", {"type": "integer", "minimum": 0}),
    _ALL,
    _param("total", "query", {"enum": ["0", "1", "true", "false"]}, "also count every match"),
]


def _op(
    summary: str,
    reply: str,
    *,
    status: int = 200,
    body: str | None = None,
    params: list[Any] | None = None,
    errors: tuple[int, ...] = (),
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "security": [{"apiKey": []}]}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    responses: dict[str, Any] = {
        str(status): {"description": "OK", "content": {"application/json": {"schema": _ref(reply)}}}
    }
    for code in (401, *errors):
        responses[str(code)] = {
            "description": "error",
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    op["responses"] = responses
    return op


def _redirect_op(
    summary: str, where: str, *, params: list[Any], errors: tuple[int, ...]
) -> dict[str, Any]:
    """An operation that answers 302 (to ``where``), or the JSON errors of :func:`_op`."""
    op = _op(summary, "Error", params=params, errors=errors)
    del op["responses"]["200"]
    op["responses"]["302"] = {"description": where}
    return op


_BAD = (400, 413, 422)


def _optional_body(op: dict[str, Any]) -> dict[str, Any]:
    op["requestBody"]["required"] = False
    return op


#: path → method → operation. The single list of routes; handlers register exactly these.
PATHS: dict[str, dict[str, Any]] = {
    f"{API}/jobs": {
        "post": _op(
            "Submit a job", "JobReply", status=201, body="SubmitRequest", errors=(*_BAD, 403)
        ),
        "get": _op("List jobs (filter, sort, page)", "JobList", params=_LIST_PARAMS, errors=(422,)),
    },
    f"{API}/jobs:batch": {
        "post": _op(
            "Submit many jobs at once",
            "BatchReply",
            status=201,
            body="BatchSubmitRequest",
            errors=(*_BAD, 403),
        ),
    },
    f"{API}/jobs/{{job_id}}": {
        "get": _op("Get a job with its output", "JobReply", params=[_ID], errors=(404, 422)),
        # 403: a job of the server's own (system) that the caller sees but is no admin
        "delete": _op(
            "Delete a finished job", "Deleted", params=[_ID], errors=(403, 404, 409, 422)
        ),
    },
    f"{API}/jobs/{{job_id}}/rerun": {
        "post": _optional_body(
            _op(
                "Run a job again as a new job linked to it (rerun_of), with overrides",
                "JobReply",
                status=201,
                body="RerunRequest",
                params=[_ID],
                errors=(*_BAD, 403, 404),
            )
        ),
    },
    f"{API}/jobs/{{job_id}}/attempts": {
        "get": _op(
            "A job's attempts, oldest first, each with its own output, exit code, error and "
            "timing (earlier attempts are kept when a retry queues the job again)",
            "AttemptList",
            params=[_ID],
            errors=(404, 422),
        ),
    },
    f"{API}/jobs/{{job_id}}/cancel": {
        "post": _op(
            "Cancel a queued or running job", "JobReply", params=[_ID], errors=(403, 404, 422)
        ),
    },
    f"{API}/jobs/{{job_id}}/output": {
        "get": _op(
            "A job's output so far (its log from byte offset on), also while it runs",
            "JobOutput",
            params=[
                _ID,
                _param("offset", "query", {"type": "integer", "minimum": 0}, "a byte offset"),
            ],
            errors=(404, 422),
        ),
    },
    f"{API}/jobs/{{job_id}}/files": {
        "get": _op(
            "The job's files: executed notebook and HTML, full log, results (owner-scoped)",
            "JobFiles",
            params=[_ID],
            errors=(404, 422),
        ),
    },
    f"{API}/jobs/{{job_id}}/lab": {
        "get": _redirect_op(
            "Open a notebook job's executed notebook in JupyterLab: a copy in the user's folder "
            "(explore role or an admin)",
            "to the copy in JupyterLab (/lab/tree/opsjobs-lab/...)",
            params=[_ID],
            errors=(403, 404, 422),
        )
    },
    f"{API}/jobs/{{job_id}}/files/{{name}}": {
        "get": {
            **_op("Download one file of the job (Content-Disposition: attachment)", "Error"),
            "parameters": [
                _ID,
                _param(
                    "name",
                    "path",
                    {"type": "string"},
                    "notebook.ipynb, notebook.html, output.log or results/<path>",
                ),
            ],
            "responses": {
                "200": {
                    "description": "the file",
                    "content": {
                        t: {"schema": {"type": "string"}}
                        for t in (
                            "application/x-ipynb+json",
                            "text/html",
                            "text/plain",
                            "text/csv",
                            "application/json",
                            "application/octet-stream",
                        )
                    },
                },
                **{
                    str(code): {
                        "description": "error",
                        "content": {"application/json": {"schema": _ref("Error")}},
                    }
                    for code in (401, 404, 422)
                },
            },
        },
    },
    f"{API}/stats": {
        "get": _op(
            "Totals and average runtime",
            "Stats",
            params=[_ALL, _LIST_PARAMS[1], _LIST_PARAMS[2]],
            errors=(422,),
        ),
    },
    f"{API}/history/{{name}}": {
        "get": _op(
            "The runs of one job name over time (oldest first): runtime, outcome, peak memory",
            "History",
            params=[
                _param("name", "path", {"type": "string"}, "a job name (exact)"),
                _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
                _ALL,
            ],
            errors=(422,),
        ),
    },
    f"{API}/workers": {"get": _op("The worker registry", "Workers")},
    f"{API}/metrics/{{name}}": {
        "get": _op(
            "Points of one metric, oldest first",
            "Metrics",
            params=[
                _param("name", "path", {"type": "string"}),
                _param("since", "query", {"type": "number"}, "epoch seconds"),
                _param("job_id", "query", {"type": "string"}),
                _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100000}),
            ],
            errors=(422,),
        )
    },
    f"{API}/me": {"get": _op("The calling user", "Me")},
    f"{API}/notebooks": {
        "get": _op("The notebook catalog: titles and typed parameters", "NotebookList"),
    },
    f"{API}/schedules": {
        "get": _op(
            "Schedules (the caller's; everyone's with all=1 for admins)",
            "ScheduleList",
            params=[_ALL],
            errors=(422,),
        ),
        "post": _op(
            "Create a schedule",
            "ScheduleReply",
            status=201,
            body="ScheduleRequest",
            errors=(*_BAD, 403, 409),
        ),
    },
    f"{API}/schedules/{{name_or_id}}": {
        "get": _op("One schedule", "ScheduleReply", params=[_NAME], errors=(404,)),
        "put": _op(
            "Replace a schedule's definition",
            "ScheduleReply",
            params=[_NAME],
            body="ScheduleRequest",
            errors=(*_BAD, 403, 404, 409),
        ),
        "patch": _op(
            "Pause (enabled=false) or resume; change a notebook schedule's parameters",
            "ScheduleReply",
            params=[_NAME],
            body="SchedulePatch",
            errors=(*_BAD, 403, 404),
        ),
        "delete": _op(
            "Delete a schedule (its jobs stay)", "Deleted", params=[_NAME], errors=(403, 404)
        ),
    },
    f"{API}/schedules/{{name_or_id}}/run": {
        "post": _optional_body(
            _op(
                "Run a schedule now (a notebook's parameters overridden for this run)",
                "JobReply",
                status=201,
                params=[_NAME],
                body="RunNowRequest",
                errors=(*_BAD, 403, 404, 409),
            )
        ),
    },
    f"{API}/analyze": {
        "post": _op(
            "Analyse this server's memory (a call job)",
            "JobReply",
            status=201,
            body="AnalyzeRequest",
            errors=(*_BAD, 403),
        ),
    },
    f"{API}/alerts": {
        "get": _op(
            "Alerts, newest first: open ones (state=open, the default) or all (any user)",
            "AlertList",
            params=[
                _param("state", "query", {"enum": ["open", "all"]}),
                _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
            ],
            errors=(422,),
        ),
    },
    f"{API}/alerts/rules": {
        "get": _op("Alert rules (any user)", "AlertRuleList"),
        "post": _op(
            "Create an alert rule (system_admin or site_admin)",
            "AlertRuleReply",
            status=201,
            body="AlertRuleRequest",
            errors=(*_BAD, 403, 409),
        ),
    },
    f"{API}/alerts/rules/{{name_or_id}}": {
        "delete": _op(
            "Delete an alert rule; its open alerts are resolved (system_admin or site_admin)",
            "Deleted",
            params=[_param("name_or_id", "path", {"type": "string"}, "a rule's name or id")],
            errors=(403, 404),
        ),
    },
    f"{API}/notifications/rules": {
        "get": _op("Notification rules (yours; every rule for admins)", "NotifyRuleList"),
        "post": _op(
            "Create a notification rule on job outcomes (a role that may submit jobs)",
            "NotifyRuleReply",
            status=201,
            body="NotifyRuleRequest",
            errors=(*_BAD, 403, 409),
        ),
    },
    f"{API}/notifications/rules/{{name_or_id}}": {
        "delete": _op(
            "Delete a notification rule (yours; any for admins)",
            "Deleted",
            params=[_param("name_or_id", "path", {"type": "string"}, "a rule's name or id")],
            errors=(403, 404),
        ),
    },
    f"{API}/notifications/sends": {
        "get": _op(
            "Notifications sent and failures to send, newest first (about your jobs; all for "
            "admins)",
            "NotifySendList",
            params=[
                _param("rule", "query", {"type": "string"}, "a rule's name or id"),
                _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
            ],
            errors=(404, 422),
        ),
    },
    PROMETHEUS: {
        "get": {
            **_op("Prometheus text exposition (any user)", "Error"),
            "responses": {
                "200": {
                    "description": "latest metric values, jobs by state, queue depth, worker "
                    "liveness, scheduler lag, open alerts",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": {
                    "description": "error",
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
            },
        },
    },
    f"{API}/openapi.json": {"get": _op("This document", "OpenApi")},
    f"{SEED}/jobs/submit": {
        "post": _op(
            "Submit a job (seed)", "SeedSubmitReply", body="SeedSubmitRequest", errors=(*_BAD, 403)
        ),
    },
    f"{SEED}/jobs/results": {
        "get": _op(
            "Finished jobs of the caller (seed)",
            "SeedResults",
            params=[
                _param("maxResults", "query", {"type": "integer", "minimum": 1, "maximum": 1000})
            ],
            errors=(422,),
        ),
        "delete": _op(
            "Delete a job result (seed)",
            "SeedMessage",
            params=[_param("jobId", "query", {"type": "string"}) | {"required": True}],
            errors=(400, 403, 404, 409, 422),
        ),
    },
    f"{SEED}/jobs": {"get": _op("Active jobs (seed)", "SeedJobs")},
    f"{SEED}/tasks": {"get": _op("Schedules (seed)", "SeedTasks")},
    f"{SEED}/runspaces": {"get": _op("Workers (seed)", "SeedRunspaces")},
}


def query_names(path: str, method: str) -> frozenset[str]:
    """The documented query parameters of one operation."""
    op = PATHS.get(path, {}).get(method.lower(), {})
    return frozenset(p["name"] for p in op.get("parameters", []) if p["in"] == "query")


def operations() -> dict[str, set[str]]:
    """path → the HTTP methods documented for it."""
    return {path: set(ops) for path, ops in PATHS.items()}


@functools.cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "opsjobs",
            "version": "1",
            "description": "Jobs, results, workers and metrics; and the seed's "
            "WebHostTaskManagement routes with its field names.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy)."""
    return copy.deepcopy(_document())


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": SCHEMAS}}
    return Draft202012Validator(schema)


def check_body(name: str, body: Any) -> dict[str, Any]:
    """``body`` if it matches the schema ``name``; else :class:`ValidationError` (one line)."""
    error = best_match(_validator(name).iter_errors(body))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        # jsonschema's message quotes the offending value: a batch of 10,001 jobs would come
        # back whole in the error
        message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
        raise ValidationError(f"invalid request body{' at ' + where if where else ''}: {message}")
    assert isinstance(body, dict)
    return body
