"""``opsjobs login``, ``logout`` and ``whoami``: the CLI acts as the user of an API key, as the
dashboard and the REST API do (issue 18; the rules are in :mod:`opsjobs.auth.login`)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from opsjobs.auth import Auth, login
from opsjobs.cli.output import client_for, print_json
from opsjobs.config import Settings
from opsjobs.errors import ConfigError
from opsjobs.store import open_store

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "login",
        help="check an API key against the store and save it (mode 0600) for the CLI and API",
    )
    p.add_argument(
        "--key",
        help="the key (visible to other local users in the process list: prefer the prompt "
        "or standard input)",
    )
    p.set_defaults(handler=cmd_login)

    p = sub.add_parser("logout", help="forget the key saved for this store")
    p.set_defaults(handler=cmd_logout)

    p = sub.add_parser("whoami", help="who the CLI acts as, and where that came from")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_whoami)


def _read_key(args: argparse.Namespace) -> str:
    if args.key:
        return str(args.key).strip()
    if sys.stdin.isatty():
        return getpass.getpass("API key: ").strip()
    return sys.stdin.readline().strip()


def _login_file(settings: Settings) -> Any:
    if settings.login_file is None:
        raise ConfigError("no login file in these settings")
    return settings.login_file


def cmd_login(args: argparse.Namespace, settings: Settings) -> int:
    key = _read_key(args)
    if not key:
        raise ConfigError("no key given (paste it at the prompt, or pipe it in)")
    path = _login_file(settings)
    store = open_store(
        settings.store_url,
        runtime_dir=settings.runtime_dir,
        data_dir=settings.data_dir,
        settings=settings,
    )
    try:
        user = Auth(store).authenticate(key)
        label = login.store_label(store.url)
    finally:
        store.close()
    if user is None:
        raise ConfigError(
            f"this key is not valid for the store {label} (unknown, revoked or mistyped)"
        )
    login.save_key(path, settings.store_url, key)
    roles = ", ".join(user.roles) or "none (may read only)"
    print(f"signed in as {user.email} (roles: {roles}) on {label}", file=sys.stderr)
    print(f"key saved in {path} (mode 0600); `opsjobs logout` forgets it", file=sys.stderr)
    if settings.key_source == login.FROM_ENV_KEY:
        print("note: OPSJOBS_KEY is set and wins over the saved key", file=sys.stderr)
    elif settings.user_source == login.FROM_ENV_USER:
        print("note: OPSJOBS_USER is set and wins over the saved key", file=sys.stderr)
    return 0


def cmd_logout(args: argparse.Namespace, settings: Settings) -> int:
    path = _login_file(settings)
    label = login.store_label(settings.store_url)
    if login.forget_key(path, settings.store_url):
        print(f"signed out of {label}: the key is removed from {path}", file=sys.stderr)
    else:
        print(f"no saved key for {label} in {path}", file=sys.stderr)
    if settings.key_source == login.FROM_ENV_KEY:
        print("note: OPSJOBS_KEY is still set", file=sys.stderr)
    return 0


def cmd_whoami(args: argparse.Namespace, settings: Settings) -> int:
    with client_for(settings) as client:
        identity = client.identity
        label = login.store_label(client.store.url)
        local = client.store.local
    data = identity.to_dict(settings)
    data["store"] = label
    data["sees"] = _sees(identity, local)
    if args.json:
        print_json(data)
        return 0
    roles = ", ".join(identity.roles) if identity.verified else "-"
    print(f"user:   {identity.user or '(none)'}")
    print(f"roles:  {roles or 'none (may read only)'}")
    print(f"from:   {data['from']}")
    print(f"store:  {label}")
    print(f"sees:   {data['sees']}")
    return 0


def _sees(identity: login.Identity, local: bool) -> str:
    if identity.scoped:
        return "their own jobs and schedules, and the server's (system) ones read-only"
    if identity.verified:
        return "every job and schedule (an admin role)"
    if identity.user:
        return "every job and schedule of the store (no key: not scoped)"
    return "every job and schedule of the store (reading only: no identity to submit as)"
