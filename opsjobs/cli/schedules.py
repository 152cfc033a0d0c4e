"""Schedule sub-commands: ``schedule add|list|show|pause|resume|remove|run-now``, ``scheduler``
(run one until Ctrl-C) and ``init`` (prepare the data folder and store; the retention
schedule)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from types import FrameType
from typing import Any

from opsjobs.cli.jobs import add_retry_options, retry_options
from opsjobs.cli.output import client_for, fmt_time, print_json, table
from opsjobs.client import Client, parse_duration
from opsjobs.config import Settings, redact_url
from opsjobs.errors import NotFound, ValidationError
from opsjobs.schedules import Misfire, Schedule

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("schedule", help="manage schedules (add, list, show, pause, ...)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    _register_add(actions)

    q = actions.add_parser("list", help="every schedule with its next and last run")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_list)

    q = actions.add_parser("show", help="a schedule and its recent fires, skipped ones too")
    q.add_argument("name")
    q.add_argument("--fires", type=int, default=20, help="how many recent fires (default 20)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_show)

    for name, handler, help_text in (
        ("pause", cmd_pause, "stop firing (fire times while paused are not run later)"),
        ("resume", cmd_resume, "fire again from the next trigger time"),
        ("remove", cmd_remove, "delete a schedule and its fire records (its jobs stay)"),
    ):
        q = actions.add_parser(name, help=help_text)
        q.add_argument("name")
        q.set_defaults(handler=handler)

    from opsjobs.cli.jobs import add_parameter_options

    q = actions.add_parser(
        "run-now", help="queue one run at once (-p: a notebook's parameters for this run only)"
    )
    q.add_argument("name")
    add_parameter_options(q)
    q.set_defaults(handler=cmd_run_now)

    q = actions.add_parser(
        "params", help="change a notebook schedule's parameters (-p NAME VALUE, repeatable)"
    )
    q.add_argument("name")
    add_parameter_options(q)
    q.add_argument("--replace", action="store_true", help="replace them all, not merge")
    q.set_defaults(handler=cmd_params)

    p = sub.add_parser("scheduler", help="run a scheduler until Ctrl-C")
    p.set_defaults(handler=cmd_scheduler)

    p = sub.add_parser(
        "init",
        help="create the data folder and store, the daily retention schedule and the default "
        "alert rules",
    )
    p.add_argument("--keep-days", type=float, default=30.0, help="days of jobs kept (30)")
    p.add_argument(
        "--keep-last", type=int, default=10, help="latest jobs kept per job name, however old (10)"
    )
    p.add_argument("--cron", default="0 2 * * *", help="when retention runs ('0 2 * * *')")
    p.add_argument("--tz", default="UTC", help="time zone of --cron (UTC)")
    p.add_argument("--queue", default="default", help="queue of the retention job (default)")
    p.set_defaults(handler=cmd_init)


def _register_add(actions: Any) -> None:
    q = actions.add_parser("add", help="create a schedule")
    q.add_argument("--name", required=True, help="the schedule's unique name")
    when = q.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", help="an interval such as 90s, 30m, 12h, 1d")
    when.add_argument("--cron", help="five cron fields, e.g. '0 2 * * *'")
    q.add_argument("--tz", help="time zone of --cron (IANA name; default UTC)")
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("--command", help="Python source to run")
    what.add_argument("--call", help="a callable as package.module:function")
    what.add_argument("--kind", help="any job kind (with --payload), e.g. notebook")
    what.add_argument(
        "--argv", nargs=argparse.REMAINDER, help="a program and its arguments (last option)"
    )
    q.add_argument("--kwargs", help="JSON object of keyword arguments for --call")
    q.add_argument("--payload", help="JSON object: the payload of --kind")
    q.add_argument("--job-name", help="name of the jobs it queues (default: the schedule's)")
    q.add_argument("--description", default="")
    q.add_argument("--mode", default="thread", help="inline | thread | process")
    q.add_argument("--queue", default="default")
    q.add_argument("--timeout", help="seconds or a duration such as 90s, 10m")
    add_retry_options(q)
    q.add_argument("--priority", type=int, default=0)
    q.add_argument(
        "--misfire",
        default="coalesce",
        choices=[m.value for m in Misfire],
        help="fire times missed beyond --grace: one run for all (coalesce, default), none "
        "(skip), or each up to --catchup-cap (catchup)",
    )
    q.add_argument("--grace", default="60s", help="how late a fire may still run (60s)")
    q.add_argument("--catchup-cap", type=int, default=10, help="most missed runs caught up (10)")
    q.add_argument(
        "--max-instances", type=int, default=1, help="queued+running jobs allowed at once (1)"
    )
    q.add_argument("--paused", action="store_true", help="create it paused")
    q.set_defaults(handler=cmd_add)


def _json_object(text: str | None, option: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{option} is not valid JSON: {exc.msg} at column {exc.colno}"
        ) from None
    if not isinstance(value, dict):
        raise ValidationError(f"{option} must be a JSON object, like '{{\"n\": 3}}'")
    return value


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    if args.argv is not None and not args.argv:
        raise ValidationError("--argv needs a program to run")
    if args.payload is not None and args.kind is None:
        raise ValidationError("--payload goes with --kind")
    kwargs = _json_object(args.kwargs, "--kwargs")
    payload = _json_object(args.payload, "--payload")
    if args.kind is not None and payload is None:
        payload = {}
    with client_for(settings) as client:
        schedule = client.schedules.add(
            args.name,
            every=args.every,
            cron=args.cron,
            tz=args.tz,
            command=args.command,
            call=args.call,
            kwargs=kwargs,
            argv=args.argv,
            kind=args.kind,
            payload=payload,
            job_name=args.job_name,
            mode=args.mode,
            queue=args.queue,
            description=args.description,
            timeout=parse_duration(args.timeout) if args.timeout else None,
            priority=args.priority,
            **retry_options(args),
            misfire=args.misfire,
            grace=args.grace,
            catchup_cap=args.catchup_cap,
            max_instances=args.max_instances,
            enabled=not args.paused,
        )
    when = f"next run {fmt_time(schedule.next_fire_at)}" if schedule.enabled else "paused"
    print(f"schedule {schedule.name} ({schedule.trigger_text}): {when}")
    return 0


def _status(schedule: Schedule) -> str:
    return schedule.last_job_state.value if schedule.last_job_state else "-"


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        schedules = client.schedules.list()
    if args.json:
        print_json([s.to_dict() for s in schedules])
        return 0
    rows = [
        [
            s.name,
            s.trigger_text,
            fmt_time(s.next_fire_at) if s.enabled else "paused",
            fmt_time(s.last_fire_at),
            _status(s),
            "yes" if s.enabled else "no",
        ]
        for s in schedules
    ]
    print(table(["Name", "Trigger", "Next run", "Last run", "Last status", "Enabled"], rows))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        schedule = client.schedules.get(args.name)
        fires = client.schedules.fires(schedule.id, limit=args.fires)
    if args.json:
        print_json({**schedule.to_dict(), "fires": [f.to_dict() for f in fires]})
        return 0
    data = schedule.to_dict()
    job = data.pop("job")
    for key, value in data.items():
        print(f"{key:15}: {'' if value is None else value}")
    for key, value in job.items():
        shown = json.dumps(value) if isinstance(value, dict) else value
        print(f"{'job.' + key:15}: {'' if shown is None else shown}")
    print("--- recent fires ---")
    rows = [[fmt_time(f.fire_at), f.outcome.value, f.job_id or "-", f.reason or "-"] for f in fires]
    print(table(["Fire time", "Outcome", "Job", "Reason"], rows))
    return 0


def cmd_pause(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        schedule = client.schedules.pause(args.name)
    print(f"schedule {schedule.name}: paused")
    return 0


def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        schedule = client.schedules.resume(args.name)
    print(f"schedule {schedule.name}: next run {fmt_time(schedule.next_fire_at)}")
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        client.schedules.remove(args.name)
    print(f"schedule {args.name}: removed")
    return 0


def cmd_run_now(args: argparse.Namespace, settings: Settings) -> int:
    from opsjobs.cli.jobs import parameters_of

    with client_for(settings) as client:
        job = client.schedules.run_now(
            args.name, parameters=parameters_of(args), allow_unknown=args.allow_unknown
        )
    print(job.id)
    return 0


def cmd_params(args: argparse.Namespace, settings: Settings) -> int:
    from opsjobs.cli.jobs import parameters_of

    with client_for(settings) as client:
        schedule = client.schedules.set_parameters(
            args.name,
            parameters_of(args) or {},
            allow_unknown=args.allow_unknown,
            replace=args.replace,
        )
    print(json.dumps(schedule.spec.payload.get("parameters") or {}, default=str))
    return 0


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from opsjobs.scheduler import Scheduler
    from opsjobs.store import open_store

    store = open_store(
        settings.store_url,
        runtime_dir=settings.runtime_dir,
        data_dir=settings.data_dir,
        settings=settings,
    )
    scheduler = Scheduler(store, settings)

    def on_term(signum: int, frame: FrameType | None) -> None:
        scheduler.stop()

    signal.signal(signal.SIGTERM, on_term)
    print(f"{scheduler.id} on store {redact_url(store.url)}; Ctrl-C stops it", file=sys.stderr)
    try:
        scheduler.run()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        store.close()
    return 0


def retention_schedule(client: Client, args: argparse.Namespace) -> Schedule:
    from opsjobs.retention import RETENTION_SCHEDULE, RETENTION_TARGET

    return client.schedules.build(
        RETENTION_SCHEDULE,
        cron=args.cron,
        tz=args.tz,
        call=RETENTION_TARGET,
        kwargs={"keep_days": args.keep_days, "keep_last": args.keep_last},
        mode="thread",
        queue=args.queue,
        description="built-in retention: old jobs and their files, orphan files",
        owner="opsjobs",
    )


def _definition(schedule: Schedule) -> tuple[Any, ...]:
    spec = dataclasses.replace(schedule.spec, schedule_id=None)
    return (spec, schedule.trigger, schedule.cron, schedule.tz, schedule.misfire)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    if args.keep_days < 0 or args.keep_last < 0:
        raise ValidationError("--keep-days and --keep-last must not be negative")
    for folder in (settings.data_dir, settings.logs_dir, settings.outputs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    with client_for(settings) as client:  # opening the store creates and migrates it
        wanted = retention_schedule(client, args)
        try:
            current = client.schedules.get(wanted.name, owner=wanted.spec.owner or "")
        except NotFound:
            current = None
        if current is None:
            schedule = client.schedules.add_schedule(wanted)
            action = "created"
        elif _definition(current) != _definition(wanted):
            schedule = client.schedules.update(current.id, wanted)
            action = "updated"
        else:
            schedule, action = current, "unchanged"
        from opsjobs.alerts import ensure_default_rules

        rules = ensure_default_rules(client.store)
    print(f"store {redact_url(settings.store_url)} ready; data folder {settings.data_dir}")
    print(
        f"retention schedule {schedule.name} {action}: {schedule.trigger_text}, keeps "
        f"{args.keep_days:g} day(s) and the last {args.keep_last} job(s) of each name"
    )
    for rule, rule_action in rules:
        print(f"alert rule {rule.name} {rule_action}: {rule.condition_text}")
    return 0
