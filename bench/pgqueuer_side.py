"""pgqueuer beside opsjobs on the same PostgreSQL server, in the same run (``--only postgres``).

pgqueuer (asyncpg) gets a database of its own, ``pgq_bench_<hex>``, created and dropped here,
so its tables and triggers never meet opsjobs' schema. Its job is the same no-op as opsjobs'
(record the index it got; an ``async def`` entrypoint, pgqueuer's native form). The queue is
pre-filled with pgqueuer's **batched enqueue** (one ``Queries.enqueue`` call of lists per
``chunk`` jobs, the submit rate), then one ``QueueManager`` drains it in ``drain`` mode with
``batch_size`` 10 (its default) or 100; the drain is timed from the first job's start to the
last job's end as the jobs record them, like every other row of the bench. Exactly-once: N
distinct indexes ran, and no job is left in its queue table.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from throughput import Rate, per_s


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A fresh database ``pgq_bench_<hex>`` on the server of ``url``; yields its URL."""
    import psycopg

    name = f"pgq_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    finally:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: What a job does with its payload (pgqueuer's native form: an ``async def``); the no-op.
Work = Callable[[bytes], Awaitable[None]]


async def _nothing(payload: bytes) -> None:
    return None


def _index(i: int) -> bytes:
    return str(i).encode()


async def _run(
    dsn: str, n: int, batch: int, chunk: int, work: Work, payload: Callable[[int], bytes]
) -> dict[str, Any]:
    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.domain.types import QueueExecutionMode

    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.install()
        t0 = time.time()
        for lo in range(0, n, chunk):
            k = min(chunk, n - lo)
            await queries.enqueue(["noop"] * k, [payload(i) for i in range(lo, lo + k)], [0] * k)
        t1 = time.time()
        ran: list[int] = []
        starts: list[float] = []
        ends: list[float] = []
        qm = QueueManager(queries)

        at_once = [0, 0]  # jobs running now, the most at once

        @qm.entrypoint("noop")
        async def noop(job: Any) -> None:
            starts.append(time.time())
            at_once[0] += 1
            at_once[1] = max(at_once)
            await work(job.payload)
            at_once[0] -= 1
            ran.append(int(job.payload.split(b" ", 1)[0]))
            ends.append(time.time())

        await qm.run(batch_size=batch, mode=QueueExecutionMode.drain)
        left = await conn.fetchval("SELECT count(*) FROM pgqueuer")
    finally:
        await conn.close()
    return {
        "submit": (t0, t1),
        "ran": ran,
        "first": min(starts),
        "last": max(ends),
        "left": left,
        "most": at_once[1],
    }


def bench_pgqueuer(
    url: str,
    n: int,
    batch: int,
    chunk: int = 1000,
    *,
    work: Work = _nothing,
    payload: Callable[[int], bytes] = _index,
    shape: str = "",
) -> Rate:
    """Pre-fill ``n`` jobs with pgqueuer's batched enqueue, then drain them with one
    ``QueueManager`` (``batch_size`` = ``batch``). Job ``i``'s payload is ``payload(i)`` (its
    index first, then a space and anything); the job awaits ``work(payload)``."""
    with scratch_database(url) as dsn:
        fig = asyncio.run(_run(dsn, n, batch, chunk, work, payload))
    ran = fig["ran"]
    ok = sorted(ran) == list(range(n)) and fig["left"] == 0
    t0, t1 = fig["submit"]
    return Rate(
        "pgqueuer",
        f"QueueManager, batch {batch} (asyncpg, 1 process){', ' + shape if shape else ''}",
        n,
        per_s(n, t1 - t0),
        per_s(n, fig["last"] - fig["first"]),
        per_s(n, fig["last"] - t0),
        ("ok: " if ok else "FAILED: ")
        + f"ran {len(ran)}x, {len(set(ran))} distinct, {fig['left']} left in its queue",
        f"enqueue in batches of {chunk}; up to {fig['most']} jobs ran at once",
    )
