"""Alert evaluation: the pure verdicts, the evaluator's state changes, webhook delivery to a real
local HTTP receiver (retries after a 500, no redirects followed), and rules judged inside a real
worker without holding up the job that recorded the metric."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import client_for, settings_for, wait_for
from receivers import Receiver

from opsjobs.alerts import (
    AlertEvaluator,
    AlertRules,
    Condition,
    WebhookSender,
    alert_summary,
    open_alerts,
    parse_webhooks,
)
from opsjobs.alerts.model import AlertRule
from opsjobs.alerts.verdicts import judge, rate_at
from opsjobs.config import Settings
from opsjobs.errors import ConfigError
from opsjobs.model import JobState, Metric
from opsjobs.store import Store, open_store
from opsjobs.worker import embed

T0 = 1_700_000_000.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _rule(**kw: Any) -> AlertRule:
    fields: dict[str, Any] = {"name": "r", "metric": "m", "condition": "above", "threshold": 10}
    fields.update(kw)
    return AlertRules(open_store("memory://")).build(fields)


def _pts(*values: float, step: float = 60.0, name: str = "m") -> list[Metric]:
    return [Metric(name, v, {}, T0 + i * step, host="h") for i, v in enumerate(values)]


# -- pure verdicts -------------------------------------------------------------------------------
def test_threshold_for_points() -> None:
    rule = _rule(for_points=2)
    assert judge(rule, _pts(20)) == judge(rule, _pts(5, 20))
    assert not judge(rule, _pts(5, 20)).fires and judge(rule, _pts(5, 20)).holds
    assert judge(rule, _pts(5, 20, 30)).fires
    assert not judge(rule, _pts(20, 30, 5)).holds
    assert judge(_rule(condition="below", threshold=1), _pts(0.5)).fires


def test_duration_must_be_covered_by_holding_points() -> None:
    rule = _rule(for_seconds=120)
    assert not judge(rule, _pts(20, 20)).fires  # held for 60 s only
    assert judge(rule, _pts(20, 20, 20)).fires  # 120 s
    assert not judge(rule, _pts(20, 5, 20, 20)).fires  # broken by the 5


def test_rate_of_a_counter_with_a_reset() -> None:
    pts = _pts(0, 30, 60, 10, step=60)  # +30, +30, reset → +10 over 180 s
    assert rate_at(pts, 3, window=3600, per=60) == pytest.approx(70 / 3)
    assert rate_at(pts, 0, window=3600, per=60) is None
    assert rate_at(pts, 3, window=90, per=60) == pytest.approx(10.0)  # only the last two
    rule = _rule(condition="rate_above", threshold=1, per_seconds=60, window_seconds=3600)
    assert not judge(rule, _pts(0, 30, step=1800)).holds  # 30 per 30 min = 1/min: not above
    assert judge(rule, _pts(0, 31, step=1800)).fires


# -- the evaluator and webhooks ------------------------------------------------------------------
def _record(store: Store, ev: AlertEvaluator, *metrics: Metric) -> list[Any]:
    store.record_metrics(metrics)
    return ev.evaluate(metrics)


def test_alert_opens_stays_open_and_resolves(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = [500]  # the first delivery fails: it must be retried
    store = open_store(f"sqlite://{tmp_path / 'a.db'}")
    sender = WebhookSender([receiver.url], backoff=0.05, timeout=2)
    ev = AlertEvaluator(store, sender=sender)
    AlertRules(store).add(_rule(name="mem", metric="rss_mb", threshold=1024, for_points=2))
    labels = {"host": "h", "pid": "7", "worker": "w"}

    def rss(value: float, i: int) -> Metric:
        return Metric("rss_mb", value, labels, T0 + 1800 * i, host="h")

    assert _record(store, ev, rss(2000, 0)) == []  # one analysis above: not yet
    (opened,) = _record(store, ev, rss(2100, 1))
    assert opened[1].kind == "opened" and opened[0].is_open and opened[0].value == 2100
    assert _record(store, ev, rss(2200, 2)) == []  # still holds: stays open, value refreshed
    (alert,) = store.list_alerts(open_only=True)
    assert alert.value == 2200 and alert.labels == labels
    (resolved,) = _record(store, ev, rss(900, 3))
    assert resolved[1].kind == "resolved" and not resolved[0].is_open
    assert store.list_alerts(open_only=True) == []
    assert [e.kind for e in store.alert_events()] == ["resolved", "opened"]

    wait_for(lambda: len(receiver.bodies) == 2, 20, "both webhooks")
    assert receiver.hits[0] == ("/hook", 500) and len(receiver.hits) == 3
    first, second = receiver.bodies
    assert first["event"] == "opened" and second["event"] == "resolved"
    assert "mem" in first["text"] and "[warning]" in first["text"]
    assert second["text"].startswith(":white_check_mark: RESOLVED")
    assert first["alert"]["labels"] == labels and first["alert"]["rule"] == "mem"
    ev.close()
    store.close()


def test_redirects_are_not_followed_and_4xx_is_final(receiver: Receiver) -> None:
    receiver.script = [302, 404]
    sender = WebhookSender([receiver.url], backoff=0.01, timeout=2)
    sender.send({"text": "x"})
    sender.send({"text": "y"})
    wait_for(lambda: sender.failed == 2, 10, "two final failures")
    assert sorted(s for _, s in receiver.hits) == [302, 404]
    assert all(path == "/hook" for path, _ in receiver.hits)  # /elsewhere never asked
    sender.close()


def test_retries_are_bounded() -> None:
    dead = Receiver([503] * 10)
    try:
        sender = WebhookSender([dead.url], attempts=3, backoff=0.01, max_backoff=0.02)
        sender.send({"text": "x"})
        wait_for(lambda: sender.failed == 1, 10, "giving up")
        assert len(dead.hits) == 3 and sender.delivered == 0
        sender.close()
    finally:
        dead.close()


def test_webhook_urls_are_validated() -> None:
    assert parse_webhooks(" http://a/x , https://b:8443/y ") == ("http://a/x", "https://b:8443/y")
    for bad in ("ftp://a/x", "http://", "hooks.slack.com/x", "http://a b/", "https://a:99999/"):
        with pytest.raises(ConfigError):
            parse_webhooks(bad)
    with pytest.raises(ConfigError):
        Settings.from_env({"OPSJOBS_WEBHOOKS": "file:///etc/passwd"})
    assert Settings.from_env({"OPSJOBS_WEBHOOKS": "http://x/1,http://y/2"}).webhooks == (
        "http://x/1",
        "http://y/2",
    )


def test_rules_for_other_metrics_or_labels_do_nothing(tmp_path: Path) -> None:
    store = open_store("memory://")
    ev = AlertEvaluator(store, sender=WebhookSender([]))
    AlertRules(store).add(_rule(name="h1 only", labels={"host": "h1"}))
    AlertRules(store).add(_rule(name="other", metric="other", condition=Condition.BELOW))
    assert _record(store, ev, Metric("m", 50, {}, T0, host="h2")) == []
    (change,) = _record(store, ev, Metric("m", 50, {}, T0, host="h1"))
    assert change[0].rule_name == "h1 only" and change[0].labels == {}
    assert change[0].shown_labels == {"host": "h1"}
    assert [a.rule_name for a in open_alerts(store, metrics=["m"], host="h1")] == ["h1 only"]
    assert open_alerts(store, metrics=["rss_mb"]) == open_alerts(store, host="h2") == []
    assert open_alerts(store, severity="critical") == []
    assert alert_summary(store) == {"open": 1, "info": 0, "warning": 1, "critical": 0}


# -- inside a worker -----------------------------------------------------------------------------
@pytest.mark.slow
def test_worker_judges_rules_off_the_jobs_thread(tmp_path: Path, receiver: Receiver) -> None:
    settings = settings_for(tmp_path, webhooks=(receiver.url,))
    receiver.gate.clear()  # the receiver stalls: the jobs must finish regardless
    with client_for(settings) as client:
        AlertRules(client.store).add(
            _rule(name="big", metric="rss_mb", threshold=1024, for_points=2, severity="critical")
        )
        handle = embed(store=client.store, settings=settings, threads=2)
        try:
            src = "import opsjobs\nfor v in {values}:\n    opsjobs.record_metric('rss_mb', v)\n"
            job = client.submit("above", command=src.format(values=[1500, 1600]), mode="thread")
            assert client.wait(job.id, timeout=30).state is JobState.SUCCEEDED
            wait_for(lambda: client.store.list_alerts(open_only=True), 20, "the alert to open")
            assert receiver.bodies == []  # still stalled, and the job is long done
            receiver.gate.set()
            wait_for(lambda: len(receiver.bodies) == 1, 20, "the opened webhook")
            assert receiver.bodies[0]["alert"]["severity"] == "critical"
            job = client.submit("below", command=src.format(values=[100]), mode="process")
            assert client.wait(job.id, timeout=60).state is JobState.SUCCEEDED
            wait_for(lambda: len(receiver.bodies) == 2, 20, "the resolved webhook")
            assert receiver.bodies[1]["event"] == "resolved"
            assert client.store.list_alerts(open_only=True) == []
        finally:
            handle.stop()
