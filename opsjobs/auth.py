"""Users, API keys and roles — the permission rules of the REST API, without any server.

Keys look like ``oj_<prefix>_<secret>``. The store keeps the public ``prefix`` (to find the key)
and the SHA-256 of the whole key, never the key itself; a presented key is compared with
:func:`hmac.compare_digest`. The key is high-entropy random text, so a plain hash is enough (no
password stretching is needed).

Roles are the seed's: ``debug``, ``system_admin``, ``site_admin`` and ``task_manager`` may submit
any job — which means running any code as the workers' OS user; every authenticated user may
read, cancel and delete their own jobs; ``system_admin`` and ``site_admin`` may see everyone's.
``operator`` submits too, but runs no code of its own: only notebooks of the server's catalog
and the ``call`` functions of an allow-list (:class:`RunPolicy`, :meth:`Auth.check_run`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import NotFound, PermissionDenied, ValidationError

if TYPE_CHECKING:
    from .model import Job, JobSpec
    from .store import Store

__all__ = [
    "ADMIN_ROLES",
    "CODE_ROLES",
    "OPERATOR_ROLE",
    "ROLES",
    "SUBMIT_ROLES",
    "ApiKey",
    "Auth",
    "RunPolicy",
    "User",
    "hash_key",
    "new_key",
    "parse_roles",
    "split_key",
]

#: Roles that may run any code on the workers (commands, programs, any call or notebook).
CODE_ROLES = frozenset({"debug", "system_admin", "site_admin", "task_manager"})
#: The role that runs only catalog notebooks and allow-listed calls (see :class:`RunPolicy`).
OPERATOR_ROLE = "operator"
#: Every role a user may hold.
ROLES = CODE_ROLES | {OPERATOR_ROLE}
#: Roles that may submit jobs (and manage schedules).
SUBMIT_ROLES = ROLES
#: Roles that may see and delete everyone's jobs (``?all=1``).
ADMIN_ROLES = frozenset({"system_admin", "site_admin"})

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


class Auth:
    """Keys and permissions over a store.

    Parameters
    ----------
    store
        Any store (it implements the auth domain).
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- keys ---------------------------------------------------------------------------------
    def create_key(
        self,
        email: str,
        *,
        name: str = "",
        roles: Iterable[str] | str = (),
        is_test: bool = False,
        key_name: str = "",
    ) -> tuple[User, ApiKey, str]:
        """Create a key for ``email`` (creating the user, or updating its roles when given).

        Returns the user, the stored key and the plaintext key — shown once, never stored.
        """
        email = validate_email(email)
        parsed = parse_roles(roles)
        name = _short(name or email.split("@")[0], "name")
        key_name = _short(key_name or name, "key name")
        now = time.time()
        user = self.store.find_user(email)
        if user is None:
            user = User(str(uuid.uuid4()), email, name, parsed, is_test, now)
            self.store.add_user(user)
            user = self.store.find_user(email) or user  # a concurrent creator may have won
        elif (parsed and parsed != user.roles) or (is_test and not user.is_test):
            roles_now = parsed or user.roles
            user = User(user.id, email, user.name, roles_now, user.is_test or is_test, user.created)
            self.store.update_user(user)
        plaintext, prefix = new_key()
        key = ApiKey(str(uuid.uuid4()), user.id, prefix, hash_key(plaintext), key_name, now)
        self.store.add_api_key(key)
        return user, key, plaintext

    def authenticate(
        self,
        presented: str,
        *,
        now: float | None = None,
        touch: Callable[[str, float], object] | None = None,
    ) -> User | None:
        """The user holding ``presented``, or None for a malformed, unknown or revoked key.

        ``touch(key_id, now)`` records the key's use (at most once a minute); by default it is
        written at once, the server hands it to a thread so a lookup stays a pure read."""
        prefix = split_key(presented.strip()) if isinstance(presented, str) else None
        if prefix is None:
            return None
        key = self.store.api_key_by_prefix(prefix)
        if key is None or not hmac.compare_digest(key.hash, hash_key(presented.strip())):
            return None
        if not key.active:
            return None
        now = time.time() if now is None else now
        if key.last_used is None or now - key.last_used > TOUCH_INTERVAL:
            if touch is None:
                self.store.touch_api_key(key.id, now=now)
            else:
                touch(key.id, now)
        try:
            return self.store.get_user(key.user_id)
        except NotFound:
            return None

    def revoke(self, key_id_or_prefix: str) -> ApiKey:
        """Revoke a key by id or prefix (idempotent)."""
        text = str(key_id_or_prefix).strip()
        key = self.store.api_key_by_prefix(text) if _PREFIX_RE.match(text) else None
        if key is None:
            matches = [k for k in self.store.list_api_keys() if k.id == text]
            if not matches:
                raise NotFound(f"no API key {text[:60]!r}")
            key = matches[0]
        return self.store.revoke_api_key(key.id, now=time.time())

    # -- permissions ----------------------------------------------------------------------------
    @staticmethod
    def check_submit(user: User) -> None:
        if not user.may_submit:
            raise PermissionDenied(
                f"submitting jobs needs one of the roles {', '.join(sorted(SUBMIT_ROLES))}"
            )

    @staticmethod
    def check_run(user: User, spec: JobSpec, policy: RunPolicy) -> None:
        """May ``user`` submit ``spec``? A code role may submit anything; ``operator`` only a
        catalog notebook or an allow-listed call; else :class:`PermissionDenied`."""
        Auth.check_submit(user)
        if user.may_run_code:
            return
        payload = spec.payload
        if spec.kind == "call" and payload.get("target") in policy.allowed_calls:
            return
        if spec.kind == "notebook" and policy.in_catalog(str(payload.get("path", ""))):
            return
        raise PermissionDenied(
            f"the {OPERATOR_ROLE} role runs only notebooks of the catalog and the calls of "
            f"OPSJOBS_ALLOWED_CALLS, not this {spec.kind} job"
        )

    @staticmethod
    def check_code(user: User, what: str) -> None:
        """``user`` must hold a role that may run code (for ``what``)."""
        if not user.may_run_code:
            raise PermissionDenied(f"{what} needs one of the roles {', '.join(sorted(CODE_ROLES))}")

    @staticmethod
    def owner_scope(user: User, *, everyone: bool = False) -> str | None:
        """The owner filter for listings: None (all) for admins asking for everyone's jobs."""
        if everyone and user.sees_all:
            return None
        return user.email

    @staticmethod
    def may_access(user: User, job: Job) -> bool:
        """May ``user`` see, cancel or delete ``job``? (Callers answer 404, not 403, if not.)"""
        return user.sees_all or job.owner == user.email


def _short(text: str, what: str) -> str:
    text = str(text).strip()
    if not text or len(text) > 200 or any(ord(c) < 32 for c in text):
        raise ValidationError(f"{what} must be 1-200 printable characters")
    return text
