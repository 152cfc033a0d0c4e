"""The embedded SQLite store: one file (``data/opsjobs.db`` by default), WAL, short write
transactions, one connection per thread, a doorbell for idle workers on this host."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import Conflict, JobNotFound, StoreError
from ..model import Job, JobSpec, JobState, Metric, ResultQuery, Stats, WorkerInfo
from .base import PURGE_BATCH, End, Finish, Recovered, Store, Waiter
from .doorbell import Doorbell
from .rows import (
    UNREADABLE,
    claimed_job,
    job_params,
    metric_params,
    row_to_job,
    row_to_metric,
    row_to_worker,
    unreadable_error,
    worker_params,
)
from .sql import load_migrations, load_queries
from .sqlite_alerts import SQLiteAlerts
from .sqlite_auth import SQLiteAuth
from .sqlite_schedules import SQLiteSchedules

__all__ = ["SQLiteStore", "heads_params", "heads_sql"]

BUSY_TIMEOUT_MS = 10_000
#: At most this many claimed jobs' rowids are remembered for their finish.
ROWID_CACHE = 10_000
#: Sortable columns that are never NULL.
_NOT_NULL = frozenset({"name", "state", "submitted_at", "mode", "queue", "owner", "kind"})


class SQLiteStore(SQLiteAlerts, SQLiteAuth, SQLiteSchedules, Store):
    """Jobs, workers and metrics in one SQLite file.

    Parameters
    ----------
    path
        The database file; its folder must exist.
    runtime_dir
        Where the doorbell sockets live (default: ``$TMPDIR/opsjobs-<uid>``).
    """

    def __init__(self, path: str | os.PathLike[str], *, runtime_dir: str | None = None) -> None:
        self.path = Path(path).resolve()
        self.url = f"sqlite://{self.path}"
        self._q = load_queries("sqlite")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._closed = False
        #: rowid of each job this store claimed and has not yet recorded the end of (a cache:
        #: bounded by ROWID_CACHE)
        self._rowids: dict[str, int] = {}
        if not self.path.parent.is_dir():
            raise StoreError(
                f"the folder {self.path.parent} of the SQLite store does not exist "
                "(only the data folder is created)"
            )
        self._doorbell = Doorbell(str(self.path), runtime_dir)
        self._migrate()

    # -- connections and transactions -----------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            try:
                conn = sqlite3.connect(
                    self.path,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
            try:
                conn.row_factory = sqlite3.Row
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                _enable_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error as exc:
                conn.close()
                raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
            with self._conns_lock:
                if self._closed:  # closed while this thread was connecting
                    conn.close()
                    raise StoreError("the store is closed")
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (``BEGIN IMMEDIATE`` takes the write lock up front, so
        there is no upgrade deadlock and the busy timeout applies).

        With :meth:`serialize_writes`, threads of this process queue on a lock first."""
        with self._write_lock:
            conn = self._conn()
            _begin(conn)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise StoreError(f"commit failed: {exc}") from exc

    def _read(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    def _write(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        try:
            with self._tx() as conn:
                return conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"store write failed: {exc}") from exc

    def _migrate(self) -> None:
        try:
            with self._tx() as conn:
                current = conn.execute("PRAGMA user_version").fetchone()[0]
                for version, _name, sql in load_migrations("sqlite"):
                    if version <= current:
                        continue
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {int(version)}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot migrate the SQLite store {self.path}: {exc}") from exc

    def serialize_writes(self) -> None:
        """Make this process's threads queue on a lock for writes instead of meeting SQLite's
        busy handler, which waits by sleeping (1, 2, 5, ... up to 100 ms at a time).

        The server turns this on: concurrent API requests then hand the file over at once (a
        submit's p99 fell from 193 to 44 ms under 20 clients). A worker leaves it off: its pool
        threads finish and claim jobs back to back, and strict hand-over through a lock halves
        their throughput (each hand-over also waits for the GIL). Other processes always meet
        the busy timeout."""
        self._write_lock = threading.RLock()

    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    # -- jobs ------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, *, now: float) -> Job:
        job_id = str(uuid.uuid4())
        params = job_params(job_id, spec, now)
        self._write(self._q["insert_job"], params)
        self._doorbell.ring()
        return Job(id=job_id, spec=spec, state=JobState.QUEUED, submitted_at=now)

    def get(self, job_id: str) -> Job:
        rows = self._read(self._q["get_job"], {"id": job_id})
        if not rows:
            raise JobNotFound(f"no job with id {job_id}")
        return row_to_job(rows[0])

    def claim(
        self, worker_id: str, host: str, queues: Sequence[str], *, now: float, lease: float
    ) -> Job | None:
        _, jobs = self.finish_and_claim_many(
            (), worker_id=worker_id, host=host, queues=queues, now=now, lease=lease, want=1
        )
        return jobs[0] if jobs else None

    def finish(
        self, job_id: str, worker_id: str, attempt: int, outcome: Finish, *, now: float
    ) -> bool:
        accepted, _ = self.finish_and_claim_many(
            (End(job_id, attempt, outcome, now),),
            worker_id=worker_id,
            host="",
            queues=(),
            now=now,
            lease=0.0,
            want=0,
        )
        return accepted[0]

    def finish_and_claim(
        self,
        job_id: str,
        worker_id: str,
        attempt: int,
        outcome: Finish,
        *,
        now: float,
        host: str,
        queues: Sequence[str],
        lease: float,
    ) -> tuple[bool, Job | None]:
        """One write transaction instead of two per job on a busy worker."""
        accepted, jobs = self.finish_and_claim_many(
            (End(job_id, attempt, outcome, now),),
            worker_id=worker_id,
            host=host,
            queues=queues,
            now=now,
            lease=lease,
            want=1,
        )
        return accepted[0], jobs[0] if jobs else None

    def finish_and_claim_many(
        self,
        ends: Sequence[End],
        *,
        worker_id: str,
        host: str,
        queues: Sequence[str],
        now: float,
        lease: float,
        want: int,
    ) -> tuple[list[bool], list[Job]]:
        """The worker's hot path, in one ``BEGIN IMMEDIATE`` transaction: record the ends, take
        the heads of each queue from the partial index, claim the best ``want`` by rowid.

        Positional parameters, a tuple cursor and no ``RETURNING``; a job claimed here is
        finished by its rowid (remembered until its end is recorded)."""
        q = self._q
        rowids = self._rowids
        with self._write_lock:
            cur = self._cursor()
            _begin(cur)
            try:
                accepted = []
                for end in ends:
                    o = end.outcome
                    rowid = rowids.get(end.job_id)
                    if rowid is None:
                        cur.execute(
                            q["finish"],
                            _finish_params(end.job_id, worker_id, end.attempt, o, end.at),
                        )
                    else:
                        cur.execute(
                            q["finish_rowid"],
                            (
                                o.state.value,
                                end.at,
                                end.at,
                                o.output,
                                o.result_json,
                                o.error,
                                o.exit_code,
                                o.peak_rss,
                                rowid,
                                end.job_id,
                                worker_id,
                                end.attempt,
                            ),
                        )
                    accepted.append(cur.rowcount == 1)
                taken: list[Any] = []
                jobs: list[Job] = []
                if want > 0 and queues:
                    lease_until = now + lease
                    pick = self._pick_sql(len(queues))
                    while True:
                        n = want - len(jobs)
                        picked = cur.execute(pick, heads_params(queues, n)).fetchall()
                        if len(picked) > 1 and len(queues) > 1:
                            picked.sort(key=_claim_order)
                            del picked[n:]
                        unreadable = False
                        for row in picked:
                            try:  # built inside the transaction: a bad row fails its job
                                job = claimed_job(row, worker_id, host, now, lease_until)
                            except UNREADABLE as exc:
                                cur.execute(
                                    q["fail_unreadable"],
                                    (worker_id, host, now, now, unreadable_error(exc), row[0]),
                                )
                                unreadable = True
                                continue
                            cur.execute(
                                q["claim_take"], (worker_id, host, now, lease_until, row[0])
                            )
                            if cur.rowcount != 1:  # cannot happen under the write lock
                                raise StoreError(f"claim of job {row[1]} raced")
                            jobs.append(job)
                            taken.append(row)
                        if not unreadable or len(jobs) >= want:
                            break  # else pick again for the places the bad rows took
                cur.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"finish or claim failed: {exc}") from exc
                raise
        for end in ends:
            rowids.pop(end.job_id, None)
        if taken and len(rowids) >= ROWID_CACHE:
            # ends recorded elsewhere (a cancel, another worker's recovery) never come back
            # here: start over rather than grow; a finish without its rowid goes by id
            rowids.clear()
        for row in taken:
            rowids[row[1]] = row[0]
        return accepted, jobs

    def _pick_sql(self, n_queues: int) -> str:
        return heads_sql(self._q["claim_pick"], n_queues)

    def _cursor(self) -> sqlite3.Cursor:
        """This thread's cursor for the hot path: plain tuples, no Row objects."""
        cur: sqlite3.Cursor | None = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._conn().cursor()
            cur.row_factory = None
            self._local.cur = cur
        return cur

    def request_cancel(self, job_id: str, *, now: float) -> Job:
        params = {"id": job_id, "now": now}
        try:
            with self._tx() as conn:
                for name in (
                    "cancel_queued",
                    "cancel_running_cooperative",
                    "cancel_running_process",
                ):
                    if conn.execute(self._q[name], params).rowcount:
                        break
                row = conn.execute(self._q["get_job"], params).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cancel failed: {exc}") from exc
        if row is None:
            raise JobNotFound(f"no job with id {job_id}")
        self._doorbell.ring()
        return row_to_job(row)

    def delete(self, job_id: str) -> None:
        try:
            with self._tx() as conn:
                if conn.execute(self._q["delete_finished"], {"id": job_id}).rowcount:
                    return
                row = conn.execute(self._q["get_job"], {"id": job_id}).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"delete failed: {exc}") from exc
        if row is None:
            raise JobNotFound(f"no job with id {job_id}")
        raise Conflict(f"job {job_id} is {row['state']}: cancel it before deleting it")

    def _where(self, query: ResultQuery) -> tuple[str, dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if query.owner is not None:
            clauses.append("owner = :owner")
            params["owner"] = query.owner
        if query.states:
            names = [f":s{i}" for i in range(len(query.states))]
            clauses.append(f"state IN ({', '.join(names)})")
            params.update({f"s{i}": s.value for i, s in enumerate(query.states)})
        if query.name:
            clauses.append("name LIKE :name ESCAPE '\\'")
            params["name"] = "%" + _like_escape(query.name) + "%"
        if query.exact_name:
            clauses.append("name = :exact_name")
            params["exact_name"] = query.exact_name
        if query.queue:
            clauses.append("queue = :queue")
            params["queue"] = query.queue
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def results(self, query: ResultQuery) -> list[Job]:
        where, params = self._where(query)
        direction = "DESC" if query.descending else "ASC"
        # sort_column comes from the SORT_COLUMNS whitelist; NULLs (not started yet) go last.
        column = query.sort_column
        order = f"{column} IS NULL, {column} {direction}, submitted_at {direction}"
        if column in _NOT_NULL:  # no NULLs to move: an ORDER BY an index can serve
            order = f"{column} {direction}, submitted_at {direction}"
        params.update(limit=query.limit, offset=query.offset)
        sql = f"SELECT * FROM jobs{where} ORDER BY {order} LIMIT :limit OFFSET :offset"
        return [row_to_job(r) for r in self._read(sql, params)]

    def count(self, query: ResultQuery) -> int:
        where, params = self._where(query)
        return int(self._read(f"SELECT count(*) FROM jobs{where}", params)[0][0])

    def stats(self, query: ResultQuery) -> Stats:
        where, params = self._where(query)
        sql = (
            "SELECT count(*), "
            "coalesce(sum(state = 'succeeded'), 0), "
            "coalesce(sum(state IN ('failed', 'timed_out', 'lost')), 0), "
            "coalesce(sum(state = 'running'), 0), "
            "coalesce(sum(state = 'queued'), 0), "
            f"avg(runtime) FROM jobs{where}"
        )
        row = self._read(sql, params)[0]
        return Stats(int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), row[5])

    def purge(self, finished_before: float) -> list[str]:
        params = {"before": finished_before}
        try:
            with self._tx() as conn:
                ids = [r[0] for r in conn.execute(self._q["purge_select"], params)]
                conn.execute(self._q["purge_delete"], params)
        except sqlite3.Error as exc:
            raise StoreError(f"purge failed: {exc}") from exc
        return ids

    # -- leases and workers ---------------------------------------------------------------
    def heartbeat(
        self, worker_id: str, held: Sequence[str], *, now: float, lease: float
    ) -> list[str]:
        params = {"worker_id": worker_id, "now": now, "lease": lease, "lease_until": now + lease}
        params["busy"] = len(held)
        try:
            with self._tx() as conn:
                conn.execute(self._q["renew_leases"], params)
                conn.execute(self._q["worker_heartbeat"], params)
            if not held:
                return []
            marks = ", ".join(f":h{i}" for i in range(len(held)))
            rows = self._conn().execute(
                f"SELECT id, state, worker_id, cancel_requested FROM jobs WHERE id IN ({marks})",
                {f"h{i}": job_id for i, job_id in enumerate(held)},
            )
            keep = {
                r["id"]
                for r in rows
                if r["state"] == "running"
                and r["worker_id"] == worker_id
                and not r["cancel_requested"]
            }
        except sqlite3.Error as exc:
            raise StoreError(f"heartbeat failed: {exc}") from exc
        return [job_id for job_id in held if job_id not in keep]

    def recover_expired(self, *, now: float) -> list[Recovered]:
        out: list[Recovered] = []
        try:
            with self._tx() as conn:
                for row in conn.execute(self._q["expired_select"], {"now": now}).fetchall():
                    params = {"id": row["id"], "now": now}
                    requeued = bool(conn.execute(self._q["expired_requeue"], params).rowcount)
                    if not requeued:
                        conn.execute(self._q["expired_lose"], params)
                    out.append(Recovered(row["id"], row["worker_id"], requeued))
        except sqlite3.Error as exc:
            raise StoreError(f"lease recovery failed: {exc}") from exc
        if any(r.requeued for r in out):
            self._doorbell.ring()
        return out

    def register_worker(self, info: WorkerInfo) -> None:
        self._write(self._q["register_worker"], worker_params(info))

    def stop_worker(self, worker_id: str, *, now: float) -> None:
        self._write(self._q["stop_worker"], {"id": worker_id, "now": now})

    def workers(self) -> list[WorkerInfo]:
        return [row_to_worker(r) for r in self._read(self._q["list_workers"])]

    # -- metrics --------------------------------------------------------------------------
    def record_metrics(self, metrics: Sequence[Metric]) -> None:
        if not metrics:
            return
        try:
            with self._tx() as conn:
                conn.executemany(self._q["insert_metric"], [metric_params(m) for m in metrics])
        except sqlite3.Error as exc:
            raise StoreError(f"recording metrics failed: {exc}") from exc

    def purge_metrics(self, before: float) -> int:
        params = {"before": before, "after": 0, "batch": PURGE_BATCH}
        gone = 0
        while True:
            try:
                with self._tx() as conn:
                    ids = [r[0] for r in conn.execute(self._q["metrics_purge_batch"], params)]
            except sqlite3.Error as exc:
                raise StoreError(f"purging metrics failed: {exc}") from exc
            gone += len(ids)
            if len(ids) < PURGE_BATCH:
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
        sql = "SELECT * FROM metrics WHERE name = :name"
        params: dict[str, Any] = {"name": name, "limit": limit}
        if since is not None:
            sql += " AND at >= :since"
            params["since"] = since
        if job_id is not None:
            sql += " AND job_id = :job_id"
            params["job_id"] = job_id
        sql += " ORDER BY at DESC, id DESC LIMIT :limit"
        return [row_to_metric(r) for r in reversed(self._read(sql, params))]

    # -- wake-up and lifetime -------------------------------------------------------------
    def waiter(self, worker_id: str) -> Waiter:
        return self._doorbell.waiter(worker_id)

    def close(self) -> None:
        with self._conns_lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
        self._doorbell.close()


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL once. Switching needs an exclusive lock and SQLite does not call
    the busy handler for it, so openers racing on a fresh file retry for a while; once the file
    is in WAL mode (the setting is persistent) there is nothing to switch."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


@functools.cache
def heads_sql(claim_pick: str, n_queues: int) -> str:
    """``claim_pick`` over ``n_queues`` queues in one statement: a ``UNION ALL`` of each
    queue's heads (each a search of the partial index, no sort; its parameters come from
    :func:`heads_params`). One statement instead of one per queue saves ~4 us per claim; the
    best heads are chosen in Python. Plain ``?`` placeholders: numbered ones (``?1``) bound from
    a sequence are deprecated from Python 3.12 and an error from 3.14."""
    one = claim_pick[claim_pick.index("SELECT") :].strip().rstrip(";")
    return " UNION ALL ".join(f"SELECT * FROM ({one})" for _ in range(n_queues))


def heads_params(queues: Sequence[str], limit: int) -> tuple[str | int, ...]:
    """The parameters of :func:`heads_sql`: each queue with the limit of its arm."""
    return tuple(x for queue in queues for x in (queue, limit))


def _begin(conn: sqlite3.Connection | sqlite3.Cursor) -> None:
    """``BEGIN IMMEDIATE``: the write lock up front (no upgrade deadlock; the busy timeout
    applies)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StoreError(f"store is busy or unavailable: {exc}") from exc


def _claim_order(row: Any) -> tuple[int, float]:
    """Sort key of claim_pick rows: higher priority first, then the oldest."""
    return (-row[9], row[13])


def _finish_params(
    job_id: str, worker_id: str, attempt: int, outcome: Finish, now: float
) -> dict[str, Any]:
    return {
        "id": job_id,
        "worker_id": worker_id,
        "attempt": attempt,
        "state": outcome.state.value,
        "now": now,
        "output": outcome.output,
        "result": outcome.result_json,
        "error": outcome.error,
        "exit_code": outcome.exit_code,
        "peak_rss": outcome.peak_rss,
    }


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into complete statements."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
