"""Where a PostgreSQL worker's time goes: cProfile of an inline drain, and round trips per job.

Usage::

    python bench/pg_profile.py [--jobs 5000] [--postgres URL] [--top 25]

A fresh schema is filled with ``--jobs`` no-op ``call`` jobs (inline), then one
:class:`opsjobs.Worker` drains them on this thread under cProfile (inline jobs are claimed, run
and finished on the worker's main loop, so the profile holds all of a job's work; only the
supervisor's heartbeat runs elsewhere). Round trips are counted twice: statements sent by
psycopg (``Cursor.execute``/``executemany``, every thread) and transactions committed by the
server for the schema's tables (``pg_stat_xact_*`` is per session, so the database-wide
``xact_commit`` delta of ``pg_stat_database`` is read instead; other sessions on the server add
to it, so it is an upper bound).
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import throughput  # noqa: E402  (bench/ is on the path: this file's folder)
from throughput import (  # noqa: E402
    DEFAULT_PG,
    opsjobs_client,
    opsjobs_settings,
    pg_reachable,
    pg_schema,
    prefill,
    wait_until,
)


class StatementCounter:
    """Counts statements psycopg sends (one round trip each without pipeline mode)."""

    def __init__(self) -> None:
        import psycopg

        self.count = 0
        self._lock = threading.Lock()
        self._saved = (psycopg.Cursor.execute, psycopg.Cursor.executemany)
        execute, executemany = self._saved
        counter = self

        def counted_execute(cur: Any, *args: Any, **kwargs: Any) -> Any:
            with counter._lock:
                counter.count += 1
            return execute(cur, *args, **kwargs)

        def counted_executemany(cur: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            rows = list(params_seq)
            with counter._lock:
                counter.count += len(rows)
            return executemany(cur, query, rows, **kwargs)

        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = counted_executemany  # type: ignore[method-assign]

    def restore(self) -> None:
        import psycopg

        psycopg.Cursor.execute, psycopg.Cursor.executemany = self._saved  # type: ignore[method-assign]


def commits(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def raw_loop(url: str, n: int, analyze: bool = False) -> float:
    """The store's own ``claim`` + ``finish_and_claim`` SQL on one connection, no Python layers
    above psycopg (the SQL ceiling of one worker); returns jobs/s. With ``analyze`` the table's
    statistics are gathered after the pre-fill (see bench/README.md: the claim's plan)."""
    import psycopg
    from psycopg.rows import dict_row

    from opsjobs.model import JobState
    from opsjobs.store.base import Finish
    from opsjobs.store.postgres import _finish_params
    from opsjobs.store.sql import load_queries

    q = load_queries("postgres")
    folder = Path(tempfile.mkdtemp(prefix="opsjobs-pg-raw-"))
    with pg_schema(url) as store_url:
        client = opsjobs_client(opsjobs_settings(folder, store_url))
        try:
            prefill(client, n, "inline")
        finally:
            client.close()
        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.row_factory = dict_row  # type: ignore[assignment]
            conn.execute("SET synchronous_commit = off")  # as the store's claim/finish
            if analyze:
                conn.execute("ANALYZE jobs")
            base = {"worker_id": "raw", "host": "h", "queues": ["default"], "lease_until": 0.0}
            t0 = time.perf_counter()
            row = conn.execute(q["claim"], {**base, "now": time.time()}).fetchone()
            done = 0
            while row is not None and row.get("id") is not None:
                params = _finish_params(
                    row["id"], "raw", row["attempt"], Finish(JobState.SUCCEEDED), time.time()
                )
                row = conn.execute(q["finish_and_claim"], {**params, **base}).fetchone()
                done += 1
            wall = time.perf_counter() - t0
    assert done == n, done
    return n / wall


def profile(url: str, n: int, top: int) -> None:
    from opsjobs import Worker

    folder = Path(tempfile.mkdtemp(prefix="opsjobs-pg-profile-"))
    with pg_schema(url) as store_url:
        settings = opsjobs_settings(folder, store_url)
        client = opsjobs_client(settings)
        try:
            throughput.RAN.clear()
            prefill(client, n, "inline")
            worker = Worker(client.store, settings, threads=1)

            def stopper() -> None:
                wait_until(lambda: len(throughput.RAN) >= n, "the profiled drain")
                worker.stop()

            threading.Thread(target=stopper, daemon=True).start()
            counter = StatementCounter()
            before = commits(url)
            profiler = cProfile.Profile()
            t0 = time.perf_counter()
            try:
                profiler.runcall(worker.run)
            finally:
                counter.restore()
            wall = time.perf_counter() - t0
            after = commits(url)
            done = client.count(states=["succeeded"])
        finally:
            client.close()
    print(f"== PostgreSQL inline drain: {n} jobs, {wall:.2f} s under cProfile ({n / wall:,.0f}/s)")
    print(f"succeeded: {done}; statements sent by psycopg: {counter.count} "
          f"= {counter.count / n:.2f} per job (heartbeats and start/stop included)")  # fmt: skip
    print(f"server commits in the database: {after - before} = {(after - before) / n:.2f} per job "
          "(an upper bound: other sessions count too)")  # fmt: skip
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--postgres", default=DEFAULT_PG)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    why = pg_reachable(args.postgres)
    if why is not None:
        print(f"PostgreSQL not reachable: {why}", file=sys.stderr)
        return 1
    for analyze in (False, True):
        rate = raw_loop(args.postgres, args.jobs, analyze)
        print(
            "== raw SQL loop (claim, then finish_and_claim per job, one connection"
            f"{', ANALYZE after the pre-fill' if analyze else ''}): {rate:,.0f}/s"
        )
    profile(args.postgres, args.jobs, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
