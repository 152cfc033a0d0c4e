"""Retention: purge deletes jobs with every file; kept jobs keep theirs; orphan files go; the
built-in retention schedule (``opsjobs init``) runs as a real job inside a worker."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from harness import client_for, run_cli, settings_for, wait_for

from opsjobs import Settings
from opsjobs.model import JobSpec, JobState
from opsjobs.retention import RETENTION_SCHEDULE, job_files, purge, sweep_orphans
from opsjobs.store import Finish, Store
from opsjobs.worker import Worker, WorkerHandle

DAY = 86400.0


def _finished(store: Store, name: str, at: float) -> str:
    job = store.submit(JobSpec(name, "command", {"source": "pass"}).validated(), now=at)
    claimed = store.claim("w", "h", ["default"], now=at, lease=30)
    assert claimed is not None and claimed.id == job.id
    assert store.finish(job.id, "w", 1, Finish(JobState.SUCCEEDED), now=at)
    return job.id


def _make_files(settings: Settings, job_id: str, *, age: float = 3600) -> list[Path]:
    paths = [
        settings.logs_dir / f"{job_id}.log",
        settings.outputs_dir / f"{job_id}.ipynb",
        settings.outputs_dir / f"{job_id}.html",
        settings.results_dir / job_id / "report.csv",
        settings.jobs_dir / job_id / "result.json",
    ]
    old = time.time() - age
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        os.utime(path, (old, old))
        if path.parent.name == job_id:
            os.utime(path.parent, (old, old))
    return paths


def test_purge_removes_files_of_deleted_jobs_keeps_others_and_sweeps_orphans(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    client = client_for(settings)
    now = time.time()
    old = [_finished(client.store, "report", now - 40 * DAY + i) for i in range(4)]
    recent = _finished(client.store, "report", now - DAY)
    lonely = _finished(client.store, "rare", now - 90 * DAY)  # the only one of its name
    for job_id in [*old, recent, lonely]:
        _make_files(settings, job_id)
    orphan = "0b2c7f5e-2f0e-4e7a-9a55-3c0f4c1a9e11"
    orphan_files = _make_files(settings, orphan)
    fresh_orphan = "1b2c7f5e-2f0e-4e7a-9a55-3c0f4c1a9e11"
    _make_files(settings, fresh_orphan, age=0)  # may belong to a job being written now
    unrelated = settings.outputs_dir / "notes.txt"
    unrelated.write_text("not a job file")

    report = purge(client.store, settings, older_than=30 * DAY, keep_last=2)

    # "report" keeps its 2 latest (recent + the newest old one); "rare" keeps its only job
    assert report.jobs == 3 and report.files == 15 and report.orphans == 5
    assert client.store.existing_job_ids([*old, recent, lonely]) == {old[3], recent, lonely}
    for job_id in old[:3]:
        assert job_files(settings, job_id) == []
    for job_id in (old[3], recent, lonely):
        assert len(job_files(settings, job_id)) == 5
    assert not any(p.exists() for p in orphan_files)
    assert len(job_files(settings, fresh_orphan)) == 5 and unrelated.exists()
    assert sweep_orphans(client.store, settings, min_age=0) == 5
    client.close()


def test_purge_takes_old_metrics_and_resolved_alerts_along(tmp_path: Path) -> None:
    from opsjobs.alerts.model import Alert, AlertEvent, AlertState, Severity
    from opsjobs.model import Metric

    settings = settings_for(tmp_path)
    client = client_for(settings)
    store = client.store
    now = time.time()
    old_job = _finished(store, "snap", now - 40 * DAY)
    kept_job = _finished(store, "snap", now - 39 * DAY)  # the last of its name: kept
    store.record_metrics(
        [
            Metric("rss_mb", 1.0, {}, now - 40 * DAY, job_id=old_job),
            Metric("rss_mb", 2.0, {}, now - 39 * DAY, job_id=kept_job),
            Metric("rss_mb", 3.0, {}, now - 35 * DAY),  # a worker's own point, no job
            Metric("rss_mb", 4.0, {}, now - DAY),
        ]
    )
    for name, resolved in (("gone", now - 31 * DAY), ("stays", now - DAY), ("open", None)):
        alert = Alert(
            id=f"a-{name}",
            rule_id="r",
            rule_name="mem",
            metric="rss_mb",
            series=name,
            labels={},
            host=None,
            severity=Severity.WARNING,
            state=AlertState.OPEN,
            value=1.0,
            message="",
            opened_at=now - 60 * DAY,
            updated_at=now - 60 * DAY,
        )
        store.open_alert(alert, AlertEvent(alert.id, "opened", now - 60 * DAY, 1.0, ""))
        if resolved is not None:
            store.resolve_alert(alert.id, AlertEvent(alert.id, "resolved", resolved, 0.0, ""))

    report = purge(store, settings, older_than=30 * DAY, keep_last=1)

    assert (report.jobs, report.metrics, report.alerts) == (1, 2, 1), report
    assert [m.value for m in store.metrics("rss_mb")] == [2.0, 4.0]
    assert sorted(a.id for a in store.list_alerts()) == ["a-open", "a-stays"]
    assert store.alert_events(alert_id="a-gone") == []
    assert "2 metric point(s), 1 resolved alert(s)" in str(report)
    client.close()


def test_cli_purge_removes_outputs_and_logs(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    client = client_for(settings)
    gone = _finished(client.store, "x", time.time() - 10 * DAY)
    kept = _finished(client.store, "x", time.time())
    _make_files(settings, gone)
    _make_files(settings, kept)
    done = run_cli(settings, "purge", "--older-than", "7d")
    assert done.returncode == 0, done.stderr
    assert job_files(settings, gone) == [] and len(job_files(settings, kept)) == 5
    client.close()


def test_init_is_idempotent_and_retention_runs_as_a_job(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    first = run_cli(settings, "init")
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    again = run_cli(settings, "init")
    assert again.returncode == 0 and "unchanged" in again.stdout
    changed = run_cli(settings, "init", "--keep-days", "7", "--keep-last", "1")
    assert changed.returncode == 0 and "updated" in changed.stdout
    listing = json.loads(run_cli(settings, "schedule", "list", "--json").stdout)
    assert [s["name"] for s in listing] == [RETENTION_SCHEDULE]
    (retention,) = listing
    assert retention["cron"] == "0 2 * * *" and retention["job"]["mode"] == "thread"
    assert retention["job"]["payload"] == {
        "target": "opsjobs.retention:run",
        "kwargs": {"keep_days": 7.0, "keep_last": 1},
    }

    client = client_for(settings)
    now = time.time()
    old = [_finished(client.store, "n", now - 20 * DAY + i) for i in range(3)]
    for job_id in old:
        _make_files(settings, job_id)
    worker = Worker(client.store, settings, threads=1)
    handle = WorkerHandle(worker)
    try:
        job = client.schedules.run_now(RETENTION_SCHEDULE)
        final = wait_for(
            lambda: (j := client.get(job.id)).finished and j, timeout=60, what="the retention job"
        )
    finally:
        handle.stop()
    assert final.state is JobState.SUCCEEDED, final.error
    assert final.result["jobs"] == 2 and final.result["files"] == 10
    assert client.store.existing_job_ids(old) == {old[2]}
    assert "purged 2 job(s)" in final.output
    client.close()
