"""Alert routes and the Prometheus exposition on the real server application, in-process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from harness import wait_for
from prometheus_client.parser import text_string_to_metric_families
from server_harness import Api, ServerThread, failed, finished, submit, valid

from opsjobs.model import Metric
from opsjobs.server.openapi import API, PROMETHEUS
from opsjobs.store import open_store

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("alerts")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(server: ServerThread) -> Api:
    return server.api(server.key("root@example.org", "debug,site_admin"))


@pytest.fixture
def alice(server: ServerThread) -> Api:
    return server.api(server.key(f"alice-{uuid.uuid4().hex[:8]}@example.org", "debug"))


@pytest.fixture
def reader(server: ServerThread) -> Api:
    """A key without any role (a Prometheus scraper, say)."""
    return server.api(server.key(f"scraper-{uuid.uuid4().hex[:8]}@example.org", ""))


def rule_body(name: str, **kw: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": name,
        "metric": "rss_mb",
        "condition": "above",
        "threshold": 1024,
    }
    body.update(kw)
    return body


def test_only_admins_change_rules_and_everyone_reads_them(admin: Api, alice: Api) -> None:
    body = rule_body("gc", metric="gc_gen2_collections", condition="rate_above", threshold=1)
    body.update(window_seconds=3600, labels={"host": "web1"}, severity="critical")
    failed(alice.post(f"{API}/alerts/rules", json=body), 403)
    rule = valid(admin.post(f"{API}/alerts/rules", json=body), "AlertRuleReply", 201)["rule"]
    assert rule["text"] == "rate(gc_gen2_collections) > 1/60s over 3600s {host=web1}"
    failed(admin.post(f"{API}/alerts/rules", json=body), 409)
    listed = valid(alice.get(f"{API}/alerts/rules"), "AlertRuleList")["rules"]
    assert [r["name"] for r in listed] == ["gc"]
    failed(alice.delete(f"{API}/alerts/rules/gc"), 403)
    assert valid(admin.delete(f"{API}/alerts/rules/gc"), "Deleted")["id"] == rule["id"]
    failed(admin.delete(f"{API}/alerts/rules/gc"), 404)


@pytest.mark.parametrize(
    "change",
    [
        {"condition": "sideways"},
        {"threshold": "high"},
        {"metric": "bad name"},
        {"for_points": 0},
        {"labels": {"bad-label": "x"}},
        {"surprise": 1},
        {"name": ""},
    ],
)
def test_bad_rules_change_nothing(admin: Api, change: dict[str, object]) -> None:
    resp = admin.post(f"{API}/alerts/rules", json={**rule_body("bad"), **change})
    assert resp.status_code in (400, 422), resp.text
    names = [r["name"] for r in valid(admin.get(f"{API}/alerts/rules"), "AlertRuleList")["rules"]]
    assert "bad" not in names


def test_a_job_over_the_threshold_opens_an_alert_any_user_sees(
    admin: Api, alice: Api, reader: Api
) -> None:
    valid(admin.post(f"{API}/alerts/rules", json=rule_body("big")), "AlertRuleReply", 201)
    try:
        src = "import opsjobs\nopsjobs.record_metric('rss_mb', 4096.0, pid=7)\n"
        job = submit(alice, command=src, mode="thread")
        assert finished(alice, job["id"])["state"] == "succeeded"

        def opened() -> dict[str, object] | None:
            body = valid(reader.get(f"{API}/alerts"), "AlertList")
            return body if body["count"] else None

        body = wait_for(opened, 30, "the alert to open")
        (alert,) = body["alerts"]
        assert alert["rule"] == "big" and alert["state"] == "open" and alert["value"] == 4096.0
        assert alert["labels"]["pid"] == "7" and body["open"]["warning"] == 1
        failed(reader.get(f"{API}/alerts", params={"state": "bogus"}), 422)
    finally:
        valid(admin.delete(f"{API}/alerts/rules/big"), "Deleted")
    # removing the rule resolved its alert
    assert valid(reader.get(f"{API}/alerts"), "AlertList")["count"] == 0
    every = valid(reader.get(f"{API}/alerts", params={"state": "all"}), "AlertList")["alerts"]
    assert [a["state"] for a in every] == ["resolved"]


def test_prometheus_exposition_is_scraped_and_parsed(
    server: ServerThread, alice: Api, reader: Api
) -> None:
    failed(server.api(None).get(PROMETHEUS), 401)
    store = open_store(server.store_url)
    try:
        now = time.time()
        store.record_metrics(
            [
                Metric("rss_mb", 100.0, {"pid": "1", "host": "h1"}, now - 60, host="h1"),
                Metric("rss_mb", 123.5, {"pid": "1", "host": "h1"}, now - 1, host="h1"),
                Metric("rss_mb", 77.0, {"pid": "9", "host": "h2"}, now - 1, host="h2"),
                Metric("gc_gen2_collections", 5, {"pid": "1"}, now - 1, host="h1"),
            ]
        )
    finally:
        store.close()
    submit(alice, queue="nobody-serves-this", command="print(1)")
    submit(alice, queue="nobody-serves-this", command="print(2)")

    resp = reader.get(PROMETHEUS)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    rss = {s.labels["host"]: (s.labels, s.value) for s in families["opsjobs_metric_rss_mb"].samples}
    assert rss["h1"] == ({"host": "h1", "pid": "1"}, 123.5)  # the latest point of the series
    assert rss["h2"][1] == 77.0
    (gc,) = families["opsjobs_metric_gc_gen2_collections"].samples
    assert gc.labels == {"host": "h1", "pid": "1"} and gc.value == 5
    jobs = {s.labels["state"]: s.value for s in families["opsjobs_jobs"].samples}
    assert jobs["queued"] >= 2 and set(jobs) >= {"running", "succeeded", "failed", "lost"}
    depth = {s.labels["queue"]: s.value for s in families["opsjobs_queue_depth"].samples}
    assert depth["nobody-serves-this"] == 2
    up = {s.labels["worker_id"]: s.value for s in families["opsjobs_worker_up"].samples}
    assert up[server.extension.worker_id] == 1.0
    workers = {s.labels["state"]: s.value for s in families["opsjobs_workers"].samples}
    assert workers["alive"] >= 1
    (lag,) = families["opsjobs_scheduler_lag_seconds"].samples
    assert lag.value >= 0
    assert {s.labels["severity"] for s in families["opsjobs_alerts_open"].samples} == {
        "info",
        "warning",
        "critical",
    }
