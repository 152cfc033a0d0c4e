"""JupyterLab through ``opsjobs serve`` in a real Chromium: an ``explore`` key signs in on the
login page and Lab loads with the catalog in its file browser; a key without the role gets 403
on ``/lab``. Screenshots land in ``artifacts/lab/`` (git-ignored)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from browser import launch_chromium, need_chromium
from harness import ROOT

ARTIFACTS = ROOT / "artifacts" / "lab"
TIMEOUT = 90_000  # ms: Lab's first load builds its page from many bundles

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    need_chromium()
    from server_harness import ServerThread

    server = ServerThread(
        tmp_path_factory.mktemp("labui"),
        voila=True,
        lab=True,
        worker=False,
        scheduler=False,
        memory_analysis=None,
    )
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(path, server.root / path.name)
    server.start()
    try:
        keys = {
            "explorer": server.key("explorer@example.org", roles="explore"),
            "debugger": server.key("debugger@example.org", roles="debug"),
        }
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        yield {"server": server, "keys": keys}
    finally:
        server.stop()


def _signed_in(browser: Any, site: dict[str, Any], who: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(site["server"].base + "/login")
    page.fill("input[name=password]", site["keys"][who])
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state()
    return page


def test_lab_loads_for_the_explore_role_and_not_for_others(site: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = _signed_in(browser, site, "explorer")
            page.goto(site["server"].base + "/lab")
            # the file browser lists the catalog
            page.wait_for_selector(".jp-DirListing-item >> text=explore_results.ipynb")
            page.screenshot(path=str(ARTIFACTS / "lab-explorer.png"))
            assert page.title().endswith("JupyterLab")

            other = _signed_in(browser, site, "debugger")
            answer = other.goto(site["server"].base + "/lab")
            assert answer is not None and answer.status == 403
            other.screenshot(path=str(ARTIFACTS / "lab-refused.png"))
        finally:
            browser.close()
