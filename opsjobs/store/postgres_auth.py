"""Users and API keys of the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from ..auth.model import ApiKey, User
from ..errors import Conflict, NotFound
from .auth import AuthStore
from .sql.auth import key_params, row_to_key, row_to_user, user_params

__all__ = ["PostgresAuth"]

T = TypeVar("T")


class PostgresAuth(AuthStore):
    """The auth domain on the PostgreSQL store's helpers (``_run``, ``_read``, ``_q``)."""

    _q: dict[str, str]

    if TYPE_CHECKING:  # provided by PostgresStore

        def _run(self, what: str, work: Callable[[Any], T], *, write: bool = True) -> T: ...
        def _read(self, what: str, query: str, params: Any = None) -> list[Any]: ...

    def _insert(self, what: str, query: str, params: dict[str, Any]) -> None:
        def insert(conn: Any) -> None:
            try:
                with conn.transaction():  # a savepoint: the error is ours to translate
                    conn.execute(query, params)
            except psycopg.errors.UniqueViolation as exc:
                raise Conflict(f"{what}: already exists") from exc
            except psycopg.errors.ForeignKeyViolation as exc:
                raise NotFound(f"{what}: no such user") from exc

        self._run(what, insert)

    def add_user(self, user: User) -> None:
        self._insert(f"user {user.email}", self._q["auth_insert_user"], user_params(user))

    def update_user(self, user: User) -> None:
        params = user_params(user)
        n = self._run(
            "update user", lambda conn: conn.execute(self._q["auth_update_user"], params).rowcount
        )
        if not n:
            raise NotFound(f"no user with id {user.id}")

    def get_user(self, user_id: str) -> User:
        rows = self._read("get user", self._q["auth_get_user"], {"id": user_id})
        if not rows:
            raise NotFound(f"no user with id {user_id}")
        return row_to_user(rows[0])

    def find_user(self, email: str) -> User | None:
        rows = self._read("find user", self._q["auth_find_user"], {"email": email})
        return row_to_user(rows[0]) if rows else None

    def list_users(self) -> list[User]:
        return [row_to_user(r) for r in self._read("list users", self._q["auth_list_users"])]

    def add_api_key(self, key: ApiKey) -> None:
        self._insert(f"API key {key.prefix}", self._q["auth_insert_key"], key_params(key))

    def api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        rows = self._read("find API key", self._q["auth_key_by_prefix"], {"prefix": prefix})
        return row_to_key(rows[0]) if rows else None

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        if user_id is None:
            rows = self._read("list API keys", self._q["auth_list_keys"])
        else:
            query = self._q["auth_list_user_keys"]
            rows = self._read("list API keys", query, {"user_id": user_id})
        return [row_to_key(r) for r in rows]

    def revoke_api_key(self, key_id: str, *, now: float) -> ApiKey:
        params = {"id": key_id, "now": now}
        row = self._run(
            "revoke API key",
            lambda conn: conn.execute(self._q["auth_revoke_key"], params).fetchone(),
        )
        if row is None:
            raise NotFound(f"no API key with id {key_id}")
        return row_to_key(row)

    def touch_api_key(self, key_id: str, *, now: float) -> None:
        params = {"id": key_id, "now": now}
        self._run("touch API key", lambda conn: conn.execute(self._q["auth_touch_key"], params))
