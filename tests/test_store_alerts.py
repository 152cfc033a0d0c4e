"""Contract of the store's alerts domain (rules, alerts, events, metric reads) on memory, SQLite
and PostgreSQL."""

from __future__ import annotations

import threading
import uuid

import pytest

from opsjobs.alerts import AlertRules, default_rules, ensure_default_rules
from opsjobs.alerts.model import (
    Alert,
    AlertEvent,
    AlertRule,
    AlertState,
    Condition,
    Severity,
    series_key,
)
from opsjobs.errors import Conflict, NotFound, ValidationError
from opsjobs.model import JobSpec, Metric, Mode
from opsjobs.store import Store, open_store

T0 = 1_700_000_000.0


def _rule(name: str = "mem", **kw: object) -> AlertRule:
    fields: dict[str, object] = {
        "name": name,
        "metric": "rss_mb",
        "condition": "above",
        "threshold": 1024,
    }
    fields.update(kw)
    return BUILDER.build(fields)


BUILDER = AlertRules(open_store("memory://"), clock=lambda: T0)


def _alert(rule: AlertRule, metric: Metric, at: float = T0) -> tuple[Alert, AlertEvent]:
    alert = Alert(
        id=str(uuid.uuid4()),
        rule_id=rule.id,
        rule_name=rule.name,
        metric=rule.metric,
        series=series_key(metric),
        labels=dict(metric.labels),
        host=metric.host,
        severity=rule.severity,
        state=AlertState.OPEN,
        value=metric.value,
        message="opened",
        opened_at=at,
        updated_at=at,
    )
    return alert, AlertEvent(alert.id, "opened", at, metric.value, "opened")


def test_rules_round_trip_and_names_are_unique(store: Store) -> None:
    a = _rule("b-rule", labels={"host": "h1"}, for_points=2, severity="critical")
    b = _rule("a-rule", condition="rate_above", metric="gc_gen2_collections", threshold=1)
    store.add_alert_rule(a)
    store.add_alert_rule(b)
    assert store.list_alert_rules() == [b, a]
    assert store.get_alert_rule("b-rule") == a == store.get_alert_rule(a.id)
    assert a.labels == {"host": "h1"} and a.severity is Severity.CRITICAL
    with pytest.raises(Conflict):
        store.add_alert_rule(_rule("b-rule"))
    store.remove_alert_rule(a.id)
    with pytest.raises(NotFound):
        store.get_alert_rule("b-rule")
    with pytest.raises(NotFound):
        store.remove_alert_rule(a.id)
    assert store.list_alert_rules() == [b]


def test_default_rules_are_created_once(store: Store) -> None:
    first = ensure_default_rules(store)
    assert [action for _, action in first] == ["created"] * 3
    second = ensure_default_rules(store)
    assert [action for _, action in second] == ["exists"] * 3
    assert {r.name for r in store.list_alert_rules()} == {r.name for r in default_rules()}


def test_one_open_alert_per_rule_and_series(store: Store) -> None:
    rule = _rule()
    store.add_alert_rule(rule)
    m = Metric("rss_mb", 2000.0, {"pid": "1"}, T0, host="h1")
    alert, opened = _alert(rule, m)
    assert store.open_alert(alert, opened)
    assert not store.open_alert(*_alert(rule, m, T0 + 1))  # same series: refused, no event
    other = Metric("rss_mb", 2000.0, {"pid": "2"}, T0, host="h1")
    assert store.open_alert(*_alert(rule, other))
    found = store.find_open_alert(rule.id, series_key(m))
    assert found is not None and found.id == alert.id and found.is_open
    assert found.labels == {"pid": "1"} and found.host == "h1"
    store.refresh_alert(alert.id, 2100.0, now=T0 + 5)
    refreshed = store.find_open_alert(rule.id, series_key(m))
    assert refreshed is not None and refreshed.value == 2100.0 and refreshed.updated_at == T0 + 5
    resolved_event = AlertEvent(alert.id, "resolved", T0 + 10, 900.0, "resolved")
    resolved = store.resolve_alert(alert.id, resolved_event)
    assert resolved is not None and resolved.state is AlertState.RESOLVED
    assert resolved.resolved_at == T0 + 10 and resolved.value == 900.0
    assert store.resolve_alert(alert.id, resolved_event) is None  # once only
    assert store.find_open_alert(rule.id, series_key(m)) is None
    assert alert.id not in [a.id for a in store.list_alerts(open_only=True)]
    assert len(store.list_alerts()) == 2
    events = store.alert_events(alert_id=alert.id)
    assert [e.kind for e in events] == ["resolved", "opened"]
    assert len(store.alert_events()) == 3
    # a new alert on the same series may open once the old one is resolved
    assert store.open_alert(*_alert(rule, m, T0 + 20))


def test_racing_openers_store_one_alert(store: Store) -> None:
    rule = _rule()
    store.add_alert_rule(rule)
    m = Metric("rss_mb", 2000.0, {}, T0, host="h")
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def opener() -> None:
        barrier.wait()
        wins.append(store.open_alert(*_alert(rule, m)))

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False, False, False, True]
    assert len(store.alert_events()) == 1


def test_series_points_and_latest_metrics(store: Store) -> None:
    pts = [
        Metric("rss_mb", 1.0, {"pid": "1", "host": "h"}, T0, host="h"),
        Metric("rss_mb", 2.0, {"pid": "2", "host": "h"}, T0 + 1, host="h"),
        Metric("rss_mb", 3.0, {"pid": "1", "host": "h"}, T0 + 2, host="h"),
        Metric("rss_mb", 4.0, {"host": "h", "pid": "1"}, T0 + 3, host="h"),
        Metric("rss_mb", 5.0, {"pid": "1", "host": "h"}, T0 + 4, host="other"),
        Metric("cpu", 9.0, {}, T0 + 5, host=None),
    ]
    store.record_metrics(pts)
    series = store.series_points("rss_mb", {"host": "h", "pid": "1"}, "h", since=T0, limit=10)
    assert [p.value for p in series] == [1.0, 3.0, 4.0]
    newest = store.series_points("rss_mb", {"pid": "1", "host": "h"}, "h", since=T0 + 1, limit=1)
    assert [p.value for p in newest] == [4.0]
    assert [p.value for p in store.series_points("cpu", {}, None, since=0, limit=5)] == [9.0]
    latest = {
        (m.name, m.labels.get("pid"), m.host): m.value for m in store.latest_metrics(since=T0)
    }
    assert latest == {
        ("rss_mb", "1", "h"): 4.0,
        ("rss_mb", "2", "h"): 2.0,
        ("rss_mb", "1", "other"): 5.0,
        ("cpu", None, None): 9.0,
    }
    assert sorted(m.value for m in store.latest_metrics(since=T0 + 4)) == [5.0, 9.0]


def test_job_counts(store: Store) -> None:
    for queue in ("default", "default", "hostA"):
        store.submit(JobSpec("j", "command", {"source": "1"}, Mode.THREAD, queue), now=T0)
    claimed = store.claim("w", "h", ["hostA"], now=T0, lease=30)
    assert claimed is not None
    assert sorted(store.job_counts()) == [("default", "queued", 2), ("hostA", "running", 1)]


def test_bad_rules_are_refused() -> None:
    for kw in (
        {"name": ""},
        {"metric": "bad name"},
        {"condition": "sideways"},
        {"threshold": float("nan")},
        {"for_points": 0},
        {"for_seconds": -1},
        {"window_seconds": 0},
        {"severity": "apocalyptic"},
        {"labels": {"bad-name": "x"}},
    ):
        with pytest.raises(ValidationError):
            _rule(**kw)
    with pytest.raises(ValidationError):
        BUILDER.build({"name": "x"})
    assert _rule(condition=Condition.BELOW).condition is Condition.BELOW


def test_purge_alerts_deletes_old_resolved_ones_with_their_events(store: Store) -> None:
    rule = _rule()
    store.add_alert_rule(rule)
    ids = []
    for pid in ("old", "recent", "open"):
        alert, opened = _alert(rule, Metric("rss_mb", 2000.0, {"pid": pid}, T0, host="h1"))
        assert store.open_alert(alert, opened)
        ids.append(alert.id)
    old, recent, still_open = ids
    store.resolve_alert(old, AlertEvent(old, "resolved", T0 + 10, 900.0, "resolved"))
    store.resolve_alert(recent, AlertEvent(recent, "resolved", T0 + 100, 900.0, "resolved"))
    assert store.purge_alerts(T0 + 50) == 1
    assert sorted(a.id for a in store.list_alerts()) == sorted([recent, still_open])
    assert store.alert_events(alert_id=old) == []
    assert [e.kind for e in store.alert_events(alert_id=recent)] == ["resolved", "opened"]
    assert store.purge_alerts(T0 + 10_000) == 1  # the open one stays, however old
    assert [a.id for a in store.list_alerts()] == [still_open]
