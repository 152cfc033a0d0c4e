"""Contract of the store's notifications domain (rules, once-only job ends with their grouping
window, the send log) on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from opsjobs.alerts.notices import NotifyRule, NotifySend
from opsjobs.errors import Conflict, NotFound
from opsjobs.store import Store

T0 = 1_700_000_000.0


def _rule(name: str = "fails", **kw: object) -> NotifyRule:
    fields: dict[str, object] = {"name": name, "id": f"id-{name}", "created_at": T0}
    fields.update(kw)
    return NotifyRule(**fields).validated()  # type: ignore[arg-type]


def test_rules_round_trip(store: Store) -> None:
    rule = _rule(states=["failed", "recovered"], job_name="backup-*", email=["a@example.org"])
    store.add_notify_rule(rule)
    assert store.get_notify_rule("fails") == rule == store.get_notify_rule(rule.id)
    assert store.list_notify_rules() == [rule]
    with pytest.raises(Conflict):
        store.add_notify_rule(_rule(id="other"))
    store.remove_notify_rule(rule.id)
    assert store.list_notify_rules() == []
    with pytest.raises(NotFound):
        store.get_notify_rule("fails")
    with pytest.raises(NotFound):
        store.remove_notify_rule(rule.id)


def test_a_job_end_is_noted_once_and_grouped_per_window(store: Store) -> None:
    rule = _rule()
    store.add_notify_rule(rule)
    note = store.note_job_end
    assert note(rule.id, "j1", 1, "nightly", at=T0, window=60) == 1  # first: sent
    assert note(rule.id, "j1", 1, "nightly", at=T0, window=60) is None  # already handled
    assert note(rule.id, "j2", 1, "nightly", at=T0 + 10, window=60) == 0  # held
    assert note(rule.id, "j3", 1, "nightly", at=T0 + 20, window=60) == 0  # held
    assert note(rule.id, "k1", 1, "other", at=T0 + 20, window=60) == 1  # another name
    # the window is over: this one is sent with the two held before it
    assert note(rule.id, "j4", 1, "nightly", at=T0 + 61, window=60) == 3
    assert note(rule.id, "j5", 1, "nightly", at=T0 + 62, window=60) == 0
    assert note(rule.id, "j6", 1, "nightly", at=T0 + 63, window=0) == 2  # no grouping
    # a removed rule forgets its windows; a new one of that id starts afresh
    store.remove_notify_rule(rule.id)
    store.add_notify_rule(rule)
    assert note(rule.id, "j5", 1, "nightly", at=T0 + 64, window=60) == 1


def test_racing_workers_note_each_end_once(store: Store) -> None:
    rule = _rule()
    store.add_notify_rule(rule)
    answers: list[int | None] = []
    lock = threading.Lock()

    def worker() -> None:
        for i in range(10):
            got = store.note_job_end(rule.id, f"j{i}", 1, "n", at=T0 + i, window=3600)
            with lock:
                answers.append(got)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers.count(None) == 30  # each end handled by exactly one of them
    assert sorted(a for a in answers if a is not None) == [0] * 9 + [1]


def test_sends_are_recorded_newest_first_and_filtered(store: Store) -> None:
    def send(i: int, owner: str, ok: bool = True) -> NotifySend:
        return NotifySend(
            rule_id="r1" if i < 2 else "r2",
            rule_name="fails",
            job_id=f"j{i}",
            job_name="nightly",
            owner=owner,
            state="failed",
            channel="email",
            target="a@example.org",
            ok=ok,
            detail="" if ok else "SMTPConnectError",
            count=1,
            at=T0 + i,
        )

    for i, owner in enumerate(["ann", "bob", "ann"]):
        store.record_notify_send(send(i, owner, ok=i != 1))
    found = store.notify_sends()
    assert [s.job_id for s in found] == ["j2", "j1", "j0"]
    assert found[1].ok is False and found[1].detail == "SMTPConnectError"
    assert found[0].ok is True and isinstance(found[0].id, int)
    assert [s.job_id for s in store.notify_sends(owner="ann")] == ["j2", "j0"]
    assert [s.job_id for s in store.notify_sends(rule_id="r1", owner="ann")] == ["j0"]
    assert [s.job_id for s in store.notify_sends(limit=1)] == ["j2"]


def test_purge_deletes_old_ends_and_sends(store: Store) -> None:
    rule = _rule()
    store.add_notify_rule(rule)
    assert store.note_job_end(rule.id, "old", 1, "n", at=T0, window=0) == 1
    assert store.note_job_end(rule.id, "new", 1, "n", at=T0 + 100, window=0) == 1
    for i, at in enumerate((T0, T0 + 100)):
        store.record_notify_send(
            NotifySend(
                rule.id,
                rule.name,
                f"j{i}",
                "n",
                "ann",
                "failed",
                "email",
                "a@b.org",
                True,
                "sent",
                1,
                at,
            )
        )
    assert store.purge_notices(T0 + 50) == 2
    assert [s.job_id for s in store.notify_sends()] == ["j1"]
    # the purged end is forgotten (a late duplicate would count again); the new one is kept
    assert store.note_job_end(rule.id, "new", 1, "n", at=T0 + 100, window=0) is None
    assert store.list_notify_rules() == [rule]
