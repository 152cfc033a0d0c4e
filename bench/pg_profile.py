"""Where a PostgreSQL worker's time goes: cProfile of an inline drain, and round trips per job.

Usage::

    python bench/pg_profile.py [--jobs 5000] [--postgres URL] [--top 25]
                               [--want 1,100] [--rounds 1] [--raw-only] [--steps 100]
                               [--shape noop]

First the store's own ``finish_and_claim_many`` statement runs alone on one connection, ``--want``
jobs per round trip (the SQL ceiling of one worker), reporting jobs/s, the server process's CPU
per job and how many row updates of ``jobs`` were HOT; ``--raw-only`` stops there.
A fresh schema is filled with ``--jobs`` no-op ``call`` jobs (inline), then one
:class:`opsjobs.Worker` drains them on this thread under cProfile (inline jobs are claimed, run
and finished on the worker's main loop, so the profile holds all of a job's work; only the
supervisor's heartbeat runs elsewhere). ``--steps N`` instead drains ``thread`` jobs with an
in-process worker of N slots and reports where its wall time goes: the store calls (each timed,
the batched ones' mean and the gap to the next call), the process's CPU and the CPU of the
server backends of this process (read from /proc), how long one call and two calls at once
were out (a worker's steps may overlap on PostgreSQL) and the claims per call. Round trips
are counted twice: statements sent by psycopg (``Cursor.execute``/``executemany``, every
thread) and transactions committed by the server for the schema's tables
(``pg_stat_xact_*`` is per session, so the database-wide ``xact_commit`` delta of
``pg_stat_database`` is read instead; other sessions on the server add to it, so it is an
upper bound).
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import cProfile  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
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
    prefill_many,
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


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process ``pid`` has used: on a machine shared
    with other work, a figure that load changes much less than wall time. Linux only (0.0
    elsewhere, or when the server runs on another host)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_loop(url: str, n: int, want: int = 1, analyze: bool = False) -> tuple[float, float, str]:
    """The store's own ``finish_and_claim_many`` statement on one connection, no Python layers
    above psycopg (the SQL ceiling of one worker): each round trip records the ends of the jobs
    the last one claimed and claims up to ``want`` more; returns jobs/s and the server
    process's CPU microseconds per job (see :func:`backend_cpu`) and the HOT share of the
    row updates. With ``analyze`` the
    table's statistics are gathered after the pre-fill (see bench/README.md: the claim's plan).
    """
    import psycopg
    from psycopg.rows import dict_row

    from opsjobs.model import JobState
    from opsjobs.store.base import End, Finish
    from opsjobs.store.postgres import _many_params

    folder = Path(tempfile.mkdtemp(prefix="opsjobs-pg-raw-"))
    with pg_schema(url) as store_url:
        client = opsjobs_client(opsjobs_settings(folder, store_url))
        try:
            prefill_many(client, n, "inline")
            statement = client.store._q["finish_and_claim_many"]
        finally:
            client.close()
        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.row_factory = dict_row  # type: ignore[assignment]
            # as the store's pooled connections: see "Plans" in opsjobs/store/postgres.py
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET plan_cache_mode = force_generic_plan")
            if analyze:
                conn.execute("ANALYZE jobs")
            done = 0
            ends: list[End] = []
            row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
            pid = int(row["pid"]) if row else 0
            cpu0 = backend_cpu(pid)
            t0 = time.perf_counter()
            while True:
                params = _many_params(ends, "raw", "h", ["default"], time.time(), 60.0, want)
                rows = conn.execute(statement, params).fetchall()
                done += len(ends)
                ok = Finish(JobState.SUCCEEDED)
                at = time.time()
                # lean rows: the attempt before the claim (see finish_and_claim_many)
                ends = [
                    End(r["id"], r["claimed_from"] + 1, ok, at) for r in rows if r["id"] is not None
                ]
                if not ends:
                    break
            wall = time.perf_counter() - t0
            cpu = backend_cpu(pid) - cpu0
        hot = hot_updates(store_url)
    assert done == n, done
    return n / wall, cpu / n * 1e6, hot


def hot_updates(url: str) -> str:
    """Row updates of ``jobs`` and how many were HOT (in place: no new index entries)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(50):  # a session reports its counts at most once a second
            time.sleep(0.1)
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                "WHERE relid = 'jobs'::regclass"
            ).fetchone()
            if row and row[0]:
                break
    if not row or not row[0]:
        return "no update counts"
    return f"{row[1]:,} of {row[0]:,} row updates of jobs HOT"


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


def server_cpu(url: str) -> float:
    """CPU seconds used so far by the server backends of this process's opsjobs connections
    (``application_name`` ``opsjobs <pid>@...``; see :func:`backend_cpu`)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
                (f"opsjobs {os.getpid()}@%",),
            )
        ]
    return sum(backend_cpu(pid) for pid in pids)


def out_time(calls: Sequence[tuple[float, float, int, int]]) -> tuple[float, float]:
    """Seconds with at least one store call out, and with two or more (a worker's steps may
    overlap on PostgreSQL)."""
    edges = sorted([(c[0], 1) for c in calls] + [(c[0] + c[1], -1) for c in calls])
    one = two = 0.0
    depth, since = 0, 0.0
    for at, step in edges:
        if depth >= 1:
            one += at - since
        if depth >= 2:
            two += at - since
        depth, since = depth + step, at
    return one, two


def steps(url: str, n: int, threads: int, shape: str = "noop") -> None:
    """An in-process worker with ``threads`` slots drains ``n`` ``thread`` jobs of ``shape``
    (bench/pg_shapes.py; no-op by default); where its wall time goes (see the module's doc)."""
    import statistics

    from pg_shapes import SHAPES

    from opsjobs import Worker

    folder = Path(tempfile.mkdtemp(prefix="opsjobs-pg-steps-"))
    calls: list[tuple[float, float, int, int]] = []  # start, seconds, ends, claimed
    with pg_schema(url) as store_url:
        settings = opsjobs_settings(folder, store_url)
        client = opsjobs_client(settings)
        try:
            throughput.RAN.clear()
            prefill_many(client, n, "thread", spec=SHAPES[shape][0])
            store = client.store
            call = store.finish_and_claim_many

            def timed(ends: Any, **kwargs: Any) -> Any:
                t = time.perf_counter()
                out = call(ends, **kwargs)
                calls.append((t, time.perf_counter() - t, len(ends), len(out[1])))
                return out

            store.finish_and_claim_many = timed  # type: ignore[method-assign]
            worker = Worker(store, settings, threads=threads)

            def stopper() -> None:
                wait_until(lambda: len(throughput.RAN) >= n, "the drain")
                worker.stop()

            threading.Thread(target=stopper, daemon=True).start()
            cpu0, srv0, t0 = time.process_time(), server_cpu(url), time.perf_counter()
            worker.run()
            wall = time.perf_counter() - t0
            cpu, srv = time.process_time() - cpu0, server_cpu(url) - srv0
            done = client.count(states=["succeeded"])
        finally:
            client.close()
    calls.sort()  # by start: with two steps in flight they are appended as they return
    big = [(c, nxt) for c, nxt in itertools.pairwise(calls) if c[3] >= threads // 2]
    in_calls = sum(c[1] for c in calls)
    out1, out2 = out_time(calls)
    last = max((i for i, c in enumerate(calls) if c[3]), default=-1)
    empty = sum(1 for c in calls[:last] if not c[3])
    sizes = sorted(c[3] for c in calls if c[3])
    print(f"== in-process worker, {threads} thread slots, {shape} jobs: {done} of {n} succeeded in "
          f"{wall:.2f} s ({n / wall:,.0f}/s); process CPU {cpu / n * 1e6:.0f} us a job "
          f"({cpu / wall:.0%} of the wall time), its server backends {srv / n * 1e6:.0f} us a "
          f"job (those open at the end)")  # fmt: skip
    print(f"store calls: {len(calls)}, {in_calls / wall:.0%} of the wall time; "
          f"{sum(1 for c in calls if not c[3])} claimed nothing ({empty} before the last "
          f"claim); a call out {out1 / wall:.0%} of the wall time, two at once "
          f"{out2 / wall:.0%}")  # fmt: skip
    if sizes:
        q = statistics.quantiles(sizes, n=4) if len(sizes) > 1 else sizes * 3
        print(f"jobs claimed per call that claimed: quartiles {q[0]:.0f} / {q[1]:.0f} / "
              f"{q[2]:.0f}, max {sizes[-1]}")  # fmt: skip
    if big:
        print(f"batched calls (>= {threads // 2} claimed): {len(big)}, mean "
              f"{statistics.mean(c[1] for c, _ in big) * 1e3:.1f} ms for "
              f"{statistics.mean(c[3] for c, _ in big):.0f} claims and "
              f"{statistics.mean(c[2] for c, _ in big):.0f} ends; gap to the next call: median "
              f"{statistics.median(x[0] - c[0] - c[1] for c, x in big) * 1e3:.1f} ms")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--postgres", default=DEFAULT_PG)
    p.add_argument("--top", type=int, default=25)
    p.add_argument(
        "--want",
        type=lambda t: [int(x) for x in t.split(",")],
        default=[1, 100],
        help="jobs claimed per round trip by the raw SQL loops (comma-separated; 1,100)",
    )
    p.add_argument("--rounds", type=int, default=1, help="runs of each raw SQL loop (1)")
    p.add_argument("--raw-only", action="store_true", help="skip the profiled worker drain")
    p.add_argument(
        "--steps",
        type=int,
        default=0,
        metavar="SLOTS",
        help="only: where a thread-mode worker with SLOTS slots spends its wall time",
    )
    p.add_argument(
        "--shape",
        default="noop",
        help="with --steps: the jobs' shape (bench/pg_shapes.py: noop, sleep, cpu, payload...)",
    )
    args = p.parse_args(argv)
    why = pg_reachable(args.postgres)
    if why is not None:
        print(f"PostgreSQL not reachable: {why}", file=sys.stderr)
        return 1
    if args.steps:
        for _ in range(args.rounds):
            steps(args.postgres, args.jobs, args.steps, args.shape)
        return 0
    for want in args.want:
        for _ in range(args.rounds):
            rate, cpu, hot = raw_loop(args.postgres, args.jobs, want)
            print(
                f"== raw SQL loop (finish_and_claim_many, {want} per round trip, one "
                f"connection): {rate:,.0f}/s; server CPU {cpu:.0f} us per job; {hot}",
                flush=True,
            )
    if not args.raw_only:
        profile(args.postgres, args.jobs, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
