"""The ``opsjobs`` command.

Exit codes: 0 success; 1 the waited-for job failed; 2 bad input or an opsjobs error (one line on
stderr, no traceback); 3 the job was cancelled; 4 it timed out; 5 it was lost.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from .client import Client, connect, parse_duration
from .config import Settings
from .errors import OpsJobsError, ValidationError
from .model import SORT_COLUMNS, Job, JobState, iso

__all__ = ["main"]

EXIT_CODES = {
    JobState.SUCCEEDED: 0,
    JobState.FAILED: 1,
    JobState.CANCELLED: 3,
    JobState.TIMED_OUT: 4,
    JobState.LOST: 5,
}

#: Sub-command modules that plug into the parser: each has ``add_parser(subparsers)``.
Handler = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opsjobs", description="Operations jobs for Python services."
    )
    parser.add_argument(
        "--store", help="store URL (default: OPSJOBS_STORE or sqlite in the data folder)"
    )
    parser.add_argument("--data", help="data folder (default: OPSJOBS_DATA or ./data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("submit", help="queue a job")
    p.add_argument("--name", required=True)
    p.add_argument("--description", default="")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--command", help="Python source to run (the seed's command)")
    what.add_argument("--call", help="a callable as package.module:function")
    what.add_argument(
        "--argv", nargs=argparse.REMAINDER, help="a program and its arguments (last option)"
    )
    p.add_argument("--kwargs", help="JSON object of keyword arguments for --call")
    p.add_argument(
        "--mode",
        default="thread",
        help="inline | thread | process (or MainLoop, Runspace, BackgroundJob)",
    )
    p.add_argument("--queue", default="default")
    p.add_argument("--timeout", help="seconds or a duration such as 90s, 10m")
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--wait", action="store_true", help="follow the job and exit with its status")
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser("results", help="list jobs (newest first)")
    p.add_argument("--max", type=int, default=50, help="how many rows (default 50)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--state", action="append", default=[], help="filter by state (repeatable)")
    p.add_argument("--name", help="filter: name contains this text")
    p.add_argument("--owner", help="filter by owner")
    p.add_argument(
        "--sort",
        default="-submitted",
        help=f"column, '-' for descending: {', '.join(sorted(SORT_COLUMNS))}",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_results)

    for name, handler, help_text in (
        ("show", cmd_show, "every field of a job and its full output"),
        ("delete", cmd_delete, "delete a finished job and its files"),
        ("cancel", cmd_cancel, "cancel a queued or running job"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("job_id")
        if name == "show":
            p.add_argument("--json", action="store_true")
        p.set_defaults(handler=handler)

    p = sub.add_parser("stats", help="totals and average runtime")
    p.add_argument("--owner")
    p.add_argument("--name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("purge", help="delete jobs that finished long ago, with their files")
    p.add_argument("--older-than", required=True, help="a duration such as 7d, 12h")
    p.set_defaults(handler=cmd_purge)

    p = sub.add_parser("worker", help="run a worker until Ctrl-C")
    p.add_argument(
        "--queue", action="append", default=[], help="queue to serve (repeatable; default: default)"
    )
    p.add_argument(
        "--threads", type=int, default=4, help="concurrent thread/process jobs (default 4)"
    )
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("workers", help="the worker registry, alive or dead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_workers)
    return parser


# -- helpers ------------------------------------------------------------------------------
def _client(settings: Settings) -> Client:
    return connect(settings=settings)


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _fmt_runtime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.3f}s" if seconds < 60 else f"{seconds / 60:.1f}m"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


# -- commands -----------------------------------------------------------------------------
def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    kwargs = None
    if args.kwargs is not None:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"--kwargs is not valid JSON: {exc.msg} at column {exc.colno}"
            ) from None
        if not isinstance(kwargs, dict):
            raise ValidationError("--kwargs must be a JSON object, like '{\"n\": 3}'")
    if args.argv is not None and not args.argv:
        raise ValidationError("--argv needs a program to run")
    timeout = parse_duration(args.timeout) if args.timeout else None
    with _client(settings) as client:
        job = client.submit(
            args.name,
            command=args.command,
            call=args.call,
            kwargs=kwargs,
            argv=args.argv,
            mode=args.mode,
            queue=args.queue,
            description=args.description,
            timeout=timeout,
            retries=args.retries,
            priority=args.priority,
        )
        if not args.wait:
            print(job.id)
            return 0
        print(f"submitted {job.id} ({job.mode.value} mode, queue {job.queue})", file=sys.stderr)
        final = _follow(client, job)
    return EXIT_CODES.get(final.state, 1)


def _follow(client: Client, job: Job) -> Job:
    """Show state changes and stream the job's log while waiting for it."""
    log_path = client.log_path(job.id)
    state: dict[str, Any] = {"seen": None, "offset": 0}

    def progress(current: Job) -> None:
        if current.state != state["seen"]:
            state["seen"] = current.state
            where = f" on {current.host}" if current.host else ""
            if not current.finished:
                print(f"[{current.state.value}{where}]", file=sys.stderr)
        if current.state is JobState.RUNNING or current.finished:
            state["offset"] = (
                _stream(log_path, state["offset"]) if not current.finished else state["offset"]
            )

    final = client.wait(job.id, on_progress=progress)
    if state["offset"] == 0 or not log_path.exists():
        if final.output:
            sys.stdout.write(final.output if final.output.endswith("\n") else final.output + "\n")
    else:
        _stream(log_path, state["offset"])
    summary = f"[{final.state.value} in {_fmt_runtime(final.runtime)}]"
    if final.error:
        summary += f" {final.error}"
    if final.result is not None:
        summary += f" result: {json.dumps(final.result, default=str)[:200]}"
    print(summary, file=sys.stderr)
    return final


def _stream(path: Path, offset: int) -> int:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read(1 << 20)
    except FileNotFoundError:
        return offset
    if chunk:
        sys.stdout.write(chunk.decode("utf-8", errors="replace"))
        sys.stdout.flush()
    return offset + len(chunk)


def cmd_results(args: argparse.Namespace, settings: Settings) -> int:
    with _client(settings) as client:
        jobs = client.results(
            limit=args.max,
            offset=args.offset,
            states=args.state,
            name=args.name,
            owner=args.owner,
            sort=args.sort,
        )
    if args.json:
        _print_json([j.to_dict() for j in jobs])
        return 0
    rows = [
        [
            j.id,
            j.name[:40],
            j.state.value,
            _fmt_time(j.started_at),
            _fmt_runtime(j.runtime),
            j.mode.value,
        ]
        for j in jobs
    ]
    print(_table(["ID", "Job Name", "Status", "Started", "Runtime", "Mode"], rows))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with _client(settings) as client:
        job = client.get(args.job_id)
        log_path = client.log_path(job.id)
    data = job.to_dict()
    if args.json:
        _print_json(data)
        return 0
    output = data.pop("output")
    for key, value in data.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        print(f"{key:17}: {'' if value is None else value}")
    print(f"{'log':17}: {log_path if log_path.exists() else '-'}")
    print("--- output ---")
    print(output, end="" if output.endswith("\n") else "\n")
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    with _client(settings) as client:
        client.delete(args.job_id)
    print(f"deleted {args.job_id}")
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    with _client(settings) as client:
        job = client.cancel(args.job_id)
    note = " (cancel requested; its worker stops it)" if job.state is JobState.RUNNING else ""
    print(f"{job.id}: {job.state.value}{note}")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    with _client(settings) as client:
        stats = client.stats(owner=args.owner, name=args.name)
    if args.json:
        _print_json(stats.to_dict())
        return 0
    avg = _fmt_runtime(stats.avg_runtime)
    print(
        f"Total: {stats.total}  Successful: {stats.succeeded}  Failed: {stats.failed}  "
        f"Running: {stats.running}  Queued: {stats.queued}  Avg Runtime: {avg}"
    )
    return 0


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    seconds = parse_duration(args.older_than)
    with _client(settings) as client:
        count = client.purge(seconds)
    print(f"purged {count} job(s) that finished more than {args.older_than} ago")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from .store import open_store
    from .worker import Worker

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
    try:
        worker.run()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        store.close()
    return 0


def cmd_workers(args: argparse.Namespace, settings: Settings) -> int:
    now = time.time()
    with _client(settings) as client:
        workers = client.store.workers()
    if args.json:
        _print_json([w.to_dict(now) for w in workers])
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
    print(_table(["ID", "Host", "PID", "Queues", "Busy", "Last Heartbeat", "State"], rows))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = Settings.from_env(store_url=args.store, data_dir=args.data)
        handler: Handler = args.handler
        return handler(args, settings)
    except OpsJobsError as exc:
        print(f"opsjobs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
