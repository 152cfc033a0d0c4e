"""Users and API keys of the SQLite store."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..auth.model import ApiKey, User
from ..errors import Conflict, NotFound, StoreError
from .auth import AuthStore
from .sql.auth import key_params, row_to_key, row_to_user, user_params

__all__ = ["SQLiteAuth"]


class SQLiteAuth(AuthStore):
    """The auth domain on the SQLite store's helpers (``_tx``, ``_read``, ``_write``, ``_q``)."""

    _q: dict[str, str]

    if TYPE_CHECKING:  # provided by SQLiteStore

        def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def _read(self, sql: str, params: Any = ()) -> list[sqlite3.Row]: ...
        def _write(self, sql: str, params: Any = ()) -> sqlite3.Cursor: ...

    @contextlib.contextmanager
    def _unique(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as exc:
            text = str(exc)
            if "FOREIGN KEY" in text:
                raise NotFound(f"{what}: no such user") from exc
            raise Conflict(f"{what}: already exists ({text})") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{what} failed: {exc}") from exc

    def add_user(self, user: User) -> None:
        with self._unique(f"user {user.email}"), self._tx() as conn:
            conn.execute(self._q["auth_insert_user"], user_params(user))

    def update_user(self, user: User) -> None:
        if not self._write(self._q["auth_update_user"], user_params(user)).rowcount:
            raise NotFound(f"no user with id {user.id}")

    def get_user(self, user_id: str) -> User:
        rows = self._read(self._q["auth_get_user"], {"id": user_id})
        if not rows:
            raise NotFound(f"no user with id {user_id}")
        return row_to_user(rows[0])

    def find_user(self, email: str) -> User | None:
        rows = self._read(self._q["auth_find_user"], {"email": email})
        return row_to_user(rows[0]) if rows else None

    def list_users(self) -> list[User]:
        return [row_to_user(r) for r in self._read(self._q["auth_list_users"])]

    def add_api_key(self, key: ApiKey) -> None:
        with self._unique(f"API key {key.prefix}"), self._tx() as conn:
            conn.execute(self._q["auth_insert_key"], key_params(key))

    def api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        rows = self._read(self._q["auth_key_by_prefix"], {"prefix": prefix})
        return row_to_key(rows[0]) if rows else None

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        if user_id is None:
            rows = self._read(self._q["auth_list_keys"])
        else:
            rows = self._read(self._q["auth_list_user_keys"], {"user_id": user_id})
        return [row_to_key(r) for r in rows]

    def revoke_api_key(self, key_id: str, *, now: float) -> ApiKey:
        with self._unique(f"revoking API key {key_id}"), self._tx() as conn:
            row = conn.execute(self._q["auth_revoke_key"], {"id": key_id, "now": now}).fetchone()
        if row is None:
            raise NotFound(f"no API key with id {key_id}")
        return row_to_key(row)

    def touch_api_key(self, key_id: str, *, now: float) -> None:
        self._write(self._q["auth_touch_key"], {"id": key_id, "now": now})
