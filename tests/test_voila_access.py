"""Voila renders the dashboard notebook only, to signed-in users: every notebook of the repository
(the catalog ``notebooks/`` and the test scenarios) is walked through every Voila and Jupyter
route with a key that has no role, and with none; nothing but the dashboard answers, nothing of
another user's jobs shows, and no second store appears beside the notebooks."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from harness import ROOT
from server_harness import ServerThread

from opsjobs.client import Client
from opsjobs.config import Settings
from opsjobs.store import open_store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning"),
]

SECRET = "payload-of-someone-else-7f3a"
NOTEBOOKS = sorted(
    {
        p.name: p
        for p in [
            *(ROOT / "notebooks").glob("*.ipynb"),
            *(ROOT / "tests" / "notebooks").glob("*.ipynb"),
        ]
    }.items()
)
#: Every route of Voila and of Jupyter that reads, lists, renders or runs a notebook by path.
ROUTES = [
    ("GET", "/voila/render/{nb}"),
    ("GET", "/voila/render/./{nb}"),
    ("GET", "/voila/render/sub/../{nb}"),
    ("GET", "/voila/tree/{nb}"),
    ("GET", "/voila/files/{nb}"),
    ("GET", "/voila/api/contents/{nb}"),
    ("GET", "/api/contents/{nb}"),
    ("GET", "/api/contents/{nb}?content=1"),
    ("GET", "/files/{nb}"),
    ("GET", "/nbconvert/html/{nb}"),
    ("GET", "/nbconvert/script/{nb}?download=true"),
    ("GET", "/view/{nb}"),
    ("GET", "/notebooks/{nb}"),
    ("GET", "/edit/{nb}"),
    ("GET", "/tree/{nb}"),
    ("GET", "/lab/tree/{nb}"),
    ("GET", "/doc/tree/{nb}"),
]
LISTINGS = [
    ("GET", "/voila"),
    ("GET", "/voila/tree"),
    ("GET", "/voila/api/contents"),
    ("GET", "/api/contents"),
    ("GET", "/api/sessions"),
    ("GET", "/api/kernels"),
    ("GET", "/api/terminals"),
    ("GET", "/tree"),
    ("GET", "/lab"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("voila")
    server = ServerThread(tmp, voila=True, worker=False, scheduler=False, memory_analysis=None)
    for name, path in NOTEBOOKS:
        shutil.copy(path, server.root / name)
    (server.root / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + SECRET.encode())
    server.start()
    store = open_store(server.store_url)
    try:  # someone else's job, which a key without a role must never see
        settings = Settings(data_dir=server.data, store_url=server.store_url, user="admin")
        Client(store, settings).submit(
            "secret-job", command=f"print({SECRET!r})", owner="admin@example.org"
        )
    finally:
        store.close()
    yield server
    server.stop()


def _get(
    server: ServerThread, method: str, path: str, key: str | None, timeout: float = 20
) -> requests.Response:
    """The answer; a refusal is immediate, so a request still running after ``timeout`` seconds
    (a notebook being executed) is a leak: a 599 stands for it."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        return requests.request(
            method, server.base + path, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.ReadTimeout:
        resp = requests.Response()
        resp.status_code, resp._content = 599, b"timed out: the notebook was being run"
        return resp


def _refused(resp: requests.Response, signed_in: bool) -> bool:
    if signed_in:
        return resp.status_code in (403, 404)
    # without a key: a 401/403/404, or a redirect to the login page
    return resp.status_code in (401, 403, 404) or (
        resp.status_code == 302 and "/login" in resp.headers.get("Location", "")
    )


@pytest.mark.parametrize("signed_in", [True, False], ids=["no-role-key", "no-key"])
def test_no_notebook_but_the_dashboard_is_read_rendered_or_run(
    server: ServerThread, signed_in: bool
) -> None:
    key = server.key("norole@example.org", "") if signed_in else None
    leaks = []
    for name, _path in NOTEBOOKS:
        for method, route in ROUTES:
            if name == "dashboard.ipynb" and route.startswith("/voila/render/"):
                continue  # the one thing served (below)
            resp = _get(server, method, route.format(nb=name), key)
            if not _refused(resp, signed_in) or SECRET in resp.text:
                leaks.append(f"{method} {route.format(nb=name)} -> {resp.status_code}")
    for method, route in [*LISTINGS, ("GET", "/voila/files/picture.png")]:
        resp = _get(server, method, route, key)
        if not _refused(resp, signed_in) or SECRET in resp.text or "ipynb" in resp.text:
            leaks.append(f"{method} {route} -> {resp.status_code}")
    for method, route in [("POST", "/api/kernels"), ("POST", "/api/sessions")]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        resp = requests.request(
            method,
            server.base + route,
            json={
                "path": "explore_results.ipynb",
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
            headers=headers,
            timeout=60,
            allow_redirects=False,
        )
        if not _refused(resp, signed_in):
            leaks.append(f"{method} {route} -> {resp.status_code}")
    assert not leaks, "\n".join(leaks)
    assert not (server.root / "data").exists(), "a second store appeared beside the notebooks"


def test_the_dashboard_renders_for_a_signed_in_user_in_their_scope(server: ServerThread) -> None:
    key = server.key("norole@example.org", "")
    page = _get(server, "GET", "/voila/render/dashboard.ipynb", key, timeout=120)
    assert page.status_code == 200
    assert SECRET not in page.text and "admin@example.org" not in page.text
    # its kernel has the server's store in its environment, not one of its working folder
    found = re.search(r'"kernelId": "([0-9a-f-]{36})"', page.text)
    assert found is not None, page.text[:300]
    kernel = server.app.kernel_manager.get_kernel(found.group(1))  # type: ignore[union-attr]
    env = psutil.Process(kernel.provisioner.pid).environ()
    assert env["OPSJOBS_STORE"] == server.store_url
    assert Path(env["OPSJOBS_DATA"]) == server.data.resolve()
    anonymous = _get(server, "GET", "/voila/render/dashboard.ipynb", None)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert not (server.root / "data").exists()


def test_a_notebook_in_a_subfolder_named_like_the_dashboard_is_not_served(
    server: ServerThread,
) -> None:
    sub = server.root / "sub"
    sub.mkdir(exist_ok=True)
    shutil.copy(ROOT / "notebooks" / "explore_results.ipynb", sub / "dashboard.ipynb")
    key = server.key("norole@example.org", "")
    for route in ("/voila/render/sub/dashboard.ipynb", "/voila/render//sub/dashboard.ipynb"):
        assert _get(server, "GET", route, key).status_code == 404, route


def test_a_rendered_notebook_leaves_no_signature_database_open(tmp_path: Path) -> None:
    # jupyter_server's notebook notary opened an SQLite signature database (in the user's
    # Jupyter data folder) for the first rendered notebook and never closed it: the file stayed
    # open until the process ended, where Python 3.13 reports "ResourceWarning: unclosed
    # database". Signatures are kept in memory now: no such file is opened at all.
    server = ServerThread(tmp_path, voila=True, worker=False, scheduler=False, memory_analysis=None)
    shutil.copy(ROOT / "notebooks" / "dashboard.ipynb", server.root / "dashboard.ipynb")
    server.start()
    try:
        key = server.key("someone@example.org", "")
        page = _get(server, "GET", "/voila/render/dashboard.ipynb", key, timeout=120)
        assert page.status_code == 200
    finally:
        server.stop()
    open_files = [f.path for f in psutil.Process().open_files()]
    assert not [f for f in open_files if "nbsignatures" in f], open_files
