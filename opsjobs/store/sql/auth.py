"""Users and API keys of the SQL backends, written once over the :class:`~.db.Db` port."""

from __future__ import annotations

import json
from typing import Any

from opsjobs.auth.model import ApiKey, User
from opsjobs.errors import NotFound
from opsjobs.store.auth import AuthStore
from opsjobs.store.sql.db import Db
from opsjobs.store.sql.rows import columns, from_columns, json_value

__all__ = ["SqlAuth", "key_params", "row_to_key", "row_to_user", "user_params"]


class SqlAuth(AuthStore):
    """The auth domain of a SQL store (a mixin: the store sets ``_db``)."""

    _db: Db

    def add_user(self, user: User) -> None:
        self._db.transaction(
            f"user {user.email}", lambda tx: tx.run("auth_insert_user", user_params(user))
        )

    def update_user(self, user: User) -> None:
        params = user_params(user)
        if not self._db.transaction(
            "update user", lambda tx: tx.run("auth_update_user", params).rowcount
        ):
            raise NotFound(f"no user with id {user.id}")

    def get_user(self, user_id: str) -> User:
        rows = self._db.read("get user", "auth_get_user", {"id": user_id})
        if not rows:
            raise NotFound(f"no user with id {user_id}")
        return row_to_user(rows[0])

    def find_user(self, email: str) -> User | None:
        rows = self._db.read("find user", "auth_find_user", {"email": email})
        return row_to_user(rows[0]) if rows else None

    def list_users(self) -> list[User]:
        return [row_to_user(r) for r in self._db.read("list users", "auth_list_users")]

    def add_api_key(self, key: ApiKey) -> None:
        what = f"API key {key.prefix}"
        self._db.transaction(
            what,
            lambda tx: tx.run("auth_insert_key", key_params(key)),
            missing=f"{what}: no such user",
        )

    def api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        rows = self._db.read("find API key", "auth_key_by_prefix", {"prefix": prefix})
        return row_to_key(rows[0]) if rows else None

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        if user_id is None:
            rows = self._db.read("list API keys", "auth_list_keys")
        else:
            rows = self._db.read("list API keys", "auth_list_user_keys", {"user_id": user_id})
        return [row_to_key(r) for r in rows]

    def revoke_api_key(self, key_id: str, *, now: float) -> ApiKey:
        params = {"id": key_id, "now": now}
        row = self._db.transaction(
            "revoke API key", lambda tx: tx.run("auth_revoke_key", params).fetchone()
        )
        if row is None:
            raise NotFound(f"no API key with id {key_id}")
        return row_to_key(row)

    def touch_api_key(self, key_id: str, *, now: float) -> None:
        params = {"id": key_id, "now": now}
        self._db.transaction("touch API key", lambda tx: tx.run("auth_touch_key", params))


def user_params(user: User) -> dict[str, Any]:
    return columns(user, roles=lambda roles: json.dumps(list(roles)))


def row_to_user(row: Any) -> User:
    return from_columns(User, row, roles=lambda roles: tuple(json_value(roles)), is_test=bool)


def key_params(key: ApiKey) -> dict[str, Any]:
    return columns(key)


def row_to_key(row: Any) -> ApiKey:
    return from_columns(ApiKey, row)
