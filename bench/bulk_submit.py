"""Bulk submit: N jobs as one batch (``Client.submit_many``) vs one by one (``Client.submit``),
same run, SQLite and PostgreSQL, for N = 100, 1,000 and 10,000.

Usage::

    python bench/bulk_submit.py [--sizes 100,1000,10000] [--rounds 3] [--postgres URL]
                                [--only sqlite|postgres]

Every measurement gets a fresh store (a new SQLite file in a temporary folder, or a new
PostgreSQL schema dropped at the end), so both ways insert into an empty table of the same
shape. Both ways include building each job's validated spec (``Client.build_spec``: what the
CLI and REST do per job), so the ratio is what a caller gains, not just the insert. The ways
alternate within each round (one by one, batch, one by one, ...) and each row shows the
**median** of ``--rounds`` with the spread. Nothing is written into the repository.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # importing bench modules must not touch the repo

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

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

GOAL = 10.0  # batch at least this many times faster than one by one, for 10,000 jobs


def _fields(i: int) -> dict[str, object]:
    return {"call": "throughput:noop", "kwargs": {"i": i}, "mode": "thread"}


def one_by_one(client: Client, n: int) -> None:
    for i in range(n):
        client.submit(f"bulk-{i}", **_fields(i))  # type: ignore[arg-type]


def as_batch(client: Client, n: int) -> None:
    specs = [client.build_spec(f"bulk-{i}", **_fields(i)) for i in range(n)]  # type: ignore[arg-type]
    client.submit_many(specs)


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
    way: Callable[[Client, int], None],
    n: int,
    folder: Path,
) -> float:
    """Seconds ``way`` takes to queue ``n`` jobs on a fresh store (checked: all ``n`` there)."""
    with opener() as url:
        settings = Settings(data_dir=folder / "data", store_url=url, user="bench")
        store = open_store(url, runtime_dir=str(folder / "run"))
        client = Client(store, settings)
        try:
            start = time.perf_counter()
            way(client, n)
            seconds = time.perf_counter() - start
            got = store.count(ResultQuery().validated())
            if got != n:
                raise SystemExit(f"expected {n} queued jobs, found {got}")
        finally:
            client.close()
    return seconds


def row(backend: str, n: int, single: list[float], batch: list[float]) -> str:
    s, b = statistics.median(single), statistics.median(batch)
    ratio = s / b
    mark = "" if n < 10_000 or ratio >= GOAL else " !"
    return (
        f"| {backend} | {n:,} | {s * 1000:,.0f} ms ({min(single) * 1000:,.0f}-"
        f"{max(single) * 1000:,.0f}) | {n / s:,.0f} | {b * 1000:,.1f} ms "
        f"({min(batch) * 1000:,.1f}-{max(batch) * 1000:,.1f}) | {n / b:,.0f} | "
        f"{ratio:,.1f}x{mark} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=DEFAULT_PG)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="opsjobs-bulk-") as tmp:
        folder = Path(tmp)
        (folder / "data").mkdir()
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
        print("| store | jobs | one by one | jobs/s | one batch | jobs/s | batch faster by |")
        print("|---|---|---|---|---|---|---|")
        for name, opener in backends:
            for n in sizes:
                single: list[float] = []
                batch: list[float] = []
                for _ in range(args.rounds):
                    single.append(measure(opener, one_by_one, n, folder))
                    batch.append(measure(opener, as_batch, n, folder))
                print(row(name, n, single, batch), flush=True)
        print()
        print(f"# load average {os.getloadavg()[0]:.2f} at the end; goal: >= {GOAL:g}x at 10,000")


if __name__ == "__main__":
    main()
