"""Notification sub-commands: ``notify rules add|list|remove`` (rules on job outcomes) and
``notify sends`` (every message sent, and every failure to send)."""

from __future__ import annotations

import argparse
from typing import Any

from opsjobs.alerts.notices import NOTIFY_STATES
from opsjobs.alerts.notify_rules import NotifyRules
from opsjobs.cli.output import client_for, fmt_time, print_json, table
from opsjobs.client import parse_duration
from opsjobs.config import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("notify", help="notifications on job outcomes (e-mail, webhooks)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    rules = actions.add_parser("rules", help="manage notification rules (add, list, remove)")
    ops = rules.add_subparsers(dest="rules_action", required=True, metavar="ACTION")
    q = ops.add_parser("list", help="every rule")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_rules_list)

    q = ops.add_parser("add", help="create a rule")
    q.add_argument("--name", required=True, help="the rule's unique name")
    q.add_argument(
        "--on",
        default="failed,timed_out,lost",
        help=f"comma-separated outcomes: {', '.join(NOTIFY_STATES)} (failed,timed_out,lost)",
    )
    q.add_argument("--job", default="*", help="job name, exact or a glob such as backup-* (*)")
    q.add_argument("--queue", default="", help="only jobs of this queue")
    q.add_argument("--owner", default="", help="only jobs of this owner")
    q.add_argument(
        "--email", action="append", default=[], metavar="ADDRESS", help="recipient (repeatable)"
    )
    q.add_argument(
        "--no-webhook", action="store_true", help="not to the webhook receivers (OPSJOBS_WEBHOOKS)"
    )
    q.add_argument(
        "--group", default="10m", help="one message per job name per this window (10m; 0: each)"
    )
    q.add_argument("--description", default="")
    q.add_argument("--disabled", action="store_true", help="create it switched off")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_rules_add)

    q = ops.add_parser("remove", help="delete a rule (its sends stay listed)")
    q.add_argument("name", help="the rule's name or id")
    q.set_defaults(handler=cmd_rules_remove)

    q = actions.add_parser("sends", help="messages sent and failures to send (newest first)")
    q.add_argument("--rule", help="of this rule only (name or id)")
    q.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_sends)


def _rules(client: Any, settings: Settings) -> NotifyRules:
    # the CLI opens the store itself: whoever may read its file sees every rule; with a key of
    # a user without an admin role (issue 18), that user's rules only
    acting = client.settings
    return NotifyRules(client.store, acting.user, sees_all=not acting.scope_owner)


def cmd_rules_list(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        rules = _rules(client, settings).list()
    if args.json:
        print_json([r.to_dict() for r in rules])
        return 0
    rows = [
        [r.name, "yes" if r.enabled else "no", f"{r.group_seconds:g}s", r.summary] for r in rules
    ]
    print(table(["Name", "Enabled", "Group", "Rule"], rows) if rows else "no notification rules")
    return 0


def cmd_rules_add(args: argparse.Namespace, settings: Settings) -> int:
    fields: dict[str, Any] = {
        "name": args.name,
        "states": args.on,
        "job_name": args.job,
        "queue": args.queue,
        "owner": args.owner,
        "email": args.email,
        "webhook": not args.no_webhook,
        "group_seconds": parse_duration(args.group),
        "description": args.description,
        "enabled": not args.disabled,
    }
    with client_for(settings) as client:
        rules = _rules(client, settings)
        rule = rules.add(rules.build(fields))
    if args.json:
        print_json(rule.to_dict())
    else:
        print(f"notification rule {rule.name} added: {rule.summary}")
    return 0


def cmd_rules_remove(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        rule = _rules(client, settings).remove(args.name)
    print(f"notification rule {rule.name} removed")
    return 0


def cmd_sends(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        sends = _rules(client, settings).sends(rule=args.rule, limit=args.limit)
    if args.json:
        print_json([s.to_dict() for s in sends])
        return 0
    rows = [
        [
            fmt_time(s.at),
            s.rule_name,
            s.job_name,
            s.state,
            str(s.count),
            s.channel,
            s.target,
            "sent" if s.ok else f"FAILED: {s.detail}",
        ]
        for s in sends
    ]
    headers = ["At", "Rule", "Job", "State", "Count", "Channel", "To", "Result"]
    print(table(headers, rows) if rows else "no notifications sent")
    return 0
