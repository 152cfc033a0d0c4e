"""Users and API keys of the SQL backends: their rows."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from opsjobs.auth.model import ApiKey, User

__all__ = ["key_params", "row_to_key", "row_to_user", "user_params"]


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
