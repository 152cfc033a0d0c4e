"""JupyterLab in ``opsjobs serve``: served to admins and the ``explore`` role only (everyone
else: 403 on Lab, contents, kernels, terminals and sessions), and a kernel started from Lab sees
the store as its user — their own jobs, or everyone's for an admin."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator

import pytest
from harness import ROOT, wait_for
from lab_kernel import run_code
from server_harness import ServerThread

from opsjobs.client import Client
from opsjobs.config import Settings
from opsjobs.store import open_store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning"),
]

CLOSED = [
    ("GET", "/lab"),
    ("GET", "/lab/tree/explore_results.ipynb"),
    ("GET", "/lab/api/settings"),
    ("GET", "/api/contents"),
    ("GET", "/api/contents/explore_results.ipynb"),
    ("GET", "/api/kernels"),
    ("POST", "/api/kernels"),
    ("GET", "/api/terminals"),
    ("POST", "/api/terminals"),
    ("GET", "/api/sessions"),
    ("POST", "/api/sessions"),
]
SHOW_OWNERS = (
    "import opsjobs\n"
    "with opsjobs.connect() as c:\n"
    "    print(sorted({j.owner for j in c.results(limit=1000)}))\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("lab")
    server = ServerThread(
        tmp, voila=True, lab=True, worker=False, scheduler=False, memory_analysis=None
    )
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(path, server.root / path.name)
    server.start()
    store = open_store(server.store_url)
    try:
        client = Client(store, Settings(data_dir=server.data, store_url=server.store_url))
        for owner in ("explorer@example.org", "someone@example.org", "admin@example.org"):
            client.submit("owned", command="print(1)", owner=owner, queue="nobody")
    finally:
        store.close()
    yield server
    server.stop()


def _call(server: ServerThread, key: str | None, method: str, path: str) -> int:
    body = {"path": "x.ipynb", "type": "notebook", "name": "x", "kernel": {"name": "python3"}}
    resp = server.api(key).request(method, path, json=body if method == "POST" else None)
    return resp.status_code


@pytest.mark.parametrize("roles", ["", "debug", "operator", "task_manager"])
def test_lab_and_jupyter_are_closed_to_a_key_without_the_role(
    server: ServerThread, roles: str
) -> None:
    key = server.key(f"no-lab-{roles or 'none'}@example.org", roles=roles)
    answers = {f"{m} {p}": _call(server, key, m, p) for m, p in CLOSED}
    assert set(answers.values()) == {403}, answers


def test_without_a_key_lab_sends_to_the_login_page(server: ServerThread) -> None:
    resp = server.api(None).get("/lab")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_lab_opens_for_the_explore_role_but_terminals_stay_off(server: ServerThread) -> None:
    api = server.api(server.key("explorer@example.org", roles="explore"))
    page = api.get("/lab")
    assert page.status_code == 200 and "JupyterLab" in page.text
    listing = api.get("/api/contents")
    assert listing.status_code == 200
    assert "explore_results.ipynb" in {c["name"] for c in listing.json()["content"]}
    assert api.get("/api/terminals").status_code == 403
    assert api.get("/lab/api/settings").status_code == 200


def test_lab_asks_nothing_of_the_internet(server: ServerThread) -> None:
    """No news prompt ("get notified about official Jupyter news?": its plugin is off), no
    news feed, no update check: the machines that run this often have no internet."""
    api = server.api(server.key("explorer2@example.org", roles="explore"))
    page = api.get("/lab")
    found = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page.text, re.S
    )
    assert found, page.text[:500]
    config = json.loads(found.group(1))
    assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]
    assert config["news"] == {"disabled": True}
    assert api.get("/lab/api/update").json() == {"notification": None}


def _session_kernel(server: ServerThread, key: str, name: str) -> str:
    api = server.api(key)
    body = {"path": name, "type": "notebook", "name": name, "kernel": {"name": "python3"}}
    resp = api.post("/api/sessions", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["kernel"]["id"])


def test_a_lab_kernel_sees_the_store_as_its_user(server: ServerThread) -> None:
    explorer = server.key("explorer@example.org", roles="explore")
    kernel = _session_kernel(server, explorer, "mine.ipynb")
    auth = {"Authorization": f"Bearer {explorer}"}
    seen = run_code(server.base, kernel, SHOW_OWNERS, headers=auth)
    assert seen["error"] is None, seen
    assert seen["stdout"].strip() == "['explorer@example.org']"
    # another owner's jobs are refused, not quietly empty
    other = run_code(
        server.base,
        kernel,
        "import opsjobs\nopsjobs.connect().results(owner='someone@example.org')",
        headers=auth,
    )
    assert other["error"] is not None and "PermissionDenied" in other["error"]

    admin = server.key("admin@example.org", roles="system_admin")
    admin_kernel = _session_kernel(server, admin, "admin.ipynb")
    everyone = run_code(
        server.base, admin_kernel, SHOW_OWNERS, headers={"Authorization": f"Bearer {admin}"}
    )
    assert everyone["error"] is None, everyone
    assert json.loads(everyone["stdout"].strip().replace("'", '"')) == [
        "admin@example.org",
        "explorer@example.org",
        "someone@example.org",
    ]


def test_explore_results_runs_in_a_lab_kernel_and_gets_the_frames(server: ServerThread) -> None:
    admin = server.key("admin2@example.org", roles="site_admin")
    api = server.api(admin)
    nb = api.get("/api/contents/explore_results.ipynb?content=1")
    assert nb.status_code == 200
    cells = [c for c in nb.json()["content"]["cells"] if c["cell_type"] == "code"]
    kernel = _session_kernel(server, admin, "explore_results.ipynb")
    auth = {"Authorization": f"Bearer {admin}"}
    for cell in cells:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        done = run_code(
            server.base, kernel, source.replace("plt.show()", "plt.close('all')"), headers=auth
        )
        assert done["error"] is None, (source[:200], done)
    frames = run_code(
        server.base,
        kernel,
        "print(len(runs), list(per_name.columns), list(percentiles.columns))",
        headers=auth,
    )
    assert frames["stdout"].split()[0] == "3"  # the three jobs this server's store holds
    assert "failure_pct" in frames["stdout"] and "p90_s" in frames["stdout"]
    wait_for(lambda: api.delete(f"/api/kernels/{kernel}").status_code == 204, 30, "shutdown")
