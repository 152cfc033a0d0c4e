"""``opsjobs analyze``: live memory analysis of a worker's process, any process, or this one.

* default / ``--queue``: submits the analysis as a ``call`` job (thread mode) that runs inside
  the target worker's own process; without ``--queue`` the only live worker is the target;
* ``--pid``: psutil figures of any process, from outside (no job, no worker);
* ``--here``: the full analysis of this CLI process itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from typing import Any

from opsjobs.analyzer import analyze, export_csv, format_text
from opsjobs.analyzer.external import format_external, inspect_process
from opsjobs.analyzer.job import JOB_NAME, TARGET, job_kwargs
from opsjobs.cli.jobs import EXIT_CODES, follow
from opsjobs.cli.output import client_for
from opsjobs.client import Client
from opsjobs.config import Settings
from opsjobs.errors import NotFound, ValidationError
from opsjobs.model import validate_queue

__all__ = ["register"]

#: Seconds an analysis job may run before the worker marks it timed out.
JOB_TIMEOUT = 600.0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "analyze",
        help="live memory analysis of a worker's process (or --pid from outside, or --here)",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--queue",
        help="worker:<id> of the worker to analyse (or a queue it serves); "
        "default: the only live worker",
    )
    target.add_argument("--pid", help="any process, from outside: psutil figures only")
    target.add_argument("--here", action="store_true", help="this process, without a worker")
    p.add_argument("--deep", action="store_true", help="also count duplicated strings")
    p.add_argument("--top", default="20", help="rows per table (default 20)")
    p.add_argument("--budget", default="10", help="seconds the heap walk may take (default 10)")
    p.add_argument("--csv", action="store_true", help="export tables to data/results/<job id>/")
    p.add_argument("--wait", action="store_true", help="wait for the job and print its report")
    p.set_defaults(handler=cmd_analyze)


def _positive_int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(f"{what} must be an integer, got {text[:40]!r}") from None
    if value <= 0:
        raise ValidationError(f"{what} must be a positive integer, got {value}")
    return value


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"{what} must be a number of seconds, got {text[:40]!r}") from None


def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    if args.pid is not None:
        if args.deep or args.csv or args.wait:
            raise ValidationError("--pid gives psutil figures only: no --deep, --csv or --wait")
        print(format_external(inspect_process(_positive_int(args.pid, "--pid"))), end="")
        return 0
    kwargs = job_kwargs(
        deep=args.deep,
        top_count=_positive_int(args.top, "--top"),
        export_csv=args.csv,
        time_budget=_number(args.budget, "--budget"),
    )
    if args.here:
        return _here(kwargs, settings)
    with client_for(settings) as client:
        queue = resolve_queue(client, args.queue)
        job = client.submit(
            JOB_NAME,
            call=TARGET,
            kwargs=kwargs,
            mode="thread",
            queue=queue,
            description="live memory analysis (opsjobs analyze)",
            timeout=JOB_TIMEOUT,
        )
        if not args.wait:
            print(job.id)
            return 0
        print(f"submitted {job.id} to {queue}", file=sys.stderr)
        final = follow(client, job)
    return EXIT_CODES.get(final.state, 1)


def _here(kwargs: dict[str, Any], settings: Settings) -> int:
    report = analyze(
        deep=kwargs["deep"], top_count=kwargs["top_count"], time_budget=kwargs["time_budget"]
    )
    print(format_text(report), end="")
    if kwargs["export_csv"]:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = settings.results_dir / f"here-{report.pid}-{stamp}"
        files = export_csv(report, folder)
        print(f"\nCSV tables: {', '.join(str(f) for f in files)}")
    return 0


def resolve_queue(client: Client, queue: str | None) -> str:
    """The queue to submit to: ``queue`` checked against the live workers, or the private
    queue of the only live worker. Raises a one-line error when nobody would run the job."""
    now = time.time()
    alive = [w for w in client.store.workers() if w.alive(now)]
    if queue is None:
        if len(alive) == 1:
            return f"worker:{alive[0].id}"
        if not alive:
            raise NotFound(
                "no live worker to analyse: start one (opsjobs worker) or use --here or --pid"
            )
        raise ValidationError(
            f"{len(alive)} live workers: choose one with --queue worker:<id> (see opsjobs workers)"
        )
    queue = validate_queue(queue)
    if queue.startswith("worker:"):
        worker_id = queue.partition(":")[2]
        known = {w.id: w for w in client.store.workers()}
        if worker_id not in known:
            raise NotFound(f"no worker with id {worker_id!r} (see opsjobs workers)")
        if not known[worker_id].alive(now):
            raise ValidationError(f"worker {worker_id} is not alive; its analysis would never run")
        return queue
    if not any(queue in w.queues for w in alive):
        raise ValidationError(f"no live worker serves queue {queue!r} (see opsjobs workers)")
    return queue
