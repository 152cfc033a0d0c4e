"""The dashboard's notebook features in a real Chromium against a real server with Voila: the
Run notebook panel (typed widgets with defaults and help, run, land on the job followed live),
download links, Run again (pre-filled, linked), a running job's live output and Stop, and the
history of one job name with its runtime chart. Screenshots at 800 and 1920 px land in
``artifacts/dashboard/``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, client_for, settings_for, wait_for

from opsjobs.client import Client
from opsjobs.model import JobState

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
ARTIFACTS = ROOT / "artifacts" / "dashboard"
ADA = "ada-nb@example.org"
TIMEOUT = 90_000  # ms: kernels start slowly on a loaded machine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    from server_harness import ServerThread

    tmp = tmp_path_factory.mktemp("dashboard-notebooks")
    server = ServerThread(tmp, voila=True, memory_analysis=None)
    shutil.copy(ROOT / "notebooks" / "dashboard.ipynb", server.root / "dashboard.ipynb")
    for name in ("run_form.ipynb", "long_running.ipynb"):
        shutil.copy(ROOT / "tests" / "notebooks" / name, server.root / name)
    server.start()
    settings = settings_for(tmp, store_url=server.store_url, data_dir=server.data)
    client = client_for(settings)
    try:
        key = server.key(ADA, roles="debug")
        runs = [  # ada's (the dashboard shows a user their own jobs)
            client.submit(
                "nightly-check", command=f"import time; time.sleep({0.01 * (i % 5)})", owner=ADA
            )
            for i in range(22)
        ]
        for job in runs:
            assert client.wait(job.id, timeout=120).state is JobState.SUCCEEDED
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        yield {"server": server, "client": client, "key": key}
    finally:
        client.close()
        server.stop()


def sign_in(browser: Any, site: dict[str, Any], width: int = 1280) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(site["server"].base + "/login")
    page.fill("input[name=password]", site["key"])
    page.press("input[name=password]", "Enter")
    page.wait_for_selector(".opsjobs-results-table")
    return page


def shot(page: Any, name: str, *, full: bool = True) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full)


def pick(page: Any, notebook: str) -> None:
    """Choose ``notebook`` in the Run notebook panel's dropdown (options read "title — path")."""
    page.get_by_role("tab", name="Run notebook").click()
    option = page.locator(".opsjobs-nb-picker select option", has_text=notebook)
    option.wait_for(state="attached")
    page.select_option(".opsjobs-nb-picker select", label=option.inner_text())


def open_run_form(page: Any, notebook: str) -> None:
    pick(page, notebook)
    page.wait_for_selector(".opsjobs-param-count")


def newest(client: Client, name: str) -> Any:
    jobs = client.results(exact_name=name, limit=1)
    return jobs[0] if jobs else None


def test_run_form_widgets_run_downloads_and_run_again(browser: Any, site: dict[str, Any]) -> None:
    client: Client = site["client"]
    for width in (800, 1920):
        page = sign_in(browser, site, width)
        open_run_form(page, "run_form.ipynb")
        shot(page, f"run-notebook-{width}")
        page.context.close()

    page = sign_in(browser, site)
    open_run_form(page, "run_form.ipynb")
    form = page.locator(".opsjobs-run-notebook")
    assert page.input_value(".opsjobs-param-count input[type=number]") == "3"
    assert float(page.input_value(".opsjobs-param-ratio input[type=number]")) == 0.5
    assert page.is_checked(".opsjobs-param-enabled input[type=checkbox]")
    assert page.input_value(".opsjobs-param-label input[type=text]") == "web"
    assert page.input_value(".opsjobs-param-items textarea") == "[1, 2]"
    text = form.inner_text()
    for help_text in ("how many checks to run", "share of hosts", "label put on every metric"):
        assert help_text in text
    assert "Run form: one parameter of each type" in text

    page.fill(".opsjobs-param-count input", "7")
    page.press(".opsjobs-param-count input", "Tab")
    page.fill(".opsjobs-param-label input", "from-browser")
    page.press(".opsjobs-param-label input", "Tab")
    page.uncheck(".opsjobs-param-enabled input[type=checkbox]")
    page.fill(".opsjobs-nb-name input", "browser-run")
    page.press(".opsjobs-nb-name input", "Tab")
    page.click(".opsjobs-nb-run")
    page.wait_for_selector(".opsjobs-detail >> text=browser-run")
    job = wait_for(lambda: newest(client, "browser-run"), 30, "the submitted job")
    done = client.wait(job.id, timeout=180)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.result == {
        "count": [7, "int"],
        "ratio": [0.5, "float"],
        "enabled": [False, "bool"],
        "label": ["from-browser", "str"],
        "items": [[1, 2], "list"],
    }
    page.wait_for_selector(".opsjobs-download >> text=notebook.ipynb")
    shot(page, "notebook-detail")
    with page.expect_download() as info:
        page.click(".opsjobs-download >> text=notebook.ipynb")
    download = info.value
    assert download.suggested_filename == f"browser-run-{job.id[:8]}-notebook.ipynb"
    saved = Path(download.path()).read_text("utf-8")
    assert '"count = 7' in saved or "count = 7" in saved
    with page.expect_download() as info:
        page.click(".opsjobs-download >> text=output.log")
    assert "values:" in Path(info.value.path()).read_text("utf-8")

    page.click(f'[data-oj="rerun:{job.id}"]')
    page.wait_for_selector(".opsjobs-nb-rerun")
    assert page.input_value(".opsjobs-param-count input[type=number]") == "7"
    assert page.input_value(".opsjobs-param-label input[type=text]") == "from-browser"
    page.fill(".opsjobs-param-count input", "8")
    page.press(".opsjobs-param-count input", "Tab")
    shot(page, "run-again-form")
    page.click(".opsjobs-nb-run")
    page.wait_for_selector(".opsjobs-rerun-of")
    again = wait_for(
        lambda: next((j for j in client.results(limit=5) if j.spec.rerun_of == job.id), None),
        30,
        "the rerun",
    )
    done = client.wait(again.id, timeout=180)
    assert done.result["count"] == [8, "int"] and done.result["label"] == ["from-browser", "str"]
    page.context.close()


def test_live_output_and_stop(browser: Any, site: dict[str, Any], tmp_path: Path) -> None:
    client: Client = site["client"]
    page = sign_in(browser, site)
    pick(page, "long_running.ipynb")
    page.wait_for_selector(".opsjobs-param-pid_file")
    page.fill(".opsjobs-param-pid_file input", str(tmp_path / "pids.json"))
    page.press(".opsjobs-param-pid_file input", "Tab")
    page.click(".opsjobs-nb-run")
    live = page.wait_for_selector(".oj-live >> text=started")
    job = newest(client, "long_running")
    assert job is not None and not client.get(job.id).finished  # output before the end
    assert "[cell 1 (1/5)] pid_file" in live.inner_text()
    shot(page, "live-output")
    page.click(f'[data-oj="cancel:{job.id}"]')
    done = client.wait(job.id, timeout=60)
    assert done.state is JobState.CANCELLED
    page.context.close()


def test_history_of_one_job_name(browser: Any, site: dict[str, Any]) -> None:
    client: Client = site["client"]
    for width in (800, 1920):
        page = sign_in(browser, site, width)
        one = client.results(exact_name="nightly-check", limit=1)[0]
        page.fill(".opsjobs-filter-name input", "nightly-check")
        page.press(".opsjobs-filter-name input", "Enter")
        page.locator(f'tr[data-job="{one.id}"]').get_by_role("button", name="View").click()
        page.click('[data-oj="history:nightly-check"]')
        page.wait_for_selector(".opsjobs-history")
        text = page.locator(".opsjobs-history").inner_text()
        assert "22" in text and "100%" in text
        assert page.locator(".opsjobs-history-table tbody tr").count() == 22
        chart = page.wait_for_selector(".opsjobs-history-chart")
        assert chart.bounding_box()["height"] > 100
        shot(page, f"history-{width}")
        page.context.close()


def test_a_notebook_schedules_parameters_are_edited_in_the_form(
    browser: Any, site: dict[str, Any]
) -> None:
    client: Client = site["client"]
    notebook = site["server"].root / "run_form.ipynb"
    client.schedules.add(
        "form-nightly", every="1d", notebook=str(notebook), parameters={"count": 4}, owner=ADA
    )
    page = sign_in(browser, site)
    page.get_by_role("tab", name="Schedules").click()
    row = page.locator('.opsjobs-schedules-table tr[data-schedule="form-nightly"]')
    row.get_by_role("button", name="Parameters").click()
    page.wait_for_selector(".opsjobs-nb-schedule")
    assert page.input_value(".opsjobs-param-count input[type=number]") == "4"
    page.fill(".opsjobs-param-count input", "11")
    page.press(".opsjobs-param-count input", "Tab")
    shot(page, "schedule-parameters")
    page.get_by_role("button", name="Save to schedule").click()
    wait_for(
        lambda: client.schedules.get("form-nightly").spec.payload["parameters"].get("count") == 11,
        30,
        "the saved parameters",
    )
    params = client.schedules.get("form-nightly").spec.payload["parameters"]
    assert params == {"count": 11, "ratio": 0.5, "enabled": True, "label": "web", "items": [1, 2]}
    page.context.close()
