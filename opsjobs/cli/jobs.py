"""Job sub-commands: submit, results, show, delete, cancel, stats, purge."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from opsjobs.cli.output import client_for, fmt_runtime, fmt_time, print_json, table
from opsjobs.client import Client, parse_duration
from opsjobs.config import Settings
from opsjobs.errors import ValidationError
from opsjobs.model import SORT_COLUMNS, Attempt, Job, JobState

__all__ = ["EXIT_CODES", "add_retry_options", "follow", "register", "retry_options"]

EXIT_CODES = {
    JobState.SUCCEEDED: 0,
    JobState.FAILED: 1,
    JobState.CANCELLED: 3,
    JobState.TIMED_OUT: 4,
    JobState.LOST: 5,
}


def register(sub: Any) -> None:
    p = sub.add_parser("submit", help="queue a job, or a batch of them (--from-file)")
    p.add_argument("--name")
    p.add_argument("--description", default="")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--from-file",
        metavar="JOBS_JSONL",
        help="queue the jobs of a file, one JSON object per line with the fields of the "
        "REST submit body (name, command, call, kwargs, argv, mode, queue, ...), all or none; "
        "prints their ids ('-' reads standard input)",
    )
    what.add_argument("--command", help="Python source to run (the seed's command)")
    what.add_argument("--call", help="a callable as package.module:function")
    what.add_argument(
        "--argv", nargs=argparse.REMAINDER, help="a program and its arguments (last option)"
    )
    what.add_argument("--notebook", help="a Jupyter notebook (.ipynb) to run with papermill")
    p.add_argument("--kwargs", help="JSON object of keyword arguments for --call")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter (repeatable); VALUE is typed like papermill's -p: "
        "True/False, None, int, float, else text",
    )
    p.add_argument(
        "-y", "--parameters-yaml", help="notebook parameters as one YAML or JSON mapping"
    )
    p.add_argument("--kernel", help="Jupyter kernel for --notebook (default: the notebook's)")
    p.add_argument(
        "--allow-unknown",
        action="store_true",
        help="pass -p parameters the notebook's parameters cell does not declare",
    )
    p.add_argument(
        "--mode",
        default="thread",
        help="inline | thread | process (or MainLoop, Runspace, BackgroundJob)",
    )
    p.add_argument("--queue", default="default")
    p.add_argument("--timeout", help="seconds or a duration such as 90s, 10m")
    add_retry_options(p)
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--wait", action="store_true", help="follow the job and exit with its status")
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser("results", help="list jobs (newest first)")
    p.add_argument("--max", type=int, default=50, help="how many rows (default 50)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--state", action="append", default=[], help="filter by state (repeatable)")
    p.add_argument("--name", help="filter: name contains this text")
    p.add_argument("--exact-name", help="filter: exactly this job name")
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

    p = sub.add_parser(
        "rerun", help="run a job again as a new job linked to it (rerun_of); prints its id"
    )
    p.add_argument("job_id")
    add_parameter_options(p)
    p.add_argument("--mode", help="another mode (default: the old job's)")
    p.add_argument("--queue", help="another queue")
    p.add_argument("--timeout", help="another timeout: seconds or a duration such as 10m")
    p.add_argument("--wait", action="store_true", help="follow the job and exit with its status")
    p.set_defaults(handler=cmd_rerun)

    p = sub.add_parser("stats", help="totals and average runtime")
    p.add_argument("--owner")
    p.add_argument("--name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser(
        "purge",
        help="delete jobs that finished long ago with their files, and old metrics and alerts",
    )
    p.add_argument("--older-than", required=True, help="a duration such as 7d, 12h")
    p.add_argument(
        "--keep-last",
        type=int,
        default=0,
        metavar="N",
        help="keep the N latest finished jobs of each job name, however old",
    )
    p.set_defaults(handler=cmd_purge)


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    if args.from_file is not None:
        return _submit_file(args, settings)
    if args.name is None:
        raise ValidationError("give --name (or --from-file)")
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
    kind, payload = _notebook_payload(args)
    with client_for(settings) as client:
        job = client.submit(
            args.name,
            command=args.command,
            call=args.call,
            kwargs=kwargs,
            argv=args.argv,
            kind=kind,
            payload=payload,
            mode=args.mode,
            queue=args.queue,
            description=args.description,
            timeout=timeout,
            priority=args.priority,
            **retry_options(args),
        )
        if not args.wait:
            print(job.id)
            return 0
        print(f"submitted {job.id} ({job.mode.value} mode, queue {job.queue})", file=sys.stderr)
        final = follow(client, job)
    return EXIT_CODES.get(final.state, 1)


def add_retry_options(p: argparse.ArgumentParser) -> None:
    """The retry policy's options (``submit``, ``schedules add``)."""
    p.add_argument(
        "--retries",
        type=int,
        default=0,
        help="attempts after the first: when the worker is lost, and when the job fails or "
        "times out (see --retry-on)",
    )
    p.add_argument("--retry-delay", default="10s", help="delay before the first retry (10s)")
    p.add_argument(
        "--retry-backoff", type=float, default=2.0, help="each next delay is this times longer (2)"
    )
    p.add_argument("--retry-max", default="10m", help="the longest delay (10m)")
    p.add_argument(
        "--retry-on",
        default="failed,timed_out",
        help="outcomes retried, comma-separated: failed, timed_out (both); '' for none",
    )


def retry_options(args: argparse.Namespace) -> dict[str, Any]:
    """The client arguments of :func:`add_retry_options`' options."""
    return {
        "retries": args.retries,
        "retry_delay": parse_duration(args.retry_delay),
        "retry_backoff": args.retry_backoff,
        "retry_max": parse_duration(args.retry_max),
        "retry_on": args.retry_on,
    }


#: Options of a single submit that a --from-file batch takes from each line instead.
_SINGLE_ONLY = ("name", "kwargs", "timeout", "notebook", "parameters_yaml", "kernel")


def _submit_file(args: argparse.Namespace, settings: Settings) -> int:
    """``submit --from-file``: every line checked first (the first bad one is reported with
    its index and line number, and nothing is queued), then one batch insert."""
    from opsjobs.server.openapi import check_body

    given = [f"--{o.replace('_', '-')}" for o in _SINGLE_ONLY if getattr(args, o) is not None]
    given += ["--wait"] if args.wait else []
    given += ["-p"] if args.parameter else []
    if given:
        raise ValidationError(f"{', '.join(given)} do(es) not go with --from-file")
    bodies = _read_jsonl(args.from_file)
    if not bodies:
        raise ValidationError(f"{args.from_file}: no jobs in the file")
    with client_for(settings) as client:
        specs = []
        batch = client.spec_batch()  # checks values the lines repeat once
        for i, (line, body) in enumerate(bodies):
            try:
                check_body("SubmitRequest", body)
                specs.append(client.spec_from_body(body, batch=batch))
            except ValidationError as exc:
                raise ValidationError(f"job {i} (line {line}): {exc}") from None
        jobs = client.submit_many(specs)
    for job in jobs:
        print(job.id)
    print(f"submitted {len(jobs)} jobs", file=sys.stderr)
    return 0


def _read_jsonl(source: str) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) of each non-blank line of a file ('-': standard input)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {source}: {exc}") from None
    out: list[tuple[int, Any]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            out.append((number, json.loads(raw)))
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"job {len(out)} (line {number}): not JSON: {exc.msg} at column {exc.colno}"
            ) from None
    return out


def _notebook_payload(args: argparse.Namespace) -> tuple[str | None, dict[str, Any] | None]:
    """``--notebook`` with its ``-y``/``-p``/``--kernel`` as a ``notebook`` kind payload."""
    if args.notebook is None:
        if args.parameter or args.parameters_yaml or args.kernel or args.allow_unknown:
            raise ValidationError(
                "-p/--parameter, -y/--parameters-yaml, --kernel and --allow-unknown go with "
                "--notebook"
            )
        return None, None
    from opsjobs.runners.notebook import parse_parameter_value, parse_parameters_text

    parameters = parse_parameters_text(args.parameters_yaml) if args.parameters_yaml else {}
    for name, value in args.parameter:
        parameters[name] = parse_parameter_value(value)
    payload = {"path": args.notebook, "parameters": parameters, "kernel": args.kernel}
    if args.allow_unknown:
        payload["allow_unknown"] = True
    return "notebook", payload


def follow(client: Client, job: Job) -> Job:
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
    summary = f"[{final.state.value} in {fmt_runtime(final.runtime)}]"
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


def add_parameter_options(p: argparse.ArgumentParser) -> None:
    """``-p NAME VALUE`` (repeatable) and ``--allow-unknown``, for notebook parameters."""
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter (repeatable), typed like papermill's -p",
    )
    p.add_argument(
        "--allow-unknown",
        action="store_true",
        help="pass parameters the notebook's parameters cell does not declare",
    )


def parameters_of(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``-p`` options as parameters (None when none were given)."""
    from opsjobs.runners.notebook import parse_parameter_value

    if not args.parameter:
        return None
    return {name: parse_parameter_value(value) for name, value in args.parameter}


def cmd_rerun(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        job = client.rerun(
            args.job_id,
            parameters=parameters_of(args),
            allow_unknown=args.allow_unknown,
            mode=args.mode,
            queue=args.queue,
            timeout=parse_duration(args.timeout) if args.timeout else None,
        )
        if not args.wait:
            print(job.id)
            return 0
        print(f"submitted {job.id}, a rerun of {job.spec.rerun_of}", file=sys.stderr)
        final = follow(client, job)
    return EXIT_CODES.get(final.state, 1)


def cmd_results(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        jobs = client.results(
            limit=args.max,
            offset=args.offset,
            states=args.state,
            name=args.name,
            owner=args.owner,
            sort=args.sort,
            exact_name=args.exact_name,
        )
    if args.json:
        print_json([j.to_dict() for j in jobs])
        return 0
    rows = [
        [
            j.id,
            j.name[:40],
            j.state.value,
            fmt_time(j.started_at),
            fmt_runtime(j.runtime),
            j.mode.value,
        ]
        for j in jobs
    ]
    print(table(["ID", "Job Name", "Status", "Started", "Runtime", "Mode"], rows))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        job = client.get(args.job_id)
        log_path = client.log_path(job.id)
        attempts = client.attempts(job.id)
    data = job.to_dict()
    if args.json:
        print_json({**data, "attempts": [a.to_dict() for a in attempts]})
        return 0
    output = data.pop("output")
    for key, value in data.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        print(f"{key:17}: {'' if value is None else value}")
    print(f"{'log':17}: {log_path if log_path.exists() else '-'}")
    if len(attempts) > 1 or (attempts and attempts[-1].attempt != job.attempt):
        _print_attempts(attempts)
    print("--- output ---")
    print(output, end="" if output.endswith("\n") else "\n")
    return 0


def _print_attempts(attempts: list[Attempt]) -> None:
    """The attempts of a retried job: one row each, then each earlier one's output."""
    rows = [
        [
            str(a.attempt),
            a.state.value,
            fmt_time(a.started_at),
            fmt_time(a.finished_at),
            "" if a.runtime is None else f"{a.runtime:.2f}s",
            "" if a.exit_code is None else str(a.exit_code),
            (a.error or "").splitlines()[0][:80] if a.error else "",
        ]
        for a in attempts
    ]
    print("--- attempts ---")
    print(table(["Attempt", "Status", "Started", "Finished", "Runtime", "Exit", "Error"], rows))
    for a in attempts[:-1]:
        if a.output:
            print(f"--- output of attempt {a.attempt} ---")
            print(a.output, end="" if a.output.endswith("\n") else "\n")


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        client.delete(args.job_id)
    print(f"deleted {args.job_id}")
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        job = client.cancel(args.job_id)
    note = " (cancel requested; its worker stops it)" if job.state is JobState.RUNNING else ""
    print(f"{job.id}: {job.state.value}{note}")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        stats = client.stats(owner=args.owner, name=args.name)
    if args.json:
        print_json(stats.to_dict())
        return 0
    avg = fmt_runtime(stats.avg_runtime)
    print(
        f"Total: {stats.total}  Successful: {stats.succeeded}  Failed: {stats.failed}  "
        f"Running: {stats.running}  Queued: {stats.queued}  Avg Runtime: {avg}"
    )
    return 0


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    from opsjobs.retention import purge

    seconds = parse_duration(args.older_than)
    with client_for(settings) as client:
        client.check_store_wide("purge")
        report = purge(client.store, client.settings, older_than=seconds, keep_last=args.keep_last)
    kept = f" (keeping the last {args.keep_last} of each name)" if args.keep_last else ""
    print(f"purged {report} older than {args.older_than}{kept}")
    return 0
