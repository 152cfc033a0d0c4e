"""opsjobs — operations jobs for long-lived Python services.

A job store (SQLite by default, PostgreSQL for several hosts), workers that run jobs inline, in a
thread or in a child process, schedules, a live memory analyzer, a REST API and a Jupyter
dashboard. Importing this package opens nothing and starts nothing.
"""

from __future__ import annotations

from opsjobs.client import Client, connect
from opsjobs.config import Settings
from opsjobs.context import JobContext, context, record_metric
from opsjobs.errors import (
    ConfigError,
    Conflict,
    JobNotFound,
    NotFound,
    OpsJobsError,
    PermissionDenied,
    RunnerError,
    StoreError,
    ValidationError,
)
from opsjobs.model import Job, JobSpec, JobState, Metric, Mode, Stats, WorkerInfo
from opsjobs.worker import Worker, WorkerHandle, embed

__version__ = "0.1.0"

__all__ = [
    "Client",
    "ConfigError",
    "Conflict",
    "Job",
    "JobContext",
    "JobNotFound",
    "JobSpec",
    "JobState",
    "Metric",
    "Mode",
    "NotFound",
    "OpsJobsError",
    "PermissionDenied",
    "RunnerError",
    "Settings",
    "Stats",
    "StoreError",
    "ValidationError",
    "Worker",
    "WorkerHandle",
    "WorkerInfo",
    "__version__",
    "connect",
    "context",
    "embed",
    "record_metric",
]
