"""Notification rules on job outcomes and the record of every message sent for them.

A :class:`NotifyRule` matches a job's end by its state (``failed``, ``timed_out``, ``lost``,
``succeeded``, or ``recovered``: a success whose previous run of the same name did not
succeed), its name (exact, or a glob such as ``backup-*``), its queue and its owner, and sends
a message to the configured webhook receivers and/or to e-mail addresses.

Grouping: the first matching end of a job name is sent at once and opens a window of
``group_seconds`` for that (rule, name); further matching ends inside the window are only
counted, and the first end after it is sent with the count of ends since the previous message
(itself included). A failing schedule thus sends one message per window, however often it
fires. ``group_seconds`` 0 sends every end.

Scope: a rule made by a user who does not see every job (not an admin) carries that user as its
``owner`` filter, so it never reports anyone else's jobs.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
from dataclasses import dataclass
from typing import Any

from opsjobs.errors import ValidationError
from opsjobs.model import MAX_NAME, Job, JobState, iso, validate_queue

__all__ = [
    "NOTIFY_STATES",
    "RULE_FIELDS",
    "NotifyRule",
    "NotifySend",
    "job_link",
    "validate_address",
]

#: The outcomes a rule may name; ``recovered`` is a success after a run that did not succeed.
NOTIFY_STATES = ("failed", "timed_out", "lost", "succeeded", "recovered")
#: The states whose previous run makes a success a recovery.
_BAD = frozenset({JobState.FAILED, JobState.TIMED_OUT, JobState.LOST})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:@-]{0,119}$")
# deliberately plain: one local part, one domain with a dot or "localhost"; no display names
_ADDRESS_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$")
MAX_GROUP_SECONDS = 7 * 86400.0
MAX_RECIPIENTS = 20

#: Fields a caller may give when adding a rule.
RULE_FIELDS = frozenset(
    {"name", "states", "job_name", "queue", "owner", "email", "webhook", "group_seconds"}
    | {"enabled", "description"}
)


def validate_address(value: object) -> str:
    """An e-mail address (``user@host``), or :class:`ValidationError`."""
    text = value.strip() if isinstance(value, str) else ""
    if not _ADDRESS_RE.match(text) or ".." in text or text.endswith("."):
        raise ValidationError(f"invalid e-mail address {str(value)[:80]!r}")
    return text


def _texts(value: object, what: str) -> list[str]:
    if isinstance(value, str):
        items = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValidationError(f"{what} must be a list")
    if not all(isinstance(v, str) for v in items):
        raise ValidationError(f"{what} must be a list of texts")
    return [v.strip() for v in items]


@dataclass(frozen=True)
class NotifyRule:
    """Which job ends to report, and where."""

    name: str
    states: tuple[str, ...] = ("failed", "timed_out", "lost")
    job_name: str = "*"
    queue: str = ""
    owner: str = ""
    email: tuple[str, ...] = ()
    webhook: bool = True
    group_seconds: float = 600.0
    description: str = ""
    enabled: bool = True
    created_by: str = ""
    id: str = ""
    created_at: float = 0.0

    def validated(self) -> NotifyRule:
        """A copy with every field checked (raises :class:`ValidationError`)."""
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not _NAME_RE.match(name):
            raise ValidationError(
                f"invalid rule name {str(self.name)[:60]!r}: 1-120 characters of letters, "
                "digits, spaces and _.:@- (starting with a letter or digit)"
            )
        states = [s.lower() for s in _texts(self.states, "states")]
        if not states:
            raise ValidationError(f"a rule needs states (any of: {', '.join(NOTIFY_STATES)})")
        for state in states:
            if state not in NOTIFY_STATES:
                raise ValidationError(
                    f"invalid state {state[:40]!r} (expected: {', '.join(NOTIFY_STATES)})"
                )
        job_name = self.job_name.strip() if isinstance(self.job_name, str) else None
        if not job_name or len(job_name) > MAX_NAME or any(ord(c) < 32 for c in job_name):
            raise ValidationError(f"job_name must be a name or glob of 1-{MAX_NAME} characters")
        queue = self.queue.strip() if isinstance(self.queue, str) else None
        if queue is None:
            raise ValidationError("queue must be a queue name")
        owner = self.owner.strip() if isinstance(self.owner, str) else None
        if owner is None or len(owner) > 200 or any(ord(c) < 32 for c in owner):
            raise ValidationError("owner must be a user name")
        email = [validate_address(a) for a in _texts(self.email, "email")]
        if len(email) > MAX_RECIPIENTS:
            raise ValidationError(f"at most {MAX_RECIPIENTS} e-mail recipients")
        if not isinstance(self.webhook, bool) or not isinstance(self.enabled, bool):
            raise ValidationError("webhook and enabled must be true or false")
        if not email and not self.webhook:
            raise ValidationError("a rule needs a channel: e-mail recipients or the webhooks")
        group = self.group_seconds
        if isinstance(group, bool) or not isinstance(group, int | float):
            raise ValidationError("group_seconds must be a number of seconds")
        if not math.isfinite(group) or not 0 <= group <= MAX_GROUP_SECONDS:
            raise ValidationError(f"group_seconds must be between 0 and {MAX_GROUP_SECONDS:g}")
        description = self.description if isinstance(self.description, str) else None
        if description is None or len(description) > 1000:
            raise ValidationError("description must be text of at most 1000 characters")
        return dataclasses.replace(
            self,
            name=name,
            states=tuple(dict.fromkeys(states)),
            job_name=job_name,
            queue=validate_queue(queue) if queue else "",
            owner=owner,
            email=tuple(dict.fromkeys(email)),
            group_seconds=float(group),
            description=description.strip(),
        )

    def matches(self, job: Job) -> bool:
        """Does the end of ``job`` concern this rule, apart from ``recovered``'s look back?
        (True for a success when the rule names ``recovered``: see :meth:`wants_previous`.)"""
        if not self.enabled:
            return False
        state = job.state.value
        if state not in self.states and not (
            job.state is JobState.SUCCEEDED and "recovered" in self.states
        ):
            return False
        if self.queue and job.queue != self.queue:
            return False
        if self.owner and job.owner != self.owner:
            return False
        return fnmatch.fnmatchcase(job.name, self.job_name)

    def wants_previous(self, job: Job) -> bool:
        """True when only the previous run of the name decides (a success, ``recovered``
        named, ``succeeded`` not)."""
        return job.state is JobState.SUCCEEDED and "succeeded" not in self.states

    @staticmethod
    def is_recovery(previous: Job | None) -> bool:
        return previous is not None and previous.state in _BAD

    @property
    def channels(self) -> list[str]:
        return (["email"] if self.email else []) + (["webhook"] if self.webhook else [])

    @property
    def summary(self) -> str:
        """``failed,timed_out of backup-* on queue q (owner ann) → email, webhook``."""
        text = f"{','.join(self.states)} of {self.job_name}"
        if self.queue:
            text += f" on queue {self.queue}"
        if self.owner:
            text += f" (owner {self.owner})"
        return f"{text} → {', '.join(self.channels)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "states": list(self.states),
            "job_name": self.job_name,
            "queue": self.queue,
            "owner": self.owner,
            "email": list(self.email),
            "webhook": self.webhook,
            "group_seconds": self.group_seconds,
            "description": self.description,
            "enabled": self.enabled,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "text": self.summary,
        }


@dataclass(frozen=True)
class NotifySend:
    """One message to one channel for one job end: sent (``ok``) or not (``detail`` says why)."""

    rule_id: str
    rule_name: str
    job_id: str
    job_name: str
    owner: str
    state: str
    channel: str
    target: str
    ok: bool
    detail: str
    count: int
    at: float
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "rule": self.rule_name,
            "job_id": self.job_id,
            "job_name": self.job_name,
            "owner": self.owner,
            "state": self.state,
            "channel": self.channel,
            "target": self.target,
            "ok": self.ok,
            "detail": self.detail,
            "count": self.count,
            "at": iso(self.at),
        }


def job_link(base_url: str, job_id: str) -> str:
    """The address of a job's detail view: the dashboard opened on that job."""
    base = (base_url or "http://localhost:8888").rstrip("/")
    return f"{base}/opsjobs/?job={job_id}"
