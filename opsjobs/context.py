"""The job context: what code running as a job can ask of opsjobs.

``opsjobs.context()`` works the same in every mode and kind: inside the worker's process it is
the context the worker bound to the current thread; in a child process (``process`` mode, an
``argv`` program, a notebook kernel) it is rebuilt from two environment variables the worker sets
(``OPSJOBS_JOB_ID`` and ``OPSJOBS_JOB_DIR``) and hands results and metrics back through files in
that job folder, which the worker stores when the child ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsjobs.errors import OpsJobsError
from opsjobs.model import Metric, json_size_checked, validate_job_id

if TYPE_CHECKING:
    from opsjobs.config import Settings
    from opsjobs.store import Store

__all__ = ["JobContext", "bind", "context", "record_metric"]

_local = threading.local()
_child_lock = threading.Lock()
_child: JobContext | None = None

ENV_JOB_ID = "OPSJOBS_JOB_ID"
ENV_JOB_DIR = "OPSJOBS_JOB_DIR"
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"


class JobContext:
    """The running job as seen from its own code.

    Attributes
    ----------
    job_id
        The job's UUID.
    worker_id, host
        Who runs it; recorded with every metric.
    store, settings
        The worker's own store and settings, for jobs that run inside the worker's process
        (``inline``/``thread``), such as the memory analyzer reading earlier snapshots; None
        in a child process.
    """

    def __init__(
        self,
        job_id: str,
        *,
        worker_id: str | None,
        host: str | None,
        emit_metric: Callable[[Metric], None],
        emit_result: Callable[[str], None] | None = None,
        store: Store | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.job_id = job_id
        self.worker_id = worker_id
        self.host = host
        self.store = store
        self.settings = settings
        self._emit_metric = emit_metric
        self._emit_result = emit_result
        self._cancelled = False  # a plain flag: set once, read often, atomic under the GIL
        self.result_json: str | None = None

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled or timed out: cooperative code should stop."""
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True

    def record_metric(self, name: str, value: float, **labels: object) -> None:
        """Store a named numeric measurement with labels (host and worker are added)."""
        metric = Metric(
            name=name,
            value=value,
            labels={k: str(v) for k, v in labels.items()},
            at=time.time(),
            job_id=self.job_id,
            worker_id=self.worker_id,
            host=self.host,
        ).validated()
        self._emit_metric(metric)

    def set_result(self, value: Any) -> None:
        """Make ``value`` (JSON-serialisable) the job's result."""
        self.result_json = json_size_checked(value, "result")
        if self._emit_result is not None:
            self._emit_result(self.result_json)


def context() -> JobContext:
    """The context of the job running on this thread (or in this child process).

    Raises :class:`~opsjobs.errors.OpsJobsError` outside a job.
    """
    ctx: JobContext | None = getattr(_local, "ctx", None)
    if ctx is not None:
        return ctx
    child = _child_context()
    if child is None:
        raise OpsJobsError("opsjobs.context() is only available inside a running job")
    return child


def record_metric(name: str, value: float, **labels: object) -> None:
    """Shortcut for ``opsjobs.context().record_metric(...)``."""
    context().record_metric(name, value, **labels)


@contextlib.contextmanager
def bind(ctx: JobContext) -> Iterator[JobContext]:
    """Make ``ctx`` the current thread's job context for the block."""
    previous = bind_context(ctx)
    try:
        yield ctx
    finally:
        bind_context(previous)


def bind_context(ctx: JobContext | None) -> JobContext | None:
    """Make ``ctx`` the current thread's job context; returns the one it replaces (for the
    worker's hot path, which restores it in a ``finally``)."""
    previous: JobContext | None = getattr(_local, "ctx", None)
    _local.ctx = ctx
    return previous


def file_context(job_dir: Path, job_id: str, worker_id: str | None, host: str | None) -> JobContext:
    """A context that hands metrics and the result back through files in ``job_dir``."""
    lock = threading.Lock()

    def emit_metric(metric: Metric) -> None:
        line = json.dumps(
            {
                "name": metric.name,
                "value": metric.value,
                "labels": dict(metric.labels),
                "at": metric.at,
            }
        )
        with lock, open(job_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def emit_result(text: str) -> None:
        tmp = job_dir / (RESULT_FILE + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, job_dir / RESULT_FILE)

    return JobContext(
        job_id, worker_id=worker_id, host=host, emit_metric=emit_metric, emit_result=emit_result
    )


def adopt(ctx: JobContext) -> None:
    """Make ``ctx`` this (child) process's job context for every thread."""
    global _child
    with _child_lock:
        _child = ctx


def _child_context() -> JobContext | None:
    # The environment is the channel from the worker to its child: this is the one place
    # library code reads it.
    global _child
    with _child_lock:
        job_id = os.environ.get(ENV_JOB_ID)
        job_dir = os.environ.get(ENV_JOB_DIR)
        if not job_id or not job_dir:
            return None
        if _child is None or _child.job_id != job_id:
            meta = _read_meta(Path(job_dir))
            _child = file_context(
                Path(job_dir), validate_job_id(job_id), meta.get("worker_id"), meta.get("host")
            )
        return _child


def _read_meta(job_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((job_dir / "job.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
