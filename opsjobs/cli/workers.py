"""Worker sub-commands: worker (run one), workers (the registry)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType
from typing import Any

from opsjobs.cli.output import client_for, print_json, table
from opsjobs.config import Settings, redact_url
from opsjobs.errors import ValidationError
from opsjobs.model import iso

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("worker", help="run a worker until Ctrl-C")
    p.add_argument(
        "--queue", action="append", default=[], help="queue to serve (repeatable; default: default)"
    )
    p.add_argument(
        "--threads", type=int, default=4, help="concurrent thread/process jobs (default 4)"
    )
    p.add_argument(
        "--scheduler", action="store_true", help="also fire due schedules in this process"
    )
    p.add_argument(
        "--memory-analysis",
        nargs="?",
        const="30m",
        metavar="EVERY",
        help="analyse this worker's memory every EVERY (default 30m) with the schedule "
        "memory-analysis@<host>:<name>, re-aimed at each start",
    )
    p.add_argument(
        "--name",
        help="stable name of this worker on its host, naming its memory-analysis schedule "
        "(default: its queues)",
    )
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("workers", help="the worker registry, alive or dead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_workers)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from opsjobs.store import open_store
    from opsjobs.worker import Worker

    if args.memory_analysis is not None:
        from opsjobs.analyzer.schedule import validate_every

        validate_every(args.memory_analysis)
    elif args.name is not None:
        raise ValidationError("--name names the memory-analysis schedule: give --memory-analysis")
    store = open_store(
        settings.store_url,
        runtime_dir=settings.runtime_dir,
        data_dir=settings.data_dir,
        settings=settings,
    )
    worker = Worker(store, settings, queues=args.queue or ["default"], threads=args.threads)
    if args.memory_analysis is not None:
        try:
            schedule = _opt_in(worker, settings, args.memory_analysis, args.name)
        except BaseException:
            store.close()
            raise
        print(f"schedule {schedule} analyses this worker's memory", file=sys.stderr)

    def on_term(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, on_term)
    print(
        f"worker {worker.id} on {worker.host} serving {', '.join(worker.queues)} "
        f"(store {redact_url(store.url)}); Ctrl-C stops it",
        file=sys.stderr,
    )
    scheduler = None
    if args.scheduler:
        from opsjobs.scheduler import Scheduler

        scheduler = Scheduler(store, settings).start()
    try:
        worker.run()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        if scheduler is not None:
            scheduler.stop()
        store.close()
    return 0


def _opt_in(worker: Any, settings: Settings, every: str, name: str | None) -> str:
    from opsjobs.analyzer.schedule import opt_in
    from opsjobs.client import Client

    key = name if name is not None else worker.queues
    schedule = opt_in(
        Client(worker.store, settings), worker.id, host=worker.host, key=key, every=every
    )
    return schedule.name


def cmd_workers(args: argparse.Namespace, settings: Settings) -> int:
    now = time.time()
    with client_for(settings) as client:
        workers = client.store.workers()
        conns = client.store.connection_counts()
    if args.json:
        print_json([{**w.to_dict(now), "connections": conns.get((w.pid, w.host))} for w in workers])
        return 0
    rows = [
        [
            w.id,
            w.host,
            str(w.pid),
            ",".join(q for q in w.queues if not q.startswith("worker:")),
            f"{w.busy}/{w.threads}",
            iso(w.heartbeat_at) or "-",
            "alive" if w.alive(now) else "dead",
            str(conns.get((w.pid, w.host), "-")),
        ]
        for w in workers
    ]
    heads = ["ID", "Host", "PID", "Queues", "Busy", "Last Heartbeat", "State", "Conns"]
    print(table(heads, rows))
    return 0
