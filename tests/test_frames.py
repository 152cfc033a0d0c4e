"""The Client's exploration frames over a real SQLite store (the sample week of
:mod:`opsjobs.demo`, and an empty store): typed columns, filters, order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from harness import client_for, settings_for

from opsjobs.client import Client
from opsjobs.demo import BASE_TIME, DAY, build
from opsjobs.model import JobState
from opsjobs.store import Finish


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    client = client_for(settings_for(tmp_path_factory.mktemp("frames")))
    build(client.store)
    yield client
    client.close()


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Client]:
    client = client_for(settings_for(tmp_path))
    yield client
    client.close()


def _is_utc(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype) and str(series.dtype.tz) == "UTC"


def test_runs_of_one_name_over_time(sample: Client) -> None:
    runs = sample.runs_frame("import-orders")
    assert len(runs) == 28 and set(runs["name"]) == {"import-orders"}
    assert runs["submitted_at"].is_monotonic_increasing
    for column in ("submitted_at", "started_at", "finished_at"):
        assert _is_utc(runs[column])
    for column in ("name", "state", "host", "worker_id", "owner"):
        assert isinstance(runs[column].dtype, pd.CategoricalDtype), column
    assert "lost" in runs["state"].cat.categories  # every state, seen or not
    assert runs["runtime_s"].dtype == "float64" and (runs["runtime_s"] > 0).all()
    assert (runs["wait_s"] >= 0).all() and runs["peak_rss_mb"].between(40, 400).all()
    assert (
        (runs["finished_at"] - runs["started_at"])
        .dt.total_seconds()
        .round(2)
        .equals(runs["runtime_s"].round(2))
    )
    day_two = sample.runs_frame("import-orders", since=BASE_TIME + DAY, until=BASE_TIME + 2 * DAY)
    assert len(day_two) == 4
    assert day_two["submitted_at"].min() >= pd.Timestamp(BASE_TIME + DAY, unit="s", tz="UTC")


def test_metric_series_per_host_and_worker(sample: Client) -> None:
    rss = sample.metrics_frame("rss_mb")
    assert _is_utc(rss["at"]) and rss["at"].is_monotonic_increasing
    assert set(rss["worker"].cat.categories) == {"w-web-1a", "w-web-1b", "w-web-2a", "w-batch-1a"}
    assert isinstance(rss["host"].dtype, pd.CategoricalDtype)
    assert rss.groupby("worker", observed=True).size().eq(7 * 24).all()
    one = sample.metrics_frame("rss_mb", worker="w-web-1b")
    assert set(one["worker"]) == {"w-web-1b"} and len(one) == 7 * 24
    # the leaking worker grows: its last day is well above its first
    assert one["value"].tail(24).mean() - one["value"].head(24).mean() > 100
    web2 = sample.metrics_frame("rss_mb", host="web-2", until=BASE_TIME + DAY)
    assert set(web2["host"]) == {"web-2"} and len(web2) == 24
    cpu = sample.metrics_frame("health.cpu_pct", since=BASE_TIME + 6 * DAY)
    assert len(cpu) == 3 * 24 and cpu["value"].between(0, 100).all()


def test_attempts_are_the_attempts_the_store_keeps(sample: Client) -> None:
    attempts = sample.attempts_frame()
    runs = sample.results_frame(limit=10_000)
    ran = runs[runs["started_at"].notna()]
    assert len(attempts) == len(ran)  # one row per job that ran: its last attempt
    assert attempts["attempt"].dtype == "Int64" and (attempts["attempt"] == 1).all()
    assert _is_utc(attempts["started_at"])
    failed = attempts[attempts["state"] == "failed"]
    assert len(failed) and failed["error"].str.contains("503").all()
    assert set(sample.attempts_frame("nightly-report")["name"]) == {"nightly-report"}


def test_alert_events_with_their_alert(sample: Client) -> None:
    events = sample.alert_events_frame()
    assert list(events["kind"]) == ["opened", "resolved", "opened", "resolved", "opened"]
    assert _is_utc(events["at"]) and events["at"].is_monotonic_increasing
    assert set(events["rule_name"]) == {"worker memory high"}
    assert set(events["host"]) == {"web-1"} and set(events["severity"]) == {"warning"}
    assert isinstance(events["severity"].dtype, pd.CategoricalDtype)


def test_empty_store_frames_keep_their_columns_and_types(empty: Client) -> None:
    frames = {
        "runs": empty.runs_frame("nothing"),
        "metrics": empty.metrics_frame("rss_mb"),
        "attempts": empty.attempts_frame(),
        "events": empty.alert_events_frame(),
    }
    for what, frame in frames.items():
        assert frame.empty, what
    assert _is_utc(frames["runs"]["submitted_at"]) and _is_utc(frames["metrics"]["at"])
    assert isinstance(frames["events"]["kind"].dtype, pd.CategoricalDtype)
    # code written for the sample runs on nothing
    assert frames["runs"].groupby("state", observed=True)["runtime_s"].median().empty


def test_results_frame_reads_times_with_and_without_fractions(sample: Client) -> None:
    # the sample has times on whole seconds ("...:21Z") beside fractions ("...:21.666Z"):
    # pandas' inferred format from the first one failed on the other
    frame = sample.results_frame(limit=10_000)
    assert _is_utc(frame["finished_at"]) and frame["finished_at"].notna().sum() > 300


def test_attempts_frame_has_a_row_for_each_attempt_a_retry_kept(empty: Client) -> None:
    job = empty.submit("flaky", command="pass", retries=2, retry_delay=1)
    store, t0 = empty.store, time.time()
    for attempt in (1, 2):  # two failed attempts, each queued again for later
        claimed = store.claim("w1", "h1", ["default"], now=t0 + 10 * attempt, lease=30)
        assert claimed is not None and claimed.attempt == attempt
        assert store.requeue_after(
            job.id,
            "w1",
            attempt,
            Finish(JobState.FAILED, error=f"boom {attempt}", exit_code=1),
            now=t0 + 10 * attempt + 1,
            run_after=t0 + 10 * attempt + 2,
            note="retry",
        )
    last = store.claim("w1", "h1", ["default"], now=t0 + 30, lease=30)
    assert last is not None and last.attempt == 3
    assert store.finish(job.id, "w1", 3, Finish(JobState.SUCCEEDED), now=t0 + 31)
    attempts = empty.attempts_frame("flaky")
    assert list(attempts["attempt"]) == [1, 2, 3]
    assert list(attempts["state"]) == ["failed", "failed", "succeeded"]
    assert list(attempts["error"].fillna("")) == ["boom 1", "boom 2", ""]
    assert _is_utc(attempts["started_at"]) and attempts["started_at"].is_monotonic_increasing
