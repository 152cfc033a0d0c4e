"""The :class:`Auth` service: keys and permissions over an :class:`~opsjobs.store.auth.AuthStore`.

The data it works on (users, keys, roles, the key format) lives in :mod:`opsjobs.auth.model`.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opsjobs.auth.model import (
    CODE_ROLES,
    OPERATOR_ROLE,
    SUBMIT_ROLES,
    SYSTEM_OWNER,
    TOUCH_INTERVAL,
    ApiKey,
    RunPolicy,
    User,
    hash_key,
    is_key_prefix,
    new_key,
    parse_roles,
    split_key,
    validate_email,
)
from opsjobs.errors import NotFound, PermissionDenied, ValidationError

if TYPE_CHECKING:
    from opsjobs.model import Job, JobSpec
    from opsjobs.store.auth import AuthStore

__all__ = ["Auth"]


class Auth:
    """Keys and permissions over a store.

    Parameters
    ----------
    store
        Any store: every store implements the auth domain.
    """

    def __init__(self, store: AuthStore) -> None:
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
        key = self.store.api_key_by_prefix(text) if is_key_prefix(text) else None
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
    def owner_scope(user: User, *, everyone: bool = False) -> tuple[str, ...] | None:
        """The owner filter for listings: the user's own and the ``system`` owner's, or None
        (all) for admins asking for everyone's."""
        if everyone and user.sees_all:
            return None
        return (user.email, SYSTEM_OWNER)

    @staticmethod
    def may_access(user: User, job: Job) -> bool:
        """May ``user`` see ``job``: their own, the ``system`` owner's, any for admins?
        (Callers answer 404, not 403, if not.)"""
        return user.sees_all or job.owner in (user.email, SYSTEM_OWNER)

    @staticmethod
    def may_change(user: User, owner: str) -> bool:
        """May ``user`` cancel, delete or change what ``owner`` owns: their own, any for
        admins (the ``system`` owner's only for admins)."""
        return user.sees_all or owner == user.email

    @staticmethod
    def check_change(user: User, owner: str, what: str) -> None:
        """:meth:`may_change`, or :class:`PermissionDenied` naming ``what`` (for a ``system``
        one that others only see: that only an admin may)."""
        if Auth.may_change(user, owner):
            return
        if owner == SYSTEM_OWNER:
            raise PermissionDenied(
                f"{what} belongs to the server (system): only an admin may change it"
            )
        raise PermissionDenied(f"{what} is not yours")


def _short(text: str, what: str) -> str:
    text = str(text).strip()
    if not text or len(text) > 200 or any(ord(c) < 32 for c in text):
        raise ValidationError(f"{what} must be 1-200 printable characters")
    return text
