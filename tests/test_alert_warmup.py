"""Memory alerts that mean something from the first minute (issue 17, point 3): a rate rule
needs its window half covered by points before it can open, so the default ``gc-gen2-rate``
does not warn from two analyses seconds apart at start-up, stays quiet on a healthy process
analysed every 30 s, and still opens on a real gen-2 storm once its data spans enough."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsjobs.alerts import AlertEvaluator
from opsjobs.alerts.model import AlertRule
from opsjobs.alerts.rules import AlertRules, ensure_default_rules
from opsjobs.alerts.verdicts import MIN_RATE_SPAN, judge
from opsjobs.alerts.webhooks import WebhookSender
from opsjobs.config import Settings
from opsjobs.model import JobState, Metric, ResultQuery
from opsjobs.store import Store, open_store

T0 = 1_800_000_000.0
LABELS = {"host": "h", "pid": "7", "worker": "w"}


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite://{tmp_path / 'a.db'}")
    try:
        ensure_default_rules(store)
        yield store
    finally:
        store.close()  # left open, 3.13 reported its connections unclosed (ResourceWarning)


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
    build = AlertRules(open_store("memory://")).build  # (memory: no connection to close)
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
    query = ResultQuery(exact_name="memory-analysis", states=[JobState.SUCCEEDED]).validated()
    return sorted(j.finished_at or 0.0 for j in store.results(query))


@pytest.fixture
def short_dir() -> Iterator[str]:
    """A runtime folder short enough for the workers' Unix sockets (107 bytes at most; this
    test's own tmp_path is too deep for them)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="oj-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _serve(tmp_path: Path, settings: Settings, *args: str) -> Iterator[None]:
    """``opsjobs serve`` as a real process (a fresh interpreter: a healthy process of its own),
    stopped with SIGINT at the end."""
    from harness import cli_env
    from server_harness import free_port

    proc = subprocess.Popen(
        [sys.executable, "-m", "opsjobs", "serve", "--port", str(free_port()), "--no-voila", *args],
        env=cli_env(settings),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
        assert proc.poll() is None, "opsjobs serve stopped by itself"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_fresh_serve_analyses_at_once_and_stays_quiet_on_short_intervals(
    tmp_path: Path, short_dir: str
) -> None:
    """Real ``opsjobs serve`` processes. With the default interval (30 min) the first analysis
    comes at start-up, within a minute. Then a compressed run: the 30 s analyses and the 1 h
    window become 2 s and 40 s (the rate per 4 s instead of per minute, so one full collection
    per analysis would still read as more than the threshold), with the default rules beside
    it; a dozen analyses spanning more than half the window open no alert."""
    from harness import run_cli, settings_for, wait_for

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    settings = settings_for(fresh, runtime_dir=short_dir)
    assert run_cli(settings, "init").returncode == 0  # the default rules
    store = open_store(settings.store_url)
    try:
        started = time.monotonic()
        with _serve(fresh, settings):
            wait_for(lambda: _analyses(store), 90, "the start-up memory analysis")
            # a loaded machine may take long to start the process: count from its start-up
            (job,) = store.results(ResultQuery(exact_name="memory-analysis").validated())
            assert job.started_at is not None and job.started_at - job.submitted_at < 60
            assert time.monotonic() - started < 90
    finally:
        store.close()

    short = tmp_path / "short"
    short.mkdir()
    settings = settings_for(short, runtime_dir=short_dir)
    assert run_cli(settings, "init").returncode == 0
    store = open_store(settings.store_url)
    try:
        fast = {
            "name": "gc-gen2-rate-compressed",
            "metric": "gc_gen2_collections",
            "condition": "rate_above",
            "threshold": 1,
            "per_seconds": 4,
            "window_seconds": 40,
        }
        AlertRules(store).add(AlertRules(store).build(fast))
        with _serve(short, settings, "--memory-analysis", "2s"):
            # each analysis of a serve process may take its whole 10 s budget on a loaded
            # machine, and the next fire waits for it: 150 s once gave fewer than 12 at load 10+
            wait_for(lambda: len(_analyses(store)) >= 12, 360, "a dozen analyses")
        points = store.metrics("gc_gen2_collections")
        assert len(points) >= 12 and points[-1].at - points[0].at >= 20  # judged, not skipped
        assert [a.message for a in store.list_alerts()] == []  # none opened, even for a while
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
