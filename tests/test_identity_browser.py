"""One identity across CLI and browser, in a real Chromium against a real server (issue 18): a
job the CLI submits after ``opsjobs login`` is in that user's dashboard; the server's own
``memory-analysis`` schedule is listed for a user without an admin role (REST and dashboard),
who may not delete the server's jobs; the sign-in page asks for an "API key", says plainly when
it is wrong, loads nothing from outside and logs no error; "Sign out" in the header clears the
cookie and returns to it. Screenshots at 800, 1280 and 1920 px land in ``artifacts/identity/``
(git-ignored)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from browser import need_chromium
from harness import ROOT, cli_env, settings_for, wait_for

from opsjobs.server.openapi import API, SEED

ARTIFACTS = ROOT / "artifacts" / "identity"
CARA = "cara@example.org"
TIMEOUT = 60_000  # ms
WIDTHS = (800, 1280, 1920)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with Voila and its own memory-analysis schedule; cara (debug, no admin) signed
    in with the CLI, and a job she submitted with it."""
    need_chromium()
    from server_harness import ServerThread

    tmp = tmp_path_factory.mktemp("identity")
    server = ServerThread(tmp, voila=True)  # memory_analysis: the default, 30m
    shutil.copy(ROOT / "notebooks" / "dashboard.ipynb", server.root / "dashboard.ipynb")
    server.start()
    settings = settings_for(tmp, store_url=server.store_url, data_dir=server.data)
    env = cli_env(settings, XDG_CONFIG_HOME=str(tmp / "config"))

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opsjobs", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp,
        )

    try:
        made = cli("keys", "create", "--email", CARA, "--roles", "debug")
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        assert cli("login", stdin=key + "\n").returncode == 0
        submitted = cli("submit", "--name", "from-the-cli", "--command", "print('hi')", "--wait")
        assert submitted.returncode == 0, submitted.stderr
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        yield {"server": server, "key": key, "cli": cli, "login_file": tmp / "config"}
    finally:
        server.stop()


def watched(browser: Any, base: str, width: int = 1280) -> tuple[Any, dict[str, list[str]]]:
    """A fresh page that records requests off the server, failed ones and console errors."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    seen: dict[str, list[str]] = {"outside": [], "failed": [], "errors": []}
    context.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((base + "/", "data:", "blob:"))
            else seen["outside"].append(r.url)
        ),
    )
    context.on("requestfailed", lambda r: seen["failed"].append(f"failed {r.url}"))
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    return page, seen


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(".opsjobs-results-table")


def test_the_cli_login_and_the_dashboard_are_one_identity(
    browser: Any, site: dict[str, Any]
) -> None:
    who = site["cli"]("whoami").stdout
    assert f"user:   {CARA}" in who and "opsjobs login" in who
    base = site["server"].base
    page, seen = watched(browser, base)
    sign_in(page, base, site["key"])
    table = page.locator(".opsjobs-results-table")
    assert "from-the-cli" in table.inner_text()  # submitted by the CLI as cara
    # the server's own start-up analysis is the system owner's, listed for her too
    wait_for(lambda: "memory-analysis" in _refreshed(page), 120, "the system analysis")
    row = page.locator(".opsjobs-results-table tr", has_text="memory-analysis").first
    shown = site["server"].api(site["key"]).get(f"{API}/jobs/{row.get_attribute('data-job')}")
    assert shown.json()["job"]["owner"] == "system"
    page.get_by_role("tab", name="Schedules").click()
    schedule = page.wait_for_selector(
        '.opsjobs-schedules-table tr[data-schedule="memory-analysis"]'
    )
    assert "system" in schedule.inner_text()
    assert "Pause" not in schedule.inner_text()  # read-only for her
    page.context.close()
    assert seen["outside"] == [] and seen["errors"] == [], seen


def _refreshed(page: Any) -> str:
    page.reload()
    page.wait_for_selector(".opsjobs-results-table")
    return str(page.locator(".opsjobs-results-table").inner_text())


def test_the_server_schedule_is_listed_for_a_non_admin_who_cannot_delete_its_jobs(
    site: dict[str, Any],
) -> None:
    api = site["server"].api(site["key"])
    schedules = api.get(f"{API}/schedules").json()["schedules"]
    mine = [s for s in schedules if s["name"] == "memory-analysis"]
    assert mine and mine[0]["job"]["owner"] == "system"
    assert api.get(f"{API}/schedules/memory-analysis").status_code == 200
    assert api.patch(f"{API}/schedules/memory-analysis", json={"enabled": False}).status_code == 403
    assert api.delete(f"{API}/schedules/memory-analysis").status_code == 403
    jobs = wait_for(
        lambda: [
            j
            for j in api.get(f"{API}/jobs?name=memory-analysis").json()["jobs"]
            if j["state"] not in ("queued", "running")
        ],
        120,
        "a finished system analysis",
    )
    seed = api.get(f"{SEED}/jobs/results").json()["results"]  # the seed's listing: the same
    assert jobs[0]["id"] in {r["JobID"] for r in seed}
    refused = api.delete(f"{API}/jobs/{jobs[0]['id']}")
    assert refused.status_code == 403 and "only an admin" in refused.json()["error"]
    assert site["cli"]("delete", jobs[0]["id"]).returncode == 2  # nor from the CLI


def test_sign_in_page_wrong_key_and_sign_out(browser: Any, site: dict[str, Any]) -> None:
    base = site["server"].base
    for width in WIDTHS:
        page, seen = watched(browser, base, width)
        page.goto(base + "/login")
        assert page.get_by_label("API key").count() == 1
        assert page.locator("input").count() == 2  # the key and the hidden _xsrf field
        page.screenshot(path=str(ARTIFACTS / f"signin-{width}.png"))
        page.get_by_label("API key").fill("oj_0000000000_" + "x" * 43)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/login?wrong_key=1*")
        error = page.get_by_role("alert")
        assert "not accepted" in error.inner_text() and "revoked" in error.inner_text()
        page.screenshot(path=str(ARTIFACTS / f"signin-wrong-{width}.png"))
        page.context.close()
        assert seen["outside"] == [] and seen["failed"] == [] and seen["errors"] == [], seen

    for width in WIDTHS:
        page, seen = watched(browser, base, width)
        sign_in(page, base, site["key"])
        header = page.locator(".oj-header")
        assert CARA in header.inner_text()
        header.screenshot(path=str(ARTIFACTS / f"header-{width}.png"))
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{width}.png"))
        box = page.get_by_role("button", name="Sign out").bounding_box()
        assert box is not None and box["x"] + box["width"] <= width  # not cut off
        assert any(c["name"].startswith("username-") for c in page.context.cookies())
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login?signed_out=1")
        assert "You are signed out." in page.get_by_role("status").inner_text()
        assert not any(c["name"].startswith("username-") for c in page.context.cookies())
        page.goto(base + "/opsjobs/")  # the dashboard again: back to the sign-in page
        page.wait_for_url("**/login?next=*")
        page.context.close()
        assert seen["outside"] == [] and seen["errors"] == [], seen
