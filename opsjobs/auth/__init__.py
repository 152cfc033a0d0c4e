"""Users, API keys and roles (:mod:`.model`) and the :class:`Auth` service over a store
(:mod:`.service`) — the permission rules of the REST API, without any server."""

from opsjobs.auth.model import (
    ADMIN_ROLES,
    CODE_ROLES,
    EXPLORE_ROLE,
    OPERATOR_ROLE,
    ROLES,
    SUBMIT_ROLES,
    SYSTEM_OWNER,
    ApiKey,
    RunPolicy,
    User,
    hash_key,
    new_key,
    parse_roles,
    split_key,
)
from opsjobs.auth.service import Auth

__all__ = [
    "ADMIN_ROLES",
    "CODE_ROLES",
    "EXPLORE_ROLE",
    "OPERATOR_ROLE",
    "ROLES",
    "SUBMIT_ROLES",
    "SYSTEM_OWNER",
    "ApiKey",
    "Auth",
    "RunPolicy",
    "User",
    "hash_key",
    "new_key",
    "parse_roles",
    "split_key",
]
