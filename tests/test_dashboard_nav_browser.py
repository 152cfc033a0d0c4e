"""Big-store navigation and layout of the dashboard in a real Chromium (Debian's, headless,
playwright) against a real server with Voila: the time filter and the stat cards, page size
500 and jump to page, bulk delete of 50 selected rows, the "refreshed N s ago" indicator and
its pause, a job's memory chart in its detail view, and every tab at 800, 1280 and 1920 px
(screenshots in ``artifacts/dashboard/widths/``, git-ignored)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import need_chromium
from harness import ROOT, client_for, settings_for
from playwright.sync_api import expect

from opsjobs.analyzer.job import JOB_NAME, TARGET, job_kwargs
from opsjobs.client import Client
from opsjobs.model import JobState, Metric

ARTIFACTS = ROOT / "artifacts" / "dashboard" / "widths"
ADA, BOB = "ada@example.org", "bob@example.org"
TIMEOUT = 60_000
#: Results planted: old ones (two days ago) and recent ones (the last half hour).
OLD, RECENT, BULK = 540, 37, 60
WIDTHS = (800, 1280, 1920)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning"),
]


def plant(db: Path, rows: list[tuple[str, str, float, float]]) -> None:
    """Finished jobs straight into the store's table: (name, state, submitted_at, runtime)."""
    values = [
        (
            str(uuid.uuid4()), name, ADA, "command", json.dumps({"source": "print(1)"}),
            "thread", "default", state, at, at + 0.01, at + 0.01 + runtime, runtime, "host-a",
            "planted\n",
        )
        for name, state, at, runtime in rows
    ]  # fmt: skip
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO jobs (id, name, owner, kind, payload, mode, queue, state,"
                " submitted_at, started_at, finished_at, runtime, host, output)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    need_chromium()
    from server_harness import ServerThread

    tmp = tmp_path_factory.mktemp("dashnav")
    server = ServerThread(tmp, voila=True, memory_analysis=None)
    shutil.copy(ROOT / "notebooks" / "dashboard.ipynb", server.root / "dashboard.ipynb")
    server.start()
    settings = settings_for(tmp, store_url=server.store_url, data_dir=server.data)
    client = client_for(settings)
    try:
        keys = {"ada": server.key(ADA, roles="debug"), "bob": server.key(BOB, roles="debug")}
        now = time.time()
        rows = [
            (f"old-{i:04d}", "failed" if i % 10 == 0 else "succeeded", now - 2 * 86400 - i, 1.0)
            for i in range(OLD)
        ]
        rows += [
            (f"recent-{i:03d}", "failed" if i % 4 == 0 else "succeeded", now - 60 - 30 * i, 2.0)
            for i in range(RECENT)
        ]
        rows += [(f"bulk-{i:03d}", "succeeded", now - 5 * 86400 - i, 0.5) for i in range(BULK)]
        plant(server.data / "opsjobs.db", rows)
        # a memory analysis of the server's process, with a week of rss before it
        analysis = client.submit(JOB_NAME, call=TARGET, kwargs=job_kwargs(), owner=ADA)
        analysis = client.wait(analysis.id, timeout=120)
        assert analysis.state is JobState.SUCCEEDED, analysis.error
        own = client.store.metrics("rss_mb", job_id=analysis.id)[-1]
        client.store.record_metrics(
            [
                Metric("rss_mb", own.value - 40 + i, dict(own.labels), at=own.at - 3600 * (30 - i))
                for i in range(30)
            ]
        )
        long_line = "x" * 600
        noisy = client.submit("noisy", command=f"print({long_line!r})\nprint('done')", owner=ADA)
        client.wait(noisy.id, timeout=60)
        # rows for the Jobs and Schedules tabs (their buttons must fit at 800 px too)
        client.submit("waits-for-a-host-that-never-comes", command="print(1)", owner=ADA,
                      queue="nowhere")  # fmt: skip
        client.schedules.add(
            "ada-nightly-report-of-everything", every="1h", command="print(1)", owner=ADA
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        yield {
            "server": server,
            "client": client,
            "keys": keys,
            "analysis": analysis.id,
            "noisy": noisy.id,
        }
    finally:
        client.close()
        server.stop()


def sign_in(
    browser: Any, site: dict[str, Any], who: str = "ada", width: int = 1280, height: int = 900
) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(site["server"].base + "/login")
    page.fill("input[name=password]", site["keys"][who])
    page.press("input[name=password]", "Enter")
    page.wait_for_selector(".opsjobs-results-table")
    return page


def stat(page: Any, name: str) -> int:
    return int(page.locator(f'[data-stat="{name}"]').inner_text().replace(",", ""))


def wait_stat(page: Any, name: str, value: int) -> None:
    page.wait_for_function(
        '([n, v]) => { const e = document.querySelector(`[data-stat="${n}"]`);'
        " return e !== null && e.textContent.replace(/,/g, '') === String(v); }",
        arg=[name, value],
    )


def rows(page: Any) -> int:
    return int(page.locator(".opsjobs-results-table tr[data-job]").count())


def wait_rows(page: Any, n: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.opsjobs-results-table tr[data-job]').length === n",
        arg=n,
    )


def choose(page: Any, css: str, label: str) -> None:
    page.locator(f"{css} select").select_option(label=label)


def test_time_filter_narrows_the_stat_cards(browser: Any, site: dict[str, Any]) -> None:
    client: Client = site["client"]
    page = sign_in(browser, site)
    everything = client.count(owner=ADA)
    wait_stat(page, "total", everything)
    choose(page, ".opsjobs-filter-time", "Last hour")
    since = time.time() - 3600
    recent = client.count(owner=ADA, since=since)
    assert RECENT <= recent < everything
    wait_stat(page, "total", recent)
    wait_stat(page, "failed", client.stats(owner=ADA, since=since).failed)
    # the status filter narrows the cards too
    choose(page, ".opsjobs-filter-status", "failed")
    wait_stat(page, "total", (RECENT + 3) // 4)
    assert stat(page, "successful") == 0
    # a custom range: the old results' day only
    choose(page, ".opsjobs-filter-status", "All statuses")
    choose(page, ".opsjobs-filter-time", "Custom range")
    day = time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() - 2 * 86400 - OLD - 60))
    page.fill(".opsjobs-filter-since input", day)
    page.press(".opsjobs-filter-since input", "Enter")
    page.fill(".opsjobs-filter-until input", time.strftime("%Y-%m-%d", time.gmtime()))
    page.press(".opsjobs-filter-until input", "Enter")
    wait_stat(page, "total", OLD)
    page.context.close()


def test_page_size_500_and_jump_to_the_last_page(browser: Any, site: dict[str, Any]) -> None:
    client: Client = site["client"]
    page = sign_in(browser, site)
    choose(page, ".opsjobs-page-size", "500 per page")
    wait_rows(page, 500)
    total = client.count(owner=ADA)
    pages = -(-total // 500)
    # the pager, the table and the buttons are separate widgets, each updated by its own
    # message: wait for each state, never read one right after another has changed
    expect(page.locator(".opsjobs-pages")).to_have_text(str(pages), timeout=TIMEOUT)
    jump = page.locator(".opsjobs-jump input")
    jump.fill(str(pages))
    jump.press("Enter")
    wait_rows(page, total - 500 * (pages - 1))
    oldest = client.results(owner=ADA, sort="submitted_at", limit=1)[0]
    assert page.locator(f'tr[data-job="{oldest.id}"]').count() == 1
    expect(page.locator(".opsjobs-next")).to_be_disabled(timeout=TIMEOUT)
    page.locator(".opsjobs-prev").click()
    wait_rows(page, 500)
    page.context.close()


def test_bulk_delete_of_50_selected_rows(browser: Any, site: dict[str, Any]) -> None:
    client: Client = site["client"]
    page = sign_in(browser, site)
    choose(page, ".opsjobs-page-size", "50 per page")
    page.fill(".opsjobs-filter-name input", "bulk-")
    page.press(".opsjobs-filter-name input", "Enter")
    wait_stat(page, "total", BULK)
    wait_rows(page, 50)
    page.locator(".opsjobs-select-page").check()
    page.wait_for_selector('.opsjobs-selected-count[data-selected="50"]')
    assert page.locator(".opsjobs-results-table input.opsjobs-select:checked").count() == 50
    page.locator(".opsjobs-delete-selected").click()
    # the question is drawn by the kernel after the click: wait for it, do not read it at once
    page.wait_for_selector(".opsjobs-confirm >> text=50 selected results")
    page.locator(".opsjobs-confirm-yes").click()
    wait_stat(page, "total", BULK - 50)
    assert client.count(owner=ADA, name="bulk-") == BULK - 50
    expect(page.locator(".opsjobs-message")).to_contain_text("Deleted 50 results.", timeout=TIMEOUT)
    page.wait_for_selector('.opsjobs-selected-count[data-selected="0"]')
    # bob signs in and sees none of them: nothing of ada's to select or delete
    other = sign_in(browser, site, "bob")
    assert stat(other, "total") == 0
    other.context.close()
    page.context.close()


def test_refreshed_indicator_and_pause(browser: Any, site: dict[str, Any]) -> None:
    client: Client = site["client"]
    page = sign_in(browser, site)
    indicator = page.locator(".opsjobs-refreshed")
    page.wait_for_function(
        "() => /^refreshed [1-9]\\d* s ago$/.test("
        "document.querySelector('.opsjobs-refreshed').textContent)"
    )
    page.locator(".opsjobs-pause").click()
    page.wait_for_selector('.opsjobs-refreshed[data-paused="1"]')
    before = stat(page, "total")
    job = client.submit("while-paused", command="print(1)", owner=ADA)
    client.wait(job.id, timeout=60)
    # two tick periods pass: nothing redraws, the count of seconds goes on
    page.wait_for_function(
        "() => /auto-refresh paused · refreshed ([7-9]|\\d\\d+) s ago/.test("
        "document.querySelector('.opsjobs-refreshed').textContent)",
        timeout=30_000,
    )
    assert stat(page, "total") == before
    assert page.locator(f'tr[data-job="{job.id}"]').count() == 0
    page.locator(".opsjobs-pause").click()  # Resume: refreshes at once
    page.wait_for_selector(f'tr[data-job="{job.id}"]')
    assert stat(page, "total") == before + 1
    expect(indicator).not_to_contain_text("paused", timeout=TIMEOUT)
    page.context.close()


def test_a_memory_analysis_detail_shows_the_trend_up_to_it(
    browser: Any, site: dict[str, Any]
) -> None:
    page = sign_in(browser, site)
    page.evaluate(f"window.opsjobsSend('view:{site['analysis']}')")
    img = page.wait_for_selector(".opsjobs-detail img.opsjobs-job-memory")
    page.wait_for_function(
        "() => { const i = document.querySelector('img.opsjobs-job-memory');"
        " return i.complete && i.naturalWidth > 600; }"
    )
    box = img.bounding_box()
    assert box is not None and box["width"] > 600
    assert "week up to this analysis" in (img.get_attribute("alt") or "") or box["height"] > 150
    page.context.close()


#: What shows that a tab has drawn (a script that turns true).
DRAWN = {
    name: f"() => document.querySelector({css!r}) !== null"
    for name, css in (
        ("Results", ".opsjobs-results-table"),
        ("Jobs", ".opsjobs-jobs-table"),
        ("Schedules", ".opsjobs-schedules-table"),
        ("Workers", ".opsjobs-workers-table"),
        ("Submit", ".opsjobs-submit"),
    )
}
DRAWN["Memory"] = (
    "() => { const i = document.querySelector('img.opsjobs-memory-chart');"
    " return i !== null && i.complete && i.naturalHeight > 150"
    " && document.querySelector('.opsjobs-verdicts') !== null; }"
)


def overflow(page: Any) -> dict[str, float]:
    """How far the page and its widest box reach past the viewport's right edge (px)."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => {
            const w = document.documentElement.clientWidth;
            let worst = 0, what = '';
            for (const el of document.querySelectorAll(
                '.opsjobs-app .oj-detail, .opsjobs-app .oj-card, .opsjobs-app .jupyter-button,'
                + ' .opsjobs-app .oj-btn, .opsjobs-app select, .opsjobs-app input')) {
                const r = el.getBoundingClientRect();
                if (r.width === 0) continue;
                if (r.right - w > worst) { worst = r.right - w; what = el.className; }
            }
            return {page: document.documentElement.scrollWidth - w, box: worst, what: what};
        }"""
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_every_tab_fits_the_width(browser: Any, site: dict[str, Any], width: int) -> None:
    """Every tab and two detail views (a memory analysis, a job with a 600-character output
    line) at ``width``: nothing reaches past the right edge; screenshots are kept (a tall
    window: Voila's page scrolls inside, a full-page shot would stop at the window)."""
    page = sign_in(browser, site, width=width, height=2000)
    names = [t.inner_text().strip() for t in page.get_by_role("tab").all()]
    problems = []
    for name in names:
        page.get_by_role("tab", name=name).click()
        page.wait_for_selector(f'[role=tab][aria-selected=true]:has-text("{name}")')
        if name in DRAWN:
            page.wait_for_function(DRAWN[name])
        page.wait_for_timeout(300)  # the tab's widgets lay out
        slug = re.sub(r"\W+", "-", name.lower())
        page.screenshot(path=str(ARTIFACTS / f"{slug}-{width}.png"), full_page=True)
        reach = overflow(page)
        if reach["page"] > 0 or reach["box"] > 0.5:
            problems.append((name, reach))
    page.get_by_role("tab", name=names[0]).click()
    for label, job_id in (("detail-analysis", site["analysis"]), ("detail-noisy", site["noisy"])):
        page.evaluate(f"window.opsjobsSend('view:{job_id}')")
        page.wait_for_selector(f'.opsjobs-detail:has-text("{job_id}")')
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / f"{label}-{width}.png"), full_page=True)
        reach = overflow(page)
        if reach["page"] > 0 or reach["box"] > 0.5:
            problems.append((label, reach))
        page.locator(".opsjobs-back").click()
        page.wait_for_selector(".opsjobs-results-table")
    # at every width the results rows' Delete buttons are inside the viewport
    button = page.locator(".opsjobs-results-table tr[data-job] .oj-btn-danger").first.bounding_box()
    assert button is not None and button["x"] + button["width"] <= width
    assert problems == [], problems
    page.context.close()


def test_pages_stay_clean_with_the_new_controls(browser: Any, site: dict[str, Any]) -> None:
    """The selection, pager and pause make no request outside and no console error."""
    base = site["server"].base
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    outside: list[str] = []
    context.on(
        "request",
        lambda r: (
            None if r.url.startswith((base + "/", "data:", "blob:")) else outside.append(r.url)
        ),
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/login")
    page.fill("input[name=password]", site["keys"]["ada"])
    page.press("input[name=password]", "Enter")
    page.wait_for_selector(".opsjobs-results-table")
    page.locator(".opsjobs-results-table input.opsjobs-select").first.check()
    page.wait_for_selector('.opsjobs-selected-count[data-selected="1"]')
    page.locator(".opsjobs-clear").click()
    page.wait_for_selector('.opsjobs-selected-count[data-selected="0"]')
    page.locator(".opsjobs-pause").click()
    page.wait_for_selector('.opsjobs-refreshed[data-paused="1"]')
    page.locator(".opsjobs-pause").click()
    page.wait_for_selector('.opsjobs-refreshed[data-paused="0"]')
    page.wait_for_load_state("networkidle")
    context.close()
    assert outside == [] and errors == [], (outside, errors)
