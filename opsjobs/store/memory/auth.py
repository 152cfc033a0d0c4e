"""Users and API keys of the in-memory store."""

from __future__ import annotations

import dataclasses
import threading

from opsjobs.auth.model import ApiKey, User
from opsjobs.errors import Conflict, NotFound
from opsjobs.store.auth import AuthStore

__all__ = ["MemoryAuth"]


class MemoryAuth(AuthStore):
    """Users and keys in dictionaries, guarded by the store's lock."""

    _lock: threading.RLock

    def _auth_tables(self) -> tuple[dict[str, User], dict[str, ApiKey]]:
        # Created lazily so the host class's __init__ needs no edit.
        tables = self.__dict__.get("_auth")
        if tables is None:
            tables = self.__dict__.setdefault("_auth", ({}, {}))
        return tables

    def add_user(self, user: User) -> None:
        with self._lock:
            users, _ = self._auth_tables()
            if any(u.email == user.email for u in users.values()) or user.id in users:
                raise Conflict(f"a user with email {user.email} exists")
            users[user.id] = user

    def update_user(self, user: User) -> None:
        with self._lock:
            users, _ = self._auth_tables()
            if user.id not in users:
                raise NotFound(f"no user with id {user.id}")
            old = users[user.id]
            users[user.id] = dataclasses.replace(
                old, name=user.name, roles=user.roles, is_test=user.is_test
            )

    def get_user(self, user_id: str) -> User:
        with self._lock:
            users, _ = self._auth_tables()
            try:
                return users[user_id]
            except KeyError:
                raise NotFound(f"no user with id {user_id}") from None

    def find_user(self, email: str) -> User | None:
        with self._lock:
            users, _ = self._auth_tables()
            return next((u for u in users.values() if u.email == email), None)

    def list_users(self) -> list[User]:
        with self._lock:
            users, _ = self._auth_tables()
            return sorted(users.values(), key=lambda u: u.created)

    def add_api_key(self, key: ApiKey) -> None:
        with self._lock:
            users, keys = self._auth_tables()
            if key.user_id not in users:
                raise NotFound(f"no user with id {key.user_id}")
            if key.id in keys or any(k.prefix == key.prefix for k in keys.values()):
                raise Conflict(f"an API key with prefix {key.prefix} exists")
            keys[key.id] = key

    def api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        with self._lock:
            _, keys = self._auth_tables()
            return next((k for k in keys.values() if k.prefix == prefix), None)

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        with self._lock:
            _, keys = self._auth_tables()
            found = [k for k in keys.values() if user_id is None or k.user_id == user_id]
        return sorted(found, key=lambda k: k.created)

    def revoke_api_key(self, key_id: str, *, now: float) -> ApiKey:
        with self._lock:
            _, keys = self._auth_tables()
            key = keys.get(key_id)
            if key is None:
                raise NotFound(f"no API key with id {key_id}")
            if key.revoked_at is None:
                key = keys[key_id] = dataclasses.replace(key, revoked_at=now)
            return key

    def touch_api_key(self, key_id: str, *, now: float) -> None:
        with self._lock:
            _, keys = self._auth_tables()
            key = keys.get(key_id)
            if key is not None:
                keys[key_id] = dataclasses.replace(key, last_used=now)
