"""The auth domain of the store: users and their API keys (interface only)."""

from __future__ import annotations

import abc

from opsjobs.auth.model import ApiKey, User

__all__ = ["AuthStore"]


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
