"""The exception tree of opsjobs.

Every error opsjobs raises on purpose derives from :class:`OpsJobsError`; the CLI prints its
message as one line and the REST API turns it into a 4xx JSON answer. Driver errors are wrapped
with ``raise ... from exc`` so the cause stays visible in logs.

::

    OpsJobsError
    ├── ConfigError            bad settings, unknown store URL, missing optional extra
    ├── ValidationError        a user-supplied field is wrong (name, mode, id, kwargs, ...)
    ├── PermissionDenied       the caller may not do this
    ├── StoreError             the store failed or refused
    │   ├── NotFound           no schedule / worker / key / alert rule with this id
    │   │   └── JobNotFound    no job with this id (or not visible to the caller)
    │   └── Conflict           the object is in a state that forbids the change
    └── RunnerError            a job could not be started or run
        └── NotebookExecutionError  a notebook cell failed
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "Conflict",
    "JobNotFound",
    "NotFound",
    "NotebookExecutionError",
    "OpsJobsError",
    "PermissionDenied",
    "RunnerError",
    "StoreError",
    "UnreadableRow",
    "ValidationError",
]


class OpsJobsError(Exception):
    """Something went wrong in opsjobs."""

    #: HTTP status the REST API answers with for this error.
    status: int = 400

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(OpsJobsError):
    """The configuration is invalid."""


class ValidationError(OpsJobsError):
    """A field has an invalid value."""

    status = 422


class PermissionDenied(OpsJobsError):
    """You are not allowed to do this."""

    status = 403


class StoreError(OpsJobsError):
    """The job store failed."""

    status = 503


class UnreadableRow(StoreError):
    """A stored row this version cannot read (another version wrote it, or a hand edit)."""


class NotFound(StoreError):
    """No such object."""

    status = 404


class JobNotFound(NotFound):
    """No such job."""


class Conflict(StoreError):
    """The object's current state does not allow this."""

    status = 409


class RunnerError(OpsJobsError):
    """The job could not be run."""

    status = 500


class NotebookExecutionError(RunnerError):
    """A notebook cell raised an error."""
