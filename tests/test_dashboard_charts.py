"""The dashboard's charts read well at 1 point and at 10,000 (asserted on the matplotlib
figures), a job's memory in its detail view, and the data layer's big-store navigation: the
time filter, the stat cards following every filter, and bulk delete within the user's rights."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import pytest
from harness import ADA, BOB, dashboard_users

from opsjobs.analyzer.job import JOB_NAME, RESULT_MARK
from opsjobs.auth import User
from opsjobs.client import Client
from opsjobs.dashboard.charts import (
    MIN_SPAN,
    history_figure,
    job_memory_figure,
    memory_figure,
    png,
)
from opsjobs.dashboard.data import DashboardData, MemoryView, ResultsState
from opsjobs.dashboard.jobmem import JobMemory, job_memory
from opsjobs.dashboard.render import memory_summary, number
from opsjobs.errors import ValidationError
from opsjobs.model import JobState, Metric
from opsjobs.store.base import Finish

pytestmark = pytest.mark.filterwarnings("ignore:.*(constrained_layout|tight_layout).*")

NOW = 1_796_600_000.0
#: A tick label of a time axis: a date, a time of day, a month or a year; never a fraction.
TIME_LABEL = re.compile(r"^(\d{1,2}:\d{2}(:\d{2})?|[A-Z][a-z]{2}-\d{2}|[A-Z][a-z]{2}|\d{1,4})$")


def users(client: Client) -> dict[str, User]:
    return dashboard_users(client, bob_roles="debug")


def view(points: int, window: float = 86400.0) -> MemoryView:
    step = window / points
    at = [NOW - window + step * (i + 0.5) for i in range(points)]
    series = {
        "rss_mb": {"alpha / w1": [(t, 120.0 + 0.01 * i) for i, t in enumerate(at)]},
        "uss_mb": {"alpha / w1": [(t, 100.0) for t in at]},
        "gc_gen0_collections": {"alpha / w1": [(t, 390_230.0 + i) for i, t in enumerate(at)]},
        "gc_gen2_collections": {"alpha / w1": [(t, 12.0) for t in at]},
    }
    return MemoryView(NOW - window, series, {}, None, [], NOW)


def labels(ax: Any, axis: str) -> list[str]:
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks if t.get_text()]


@pytest.mark.parametrize("points", [1, 2, 50, 10_000])
def test_the_memory_chart_reads_at_any_number_of_points(points: int) -> None:
    fig = memory_figure(view(points))
    fig.canvas.draw()
    assert png(fig)[:4] == b"\x89PNG"
    mem, gc = fig.axes[:2]
    for ax in (mem, gc):
        lines = [line for line in ax.lines if len(line.get_xdata()) == points]
        assert lines, "a series is missing"
        for line in lines:  # markers while the points can be told apart; none for thousands
            assert (line.get_marker() not in (None, "None", "")) == (points <= 600)
        xs = labels(ax, "x")
        assert 3 <= len(xs) <= 9 and all(TIME_LABEL.match(x) for x in xs), xs
        left, right = ax.get_xlim()  # the chosen window, in days
        assert (right - left) * 86400 == pytest.approx(86400, rel=1e-6)
    assert all("." not in y for y in labels(gc, "y")), labels(gc, "y")  # counts: integers
    assert all(re.match(r"^[\d,]+(\.\d)?$", y) for y in labels(mem, "y")), labels(mem, "y")


def test_one_point_has_room_around_it_and_sane_ticks() -> None:
    """The issue's case: one analysis point read "48.8000 48.8005" on its axis."""
    one = MemoryView(0.0, {"rss_mb": {"a / w": [(NOW, 48.8)]}}, {}, None, [], 0.0)
    fig = memory_figure(one)
    fig.canvas.draw()
    mem = fig.axes[0]
    (line,) = mem.lines
    assert line.get_marker() == "o"
    left, right = mem.get_xlim()
    assert (right - left) * 86400 >= MIN_SPAN  # an hour at least around the point
    assert all(TIME_LABEL.match(x) for x in labels(mem, "x")), labels(mem, "x")
    bottom, top = mem.get_ylim()
    assert bottom < 48.8 - 1 and top > 48.8 + 1
    ys = labels(mem, "y")
    assert len(set(ys)) == len(ys) >= 3 and all(re.match(r"^\d+(\.\d)?$", y) for y in ys), ys


def test_series_of_one_host_are_told_apart_by_their_markers() -> None:
    """One host's series share its colour, and with one point a line style shows nothing:
    gen0/gen1/gen2 (and rss/uss) were three identical blue dots."""
    one = MemoryView(
        0.0,
        {
            "rss_mb": {"a / w": [(NOW, 48.8)]},
            "uss_mb": {"a / w": [(NOW, 40.0)]},
            "gc_gen0_collections": {"a / w": [(NOW, 7500.0)]},
            "gc_gen1_collections": {"a / w": [(NOW, 600.0)]},
            "gc_gen2_collections": {"a / w": [(NOW, 12.0)]},
        },
        {},
        None,
        [],
        0.0,
    )
    mem, gc = memory_figure(one).axes[:2]
    assert len({line.get_marker() for line in mem.lines}) == 2
    assert len({line.get_marker() for line in gc.lines}) == 3


def test_a_job_memory_chart_marks_the_analysis() -> None:
    trend = [(NOW - 3600 * (10 - i), 100.0 + i) for i in range(11)]
    mem = JobMemory("trend", {"rss a / w": trend}, (NOW, 110.0, "this analysis"), 150.0)
    fig = job_memory_figure(mem)
    fig.canvas.draw()
    (ax,) = fig.axes
    names = [line.get_label() for line in ax.lines]
    assert "this analysis" in names and "peak RSS of the run" in names
    series = ax.lines[0]
    assert series.get_marker() == "o" and len(series.get_xdata()) == 11
    assert any("this analysis: 110.0 MB" in t.get_text() for t in ax.texts)
    single = job_memory_figure(JobMemory("one", {"peak rss": [(NOW, 23.5)]}, (NOW, 23.5, "x")))
    single.canvas.draw()
    assert all(TIME_LABEL.match(x) for x in labels(single.axes[0], "x"))


def test_history_chart_of_one_run_has_markers() -> None:
    from opsjobs.model import Job, JobSpec

    spec = JobSpec(name="n", owner=ADA, kind="command", payload={"source": "1"})
    job = Job("j1", spec, JobState.SUCCEEDED, NOW, runtime=1.5, peak_rss=2**25)
    fig = history_figure([job])
    fig.canvas.draw()
    rt, mem = fig.axes[:2]
    assert rt.collections and mem.lines and mem.lines[0].get_marker() == "o"


def test_numbers_print_integers_as_integers() -> None:
    assert number(390230.0) == "390,230" and number(48.84) == "48.8"
    result = {"analyzer": RESULT_MARK, "summary": {"objects": 390230.0, "rss_mb": 48.84}}
    from opsjobs.model import Job, JobSpec

    spec = JobSpec(name=JOB_NAME, owner=ADA, kind="call", payload={"target": "x:y"})
    job = Job("j1", spec, JobState.SUCCEEDED, NOW, finished_at=NOW, result=result)
    html = memory_summary(MemoryView(0.0, {}, {}, job))
    assert "objects <b>390,230</b>" in html and "rss_mb <b>48.8</b>" in html


# -- data: the job's memory -------------------------------------------------------------------
def ended(
    client: Client,
    name: str,
    owner: str,
    *,
    ago: float = 0.0,
    state: JobState = JobState.SUCCEEDED,
    **finish: Any,
) -> str:
    """A job submitted ``ago`` seconds ago that ended at once in ``state``."""
    at = time.time() - ago
    spec = client.build_spec(name, command="print(1)", owner=owner, queue=f"q-{name}")
    job = client.store.submit(spec, now=at)
    claimed = client.store.claim("w1", "alpha", [job.queue], now=at, lease=30)
    assert claimed is not None
    outcome = Finish(state, **finish)
    assert client.store.finish(job.id, "w1", claimed.attempt, outcome, now=at + 0.5)
    return job.id


def test_job_memory_of_an_analysis_a_recording_job_and_a_measured_run(client: Client) -> None:
    result = json.dumps({"analyzer": RESULT_MARK})
    analysis = client.get(ended(client, JOB_NAME, ADA, result_json=result))
    at = time.time()
    labels_ = {"host": "alpha", "worker": "w1"}
    client.store.record_metrics(
        [Metric("rss_mb", 100.0 + i, labels_, at=at - 3600 * (5 - i)) for i in range(5)]
        + [Metric("rss_mb", 200.0, labels_, at=at + 3600)]  # after it: not in its trend
        + [Metric("rss_mb", 105.0, labels_, at=at, job_id=analysis.id)]
    )
    mem = job_memory(client, analysis, owner=ADA)
    assert mem is not None and mem.mark == (at, 105.0, "this analysis")
    (trend,) = mem.series.values()
    assert [v for _, v in trend] == [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]

    runs = [ended(client, "measured", ADA, peak_rss=(10 + i) * 2**20) for i in range(3)]
    mem = job_memory(client, client.get(runs[1]), owner=ADA)
    assert mem is not None and mem.mark is not None and mem.mark[1:] == (11.0, "this run")
    assert [v for _, v in mem.series["peak rss"]] == [10.0, 11.0]  # up to this run
    assert job_memory(client, client.get(ended(client, "nothing", ADA)), owner=ADA) is None


# -- data: time filter, cards, bulk delete ----------------------------------------------------
def test_the_time_filter_and_the_stat_cards_follow_every_filter(client: Client) -> None:
    people = users(client)
    ids = [ended(client, f"ada-{i}", ADA, ago=2 * 86400 if i < 2 else 0) for i in range(4)]
    ended(client, "ada-failed", ADA, state=JobState.FAILED)
    ada = DashboardData(client, people["ada"])
    assert ada.results(ResultsState()).stats.total == 5
    day = ada.results(ResultsState(time="day"))
    assert (day.total, day.stats.total, day.stats.failed) == (3, 3, 1)
    assert set(ids[2:]) < {j.id for j in day.rows}
    failed = ada.results(ResultsState(time="day", status="failed"))
    assert (failed.total, failed.stats.total, failed.stats.succeeded) == (1, 1, 0)
    now = time.time()
    old = ada.results(ResultsState(time="custom", since=now - 3 * 86400, until=now - 86400))
    assert {j.id for j in old.rows} == set(ids[:2]) and old.stats.total == 2
    with pytest.raises(ValidationError):
        ada.results(ResultsState(time="custom", since=math.inf))


def test_bulk_delete_keeps_what_the_user_may_not_delete(client: Client) -> None:
    people = users(client)
    mine = [ended(client, f"ada-{i}", ADA) for i in range(3)]
    theirs = ended(client, "bob-1", BOB)
    running = client.submit("ada-queued", command="print(1)", owner=ADA, queue="nowhere").id
    ada = DashboardData(client, people["ada"])
    done, kept = ada.delete_many([*mine, theirs, running, mine[0]])
    assert done == 3 and len(kept) == 2
    assert any("no job with id" in k for k in kept) and any("stop it first" in k for k in kept)
    assert client.count(owner=BOB) == 1  # bob's job is still there
    root = DashboardData(client, people["root"])
    root.everyone = True  # an admin deletes anyone's
    assert root.delete_many([theirs]) == (1, [])
    assert client.count(owner=BOB) == 0


def test_page_sizes_go_to_500_and_a_page_beyond_the_last_is_the_last(client: Client) -> None:
    from opsjobs.dashboard.data import PAGE_SIZES

    people = users(client)
    for i in range(7):
        ended(client, f"ada-{i}", ADA)
    assert max(PAGE_SIZES) == 500
    ada = DashboardData(client, people["ada"])
    page = ada.results(ResultsState(page_size=5, page=10**6))
    assert page.state.page == 1 and len(page.rows) == 2 and page.pages == 2
    # pages past the middle are read from the end: the same rows as read from the start
    for sort in ("-submitted_at", "runtime", "name"):
        pages = [ada.results(ResultsState(sort=sort, page_size=3, page=n)).rows for n in range(3)]
        ids = [j.id for rows in pages for j in rows]
        assert ids == [j.id for j in client.results(owner=ADA, sort=sort)], sort


def test_app_selection_bulk_delete_jump_pause_and_a_bad_time(client: Client) -> None:
    from opsjobs.dashboard.app import DashboardApp

    people = users(client)
    ids = [ended(client, f"ada-{i}", ADA, ago=i) for i in range(30)]
    app = DashboardApp(DashboardData(client, people["ada"]))
    app.refresh()
    nav = app.results
    boxes = json.dumps({"on": [*ids[:2], "not-on-this-page"], "off": []})
    app.bridge.value = f"select:{boxes}|1"
    assert nav.selected == set(ids[:2]) and 'data-selected="2"' in nav.selection.value
    assert nav.table.value.count(" checked") == 2
    app.bridge.value = f"select:{json.dumps({'on': [ids[0]], 'off': [ids[1]]})}|2"
    assert nav.selected == {ids[0]}
    nav.ask_bulk_delete()
    assert "Delete the 1 selected result?" in app.confirm_text.value
    app._confirm(True)
    assert client.count(owner=ADA) == 29 and "Deleted 1 result." in app.message.value
    nav.jump.value = 2  # typed page number
    assert nav.state.page == 1 and nav.page is not None and len(nav.page.rows) == 4
    nav.page_size.value = 10
    nav.jump.value = 3
    assert nav.state.page == 2
    seq = app.refreshes
    nav.name_filter.value = "ada-1"  # 11 rows, 2 pages: back to the first, not moved again
    assert nav.state.page == 0 and nav.jump.value == 1 and nav.jump.max == 2
    assert app.refreshes == seq + 1  # the redraw's clamped page number is no jump
    app.set_paused(True)
    assert 'data-paused="1"' in app.refreshed.value
    seq = app.refreshes
    app.bridge.value = "tick:|3"  # ignored while paused
    assert app.refreshes == seq
    app.set_paused(False)
    assert app.refreshes == seq + 1 and 'data-paused="0"' in app.refreshed.value
    nav.time_filter.value = "custom"
    nav.since.value = "yesterday"
    assert "is not a time like" in app.message.value and "Traceback" not in app.message.value
    app.bridge.value = "select:nonsense|4"
    assert "cannot read" in app.message.value
