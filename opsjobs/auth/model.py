"""Users, API keys and roles — the data of :mod:`opsjobs.auth`, without a store or a server.

Keys look like ``oj_<prefix>_<secret>``. The store keeps the public ``prefix`` (to find the key)
and the SHA-256 of the whole key, never the key itself; a presented key is compared with
:func:`hmac.compare_digest`. The key is high-entropy random text, so a plain hash is enough (no
password stretching is needed).

Roles are the seed's: ``debug``, ``system_admin``, ``site_admin`` and ``task_manager`` may submit
any job — which means running any code as the workers' OS user; every authenticated user may
read, cancel and delete their own jobs; ``system_admin`` and ``site_admin`` may see everyone's.
The server's own schedules and analyses belong to the ``system`` owner (:data:`SYSTEM_OWNER`,
no user: no key can act as it): every authenticated user sees them, only admins change them.
``operator`` submits too, but runs no code of its own: only notebooks of the server's catalog
and the ``call`` functions of an allow-list (:class:`RunPolicy`). ``explore`` opens JupyterLab
in ``opsjobs serve`` (which runs any code as the server's OS user), as admins do.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from opsjobs.errors import ValidationError

__all__ = [
    "ADMIN_ROLES",
    "CODE_ROLES",
    "EXPLORE_ROLE",
    "KEY_PREFIX",
    "OPERATOR_ROLE",
    "ROLES",
    "SUBMIT_ROLES",
    "SYSTEM_OWNER",
    "TOUCH_INTERVAL",
    "ApiKey",
    "RunPolicy",
    "User",
    "hash_key",
    "is_key_prefix",
    "new_key",
    "parse_roles",
    "split_key",
    "validate_email",
]

#: Roles that may run any code on the workers (commands, programs, any call or notebook).
CODE_ROLES = frozenset({"debug", "system_admin", "site_admin", "task_manager"})
#: The role that runs only catalog notebooks and allow-listed calls (see :class:`RunPolicy`).
OPERATOR_ROLE = "operator"
#: The role that may use JupyterLab in the server (as admins may; issue 19).
EXPLORE_ROLE = "explore"
#: Roles that may submit jobs (and manage schedules).
SUBMIT_ROLES = CODE_ROLES | {OPERATOR_ROLE}
#: Every role a user may hold.
ROLES = SUBMIT_ROLES | {EXPLORE_ROLE}
#: Roles that may see and delete everyone's jobs (``?all=1``).
ADMIN_ROLES = frozenset({"system_admin", "site_admin"})

#: The owner of the server's own schedules and their jobs (``memory-analysis``, …). It has no
#: ``@``, so no user's email can be it, and it holds no key.
SYSTEM_OWNER = "system"

KEY_PREFIX = "oj"
_PREFIX_RE = re.compile(r"^[a-z0-9]{10}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
#: ``last_used`` is written at most this often per key, so reads stay reads.
TOUCH_INTERVAL = 60.0


@dataclass(frozen=True)
class User:
    """Someone who may call the API."""

    id: str
    email: str
    name: str
    roles: tuple[str, ...]
    is_test: bool
    created: float

    @property
    def may_submit(self) -> bool:
        return bool(SUBMIT_ROLES.intersection(self.roles))

    @property
    def sees_all(self) -> bool:
        return bool(ADMIN_ROLES.intersection(self.roles))

    @property
    def may_use_lab(self) -> bool:
        """May this user open JupyterLab in the server (``explore``, or an admin)?"""
        return self.sees_all or EXPLORE_ROLE in self.roles

    @property
    def may_run_code(self) -> bool:
        """May this user run code of their own (a command, a program, any call)?"""
        return bool(CODE_ROLES.intersection(self.roles))


@dataclass(frozen=True)
class RunPolicy:
    """What a user without a code role (``operator``) may run.

    Parameters
    ----------
    allowed_calls
        ``pkg.module:function`` targets of ``call`` jobs (``OPSJOBS_ALLOWED_CALLS``).
    catalog
        The folder of notebooks users may run (the server's notebooks folder); only notebooks
        directly in it.
    """

    allowed_calls: frozenset[str] = frozenset()
    catalog: Path | None = None

    def in_catalog(self, path: str | os.PathLike[str]) -> bool:
        if self.catalog is None:
            return False
        found = Path(path)
        return (
            found.suffix == ".ipynb"
            and found.resolve().parent == self.catalog.resolve()
            and found.resolve().is_file()
        )


@dataclass(frozen=True)
class ApiKey:
    """A stored key: its public prefix and the hash of the secret, never the key itself."""

    id: str
    user_id: str
    prefix: str
    hash: str
    name: str
    created: float
    last_used: float | None = None
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def parse_roles(roles: Iterable[str] | str) -> tuple[str, ...]:
    """Roles from a list or a comma-separated text, checked and sorted."""
    if isinstance(roles, str):
        roles = roles.split(",")
    found = sorted({r.strip().lower() for r in roles if r and r.strip()})
    unknown = [r for r in found if r not in ROLES]
    if unknown:
        raise ValidationError(
            f"unknown role(s) {', '.join(unknown)} (expected: {', '.join(sorted(ROLES))})"
        )
    return tuple(found)


def validate_email(email: object) -> str:
    if not isinstance(email, str) or not _EMAIL_RE.match(email.strip()):
        raise ValidationError(f"invalid email {str(email)[:80]!r}")
    return email.strip().lower()


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh random key and its public prefix."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    prefix = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def split_key(key: str) -> str | None:
    """The prefix of a well-formed key, or None (a malformed key never reaches the store)."""
    parts = key.split("_", 2) if isinstance(key, str) and len(key) < 100 else []
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    if not _PREFIX_RE.match(parts[1]) or not _SECRET_RE.match(parts[2]):
        return None
    return parts[1]


def is_key_prefix(text: str) -> bool:
    """Is ``text`` shaped like a key's public prefix?"""
    return bool(_PREFIX_RE.match(text))
