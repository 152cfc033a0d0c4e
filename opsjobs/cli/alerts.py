"""Alert sub-commands: ``alerts list`` (open alerts; ``--all`` with resolved ones) and
``alerts rules add|list|remove``."""

from __future__ import annotations

import argparse
from typing import Any

from opsjobs.alerts import AlertRules, Condition, Severity
from opsjobs.cli.output import client_for, fmt_time, print_json, table
from opsjobs.client import parse_duration
from opsjobs.config import Settings
from opsjobs.errors import ValidationError

__all__ = ["register"]

_CONDITIONS = {
    "above": Condition.ABOVE,
    "below": Condition.BELOW,
    "rate_above": Condition.RATE_ABOVE,
    "rate_below": Condition.RATE_BELOW,
}


def register(sub: Any) -> None:
    p = sub.add_parser("alerts", help="open alerts and alert rules")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    q = actions.add_parser("list", help="open alerts (newest first)")
    q.add_argument("--all", action="store_true", help="resolved alerts too")
    q.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_list)

    rules = actions.add_parser("rules", help="manage alert rules (add, list, remove)")
    ops = rules.add_subparsers(dest="rules_action", required=True, metavar="ACTION")
    q = ops.add_parser("list", help="every rule")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_rules_list)

    q = ops.add_parser("add", help="create a rule")
    q.add_argument("--name", required=True, help="the rule's unique name")
    q.add_argument("--metric", required=True, help="metric name, e.g. rss_mb")
    cond = q.add_mutually_exclusive_group(required=True)
    for flag, help_text in (
        ("above", "open when the value is above X"),
        ("below", "open when the value is below X"),
        ("rate-above", "open when the counter rises faster than X per --per"),
        ("rate-below", "open when the counter rises slower than X per --per"),
    ):
        cond.add_argument(f"--{flag}", type=float, metavar="X", help=help_text)
    q.add_argument("--window", default="10m", help="rate window (10m)")
    q.add_argument("--per", default="1m", help="rate unit (1m: X per minute)")
    q.add_argument(
        "--for-points", type=int, default=1, help="must hold at this many latest points (1)"
    )
    q.add_argument("--for", dest="for_duration", default="0", help="and for this long (0)")
    q.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="only series with this label (repeatable; host matches the host)",
    )
    q.add_argument("--severity", default="warning", choices=[s.value for s in Severity])
    q.add_argument("--description", default="")
    q.add_argument("--disabled", action="store_true", help="create it switched off")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_rules_add)

    q = ops.add_parser("remove", help="delete a rule (its open alerts are resolved)")
    q.add_argument("name", help="the rule's name or id")
    q.set_defaults(handler=cmd_rules_remove)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.limit <= 10_000:
        raise ValidationError("--limit must be between 1 and 10000")
    with client_for(settings) as client:
        found = client.store.list_alerts(open_only=not args.all, limit=args.limit)
    if args.json:
        print_json([a.to_dict() for a in found])
        return 0
    if not found:
        print("no open alerts" if not args.all else "no alerts")
        return 0
    rows = [
        [
            a.severity.value,
            a.state.value,
            a.rule_name,
            ", ".join(f"{k}={v}" for k, v in sorted(a.shown_labels.items())),
            "-" if a.value is None else f"{a.value:.4g}",
            fmt_time(a.opened_at),
            fmt_time(a.resolved_at),
        ]
        for a in found
    ]
    print(table(["Severity", "State", "Rule", "Series", "Value", "Opened", "Resolved"], rows))
    return 0


def cmd_rules_list(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        rules = AlertRules(client.store).list()
    if args.json:
        print_json([r.to_dict() for r in rules])
        return 0
    rows = [
        [r.name, r.severity.value, "yes" if r.enabled else "no", r.condition_text] for r in rules
    ]
    print(table(["Name", "Severity", "Enabled", "Condition"], rows) if rows else "no alert rules")
    return 0


def _labels(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"--label wants NAME=VALUE, not {item[:60]!r}")
        out[name.strip()] = value.strip()
    return out


def cmd_rules_add(args: argparse.Namespace, settings: Settings) -> int:
    condition, threshold = next(
        (cond, getattr(args, key))
        for key, cond in _CONDITIONS.items()
        if getattr(args, key) is not None
    )
    fields: dict[str, Any] = {
        "name": args.name,
        "metric": args.metric,
        "condition": condition,
        "threshold": threshold,
        "labels": _labels(args.label),
        "for_points": args.for_points,
        "for_seconds": parse_duration(args.for_duration),
        "window_seconds": parse_duration(args.window),
        "per_seconds": parse_duration(args.per),
        "severity": args.severity,
        "description": args.description,
        "enabled": not args.disabled,
    }
    with client_for(settings) as client:
        rules = AlertRules(client.store)
        rule = rules.add(rules.build(fields))
    if args.json:
        print_json(rule.to_dict())
    else:
        print(f"alert rule {rule.name} added: {rule.condition_text} [{rule.severity.value}]")
    return 0


def cmd_rules_remove(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        rule = AlertRules(client.store).remove(args.name)
    print(f"alert rule {rule.name} removed")
    return 0
