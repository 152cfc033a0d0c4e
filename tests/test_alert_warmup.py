"""Memory alerts that mean something from the first minute (issue 17, point 3): a rate rule
needs its window half covered by points before it can open, so the default ``gc-gen2-rate``
does not warn from two analyses seconds apart at start-up, stays quiet on a healthy process
analysed every 30 s, and still opens on a real gen-2 storm once its data spans enough."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsjobs.alerts import AlertEvaluator
from opsjobs.alerts.model import AlertRule
from opsjobs.alerts.rules import AlertRules, ensure_default_rules
from opsjobs.alerts.verdicts import MIN_RATE_SPAN, judge
from opsjobs.alerts.webhooks import WebhookSender
from opsjobs.model import Metric
from opsjobs.store import Store, open_store

T0 = 1_800_000_000.0
LABELS = {"host": "h", "pid": "7", "worker": "w"}


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    store = open_store(f"sqlite://{tmp_path / 'a.db'}")
    ensure_default_rules(store)
    return store


def _gen2(value: float, at: float) -> Metric:
    return Metric("gc_gen2_collections", value, LABELS, at, host="h")


def _feed(store: Store, points: list[Metric]) -> list[int]:
    """Record and judge the points one analysis at a time, as workers do; the indexes of the
    points after which an alert was open."""
    evaluator = AlertEvaluator(store, sender=WebhookSender([]))
    open_after = []
    try:
        for i, point in enumerate(points):
            store.record_metrics([point])
            evaluator.evaluate([point])
            if store.list_alerts(open_only=True):
                open_after.append(i)
    finally:
        evaluator.close()
    return open_after


def test_two_analyses_seconds_apart_at_start_up_open_no_gen2_alert(sqlite_store: Store) -> None:
    # the report of issue 17: one full collection between two analyses 4 s apart (15/min)
    assert _feed(sqlite_store, [_gen2(5, T0), _gen2(6, T0 + 4)]) == []


def test_a_healthy_process_analysed_every_30s_for_10_minutes_opens_nothing(
    sqlite_store: Store,
) -> None:
    # start-up: a few full collections while modules load, then one every few minutes
    counts = [3, 5, 6, 6, 6, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9]
    points = [_gen2(c, T0 + 30 * i) for i, c in enumerate(counts)]
    assert points[-1].at - points[0].at == 600
    assert _feed(sqlite_store, points) == []


def test_a_healthy_process_stays_quiet_once_the_window_is_covered_too(
    sqlite_store: Store,
) -> None:
    # two hours of analyses every 30 s, one full collection every 3 minutes (1/3 a minute)
    points = [_gen2(3 + i // 6, T0 + 30 * i) for i in range(241)]
    assert _feed(sqlite_store, points) == []


def test_the_rule_still_opens_once_its_data_spans_half_the_window(sqlite_store: Store) -> None:
    # a real storm: 3 full collections a minute, analysed every 30 s for 40 minutes
    points = [_gen2(1.5 * i, T0 + 30 * i) for i in range(81)]
    open_after = _feed(sqlite_store, points)
    rule = sqlite_store.get_alert_rule("gc-gen2-rate")
    needed = MIN_RATE_SPAN * rule.window_seconds
    assert open_after and points[open_after[0]].at - T0 == needed  # the first point it may
    assert open_after == list(range(open_after[0], 81))  # and it stays open


def test_min_span_scales_with_the_window() -> None:
    build = AlertRules(open_store("memory://")).build
    rule: AlertRule = build(
        {
            "name": "fast",
            "metric": "m",
            "condition": "rate_above",
            "threshold": 1,
            "per_seconds": 2,
            "window_seconds": 20,
        }
    )
    storm = [Metric("m", 2.0 * i, {}, T0 + i, host="h") for i in range(12)]
    assert not judge(rule, storm[:2]).holds  # 1 s of data in a 20 s window
    assert not judge(rule, storm[:10]).holds  # 9 s
    assert judge(rule, storm[:11]).fires  # 10 s: half the window
    assert judge(rule, storm).value == pytest.approx(4.0)


def _analyses(store: Store) -> list[float]:
    from opsjobs.model import JobState, ResultQuery

    query = ResultQuery(exact_name="memory-analysis", states=[JobState.SUCCEEDED]).validated()
    return sorted(j.finished_at or 0.0 for j in store.results(query))


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning")
def test_a_fresh_server_analyses_at_once_and_stays_quiet_on_short_intervals(
    tmp_path: Path,
) -> None:
    """One real ``serve`` run, compressed: the default 30 min interval and 1 h window become
    2 s and 40 s (the rate per 4 s instead of per minute, so one full collection per analysis
    would still read as more than the threshold). The default interval is checked too: the
    first analysis comes at start-up, not 30 minutes later."""
    import time

    from harness import wait_for
    from server_harness import ServerThread

    # the default interval: an analysis within a minute of the start all the same
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    server = ServerThread(fresh).start()
    try:
        started = time.time()
        store = open_store(server.store_url)
        try:
            wait_for(lambda: _analyses(store), 60, "the start-up memory analysis")
            assert time.time() - started < 60
        finally:
            store.close()
    finally:
        server.stop()

    short = tmp_path / "short"
    short.mkdir()
    (short / "data").mkdir()
    store = open_store(f"sqlite://{short / 'data' / 'opsjobs.db'}")
    try:
        ensure_default_rules(store)
        fast = {
            "name": "gc-gen2-rate-compressed",
            "metric": "gc_gen2_collections",
            "condition": "rate_above",
            "threshold": 1,
            "per_seconds": 4,
            "window_seconds": 40,
        }
        AlertRules(store).add(AlertRules(store).build(fast))
        server = ServerThread(short, memory_analysis="2s").start()
        try:
            # 10 "minutes" of analyses every "30 s": 20 s of analyses every 2 s, with the
            # compressed window half covered (20 s) so the rate is defined and judged
            wait_for(lambda: len(_analyses(store)) >= 12, 120, "a dozen analyses")
            done = _analyses(store)
            assert done[-1] - done[0] >= 20
        finally:
            server.stop()
        points = store.metrics("gc_gen2_collections")
        assert len(points) >= 12 and points[-1].at - points[0].at >= 20  # judged, not skipped
        assert store.list_alerts(open_only=True) == []
        assert store.list_alerts() == []  # not even one that opened and resolved
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_embedded_worker_analyses_its_process_at_start_up(tmp_path: Path) -> None:
    from harness import client_for, settings_for, wait_for

    import opsjobs

    settings = settings_for(tmp_path, host="svc-1")
    with client_for(settings) as client:
        handle = opsjobs.embed(
            ["default"], 1, store=client.store, settings=settings, memory_analysis="30m"
        )
        try:
            wait_for(lambda: _analyses(client.store), 60, "the start-up analysis")
            (job,) = client.results(name="memory-analysis")
            assert job.worker_id == handle.queue.removeprefix("worker:")
        finally:
            handle.stop()
