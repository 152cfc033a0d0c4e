"""The auth domain of the store: users and their API keys (interface only)."""

from __future__ import annotations

import abc
import dataclasses
import json
from typing import Any

from ..auth.model import ApiKey, User

__all__ = ["AuthStore", "key_params", "row_to_key", "row_to_user", "user_params"]


class AuthStore(abc.ABC):
    """Users and API keys. Keys are stored hashed; lookups go by the key's public prefix."""

    @abc.abstractmethod
    def add_user(self, user: User) -> None:
        """Insert a user; :class:`~opsjobs.errors.Conflict` if the email is taken."""

    @abc.abstractmethod
    def update_user(self, user: User) -> None:
        """Replace the name, roles and test flag; :class:`~opsjobs.errors.NotFound` if absent."""

    @abc.abstractmethod
    def get_user(self, user_id: str) -> User:
        """The user with this id; :class:`~opsjobs.errors.NotFound` if there is none."""

    @abc.abstractmethod
    def find_user(self, email: str) -> User | None:
        """The user with this (lower-case) email, or None."""

    @abc.abstractmethod
    def list_users(self) -> list[User]:
        """Every user, oldest first."""

    @abc.abstractmethod
    def add_api_key(self, key: ApiKey) -> None:
        """Insert a key; :class:`~opsjobs.errors.Conflict` if its prefix is taken,
        :class:`~opsjobs.errors.NotFound` if its user is absent."""

    @abc.abstractmethod
    def api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        """The key with this public prefix (revoked or not), or None."""

    @abc.abstractmethod
    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        """Keys (of one user, or all), oldest first."""

    @abc.abstractmethod
    def revoke_api_key(self, key_id: str, *, now: float) -> ApiKey:
        """Mark a key revoked (a second revoke keeps the first time); NotFound if absent."""

    @abc.abstractmethod
    def touch_api_key(self, key_id: str, *, now: float) -> None:
        """Record that the key was used at ``now``."""


# Row mapping shared by the SQL backends -------------------------------------------------------
def user_params(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "roles": json.dumps(list(user.roles)),
        "is_test": user.is_test,
        "created": user.created,
    }


def row_to_user(row: Any) -> User:
    roles = row["roles"]
    if isinstance(roles, str):
        roles = json.loads(roles)  # PostgreSQL's jsonb arrives decoded
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        roles=tuple(roles),
        is_test=bool(row["is_test"]),
        created=row["created"],
    )


def key_params(key: ApiKey) -> dict[str, Any]:
    return dataclasses.asdict(key)


def row_to_key(row: Any) -> ApiKey:
    return ApiKey(**{f.name: row[f.name] for f in dataclasses.fields(ApiKey)})
