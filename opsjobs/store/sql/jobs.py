"""The jobs, workers and metrics of the SQL backends that are not a worker's hot path, written
once over the :class:`~opsjobs.store.sql.db.Db` port.

Submit, claim and finish stay in each dialect (:mod:`opsjobs.store.sqlite`,
:mod:`opsjobs.store.postgres`): they are tuned per driver. So do the job listings
(``results``, ``count``, ``stats``), whose filters and ordering are built per dialect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opsjobs.errors import Conflict, JobNotFound
from opsjobs.model import Attempt, Job, Metric, WorkerInfo
from opsjobs.store.base import Finish, Recovered
from opsjobs.store.sql.db import Db, Tx
from opsjobs.store.sql.rows import (
    attempt_from_row,
    finish_params,
    metric_params,
    row_to_job,
    row_to_metric,
    row_to_worker,
    worker_params,
)

__all__ = ["SqlJobs"]

_CANCELS = ("cancel_queued", "cancel_running_cooperative", "cancel_running_process")


class SqlJobs:
    """Part of the :class:`~opsjobs.store.Store` of a SQL store (a mixin: the store sets
    ``_db``)."""

    _db: Db

    # -- jobs ------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        rows = self._db.read("get", "get_job", {"id": job_id})
        if not rows:
            raise JobNotFound(f"no job with id {job_id}")
        return row_to_job(rows[0])

    def request_cancel(self, job_id: str, *, now: float) -> Job:
        params = {"id": job_id, "now": now}

        def cancel(tx: Tx) -> Any:
            for name in _CANCELS:
                if tx.run(name, params).rowcount:
                    break
            row = tx.run("get_job", params).fetchone()
            if row is not None:
                tx.wake()
            return row

        row = self._db.transaction("cancel", cancel)
        if row is None:
            raise JobNotFound(f"no job with id {job_id}")
        return row_to_job(row)

    def requeue_after(
        self,
        job_id: str,
        worker_id: str,
        attempt: int,
        outcome: Finish,
        *,
        now: float,
        run_after: float,
        note: str,
    ) -> bool:
        params = finish_params(job_id, worker_id, attempt, outcome, now)
        params.update(run_after=run_after, note=note)

        def requeue(tx: Tx) -> bool:
            if not tx.run("attempt_from_job", params).rowcount:
                return False
            tx.run("requeue_retry", params)
            tx.wake()
            return True

        return bool(self._db.transaction("retry", requeue))

    def attempts(self, job_id: str) -> list[Attempt]:
        return [
            attempt_from_row(r)
            for r in self._db.read("attempts", "attempts_of_job", {"id": job_id})
        ]

    def next_due(self, queues: Sequence[str], *, now: float) -> float | None:
        params = {"now": now, "queues": self._db.array(queues)}
        rows = self._db.read("next due", "next_due", params)
        due = rows[0]["due"] if rows else None
        return None if due is None else float(due)

    def delete(self, job_id: str) -> None:
        params = {"id": job_id}

        def delete(tx: Tx) -> tuple[bool, Any]:
            if tx.run("delete_finished", params).rowcount:
                return True, None
            return False, tx.run("get_job", params).fetchone()

        deleted, row = self._db.transaction("delete", delete)
        if deleted:
            return
        if row is None:
            raise JobNotFound(f"no job with id {job_id}")
        raise Conflict(f"job {job_id} is {row['state']}: cancel it before deleting it")

    def purge(self, finished_before: float) -> list[str]:
        params = {"before": finished_before}
        rows = self._db.transaction("purge", lambda tx: tx.run("purge", params).fetchall())
        return [r["id"] for r in rows]

    # -- leases and workers ---------------------------------------------------------------
    def heartbeat(
        self, worker_id: str, held: Sequence[str], *, now: float, lease: float
    ) -> list[str]:
        params: dict[str, Any] = {
            "worker_id": worker_id,
            "now": now,
            "lease": lease,
            "lease_until": now + lease,
            "busy": len(held),
            "held": self._db.array(held),
        }

        def beat(tx: Tx) -> Sequence[Any]:
            tx.run("renew_leases", params)
            tx.run("worker_heartbeat", params)
            return tx.run("held_jobs", params).fetchall() if held else []

        keep = {
            r["id"]
            for r in self._db.transaction("heartbeat", beat)
            if r["state"] == "running" and r["worker_id"] == worker_id and not r["cancel_requested"]
        }
        return [job_id for job_id in held if job_id not in keep]

    def recover_expired(self, *, now: float) -> list[Recovered]:
        def recover(tx: Tx) -> list[Recovered]:
            out: list[Recovered] = []
            for row in tx.run("expired_select", {"now": now}).fetchall():
                params = {"id": row["id"], "now": now}
                tx.run("expired_attempt", params)
                requeued = bool(tx.run("expired_requeue", params).rowcount)
                if not requeued:
                    tx.run("expired_lose", params)
                out.append(Recovered(row["id"], row["worker_id"], requeued))
            if any(r.requeued for r in out):
                tx.wake()
            return out

        return self._db.transaction("lease recovery", recover)

    def register_worker(self, info: WorkerInfo) -> None:
        params = worker_params(info)
        self._db.transaction("register worker", lambda tx: tx.run("register_worker", params))

    def stop_worker(self, worker_id: str, *, now: float) -> None:
        params = {"id": worker_id, "now": now}
        self._db.transaction("stop worker", lambda tx: tx.run("stop_worker", params))

    def workers(self) -> list[WorkerInfo]:
        return [row_to_worker(r) for r in self._db.read("workers", "list_workers")]

    # -- metrics --------------------------------------------------------------------------
    def record_metrics(self, metrics: Sequence[Metric]) -> None:
        if not metrics:
            return
        rows = [metric_params(m) for m in metrics]
        self._db.transaction("recording metrics", lambda tx: tx.run_many("insert_metric", rows))

    def _purge_metrics(self, before: float, batch_size: int) -> int:
        """:meth:`~opsjobs.store.Store.purge_metrics`, ``batch_size`` points a transaction (the
        dialect passes its module's ``PURGE_BATCH``, which tests lower)."""
        params = {"before": before, "after": 0, "batch": batch_size}
        gone = 0

        def batch(tx: Tx) -> list[int]:
            return [r["id"] for r in tx.run("metrics_purge_batch", params).fetchall()]

        while True:
            ids = self._db.transaction("purging metrics", batch)
            gone += len(ids)
            if len(ids) < batch_size:
                return gone
            params["after"] = max(ids)

    def metrics(
        self,
        name: str,
        *,
        since: float | None = None,
        job_id: str | None = None,
        limit: int = 10_000,
    ) -> list[Metric]:
        params = {"name": name, "since": since, "job_id": job_id, "limit": limit}
        query = "metrics" + ("_since" if since is not None else "")
        query += "_of_job" if job_id is not None else ""
        return [row_to_metric(r) for r in reversed(self._db.read("metrics", query, params))]
