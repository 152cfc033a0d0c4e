"""Contract of the store's auth domain (users and API keys) on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from opsjobs.auth import ApiKey, User
from opsjobs.errors import Conflict, NotFound
from opsjobs.store import Store


def _user(
    email: str = "a@example.org", roles: tuple[str, ...] = ("debug",), at: float = 1.0
) -> User:
    return User(str(uuid.uuid4()), email, email.split("@")[0], roles, False, at)


def _key(user: User, prefix: str = "abcdefghij", at: float = 2.0) -> ApiKey:
    return ApiKey(str(uuid.uuid4()), user.id, prefix, "0" * 64, "k", at)


def test_users_round_trip(store: Store) -> None:
    a, b = _user("a@x.org", ("debug", "system_admin"), 1.0), _user("b@x.org", (), 2.0)
    store.add_user(a)
    store.add_user(b)
    assert store.get_user(a.id) == a
    assert store.find_user("b@x.org") == b
    assert store.find_user("c@x.org") is None
    assert store.list_users() == [a, b]


def test_duplicate_email_conflicts_and_changes_nothing(store: Store) -> None:
    a = _user()
    store.add_user(a)
    with pytest.raises(Conflict):
        store.add_user(_user())
    assert store.list_users() == [a]


def test_update_user(store: Store) -> None:
    a = _user()
    store.add_user(a)
    changed = dataclasses.replace(a, name="Alice", roles=("site_admin",), is_test=True)
    store.update_user(changed)
    assert store.get_user(a.id) == changed
    with pytest.raises(NotFound):
        store.update_user(_user("z@x.org"))
    with pytest.raises(NotFound):
        store.get_user(str(uuid.uuid4()))


def test_keys_round_trip_and_revoke(store: Store) -> None:
    a, b = _user("a@x.org"), _user("b@x.org")
    store.add_user(a)
    store.add_user(b)
    ka, kb = _key(a, "aaaaaaaaaa", 2.0), _key(b, "bbbbbbbbbb", 3.0)
    store.add_api_key(ka)
    store.add_api_key(kb)
    assert store.api_key_by_prefix("aaaaaaaaaa") == ka
    assert store.api_key_by_prefix("cccccccccc") is None
    assert store.list_api_keys() == [ka, kb]
    assert store.list_api_keys(b.id) == [kb]
    revoked = store.revoke_api_key(ka.id, now=10.0)
    assert revoked.revoked_at == 10.0 and not revoked.active
    assert store.revoke_api_key(ka.id, now=20.0).revoked_at == 10.0  # the first time stays
    assert store.api_key_by_prefix("aaaaaaaaaa") == revoked
    with pytest.raises(NotFound):
        store.revoke_api_key(str(uuid.uuid4()), now=1.0)


def test_key_prefix_is_unique_and_user_must_exist(store: Store) -> None:
    a = _user()
    store.add_user(a)
    store.add_api_key(_key(a, "aaaaaaaaaa"))
    with pytest.raises(Conflict):
        store.add_api_key(_key(a, "aaaaaaaaaa"))
    with pytest.raises(NotFound):
        store.add_api_key(_key(_user("ghost@x.org"), "gggggggggg"))
    assert len(store.list_api_keys()) == 1


def test_touch_records_last_use(store: Store) -> None:
    a = _user()
    store.add_user(a)
    k = _key(a)
    store.add_api_key(k)
    store.touch_api_key(k.id, now=42.0)
    found = store.api_key_by_prefix(k.prefix)
    assert found is not None and found.last_used == 42.0
    store.touch_api_key(str(uuid.uuid4()), now=1.0)  # unknown: no error, no change
