"""``opsjobs lab --no-browser`` answers on its port with the catalog, and a notebook opened
through JupyterLab's REST API runs in a kernel on the command's store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from harness import ROOT, cli_env, run_cli, settings_for, wait_for
from lab_kernel import run_code
from server_harness import free_port

from opsjobs.config import Settings
from opsjobs.demo import build
from opsjobs.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
TOKEN = "lab-test-token-5d1c"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True)
    store = open_store(settings.store_url)
    try:
        build(store)
    finally:
        store.close()
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(path, catalog / path.name)
    port = free_port()
    env = cli_env(settings, OPSJOBS_NOTEBOOKS=str(catalog), JUPYTER_TOKEN=TOKEN)
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "jupyter-config")  # no user config
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "jupyter-runtime")
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsjobs", "lab", "--no-browser", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"opsjobs lab exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            return requests.get(f"{base}/api/status", timeout=2, headers=_auth()).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, 90, "opsjobs lab to answer")
        yield base, settings
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # the process we started (Lab, after exec)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


def _auth() -> dict[str, str]:
    return {"Authorization": f"token {TOKEN}"}


def test_lab_serves_the_catalog_and_runs_explore_results_on_the_store(
    lab: tuple[str, Settings],
) -> None:
    base, _settings = lab
    page = requests.get(f"{base}/lab", headers=_auth(), timeout=30)
    assert page.status_code == 200 and "JupyterLab" in page.text
    listing = requests.get(f"{base}/api/contents", headers=_auth(), timeout=30).json()
    assert {"explore_results.ipynb", "health_check.ipynb"} <= {
        c["name"] for c in listing["content"]
    }
    nb = requests.get(
        f"{base}/api/contents/explore_results.ipynb?content=1", headers=_auth(), timeout=30
    ).json()
    body = {"path": "explore_results.ipynb", "type": "notebook", "name": "explore_results.ipynb",
            "kernel": {"name": "python3"}}  # fmt: skip
    session = requests.post(f"{base}/api/sessions", json=body, headers=_auth(), timeout=60)
    assert session.status_code == 201, session.text
    kernel = session.json()["kernel"]["id"]
    for cell in nb["content"]["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = cell["source"].replace("plt.show()", "plt.close('all')")
        done = run_code(base, kernel, source, headers=_auth())
        assert done["error"] is None, (source[:200], done)
    shown = run_code(
        base,
        kernel,
        "import os\nprint(len(runs), len(trends), os.environ['OPSJOBS_STORE'].startswith('sqlite:///'))",
        headers=_auth(),
    )
    assert shown["stdout"].split() == ["334", "4", "True"]  # the sample store's jobs, workers


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    for args in (["--port", "70000"], []):
        extra = {"OPSJOBS_NOTEBOOKS": str(tmp_path / "missing")}
        done = run_cli(settings, "lab", "--no-browser", *args, **extra)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("opsjobs: error:")
