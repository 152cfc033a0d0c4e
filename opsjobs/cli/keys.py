"""``opsjobs keys``: create, list and revoke API keys (the seed's Account_Auth_BearerToken_New)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from opsjobs.auth import Auth
from opsjobs.cli.output import client_for, print_json, table
from opsjobs.config import Settings
from opsjobs.model import iso

__all__ = ["register"]


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API keys of users of the REST API")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    p = ksub.add_parser("create", help="create a key (creating the user if needed); printed once")
    p.add_argument("--email", required=True)
    p.add_argument("--name", default="", help="the user's (and key's) name")
    p.add_argument(
        "--roles",
        default="",
        help="comma-separated: debug, system_admin, site_admin, task_manager, operator, explore",
    )
    p.add_argument("--test", action="store_true", help="mark the user as a test account")
    p.add_argument("--json", action="store_true", help="print user, key id and key as JSON")
    p.set_defaults(handler=cmd_create)

    p = ksub.add_parser("list", help="keys (never the secrets) with their users and roles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)

    p = ksub.add_parser("revoke", help="revoke a key by id or prefix")
    p.add_argument("key", help="the key's id or its 10-character prefix")
    p.set_defaults(handler=cmd_revoke)


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        user, key, plaintext = Auth(client.store).create_key(
            args.email, name=args.name, roles=args.roles, is_test=args.test, key_name=args.name
        )
    if args.json:
        print_json(
            {"email": user.email, "roles": list(user.roles), "key_id": key.id, "key": plaintext}
        )
        return 0
    roles = ", ".join(user.roles) or "none (may read only)"
    print(f"API key for {user.email} (roles: {roles}); shown once, store it now:", file=sys.stderr)
    print(plaintext)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        users = {u.id: u for u in client.store.list_users()}
        keys = client.store.list_api_keys()
    rows: list[dict[str, Any]] = []
    for k in keys:
        u = users.get(k.user_id)
        rows.append(
            {
                "id": k.id,
                "prefix": k.prefix,
                "name": k.name,
                "email": u.email if u else "?",
                "roles": list(u.roles) if u else [],
                "test": bool(u and u.is_test),
                "created": iso(k.created),
                "last_used": iso(k.last_used),
                "revoked_at": iso(k.revoked_at),
            }
        )
    if args.json:
        print_json(rows)
        return 0
    print(
        table(
            ["ID", "Prefix", "Email", "Roles", "Name", "Created", "Last Used", "State"],
            [
                [
                    r["id"],
                    r["prefix"],
                    r["email"],
                    ",".join(r["roles"]) or "-",
                    r["name"],
                    r["created"] or "-",
                    r["last_used"] or "-",
                    "revoked" if r["revoked_at"] else "active",
                ]
                for r in rows
            ],
        )
    )
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        key = Auth(client.store).revoke(args.key)
    print(f"revoked {key.id} ({key.prefix}) at {iso(key.revoked_at)}", file=sys.stderr)
    return 0
