"""Keys and permission rules of opsjobs.auth, without a server."""

from __future__ import annotations

import pytest

from opsjobs.auth import Auth, hash_key, parse_roles, split_key
from opsjobs.errors import NotFound, PermissionDenied, ValidationError
from opsjobs.model import Job, JobSpec, JobState
from opsjobs.store import open_store


@pytest.fixture
def auth() -> Auth:
    return Auth(open_store("memory://"))


def _job(owner: str) -> Job:
    spec = JobSpec(name="j", kind="command", payload={"source": "1"}, owner=owner)
    return Job(id="x", spec=spec, state=JobState.QUEUED, submitted_at=0.0)


def test_key_is_shown_once_and_stored_hashed(auth: Auth) -> None:
    user, key, plaintext = auth.create_key(
        "Test@Localhost", name="MemoryAnalysisTest", roles="debug,system_admin", is_test=True
    )
    assert user.email == "test@localhost" and user.roles == ("debug", "system_admin")
    assert user.is_test
    assert plaintext not in repr(key) and key.hash == hash_key(plaintext)
    assert split_key(plaintext) == key.prefix
    assert auth.authenticate(plaintext) == user
    assert auth.authenticate(f"  {plaintext} ") == user


@pytest.mark.parametrize(
    "bad",
    ["", "x", "Bearer", "oj_short_x", "oj_abcdefghij_" + "A" * 42, "oj_ABCDEFGHIJ_" + "A" * 43],
)
def test_malformed_keys_are_refused(auth: Auth, bad: str) -> None:
    auth.create_key("a@x.org", roles="debug")
    assert auth.authenticate(bad) is None


def test_wrong_secret_with_a_real_prefix_is_refused(auth: Auth) -> None:
    _, key, plaintext = auth.create_key("a@x.org", roles="debug")
    forged = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    assert split_key(forged) == key.prefix
    assert auth.authenticate(forged) is None


def test_revoked_key_is_refused(auth: Auth) -> None:
    _, key, plaintext = auth.create_key("a@x.org", roles="debug")
    auth.revoke(key.prefix)
    assert auth.authenticate(plaintext) is None
    assert auth.revoke(key.id).revoked_at is not None  # by id too, idempotent
    with pytest.raises(NotFound):
        auth.revoke("nope")


def test_second_key_reuses_the_user_and_updates_roles(auth: Auth) -> None:
    u1, _, k1 = auth.create_key("a@x.org", roles="debug")
    u2, _, k2 = auth.create_key("a@x.org", roles="task_manager")
    assert u1.id == u2.id and u2.roles == ("task_manager",)
    assert auth.authenticate(k1) == auth.authenticate(k2) == u2
    u3, _, _ = auth.create_key("a@x.org")  # no roles given: keep them
    assert u3.roles == ("task_manager",)


def test_last_used_is_recorded_sparingly(auth: Auth) -> None:
    _, key, plaintext = auth.create_key("a@x.org", roles="debug")
    auth.authenticate(plaintext, now=1000.0)
    auth.authenticate(plaintext, now=1010.0)  # within a minute: no write
    assert auth.store.api_key_by_prefix(key.prefix).last_used == 1000.0  # type: ignore[union-attr]
    auth.authenticate(plaintext, now=1100.0)
    assert auth.store.api_key_by_prefix(key.prefix).last_used == 1100.0  # type: ignore[union-attr]


def test_last_used_write_can_be_handed_off(auth: Auth) -> None:
    _, key, plaintext = auth.create_key("a@x.org", roles="debug")
    touched: list[tuple[str, float]] = []
    user = auth.authenticate(plaintext, now=2000.0, touch=lambda k, t: touched.append((k, t)))
    assert user is not None and touched == [(key.id, 2000.0)]
    # the lookup itself wrote nothing: the caller decides when the touch runs
    assert auth.store.api_key_by_prefix(key.prefix).last_used is None  # type: ignore[union-attr]


def test_roles_and_emails_are_checked(auth: Auth) -> None:
    assert parse_roles(" Debug , system_admin,debug") == ("debug", "system_admin")
    with pytest.raises(ValidationError, match="unknown role"):
        parse_roles("root")
    with pytest.raises(ValidationError, match="email"):
        auth.create_key("not-an-email", roles="debug")
    assert auth.store.list_users() == []


@pytest.mark.parametrize(
    ("roles", "submit", "all_"),
    [
        ((), False, False),
        (("debug",), True, False),
        (("task_manager",), True, False),
        (("site_admin",), True, True),
        (("system_admin",), True, True),
    ],
)
def test_permissions(auth: Auth, roles: tuple[str, ...], submit: bool, all_: bool) -> None:
    user, _, _ = auth.create_key("u@x.org", roles=",".join(roles))
    assert user.may_submit is submit and user.sees_all is all_
    if submit:
        Auth.check_submit(user)
    else:
        with pytest.raises(PermissionDenied):
            Auth.check_submit(user)
    # issue 18: everyone sees the server's own (system) jobs too, only admins change them
    mine = ("u@x.org", "system")
    assert Auth.owner_scope(user) == mine
    assert Auth.owner_scope(user, everyone=True) == (None if all_ else mine)
    assert Auth.may_access(user, _job("u@x.org"))
    assert Auth.may_access(user, _job("system"))
    assert Auth.may_access(user, _job("other@x.org")) is all_
    Auth.check_change(user, "u@x.org", "this job")
    if not all_:
        with pytest.raises(PermissionDenied, match="only an admin"):
            Auth.check_change(user, "system", "this job")
