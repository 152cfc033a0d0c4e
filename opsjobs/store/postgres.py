"""The PostgreSQL store: one database shared by workers on many hosts.

Delivery guarantee
------------------
- **Claim is exclusive.** A queued job has one entry in ``queued_jobs`` (migration 9). A claim of
  up to N jobs is one statement that deletes the best entries it could lock (``DELETE … WHERE id =
  ANY(ARRAY(SELECT … LIMIT N FOR UPDATE SKIP LOCKED))``) and marks their jobs running: an entry
  is deleted once, by the claimer that locked it (``FOR UPDATE`` skips an entry deleted
  meanwhile, and the lock holds until the claim commits), so two workers never take the same
  job, and concurrent claimers skip each other's entries instead of waiting. Each claimed job
  gets its own lease, as if claimed alone. ``finish`` is accepted only from the worker *and*
  attempt that own the running job, so a late report from a previous owner is refused.
- **A job whose worker dies** keeps its lease until it lapses; :meth:`PostgresStore.recover_expired`
  then re-queues it while retries remain (*at-least-once*: the code may have run partly, or even
  fully, before its worker died, and it runs again) or marks it ``lost`` when none remain
  (*at-most-once*: it is never started again).

Wake-up
-------
``submit``, ``request_cancel`` and re-queueing in ``recover_expired`` send ``NOTIFY`` in the same
transaction, so it is delivered on commit. The channel is ``opsjobs_jobs`` for the ``public``
schema and ``opsjobs_jobs_<schema>`` for any other (NOTIFY is per database, so stores in different
schemas of one database must not wake each other). A :class:`PostgresWaiter` ``LISTEN``\\ s on its
own connection, outside the pool.

Durability
----------
A submit is one statement whose commit waits for the WAL flush (``set_config('synchronous_commit',
'on', true)`` inside it: one round trip), a batch one transaction of two COPYs ended the same
way; a cancel, delete, schedule fire or heartbeat is a transaction committed with
``synchronous_commit = on``: once it returns, it survives a server crash. A worker's claim and
finish (one job's, or many ends and the next claims:
:meth:`PostgresStore.finish_and_claim_many`) are single statements committed with
``synchronous_commit = off`` (no wait for the WAL flush, which costs ~2 ms on an ordinary disk
and capped a worker at ~450 jobs/s): a server crash may forget the last fraction of a second of
them, never half of one. A forgotten claim leaves the job queued; a forgotten finish leaves it
running until its lease lapses and it is re-queued or marked lost — the at-least-once /
at-most-once guarantees above hold either way.

Writes and plans
----------------
``jobs.state`` is the truth every read uses; two narrow tables index it for the hot paths:
``queued_jobs`` (the claim's heads, the next due retry) and ``running_jobs`` (heartbeats, lease
recovery), kept in step by the statements that change a job's state. No index of ``jobs`` names a
column that a claim, an end or a heartbeat changes, so those update the row in place (HOT, helped
by ``fillfactor = 50``) without writing an entry into each of its indexes. Lock order rules out
deadlocks: ``queued_jobs`` before ``jobs`` (claim, cancel), ``jobs`` before ``running_jobs``
(end, heartbeat, retry, recovery).

The pool's connections run with ``plan_cache_mode = force_generic_plan``: psycopg prepares a
statement run five times on a connection, and PostgreSQL would otherwise plan the worker's
many-CTE claim-and-finish statement again on every run (its cost depends on the parameters),
~0.4 ms of server CPU per round trip — more than the rest of a one-job step
(``python bench/pg_profile.py --raw-only``). Other statements rarely gain from a custom plan
here (no index favours one value over another); prepared listings measured alike either way
(bench/README.md, issue 21).

Connection loss
---------------
Connections killed by ``pg_terminate_backend`` or a server restart are found when used: an
operation that meets an :class:`psycopg.OperationalError` is retried (for ``RETRY_WINDOW`` s)
when that is safe, each time on a pooled connection that first answered a round trip (dead ones
are discarded): reads, writes that failed before their ``COMMIT`` was sent (the server rolled them
back), submits (their ``ON CONFLICT DO NOTHING`` makes a second run after an unknown commit
harmless; a batch's COPY is retried as that statement), and the single-statement claim and
finish. A claim whose reply was lost may have committed: its retry first looks for a job running
under this worker that this very call started (same ``started_at``) and takes it, so no claimed
job is left running unknown to its worker. A failure during
the ``COMMIT`` of any other multi-statement transaction is not retried: whether it
committed is unknown. A worker whose finish still fails retries it until the store answers (see
:mod:`opsjobs.worker`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from opsjobs.config import redact_url
from opsjobs.errors import ConfigError, Conflict, NotFound, StoreError
from opsjobs.model import Job, JobSpec, JobState, ResultQuery, Stats
from opsjobs.store.base import PURGE_BATCH, End, Finish, Store, Waiter
from opsjobs.store.sql import load_migrations, load_queries
from opsjobs.store.sql.alerts import SqlAlerts
from opsjobs.store.sql.auth import SqlAuth
from opsjobs.store.sql.db import Db, Params, Tx, conflict_message, missing_message
from opsjobs.store.sql.jobs import SqlJobs
from opsjobs.store.sql.notices import SqlNotices
from opsjobs.store.sql.rows import (
    UNREADABLE,
    claimed_job,
    finish_params,
    job_params,
    job_row,
    like_escape,
    row_to_job,
    unreadable_error,
)
from opsjobs.store.sql.schedules import SqlSchedules

__all__ = ["PostgresDb", "PostgresStore", "PostgresWaiter"]

T = TypeVar("T")
Conn = psycopg.Connection[DictRow]

CHANNEL = "opsjobs_jobs"
#: Seconds a statement that failed on a lost connection is retried for: a backend terminated by
#: pg_terminate_backend or a restart may still pass a connection check and die a moment later,
#: and a restart takes seconds, so a count of retries ran out under repeated terminations (a
#: loaded CI run: 6 of 1,600 submits met three kills in a row).
RETRY_WINDOW = 5.0
#: Seconds before the first retry; each pause doubles, up to RETRY_PAUSE_MAX.
RETRY_PAUSE = 0.02
RETRY_PAUSE_MAX = 0.5
#: Seconds between attempts of a waiter to listen again while the server is unreachable.
RECONNECT_PAUSE = 0.5
_MAX_IDENTIFIER = 63  # NAMEDATALEN - 1: longer channel names are refused by pg_notify
#: Columns the results listing may sort by (the values of model.SORT_COLUMNS).
_SORTABLE = frozenset(
    {"name", "state", "submitted_at", "started_at", "finished_at", "runtime", "mode", "host"}
    | {"queue", "owner", "kind"}
)


def application_name(pid: int, host: str = "") -> str:
    """The ``application_name`` of the connections of process ``pid`` on ``host`` (default:
    this machine's name; workers pass the host name they register under): ``opsjobs
    <pid>@<host>``, cut to PostgreSQL's 63 bytes. ``pg_stat_activity`` counts each process's
    connections by it (:meth:`PostgresStore.connection_counts`)."""
    name = f"opsjobs {pid}@{host or socket.gethostname()}"
    return name.encode()[:_MAX_IDENTIFIER].decode("utf-8", "ignore")


def channel_for(schema: str) -> str:
    """The NOTIFY channel of the store living in ``schema``."""
    if schema == "public":
        return CHANNEL
    name = f"{CHANNEL}_{schema}"
    if len(name.encode("utf-8")) > _MAX_IDENTIFIER:
        name = f"{CHANNEL}_{hashlib.sha1(schema.encode('utf-8')).hexdigest()[:32]}"
    return name


class PostgresStore(SqlJobs, SqlAlerts, SqlNotices, SqlAuth, SqlSchedules, Store):
    """Jobs, workers and metrics in PostgreSQL, through a small connection pool.

    A worker may have two steps (``finish_and_claim_many`` calls) out at once, each on its own
    pooled connection (``step_lanes``; a pool of one connection: one): the jobs one step
    claimed run while the next step's ends and claims are at the server. Its steps are
    batched (``batch_steps``).

    Parameters
    ----------
    url
        A libpq connection URL (``postgresql://user@host:5432/db``); its ``options`` may select a
        schema (``?options=-csearch_path%3Dmyschema``).
    min_size, max_size
        Bounds of the connection pool: it keeps ``min_size`` open and opens more, up to
        ``max_size``, while threads use the store at once.
    max_idle
        Seconds a connection beyond ``min_size`` may stay unused before it is closed (one per
        period: a pool that grew to 4 is back to 1 after about three periods).
    timeout
        Seconds to wait for a pooled connection (and for the pool to open) before failing.
    connect_timeout
        Seconds libpq waits for a new connection, unless ``url`` sets its own.
    check
        Check each pooled connection before lending it (one more round trip per call). Off by
        default: a dead connection costs one failed attempt, which is retried when safe.
    host
        The host name in this process's ``application_name`` (see :func:`application_name`);
        default: the machine's name.
    """

    batch_steps = True

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        max_idle: float = 60.0,
        timeout: float = 10.0,
        connect_timeout: int = 5,
        check: bool = False,
        host: str = "",
    ) -> None:
        self.url = url
        #: See Store.step_lanes: two steps, each on its own pooled connection.
        self.step_lanes = 2 if max(max_size, min_size) >= 2 else 1
        self._q = load_queries("postgres")
        try:
            given = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StoreError(f"invalid PostgreSQL URL {redact_url(url)}: {exc}") from exc
        if not given.get("dbname"):
            raise ConfigError(
                f"the PostgreSQL URL {redact_url(url)} names no database: "
                "use postgresql://user@host:5432/<database>"
            )
        extra: dict[str, Any] = {}
        if "connect_timeout" not in given:
            extra["connect_timeout"] = connect_timeout
        if "application_name" not in given:
            extra["application_name"] = application_name(os.getpid(), host)
        # Worker transitions (claim, finish) are single autocommit statements that need not wait
        # for the WAL flush; a submit, and every multi-statement transaction (cancel, delete,
        # schedule fires, heartbeats), turns synchronous_commit back on. See "Durability" above.
        # Generic plans for prepared statements: see "Writes and plans" above.
        extra["options"] = (
            str(given.get("options") or "")
            + " -c synchronous_commit=off -c plan_cache_mode=force_generic_plan"
        ).strip()
        self._conninfo = make_conninfo(url, **extra)
        # One plain connection first: an unreachable server is one clear error, not the pool's
        # warnings for every retry followed by "pool initialization incomplete".
        try:
            psycopg.connect(self._conninfo).close()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = redact_url(url)
            raise StoreError(f"cannot connect to PostgreSQL at {where}: {reason}") from exc
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            self._conninfo,
            min_size=min_size,
            max_size=max(max_size, min_size),
            max_idle=max_idle,
            timeout=timeout,
            open=False,
            check=ConnectionPool.check_connection if check else None,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=_json_as_text,
            name="opsjobs",
            num_workers=2,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:
            self._pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {redact_url(url)}: {exc}") from exc
        try:
            self.schema = self._migrate()
        except BaseException:
            self._pool.close()
            raise
        self.channel = channel_for(self.schema)
        self._db = PostgresDb(self)

    # -- connections and transactions -----------------------------------------------------
    def _run(
        self,
        what: str,
        work: Callable[[Conn], T],
        *,
        write: bool = True,
        single: bool = False,
        retry: Callable[[Conn], T] | None = None,
        idempotent: bool = False,
    ) -> T:
        """Run ``work`` on a pooled connection (in one transaction when ``write``).

        ``single`` marks work that is one statement: it runs in autocommit, one round trip
        instead of three (BEGIN, statement, COMMIT); such statements are written so that a
        retry after an unknown commit is harmless, or give ``retry`` to run instead of ``work``
        from the second time on. Retried (for :data:`RETRY_WINDOW` seconds) on an
        operational error unless the error came while committing a transaction that is not
        ``idempotent`` (one whose second run after a commit changes nothing, such as the
        submit's ``ON CONFLICT DO NOTHING``). A retry runs on a connection checked alive:
        after a restart or ``pg_terminate_backend`` every pooled connection is dead, and other
        threads may return dead ones meanwhile.
        """
        deadline = time.monotonic() + RETRY_WINDOW
        pause = RETRY_PAUSE
        attempt = 0
        while True:
            attempt += 1
            committing = False
            if attempt > 1:
                # let terminations already signalled to other backends land before the check
                time.sleep(pause)
                pause = min(pause * 2, RETRY_PAUSE_MAX)
                work = retry or work
            try:
                with self._connection(checked=attempt > 1) as conn:
                    if not write or single:
                        return work(conn)
                    with conn.transaction():
                        conn.execute("SET LOCAL synchronous_commit = on")
                        result = work(conn)
                        committing = True
                    return result
            except PoolClosed as exc:
                raise StoreError("the store is closed") from exc
            except PoolTimeout as exc:
                raise StoreError(f"{what} failed: no database connection ({exc})") from exc
            except psycopg.OperationalError as exc:
                in_time = time.monotonic() + pause < deadline
                if in_time and (idempotent or not committing):
                    continue
                raise StoreError(f"{what} failed: {exc}") from exc
            except psycopg.Error as exc:
                raise StoreError(f"{what} failed: {exc}") from exc

    @contextlib.contextmanager
    def _connection(self, *, checked: bool) -> Iterator[Conn]:
        """A pooled connection; ``checked``: one that answered a round trip (dead ones are
        closed and go back to the pool, which discards them)."""
        if not checked:
            with self._pool.connection() as conn:
                yield conn
            return
        for _ in range(self._pool.max_size + 1):
            with self._pool.connection() as conn:
                try:
                    ConnectionPool.check_connection(conn)
                except psycopg.OperationalError:
                    continue
                yield conn
                return
        raise psycopg.OperationalError("no live connection to PostgreSQL")

    def _read(self, what: str, query: str, params: Any = None) -> list[DictRow]:
        return self._run(what, lambda conn: conn.execute(query, params).fetchall(), write=False)

    def _notify(self, conn: Conn) -> None:
        conn.execute(self._q["notify"], {"channel": self.channel})

    def _migrate(self) -> str:
        def apply(conn: Conn) -> str:
            # Several processes may open the store at once: one migrates, the others wait here
            # and then find the schema current.
            conn.execute(self._q["migration_lock"])
            conn.execute(self._q["schema_version_table"])
            current = _one(conn, self._q["schema_version"])["version"]
            for version, name, script in load_migrations("postgres"):
                if version > current:
                    conn.execute(script)  # no parameters: several statements are allowed
                    conn.execute(self._q["record_migration"], {"version": version, "name": name})
            return str(_one(conn, self._q["current_schema"])["schema"])

        return self._run(f"migrating the PostgreSQL store at {redact_url(self.url)}", apply)

    def schema_version(self) -> int:
        return int(
            self._read("reading the schema version", self._q["schema_version"])[0]["version"]
        )

    # -- jobs ------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, *, now: float) -> Job:
        # The id is made once, outside the retry: a retried insert can never duplicate the job.
        job_id = str(uuid.uuid4())
        params = job_params(job_id, spec, now)

        params["channel"] = self.channel
        # One statement whose commit waits for the WAL flush (see submit_job): a submitted job
        # survives a server crash.
        self._run("submit", lambda conn: conn.execute(self._q["submit_job"], params), single=True)
        return Job(id=job_id, spec=spec, state=JobState.QUEUED, submitted_at=now)

    def submit_many(self, specs: Sequence[JobSpec], *, now: float) -> list[Job]:
        if not specs:
            return []
        ids = [str(uuid.uuid4()) for _ in specs]  # made once: a retried insert never duplicates
        # COPY into jobs and queued_jobs, one wake-up and a durable commit, in one transaction:
        # half the server CPU of one INSERT ... SELECT FROM json_to_recordset (1,000 jobs:
        # ~10 ms against ~20 ms, and ~35 against ~55 ms of wall time; bench/README.md, issue
        # 21). COPY has no ON CONFLICT, so a retry (the first run may have committed before
        # its reply was lost) runs submit_jobs instead, which skips the rows already there.
        self._run(
            "submit",
            lambda conn: self._copy_jobs(conn, ids, specs, now),
            single=True,
            retry=lambda conn: conn.execute(
                self._q["submit_jobs"], _submit_params(ids, specs, now, self.channel)
            ),
        )
        return [
            Job(id=job_id, spec=spec, state=JobState.QUEUED, submitted_at=now)
            for job_id, spec in zip(ids, specs, strict=True)
        ]

    def _copy_jobs(
        self, conn: Conn, ids: Sequence[str], specs: Sequence[JobSpec], now: float
    ) -> None:
        """``submit_many``'s first run: the rows ``submit_jobs`` would insert, by COPY."""
        with conn.transaction():
            cur = conn.cursor()
            with cur.copy(self._q["copy_jobs"]) as copy:
                write = copy.write_row
                queued = ("queued",)
                for job_id, spec in zip(ids, specs, strict=True):
                    write(job_row(job_id, spec, now) + queued)
            with cur.copy(self._q["copy_queued_jobs"]) as copy:
                write = copy.write_row
                for job_id, spec in zip(ids, specs, strict=True):
                    write((job_id, spec.queue, spec.priority, now))
            cur.execute(self._q["durable_notify"], {"channel": self.channel})

    def claim(
        self, worker_id: str, host: str, queues: Sequence[str], *, now: float, lease: float
    ) -> Job | None:
        _, jobs = self.finish_and_claim_many(
            (), worker_id=worker_id, host=host, queues=queues, now=now, lease=lease, want=1
        )
        return jobs[0] if jobs else None

    def _readable(
        self, row: tuple[Any, ...], worker_id: str, host: str, now: float, lease_until: float
    ) -> Job | None:
        """The claimed job of a lean claim ``row`` (see ``finish_and_claim_many`` in
        queries.sql); if this version cannot read the row, the job is failed with the reason (it
        is running under this worker) and None returned."""
        try:
            return claimed_job(row, worker_id, host, now, lease_until)
        except UNREADABLE as exc:
            self.finish(
                str(row[1]),
                worker_id,
                int(row[14]) + 1,
                Finish(JobState.FAILED, error=unreadable_error(exc)),
                now=now,
            )
            return None

    def _claim_rows(self, conn: Conn, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of ``finish_and_claim_many`` as tuples (read by position: no dict a row)."""
        cur = conn.cursor(row_factory=tuple_row)
        return cur.execute(self._q["finish_and_claim_many"], params).fetchall()

    def _adopt(self, conn: Conn, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The retry of a claim whose first attempt broke off: if that attempt committed
        (its reply was lost with the connection), its jobs are running under this worker with
        ``started_at`` = this call's ``now`` — take those (and count its ends as recorded)
        instead of claiming more, which would stay running, unknown to the worker."""
        if params["want"] > 0:
            cur = conn.cursor(row_factory=tuple_row)
            rows = cur.execute(self._q["claimed_by_call"], params).fetchall()
            if rows:
                ids = params["ids"]
                return [(ids, *row[1:]) for row in rows]
        return self._claim_rows(conn, params)

    def finish(
        self, job_id: str, worker_id: str, attempt: int, outcome: Finish, *, now: float
    ) -> bool:
        params = finish_params(job_id, worker_id, attempt, outcome, now)
        rows = self._run(
            "finish", lambda conn: conn.execute(self._q["finish"], params).rowcount, single=True
        )
        return rows == 1

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
        """One statement, one round trip, for a worker that has room for another job."""
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
        """The worker's hot path in one statement, one round trip: the ends as one JSON array,
        then up to ``want`` jobs claimed with ``FOR UPDATE SKIP LOCKED``, each
        with its own lease. Claimed jobs come back best first (priority, then age). Calls of
        one worker that overlap must pass distinct ``now`` values: a retry after a lost reply
        adopts the jobs this worker started at ``now`` (:meth:`_adopt`)."""
        want = max(want, 0) if queues else 0
        if not ends and not want:
            return [], []
        params = _many_params(ends, worker_id, host, queues, now, lease, want)
        lease_until = params["lease_until"]
        jobs: list[Job] = []
        while True:
            rows = self._run(
                "finish or claim",
                lambda conn: self._claim_rows(conn, params),
                single=True,
                retry=lambda conn: self._adopt(conn, params),
            )
            if params["ids"]:
                done = set(rows[0][0] or ()) if rows else set()
                accepted = [end.job_id in done for end in ends]
                params.update(_many_params((), worker_id, host, queues, now, lease, 0))
            claimed = [r for r in rows if r[1] is not None]
            claimed.sort(key=_claim_order)
            unreadable = False
            for row in claimed:
                job = self._readable(row, worker_id, host, now, lease_until)
                if job is None:
                    unreadable = True  # failed as unreadable: claim another in its place
                else:
                    jobs.append(job)
            left = want - len(jobs)
            if not unreadable or left <= 0 or not claimed:
                break
            params.update(want=left)
        return (accepted if ends else []), jobs

    def _where(self, query: ResultQuery) -> tuple[str, dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if isinstance(query.owner, tuple):
            clauses.append("owner = ANY(%(owners)s)")
            params["owners"] = list(query.owner)
        elif query.owner is not None:
            clauses.append("owner = %(owner)s")
            params["owner"] = query.owner
        if query.states:
            clauses.append("state = ANY(%(states)s)")
            params["states"] = [s.value for s in query.states]
        if query.name:
            # ILIKE under COLLATE "C" folds ASCII case only, like SQLite's LIKE.
            clauses.append("name ILIKE %(name)s ESCAPE '\\'")
            params["name"] = "%" + like_escape(query.name) + "%"
        if query.exact_name:
            clauses.append("name = %(exact_name)s")
            params["exact_name"] = query.exact_name
        if query.queue:
            clauses.append("queue = %(queue)s")
            params["queue"] = query.queue
        if query.since is not None:
            clauses.append("submitted_at >= %(since)s")
            params["since"] = query.since
        if query.until is not None:
            clauses.append("submitted_at < %(until)s")
            params["until"] = query.until
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def results(self, query: ResultQuery) -> list[Job]:
        where, params = self._where(query)
        column = query.sort_column
        if column not in _SORTABLE:
            raise StoreError(f"cannot sort by {column!r}")
        descending = query.descending != query.reverse
        direction = "DESC" if descending else "ASC"
        # NULLs (not started yet) go last in both directions, as in the SQLite store (first
        # when the order is read from its end).
        nulls = "FIRST" if query.reverse else "LAST"
        # id last: ties (a batch shares its submitted time) keep one order from either end
        order = f"{column} {direction} NULLS {nulls}, submitted_at {direction}, id {direction}"
        params.update(limit=query.limit, offset=query.offset)
        text = self._q["results"].replace("{where}", where).replace("{order}", order)
        return [row_to_job(r) for r in self._read("results", text, params)]

    def count(self, query: ResultQuery) -> int:
        where, params = self._where(query)
        return int(self._read("count", self._q["count"].replace("{where}", where), params)[0]["n"])

    def stats(self, query: ResultQuery) -> Stats:
        where, params = self._where(query)
        row = self._read("stats", self._q["stats"].replace("{where}", where), params)[0]
        return Stats(
            int(row["total"]),
            int(row["succeeded"]),
            int(row["failed"]),
            int(row["running"]),
            int(row["queued"]),
            row["avg_runtime"],
        )

    def connection_counts(self) -> dict[tuple[int, str], int]:
        counts: dict[tuple[int, str], int] = {}
        for row in self._read("counting connections", self._q["connection_counts"]):
            pid, _, host = str(row["name"])[len("opsjobs ") :].partition("@")
            if pid.isdigit():
                counts[int(pid), host] = int(row["n"])
        return counts

    # -- metrics --------------------------------------------------------------------------
    def purge_metrics(self, before: float) -> int:
        return self._purge_metrics(before, PURGE_BATCH)

    # -- wake-up and lifetime -------------------------------------------------------------
    def waiter(self, worker_id: str) -> Waiter:
        return PostgresWaiter(self._conninfo, self.channel)

    def close(self) -> None:
        self._pool.close()


class PostgresDb(Db):
    """The :class:`~opsjobs.store.sql.db.Db` of a :class:`PostgresStore`: transactions run by
    :meth:`PostgresStore._run` (retried on a lost connection when safe), ``NOTIFY`` to wake."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def transaction(
        self,
        what: str,
        work: Callable[[Tx], T],
        *,
        conflict: str | None = None,
        missing: str | None = None,
    ) -> T:
        store = self._store
        try:
            return store._run(what, lambda conn: work(_PostgresTx(conn, store)))
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg.errors.UniqueViolation):
                raise Conflict(conflict_message(what, conflict)) from cause
            if isinstance(cause, psycopg.errors.ForeignKeyViolation):
                raise NotFound(missing_message(what, missing)) from cause
            raise

    def read(self, what: str, name: str, params: Params | None = None) -> list[DictRow]:
        return self._store._read(what, self._store._q[name], params)

    def array(self, values: Sequence[str]) -> list[str]:
        return list(values)  # a text[] parameter


class _PostgresTx(Tx):
    def __init__(self, conn: Conn, store: PostgresStore) -> None:
        self._conn = conn
        self._store = store
        self._woken = False

    def run(self, name: str, params: Params | None = None) -> psycopg.Cursor[DictRow]:
        return self._conn.execute(self._store._q[name], params)

    def run_many(self, name: str, rows: Iterable[Params]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(self._store._q[name], rows)

    def wake(self) -> None:
        if not self._woken:  # NOTIFY is delivered on commit
            self._store._notify(self._conn)
            self._woken = True


class PostgresWaiter(Waiter):
    """``LISTEN`` on a dedicated connection; ``wait`` returns when a notification arrives.

    If the connection breaks, ``wait`` returns True at once (the caller re-checks the queue) and
    the next call reconnects, returning True again since notifications may have been missed in
    between. While the server stays unreachable ``wait`` returns False after at most
    :data:`RECONNECT_PAUSE` seconds, so a server that comes back (a restart) is listened to
    again within that pause, not after the caller's whole poll interval.
    """

    def __init__(self, conninfo: str, channel: str) -> None:
        self._conninfo = conninfo
        self.channel = channel
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            raise StoreError(f"cannot listen for new jobs: {exc}") from exc

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.Connection.connect(self._conninfo, autocommit=True)
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except BaseException:
            conn.close()
            raise
        return conn

    def wait(self, timeout: float) -> bool:
        timeout = max(timeout, 0.0)
        if self._closed:
            raise StoreError("the waiter is closed")
        conn = self._conn
        if conn is None:
            try:
                self._conn = self._connect()
            except psycopg.Error:
                time.sleep(min(timeout, RECONNECT_PAUSE))
                return False
            return True
        try:
            woken = False
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                woken = True
            if woken:
                # One wake-up serves a burst of submits: drop what is already here.
                for _ in conn.notifies(timeout=0):
                    pass
        except psycopg.Error:
            self._drop()
            return True
        return woken

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def close(self) -> None:
        self._closed = True
        self._drop()


def _one(conn: Conn, query: str) -> DictRow:
    row = conn.execute(query).fetchone()
    if row is None:
        raise StoreError(f"no row from {query!r}")
    return row


def _json_text(value: Any) -> str:
    """``value`` as compact JSON text, the one parameter of a batch statement."""
    return json.dumps(value, separators=(",", ":"))


def _submit_params(
    ids: Sequence[str], specs: Sequence[JobSpec], now: float, channel: str
) -> dict[str, Any]:
    """The parameters of ``submit_jobs``: the jobs as one JSON array of objects, each with
    the columns of :func:`job_params` (its payload as an object, ``now`` once for all)."""
    rows = []
    for job_id, spec in zip(ids, specs, strict=True):
        row = job_params(job_id, spec, now)
        del row["now"]
        row["payload"] = dict(spec.payload)
        rows.append(row)
    return {"jobs": _json_text(rows), "now": now, "channel": channel}


def _many_params(
    ends: Sequence[End],
    worker_id: str,
    host: str,
    queues: Sequence[str],
    now: float,
    lease: float,
    want: int,
) -> dict[str, Any]:
    """The parameters of ``finish_and_claim_many``: the ends as one JSON array (``ids``, for
    :meth:`PostgresStore._adopt`, is not sent)."""
    return {
        "ids": [e.job_id for e in ends],
        "ends": _json_text(
            [
                {
                    "id": e.job_id,
                    "attempt": e.attempt,
                    "state": e.outcome.state.value,
                    "at": e.at,
                    "output": e.outcome.output,
                    "result": e.outcome.result_json,
                    "error": e.outcome.error,
                    "exit_code": e.outcome.exit_code,
                    "peak_rss": e.outcome.peak_rss,
                }
                for e in ends
            ]
        ),
        "worker_id": worker_id,
        "host": host,
        "queues": list(queues),
        "now": now,
        "lease_until": now + lease,
        "want": want,
    }


def _json_as_text(conn: Conn) -> None:
    """JSON columns arrive as their text, as SQLite's do, and the row readers parse them
    (rows.json_value): decoded by psycopg, a job's result that is a JSON string ("done") was
    taken for JSON text and parsed again, and its row could not be read."""
    conn.adapters.register_loader("jsonb", TextLoader)
    conn.adapters.register_loader("json", TextLoader)


def _claim_order(row: tuple[Any, ...]) -> tuple[int, float]:
    """Sort key of lean claimed rows: higher priority first, then the oldest."""
    return (-row[9], row[13])
