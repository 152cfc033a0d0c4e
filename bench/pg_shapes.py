"""opsjobs beside pgqueuer on PostgreSQL for several shapes of work, not only the no-op.

Usage::

    python bench/pg_shapes.py [--jobs 5000] [--slots 4,10,100] [--postgres URL]
                              [--shapes noop,sleep,cpu,payload,payload_in]

Each shape runs on one ``opsjobs worker`` process (``--threads`` = slots, pre-filled queue,
``thread`` jobs) and on one pgqueuer ``QueueManager`` (``batch_size`` = slots, its native
``async def`` entrypoint; blocking work through ``asyncio.to_thread``, as pgqueuer says to), on the
same server in the same run, one after the other. A worker runs at most ``slots`` jobs at once;
pgqueuer's ``batch_size`` bounds a fetch, not the jobs running (its ``max_concurrent_tasks`` is
unbounded by default), so the table says how many of its jobs ran at once. The drain is timed
from the first job's start to the last job's end as the jobs record them (see
bench/throughput.py and bench/pgqueuer_side.py). The shapes:

* ``noop``: nothing (the headline of bench/throughput.py);
* ``sleep``: waits 1 ms with the GIL released (I/O: opsjobs ``time.sleep`` on its job thread,
  pgqueuer ``asyncio.sleep``);
* ``cpu``: a fixed pure-Python loop of ~0.1-0.2 ms holding the GIL (both on a thread);
* ``payload``: a 4 KiB payload, which opsjobs' job returns as its 4 KiB result (pgqueuer keeps
  no results: its job only reads the payload);
* ``payload_in``: the same payload, and no result (the same work on both sides).
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import asyncio  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from throughput import (  # noqa: E402  (bench/ is on the path: this file's folder)
    DEFAULT_PG,
    RAN,
    Rate,
    bench_pg,
    load,
    pg_reachable,
    tree_state,
)

SPIN = 3000  # loop turns of cpu(): ~0.1-0.2 ms of one core
BLOB = "x" * 4096


def spin(i: int, turns: int = SPIN) -> int:
    """The ``cpu`` job: a fixed amount of pure-Python work holding the GIL."""
    total = 0
    for k in range(turns):
        total += k * k
    RAN.append(i)
    return total


def echo(i: int, blob: str) -> str:
    """The ``payload`` job: returns its 4 KiB argument as its result."""
    RAN.append(i)
    return blob


def take(i: int, blob: str) -> None:
    """The ``payload_in`` job: reads its 4 KiB argument, returns nothing."""
    RAN.append(i)
    len(blob)


async def _sleep(payload: bytes) -> None:
    await asyncio.sleep(0.001)


async def _spin(payload: bytes) -> None:
    await asyncio.to_thread(spin, -1)


async def _read(payload: bytes) -> None:
    len(payload)


def _job(name: str, call: str, kwargs: dict[str, Any]) -> Callable[[int, str], dict[str, Any]]:
    def spec(i: int, mode: str) -> dict[str, Any]:
        return {"name": name, "call": call, "kwargs": {"i": i, **kwargs}, "mode": mode}

    return spec


#: shape -> (opsjobs job of index i, pgqueuer work, pgqueuer payload of index i)
SHAPES: dict[str, tuple[Callable[[int, str], dict[str, Any]], Any, Any]] = {
    "noop": (_job("noop", "throughput:noop", {}), None, None),
    "sleep": (_job("sleep", "throughput:nap", {"seconds": 0.001}), _sleep, None),
    "cpu": (_job("cpu", "pg_shapes:spin", {}), _spin, None),
    "payload": (
        _job("payload", "pg_shapes:echo", {"blob": BLOB}),
        _read,
        lambda i: f"{i} {BLOB}".encode(),
    ),
    "payload_in": (
        _job("payload_in", "pg_shapes:take", {"blob": BLOB}),
        _read,
        lambda i: f"{i} {BLOB}".encode(),
    ),
}


def run(url: str, n: int, shapes: Sequence[str], slots: Sequence[int]) -> list[str]:
    from pgqueuer_side import bench_pgqueuer

    lines = []
    base = Path(tempfile.mkdtemp(prefix="opsjobs-shapes-"))
    try:
        for shape in shapes:
            spec, work, payload = SHAPES[shape]
            for k in slots:
                t = time.monotonic()
                ours = bench_pg(base, url, n, 1, mode="thread", threads=k, spec=spec, shape=shape)
                extra: dict[str, Any] = {"shape": shape}
                if work is not None:
                    extra["work"] = work
                if payload is not None:
                    extra["payload"] = payload
                theirs = bench_pgqueuer(url, n, k, **extra)
                line = row(shape, k, ours, theirs)
                print(f"{line}  ({time.monotonic() - t:.0f} s)", flush=True)
                lines.append(line)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return lines


def row(shape: str, slots: int, ours: Rate, theirs: Rate) -> str:
    ok = ours.check.startswith("ok") and theirs.check.startswith("ok")
    flag = "" if ok else f"  CHECK FAILED: {ours.check} / {theirs.check}"
    most = theirs.note.rsplit("up to ", 1)[-1].split(" ", 1)[0]
    return (
        f"| {shape} | {slots} | {ours.drain:,.0f} | {theirs.drain:,.0f} | {most} | "
        f"{ours.drain / theirs.drain:.2f}x |{flag}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--postgres", default=DEFAULT_PG)
    p.add_argument(
        "--slots",
        type=lambda t: [int(x) for x in t.split(",")],
        default=[4, 10, 100],
        help="opsjobs thread slots = pgqueuer batch size (comma-separated; 4,10,100)",
    )
    p.add_argument(
        "--shapes",
        type=lambda t: t.split(","),
        default=list(SHAPES),
        help=f"comma-separated, of {', '.join(SHAPES)}",
    )
    args = p.parse_args(argv)
    unknown = [s for s in args.shapes if s not in SHAPES]
    if unknown:
        p.error(f"unknown shape(s): {', '.join(unknown)}")
    why = pg_reachable(args.postgres)
    if why is not None:
        print(f"PostgreSQL not reachable: {why}", file=sys.stderr)
        return 1
    print(f"command: python bench/pg_shapes.py {' '.join(argv or sys.argv[1:])}".rstrip())
    print(f"opsjobs tree: {tree_state()}; load average {load()}")
    print(
        "\n| shape | slots = batch | opsjobs jobs/s | pgqueuer jobs/s | pgqueuer's most at once "
        "| opsjobs / pgqueuer |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    run(args.postgres, args.jobs, args.shapes, args.slots)
    print(f"load average {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
