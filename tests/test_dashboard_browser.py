"""The dashboard in a real Chromium (Debian's, headless, driven by playwright) against a real
server with Voila: sign in with a key, stats, sort, detail, delete, stop, pause, memory chart,
and a second user who sees none of the first one's results. Screenshots of every tab land in
``artifacts/dashboard/`` (git-ignored)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from browser import need_chromium
from harness import ROOT, client_for, settings_for, wait_for

from opsjobs.alerts import AlertEvaluator, AlertRule, AlertRules
from opsjobs.client import Client
from opsjobs.model import JobState, Metric

ARTIFACTS = ROOT / "artifacts" / "dashboard"
ADA, BOB = "ada@example.org", "bob@example.org"
TIMEOUT = 120_000  # ms; a loaded machine (load 10 on 2 cores) took 20 s to start a kernel

pytestmark = [
    pytest.mark.slow,
    # Voila registers static handlers without auth decorators; jupyter_server warns (not ours).
    pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with Voila and the dashboard, ada's results, a running job, a schedule,
    memory metrics and an open alert on them; bob has a key and nothing else."""
    need_chromium()
    from server_harness import ServerThread

    tmp = tmp_path_factory.mktemp("dashboard")
    # No memory analysis of the server's own (pytest's) process: since the server analyses
    # at start-up, its RSS opened a second "rss-above-100" alert beside the planted one.
    server = ServerThread(tmp, voila=True, memory_analysis=None)
    shutil.copy(ROOT / "notebooks" / "dashboard.ipynb", server.root / "dashboard.ipynb")
    server.start()
    settings = settings_for(tmp, store_url=server.store_url, data_dir=server.data)
    client = client_for(settings)
    try:
        keys = {"ada": server.key(ADA, roles="debug"), "bob": server.key(BOB, roles="debug")}
        jobs = [
            client.submit(f"ada-{i}", command=f"import time\ntime.sleep({0.05 * i})", owner=ADA)
            for i in range(6)
        ]
        jobs.append(client.submit("ada-broken", command="raise ValueError('planted')", owner=ADA))
        for job in jobs:
            client.wait(job.id, timeout=60)
        sleeper = client.submit(
            "ada-sleeper",
            command="import time, opsjobs\nwhile not opsjobs.context().cancelled:\n"
            "    time.sleep(0.05)",
            owner=ADA,
        )
        wait_for(lambda: client.get(sleeper.id).state is JobState.RUNNING, 30, "the sleeper")
        client.schedules.add("ada-nightly", every="1h", command="print(1)", owner=ADA)
        now = time.time()
        AlertRules(client.store).add(
            AlertRule("rss-above-100", "rss_mb", "above", 100.0, severity="critical")
        )
        metrics = [
            Metric(name, base + 3 * i, {"host": "alpha", "worker": "w1"}, at=now - 1800 * i)
            for i in range(12)
            for name, base in (("rss_mb", 120.0), ("uss_mb", 100.0))
        ]
        client.store.record_metrics(metrics)
        evaluator = AlertEvaluator(client.store)  # as a worker judges the metrics it records
        try:
            assert evaluator.evaluate(metrics[:1]), "the alert did not open"
        finally:
            evaluator.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        yield {"server": server, "client": client, "keys": keys, "sleeper": sleeper.id}
    finally:
        client.close()
        server.stop()


def sign_in(browser: Any, site: dict[str, Any], who: str) -> Any:
    """A fresh browser context signed in as ``who``, on the dashboard (via ``/``)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(site["server"].base + "/login")
    page.fill("input[name=password]", site["keys"][who])
    page.press("input[name=password]", "Enter")
    page.wait_for_selector(".opsjobs-results-table")
    return page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def runtimes(page: Any) -> list[float]:
    cells = page.locator(".opsjobs-results-table td[data-runtime]")
    return [float(v) for v in cells.evaluate_all("els => els.map(e => e.dataset.runtime)") if v]


def test_results_stats_sort_detail_and_delete(browser: Any, site: dict[str, Any]) -> None:
    client: Client = site["client"]
    page = sign_in(browser, site, "ada")
    assert "/voila/render/dashboard.ipynb" in page.url
    assert page.locator('[data-stat="total"]').inner_text() == "8"
    assert page.locator('[data-stat="failed"]').inner_text() == "1"
    assert site["keys"]["ada"] not in page.content()  # the key is in neither page nor kernel
    shot(page, "results")

    page.click('th[data-col="runtime"]')
    page.wait_for_selector('th.oj-sorted[data-col="runtime"]')
    values = runtimes(page)
    assert len(values) >= 6 and values == sorted(values, reverse=True)

    row = page.locator(".opsjobs-results-table tr", has_text="ada-broken")
    job_id = row.get_attribute("data-job")
    row.get_by_role("button", name="View").click()
    detail = page.wait_for_selector(".opsjobs-detail")
    assert "planted" in detail.inner_text() and "ValueError" in detail.inner_text()
    shot(page, "detail")

    page.click(".opsjobs-delete")
    page.click(".opsjobs-confirm-yes")
    page.wait_for_selector(f'.opsjobs-results-table tr[data-job="{job_id}"]', state="detached")
    assert client.count(owner=ADA) == 7
    page.reload()
    page.wait_for_selector(".opsjobs-results-table")
    assert page.locator(f'tr[data-job="{job_id}"]').count() == 0
    assert page.locator('[data-stat="total"]').inner_text() == "7"
    page.context.close()


def test_pages_stay_offline_and_clean_on_every_tab(browser: Any, site: dict[str, Any]) -> None:
    """No request leaves the server, none fails, and the console shows no error: sign-in page,
    every tab and a detail view (Voila's lab template asked two public CDNs for Font Awesome and
    MathJax, and its own static folder for two styles that answered 404)."""
    base = site["server"].base
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    outside: list[str] = []
    failed: list[str] = []
    errors: list[str] = []

    def on_request(request: Any) -> None:
        if not request.url.startswith((base + "/", "data:", "blob:")):
            outside.append(request.url)

    def on_response(response: Any) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.url}")

    context.on("request", on_request)
    context.on("response", on_response)
    context.on("requestfailed", lambda request: failed.append(f"failed {request.url}"))
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/login")
    page.fill("input[name=password]", site["keys"]["ada"])
    page.press("input[name=password]", "Enter")
    page.wait_for_selector(".opsjobs-results-table")
    names = [t.inner_text().strip() for t in page.get_by_role("tab").all()]
    assert len(names) >= 5, names
    for name in names:
        tab(page, name)
        page.wait_for_selector(f'[role=tab][aria-selected=true]:has-text("{name}")')
    tab(page, names[0])
    row = page.locator(".opsjobs-results-table tr[data-job]").first
    row.get_by_role("button", name="View").click()
    page.wait_for_selector(".opsjobs-detail")
    page.wait_for_load_state("networkidle")
    context.close()
    assert outside == [], outside
    assert failed == [], failed
    assert errors == [], errors


def test_stop_a_running_job_and_pause_a_schedule(browser: Any, site: dict[str, Any]) -> None:
    client: Client = site["client"]
    page = sign_in(browser, site, "ada")
    tab(page, "Jobs")
    sleeper = site["sleeper"]
    page.wait_for_selector(f'.opsjobs-jobs-table tr[data-job="{sleeper}"]')
    shot(page, "jobs")
    page.locator(f'tr[data-job="{sleeper}"]').get_by_role("button", name="Stop").click()
    wait_for(lambda: client.get(sleeper).state is JobState.CANCELLED, 30, "the stop")
    page.wait_for_selector(f'.opsjobs-jobs-table tr[data-job="{sleeper}"]', state="detached")

    tab(page, "Schedules")
    row = page.locator('.opsjobs-schedules-table tr[data-schedule="ada-nightly"]')
    row.get_by_role("button", name="Pause").click()
    row.get_by_role("button", name="Resume").wait_for()
    assert client.schedules.get("ada-nightly").enabled is False
    shot(page, "schedules")

    tab(page, "Workers")
    page.wait_for_selector(".opsjobs-workers-table .oj-ok")  # the server's hosted worker
    shot(page, "workers")
    tab(page, "Submit")
    page.wait_for_selector(".opsjobs-submit")
    shot(page, "submit")
    page.context.close()


def test_memory_chart_and_open_alerts(browser: Any, site: dict[str, Any]) -> None:
    page = sign_in(browser, site, "ada")
    badge = page.wait_for_selector('.opsjobs-alerts[data-open="1"]')  # in the header
    assert "1 critical" in badge.inner_text()
    page.locator(".oj-header").screenshot(path=str(ARTIFACTS / "header-alert.png"))
    badge.click()  # opens the Memory tab
    page.wait_for_selector(".opsjobs-alerts-table td")
    alerts = page.locator(".opsjobs-alerts-table").inner_text()
    assert "rss-above-100" in alerts and "critical" in alerts and "alpha" in alerts
    page.wait_for_function(
        "() => { const i = document.querySelector('img.opsjobs-memory-chart');"
        " return i !== null && i.complete && i.naturalHeight > 150; }"
    )
    box = page.locator("img.opsjobs-memory-chart").bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 150
    page.wait_for_selector(".opsjobs-verdicts td")
    assert "alpha / w1" in page.locator(".opsjobs-verdicts").inner_text()
    shot(page, "memory")
    page.context.close()


def test_a_second_user_sees_none_of_the_first_users_results(
    browser: Any, site: dict[str, Any]
) -> None:
    page = sign_in(browser, site, "bob")
    assert page.locator('[data-stat="total"]').inner_text() == "0"
    assert "No results match." in page.locator(".opsjobs-results-table").inner_text()
    assert "ada-" not in page.locator(".opsjobs-app").inner_text()
    tab(page, "Schedules")
    page.wait_for_selector(".opsjobs-schedules-table .oj-empty")
    shot(page, "second-user")
    page.context.close()


def test_notification_rules_in_the_memory_tab_and_a_notifications_link(
    browser: Any, site: dict[str, Any]
) -> None:
    page = sign_in(browser, site, "ada")
    tab(page, "Memory")
    page.wait_for_selector(".opsjobs-notify-rules")
    page.fill(".opsjobs-notify-name input", "ada-fails")
    page.fill(".opsjobs-notify-job input", "ada-*")
    page.fill(".opsjobs-notify-email input", ADA)
    page.get_by_role("button", name="Add rule").click()
    row = page.wait_for_selector('.opsjobs-notify-rules tr:has-text("ada-fails")')
    assert "ada-*" in row.inner_text() and ADA in row.inner_text()
    rule = site["client"].store.get_notify_rule("ada-fails")
    assert rule.owner == ADA and rule.created_by == ADA
    shot(page, "notifications")
    row.query_selector("button[data-oj^='notify-remove:']").click()
    page.wait_for_selector('.opsjobs-notify-rules:has-text("No notification rules.")')
    # a notification's link: the dashboard opens on that job's detail view
    # (its own failed job: the results test deletes the fixture's "ada-broken")
    client: Client = site["client"]
    broken = client.submit("ada-link", command="raise ValueError('planted')", owner=ADA)
    assert client.wait(broken.id, timeout=60).state is JobState.FAILED
    page.goto(f"{site['server'].base}/opsjobs/?job={broken.id}")
    detail = page.wait_for_selector(".opsjobs-detail")
    assert "planted" in detail.inner_text()
    page.context.close()
