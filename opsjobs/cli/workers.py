"""Worker sub-commands: worker (run one), workers (the registry)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType
from typing import Any

from ..config import Settings
from ..model import iso
from .output import client_for, print_json, table

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
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("workers", help="the worker registry, alive or dead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_workers)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from ..store import open_store
    from ..worker import Worker

    store = open_store(settings.store_url, runtime_dir=settings.runtime_dir)
    worker = Worker(store, settings, queues=args.queue or ["default"], threads=args.threads)

    def on_term(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, on_term)
    print(
        f"worker {worker.id} on {worker.host} serving {', '.join(worker.queues)} "
        f"(store {store.url}); Ctrl-C stops it",
        file=sys.stderr,
    )
    scheduler = None
    if args.scheduler:
        from ..scheduler import Scheduler

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


def cmd_workers(args: argparse.Namespace, settings: Settings) -> int:
    now = time.time()
    with client_for(settings) as client:
        workers = client.store.workers()
    if args.json:
        print_json([w.to_dict(now) for w in workers])
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
        ]
        for w in workers
    ]
    print(table(["ID", "Host", "PID", "Queues", "Busy", "Last Heartbeat", "State"], rows))
    return 0
