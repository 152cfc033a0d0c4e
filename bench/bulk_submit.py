"""Bulk submit: N jobs as one batch (``Client.build_specs`` + ``Client.submit_many``) vs one
by one (``Client.submit``), same run, SQLite and PostgreSQL, for several shapes of job and
N = 100, 1,000 and 10,000.

Usage::

    python bench/bulk_submit.py [--sizes 100,1000,10000] [--rounds 3] [--postgres URL]
                                [--only sqlite|postgres] [--shapes command,call,...]

Shapes (see ``SHAPES``): ``command`` tiny command jobs, each its own source; ``call`` call jobs
with kwargs (a host, a check, a threshold); ``notebook`` notebook jobs with parameters (a small
notebook with a parameters cell, written to the temporary folder); ``mixed`` the four kinds in
turn (command, call, argv in process mode, notebook) with retries, priority and timeout set;
``large`` call jobs whose kwargs hold ~4 KB (a list of host names).

Every measurement gets a fresh store (a new SQLite file in a temporary folder, or a new
PostgreSQL schema dropped at the end), so both ways insert into an empty table of the same
shape. Both ways start from the same job arguments and include validating them (one by one:
``submit`` builds each spec with ``Client.build_spec``, as the CLI and REST do for one job; the
batch: ``Client.build_specs``, as ``/jobs:batch`` and ``submit --from-file`` do), so the ratio is
what a caller gains, not just the insert. The ways alternate within each round (one by one,
batch, one by one, ...) and each row shows the **median** of ``--rounds`` with the spread. The
last column is this process's CPU time (user + system) a job, median of the rounds, and its
ratio: on a shared, loaded machine it moves less than wall time. On SQLite it is the whole
cost but waits for the disk; on PostgreSQL the server's work is not in it.
Nothing is written into the repository.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # importing bench modules must not touch the repo

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(BENCH), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from throughput import DEFAULT_PG, pg_reachable, pg_schema  # noqa: E402

from opsjobs.client import Client  # noqa: E402
from opsjobs.config import Settings  # noqa: E402
from opsjobs.model import ResultQuery  # noqa: E402
from opsjobs.store import open_store  # noqa: E402

GOAL = 10.0  # batch at least this many times faster than one by one


Job = dict[str, Any]

_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": 'host = "localhost"\ndays = 7\n',
            "outputs": [],
            "execution_count": None,
        },
        {
            "cell_type": "code",
            "metadata": {},
            "source": "print(host, days)",
            "outputs": [],
            "execution_count": None,
        },
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _command(i: int, folder: Path) -> Job:
    return {"name": f"cmd-{i}", "command": f"print({i})"}


def _call(i: int, folder: Path) -> Job:
    kwargs = {"host": f"web{i:05d}.example.com", "check": "disk", "threshold": 0.9, "i": i}
    return {"name": f"call-{i}", "call": "throughput:noop", "kwargs": kwargs}


def _notebook(i: int, folder: Path) -> Job:
    path = str(folder / "report.ipynb")
    return {"name": f"nb-{i}", "notebook": path, "parameters": {"host": f"web{i}", "days": i % 30}}


def _mixed(i: int, folder: Path) -> Job:
    policy = {"retries": 2, "priority": i % 5, "timeout": 600.0, "retry_delay": "30s"}
    maker = (_command, _call, _argv, _notebook)[i % 4]
    return {**maker(i, folder), **policy}


def _argv(i: int, folder: Path) -> Job:
    return {"name": f"argv-{i}", "argv": ["ping", "-c", "1", f"web{i}"], "mode": "process"}


def _large(i: int, folder: Path) -> Job:
    hosts = [f"web{i:05d}-{k:03d}.dc1.example.com" for k in range(128)]  # ~4 KB of JSON
    return {"name": f"large-{i}", "call": "throughput:noop", "kwargs": {"hosts": hosts}}


SHAPES: dict[str, Callable[[int, Path], Job]] = {
    "command": _command,
    "call": _call,
    "notebook": _notebook,
    "mixed": _mixed,
    "large": _large,
}


def one_by_one(client: Client, jobs: list[Job]) -> None:
    for job in jobs:
        fields = dict(job)
        client.submit(fields.pop("name"), **fields)


def as_batch(client: Client, jobs: list[Job]) -> None:
    client.submit_many(client.build_specs(jobs))


@contextlib.contextmanager
def sqlite_url(folder: Path) -> Iterator[str]:
    path = folder / f"bulk-{time.monotonic_ns()}.db"
    try:
        yield f"sqlite://{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")


def measure(
    opener: Callable[[], contextlib.AbstractContextManager[str]],
    way: Callable[[Client, list[Job]], None],
    jobs: list[Job],
    folder: Path,
) -> tuple[float, float]:
    """Seconds ``way`` takes to queue ``jobs`` on a fresh store (checked: all there): wall
    time, and this process's CPU time (user + system)."""
    n = len(jobs)
    with opener() as url:
        settings = Settings(data_dir=folder / "data", store_url=url, user="bench")
        store = open_store(url, runtime_dir=str(folder / "run"))
        client = Client(store, settings)
        try:
            cpu = _cpu()
            start = time.perf_counter()
            way(client, jobs)
            seconds = time.perf_counter() - start
            cpu = _cpu() - cpu
            got = store.count(ResultQuery().validated())
            if got != n:
                raise SystemExit(f"expected {n} queued jobs, found {got}")
        finally:
            client.close()
    return seconds, cpu


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def row(
    backend: str,
    shape: str,
    n: int,
    singles: list[tuple[float, float]],
    batches: list[tuple[float, float]],
) -> str:
    single, batch = [w for w, _ in singles], [w for w, _ in batches]
    s, b = statistics.median(single), statistics.median(batch)
    ratio = s / b
    mark = "" if ratio >= GOAL else " !"
    cpu_s = statistics.median(c for _, c in singles)
    cpu_b = statistics.median(c for _, c in batches)
    return (
        f"| {backend} | {shape} | {n:,} | {s * 1000:,.0f} ms ({min(single) * 1000:,.0f}-"
        f"{max(single) * 1000:,.0f}) | {n / s:,.0f} | {b * 1000:,.1f} ms "
        f"({min(batch) * 1000:,.1f}-{max(batch) * 1000:,.1f}) | {n / b:,.0f} | "
        f"{ratio:,.1f}x{mark} | {cpu_s / n * 1e6:,.0f} / {cpu_b / n * 1e6:,.1f} us = "
        f"{cpu_s / cpu_b:,.1f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=DEFAULT_PG)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    shapes = args.shapes.split(",")
    if not set(shapes) <= set(SHAPES):
        raise SystemExit(f"--shapes: choose among {', '.join(SHAPES)}")

    with tempfile.TemporaryDirectory(prefix="opsjobs-bulk-") as tmp:
        folder = Path(tmp)
        (folder / "data").mkdir()
        (folder / "report.ipynb").write_text(json.dumps(_NOTEBOOK), encoding="utf-8")
        backends: list[tuple[str, Callable[[], contextlib.AbstractContextManager[str]]]] = []
        if args.only in (None, "sqlite"):
            backends.append(("SQLite", lambda: sqlite_url(folder)))
        if args.only in (None, "postgres"):
            why = pg_reachable(args.postgres)
            if why is None:
                backends.append(("PostgreSQL", lambda: pg_schema(args.postgres)))
            else:
                print(f"PostgreSQL skipped: {why}", file=sys.stderr)
        print(
            f"# CPython {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
            f"median of {args.rounds} rounds (spread)"
        )
        print()
        print(
            "| store | shape | jobs | one by one | jobs/s | one batch | jobs/s | batch faster by "
            "| CPU a job: one by one / batch |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for name, opener in backends:
            for shape in shapes:  # warm-up, not counted: imports (papermill), first reads
                few = [SHAPES[shape](i, folder) for i in range(10)]
                measure(opener, one_by_one, few, folder)
                measure(opener, as_batch, few, folder)
            for shape in shapes:
                for n in sizes:
                    jobs = [SHAPES[shape](i, folder) for i in range(n)]
                    single: list[tuple[float, float]] = []
                    batch: list[tuple[float, float]] = []
                    for _ in range(args.rounds):
                        single.append(measure(opener, one_by_one, jobs, folder))
                        batch.append(measure(opener, as_batch, jobs, folder))
                    print(row(name, shape, n, single, batch), flush=True)
        print()
        print(f"# load average {os.getloadavg()[0]:.2f} at the end; goal: >= {GOAL:g}x (! missed)")


if __name__ == "__main__":
    main()
