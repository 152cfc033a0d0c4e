"""Retention: delete old jobs with their files, and files that belong to no job; then the
metric points, resolved alerts and notification records of the same age (a kept job keeps its
points, an open alert its events).

A job's files live in the data folder under its id: ``logs/<id>.log``, ``outputs/<id>.ipynb``
and ``outputs/<id>.html`` (and any other ``outputs/<id>.*``), ``results/<id>/`` and
``jobs/<id>/``. :func:`purge` deletes jobs and then their files; :func:`sweep_orphans` removes
files whose id is no job (left by a crash between the two steps, or by jobs deleted by other
means). The data folder belongs to one store: sweeping it against another store would delete
that store's files.

The built-in retention schedule (``opsjobs init``) runs :func:`run` as a ``call`` job in
``thread`` mode. It reaches the store through the job context: the worker hands in-process jobs
its own store and settings (``ctx.store``, ``ctx.settings``). Rebuilding them from the
environment inside the job would be wrong whenever the worker was started with ``--store`` or
``--data`` — the job would purge some other store — so a retention job needs an in-process mode.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsjobs.config import Settings
from opsjobs.errors import ConfigError, ValidationError
from opsjobs.model import validate_job_id
from opsjobs.store import Store

__all__ = [
    "RETENTION_SCHEDULE",
    "PurgeReport",
    "job_files",
    "purge",
    "remove_job_files",
    "run",
    "sweep_orphans",
]

#: Name of the built-in daily retention schedule created by ``opsjobs init``.
RETENTION_SCHEDULE = "opsjobs-retention"
RETENTION_TARGET = "opsjobs.retention:run"
#: Files younger than this are never swept: their job may be being written right now.
ORPHAN_MIN_AGE = 60.0
_UUID_LEN = 36


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed."""

    jobs: int
    files: int
    orphans: int
    metrics: int = 0
    alerts: int = 0
    #: Notification records (handled job ends and sends) older than the cutoff.
    notifications: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "jobs": self.jobs,
            "files": self.files,
            "orphans": self.orphans,
            "metrics": self.metrics,
            "alerts": self.alerts,
            "notifications": self.notifications,
        }

    def __str__(self) -> str:
        return (
            f"{self.jobs} job(s), {self.files} file(s), {self.orphans} orphan(s), "
            f"{self.metrics} metric point(s), {self.alerts} resolved alert(s), "
            f"{self.notifications} notification record(s)"
        )


def _folders(settings: Settings) -> list[Path]:
    return [settings.logs_dir, settings.outputs_dir, settings.results_dir, settings.jobs_dir]


def _entry_id(name: str) -> str | None:
    """The job id a data-folder entry belongs to (its name starts with the UUID)."""
    head = name[:_UUID_LEN]
    if len(name) > _UUID_LEN and name[_UUID_LEN] != ".":
        return None
    try:
        return str(uuid.UUID(head)) if len(head) == _UUID_LEN else None
    except ValueError:
        return None


def job_files(settings: Settings, job_id: str) -> list[Path]:
    """Every file and folder of the job in the data folder."""
    job_id = validate_job_id(job_id)  # a UUID: the paths stay inside the data folder
    found: list[Path] = []
    for folder in _folders(settings):
        for path in (folder / job_id, *folder.glob(f"{job_id}.*")):
            if path.exists() or path.is_symlink():
                found.append(path)
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_job_files(settings: Settings, job_id: str) -> int:
    """Delete the job's log, output notebook and HTML, results and scratch folder."""
    paths = job_files(settings, job_id)
    for path in paths:
        _remove(path)
    return len(paths)


def sweep_orphans(store: Store, settings: Settings, *, min_age: float = ORPHAN_MIN_AGE) -> int:
    """Delete data-folder entries named after a job id that is not in ``store``."""
    cutoff = time.time() - min_age
    candidates: dict[str, list[Path]] = {}
    for folder in _folders(settings):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            job_id = _entry_id(entry.name)
            if job_id is None:
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue
            candidates.setdefault(job_id, []).append(Path(entry.path))
    if not candidates:
        return 0
    known = store.existing_job_ids(candidates)
    removed = 0
    for job_id, paths in candidates.items():
        if job_id in known:
            continue
        for path in paths:
            _remove(path)
            removed += 1
    return removed


def purge(
    store: Store,
    settings: Settings,
    *,
    older_than: float,
    keep_last: int = 0,
    sweep: bool = True,
    now: float | None = None,
) -> PurgeReport:
    """Delete jobs that finished more than ``older_than`` seconds ago — except the
    ``keep_last`` most recent of each job name — with their files; then sweep orphans, and
    delete the metric points recorded, the alerts resolved and the notification records
    (handled job ends, sends) made before the same cutoff (the points of a job that is kept
    stay with it)."""
    if older_than < 0:
        raise ValidationError("older_than must not be negative")
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0:
        raise ValidationError("keep_last must be a non-negative integer")
    cutoff = (time.time() if now is None else now) - older_than
    ids = store.purge_keeping(cutoff, keep_last) if keep_last else store.purge(cutoff)
    files = sum(remove_job_files(settings, job_id) for job_id in ids)
    orphans = sweep_orphans(store, settings) if sweep else 0
    metrics = store.purge_metrics(cutoff)
    alerts = store.purge_alerts(cutoff)
    notifications = store.purge_notices(cutoff)
    return PurgeReport(len(ids), files, orphans, metrics, alerts, notifications)


def run(keep_days: float = 30, keep_last: int = 10) -> dict[str, Any]:
    """The retention job: keep ``keep_days`` days of finished jobs and at least the
    ``keep_last`` latest of each job name. Runs inside a worker (``thread``/``inline``)."""
    from opsjobs.context import context

    ctx = context()
    store: Store | None = getattr(ctx, "store", None)
    settings: Settings | None = getattr(ctx, "settings", None)
    if store is None or settings is None:
        raise ConfigError(
            "the retention job needs the worker's store: run it in thread or inline mode"
        )
    if isinstance(keep_days, bool) or not isinstance(keep_days, int | float) or keep_days < 0:
        raise ValidationError("keep_days must be a non-negative number")
    report = purge(store, settings, older_than=float(keep_days) * 86400, keep_last=keep_last)
    print(
        f"purged {report} older than {keep_days:g} day(s) (keeping the last {keep_last} "
        "jobs of each name)"
    )
    return {"keep_days": keep_days, "keep_last": keep_last, **report.to_dict()}
