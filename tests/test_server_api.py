"""The REST API in-process against the real server application: jupyter_server with the opsjobs
extension, on a free port, driven over HTTP."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from harness import wait_for
from server_harness import Api, ServerThread, failed, finished, submit, valid

from opsjobs.server.openapi import API, PROMETHEUS, SEED, document, operations

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    # no memory analysis: its schedule and jobs are the system owner's, which every user
    # sees (issue 18; tests/test_identity.py): these tests count a user's own
    s = ServerThread(tmp_path_factory.mktemp("server"), memory_analysis=None).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(server: ServerThread) -> Api:
    return server.api(server.key("admin@example.org", "debug,system_admin", is_test=True))


@pytest.fixture
def alice(server: ServerThread) -> Api:
    return server.api(server.key(f"alice-{uuid.uuid4().hex[:8]}@example.org", "debug"))


@pytest.fixture
def bob(server: ServerThread) -> Api:
    return server.api(server.key(f"bob-{uuid.uuid4().hex[:8]}@example.org", "task_manager"))


def concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", str(uuid.uuid4()), path)


# -- authentication -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header", [None, "Bearer nope", "Bearer oj_abcdefghij_" + "A" * 43, "token x"]
)
def test_every_route_refuses_requests_without_a_valid_key(
    server: ServerThread, header: str | None
) -> None:
    api = server.api(None)
    if header:
        api.session.headers["Authorization"] = header
    for path, methods in operations().items():
        for method in methods:
            resp = api.request(method.upper(), concrete(path), json={})
            assert failed(resp, 401), (method, path)


def test_a_revoked_key_stops_working(server: ServerThread) -> None:
    from opsjobs.auth import Auth, split_key
    from opsjobs.store import open_store

    key = server.key("revoked@example.org", "debug")
    api = server.api(key)
    valid(api.get(f"{API}/me"), "Me")
    store = open_store(server.store_url)
    Auth(store).revoke(split_key(key) or "")
    store.close()
    failed(api.get(f"{API}/me"), 401)


def test_me_describes_the_caller(admin: Api) -> None:
    user = valid(admin.get(f"{API}/me"), "Me")["user"]
    assert user["email"] == "admin@example.org" and user["sees_all"] and user["may_submit"]


# -- jobs -----------------------------------------------------------------------------------------
def test_submit_get_list_delete(alice: Api) -> None:
    job = submit(alice, name="greet", command="print('hi there')", mode="thread")
    assert job["state"] == "queued" and job["owner"].startswith("alice-")
    done = finished(alice, job["id"])
    assert done["state"] == "succeeded" and done["output"] == "hi there\n"
    listed = valid(alice.get(f"{API}/jobs", params={"state": "succeeded", "total": 1}), "JobList")
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["total"] == 1
    assert "output" not in listed["jobs"][0]
    valid(alice.delete(f"{API}/jobs/{job['id']}"), "Deleted")
    failed(alice.get(f"{API}/jobs/{job['id']}"), 404)


def test_inline_jobs_run_on_the_servers_event_loop(server: ServerThread, alice: Api) -> None:
    source = "import threading; print(threading.current_thread().name)"
    job = submit(alice, command=source, mode="MainLoop")
    assert job["mode"] == "inline"
    assert finished(alice, job["id"])["output"] == "test-server\n"  # the server's loop thread


def test_list_filters_sorts_and_pages(alice: Api) -> None:
    ids = [submit(alice, name=f"page-{i}", command=f"print({i})")["id"] for i in range(5)]
    for job_id in ids:
        finished(alice, job_id)
    page = valid(
        alice.get(f"{API}/jobs", params={"sort": "name", "limit": 2, "offset": 1, "total": "true"}),
        "JobList",
    )
    assert [j["name"] for j in page["jobs"]] == ["page-1", "page-2"]
    assert page["total"] == 5 and page["count"] == 2
    named = valid(alice.get(f"{API}/jobs", params={"name": "page-4"}), "JobList")
    assert [j["id"] for j in named["jobs"]] == [ids[4]]
    stats = valid(alice.get(f"{API}/stats"), "Stats")["stats"]
    assert stats["total"] == 5 and stats["succeeded"] == 5


def test_cancel_a_queued_job(server: ServerThread, alice: Api) -> None:
    job = submit(alice, queue="nobody-serves-this", command="print(1)")
    cancelled = valid(alice.post(f"{API}/jobs/{job['id']}/cancel"), "JobReply")["job"]
    assert cancelled["state"] == "cancelled"


def test_a_second_user_sees_nothing_of_the_first(alice: Api, bob: Api) -> None:
    job = submit(alice, command="print('secret')")
    finished(alice, job["id"])
    assert valid(bob.get(f"{API}/jobs"), "JobList")["jobs"] == []
    assert valid(bob.get(f"{API}/jobs", params={"all": "1"}), "JobList")["jobs"] == []
    for resp in (
        bob.get(f"{API}/jobs/{job['id']}"),
        bob.delete(f"{API}/jobs/{job['id']}"),
        bob.post(f"{API}/jobs/{job['id']}/cancel"),
    ):
        failed(resp, 404)  # 404, not 403: ids do not leak
    assert valid(bob.get(f"{API}/stats"), "Stats")["stats"]["total"] == 0
    assert finished(alice, job["id"])["state"] == "succeeded"  # untouched


def test_admins_see_everyones_jobs_with_all(alice: Api, admin: Api) -> None:
    job = submit(alice, command="print(2)")
    own = valid(admin.get(f"{API}/jobs", params={"limit": 1000}), "JobList")
    assert job["id"] not in [j["id"] for j in own["jobs"]]
    everyone = valid(admin.get(f"{API}/jobs", params={"all": "1", "limit": 1000}), "JobList")
    assert job["id"] in [j["id"] for j in everyone["jobs"]]
    assert valid(admin.get(f"{API}/jobs/{job['id']}"), "JobReply")["job"]["id"] == job["id"]


def test_a_user_without_a_submitting_role_may_not_submit(server: ServerThread) -> None:
    reader = server.api(server.key("reader@example.org", ""))
    assert "roles" in failed(reader.post(f"{API}/jobs", json={"name": "x", "command": "1"}), 403)
    body = {"jobName": "x", "command": "1"}
    failed(reader.post(f"{SEED}/jobs/submit", json=body), 403)
    assert valid(reader.get(f"{API}/jobs", params={"total": 1}), "JobList")["total"] == 0


def test_workers_and_metrics(server: ServerThread, alice: Api) -> None:
    workers = valid(alice.get(f"{API}/workers"), "Workers")["workers"]
    assert any(w["hosted_here"] and w["alive"] for w in workers)
    source = "import opsjobs; opsjobs.record_metric('test_rss_mb', 12.5, host='h1')"
    finished(alice, submit(alice, command=source)["id"])
    points = valid(alice.get(f"{API}/metrics/test_rss_mb", params={"since": 0}), "Metrics")[
        "points"
    ]
    assert [(p["value"], p["labels"]) for p in points] == [(12.5, {"host": "h1"})]
    failed(alice.get(f"{API}/metrics/bad name!"), 422)


# -- bad requests ---------------------------------------------------------------------------------
BAD_SUBMITS = [
    (b"{not json", 400),
    (b"[1, 2]", 422),
    (b'{"name": 5, "command": "1"}', 422),
    (b'{"name": "x", "command": "1", "extra": true}', 422),
    (b'{"name": "x", "command": "1", "mode": "Fast"}', 422),
    (b'{"name": "x", "command": "1", "call": "os:getcwd"}', 422),
    (b'{"name": "x", "command": "def broken(:"}', 422),
    (b'{"name": "x", "argv": ["ls"], "mode": "thread"}', 422),
    (b'{"name": "x", "command": "1", "timeout": -1}', 422),
    (b'{"name": "x", "command": "1", "kwargs": "ab"}', 422),
    (b'{"name": "", "command": "1"}', 422),
    (b'{"name": "x", "command": "1", "queue": "bad queue"}', 422),
    (b"\xff\xfe", 400),
]


@pytest.mark.parametrize(("body", "status"), BAD_SUBMITS)
def test_bad_submits_change_nothing(admin: Api, body: bytes, status: int) -> None:
    before = valid(admin.get(f"{API}/jobs", params={"all": 1, "total": 1}), "JobList")["total"]
    assert isinstance(before, int)
    headers = {"Content-Type": "application/json"}
    failed(admin.post(f"{API}/jobs", data=body, headers=headers), status)
    seed_body = body.replace(b'"name"', b'"jobName"')
    assert admin.post(f"{SEED}/jobs/submit", data=seed_body, headers=headers).status_code in (
        400,
        422,
    )
    after = valid(admin.get(f"{API}/jobs", params={"all": 1, "total": 1}), "JobList")["total"]
    assert after == before


def test_bodies_over_the_limit_are_refused(admin: Api) -> None:
    big = b'{"name": "x", "command": "' + b"#" * (1 << 20) + b'"}'
    failed(admin.post(f"{API}/jobs", data=big, headers={"Content-Type": "application/json"}), 413)


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (f"{API}/jobs/not-a-uuid", {}, 422),
        (f"{API}/jobs", {"sort": "password"}, 422),
        (f"{API}/jobs", {"state": "sleeping"}, 422),
        (f"{API}/jobs", {"limit": "many"}, 422),
        (f"{API}/jobs", {"limit": "-1"}, 422),
        (f"{API}/jobs", {"all": "maybe"}, 422),
        (f"{API}/metrics/rss", {"since": "yesterday"}, 422),
        (f"{SEED}/jobs/results", {"maxResults": "0"}, 422),
    ],
)
def test_bad_queries_are_4xx(alice: Api, path: str, params: dict[str, str], status: int) -> None:
    failed(alice.get(path, params=params), status)


def test_deleting_a_running_job_conflicts(alice: Api) -> None:
    job = submit(
        alice,
        command="import time, opsjobs\nwhile not opsjobs.context().cancelled: time.sleep(0.01)",
    )
    wait_for(
        lambda: valid(alice.get(f"{API}/jobs/{job['id']}"), "JobReply")["job"]["state"] == "running"
    )
    failed(alice.delete(f"{API}/jobs/{job['id']}"), 409)
    valid(alice.post(f"{API}/jobs/{job['id']}/cancel"), "JobReply")
    assert finished(alice, job["id"])["state"] == "cancelled"


# -- the seed's routes ----------------------------------------------------------------------------
def test_seed_submit_results_delete(alice: Api) -> None:
    body = {
        "jobName": "MemoryAnalysis_20260123_143000",
        "command": "print('=== PSWebHost Memory Analysis ===')",
        "description": "Memory analysis snapshot",
        "executionMode": "MainLoop",
    }
    reply = valid(alice.post(f"{SEED}/jobs/submit", json=body), "SeedSubmitReply")
    assert reply == {
        "success": True,
        "jobId": reply["jobId"],
        "message": "Job submitted successfully",
        "executionMode": "MainLoop",
    }
    finished(alice, reply["jobId"])
    results = valid(alice.get(f"{SEED}/jobs/results", params={"maxResults": 50}), "SeedResults")
    assert results["count"] == 1
    (r,) = results["results"]
    assert set(r) == {
        "JobID", "JobName", "Command", "Description", "ExecutionMode", "DateStarted",
        "DateCompleted", "Runtime", "Output", "Success",
    }  # fmt: skip
    assert r["JobID"] == reply["jobId"] and r["JobName"] == body["jobName"]
    assert r["Command"] == body["command"] and r["Description"] == body["description"]
    assert r["ExecutionMode"] == "MainLoop" and r["Success"] is True
    assert r["Output"] == "=== PSWebHost Memory Analysis ===\n"
    assert r["DateStarted"].endswith("Z") and r["Runtime"] >= 0
    gone = valid(alice.delete(f"{SEED}/jobs/results", params={"jobId": r["JobID"]}), "SeedMessage")
    assert gone["message"] == "Job result deleted successfully"
    assert valid(alice.get(f"{SEED}/jobs/results"), "SeedResults")["count"] == 0
    failed(alice.delete(f"{SEED}/jobs/results", params={"jobId": r["JobID"]}), 404)
    failed(alice.delete(f"{SEED}/jobs/results"), 400)


@pytest.mark.parametrize("mode", ["MainLoop", "Runspace", "BackgroundJob", "thread"])
def test_seed_modes_answer_with_seed_names(alice: Api, mode: str) -> None:
    body = {"jobName": "m", "command": "print(1)", "executionMode": mode}
    reply = valid(alice.post(f"{SEED}/jobs/submit", json=body), "SeedSubmitReply")
    assert reply["executionMode"] == {"thread": "Runspace"}.get(mode, mode)
    result = finished(alice, reply["jobId"])
    assert result["state"] == "succeeded", result


def test_seed_listings(server: ServerThread, alice: Api) -> None:
    queued = submit(alice, queue="nobody-serves-this")
    jobs = valid(alice.get(f"{SEED}/jobs"), "SeedJobs")
    assert [j["JobID"] for j in jobs["jobs"]] == [queued["id"]]
    assert jobs["jobs"][0]["Status"] == "queued"
    runspaces = valid(alice.get(f"{SEED}/runspaces"), "SeedRunspaces")["runspaces"]
    assert server.extension.worker_id in [r["RunspaceID"] for r in runspaces]
    valid(alice.get(f"{SEED}/tasks"), "SeedTasks")
    alice.post(f"{API}/jobs/{queued['id']}/cancel")


# -- the rest of Jupyter is closed to key holders without JupyterLab (admins and the explore role
# get Lab: tests/test_lab_access.py) ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/contents"),
        ("GET", "/api/contents/x.ipynb"),
        ("PUT", "/api/contents/evil.py"),
        ("GET", "/api/sessions"),
        ("POST", "/api/sessions"),
        ("GET", "/api/kernels"),
        ("POST", "/api/kernels"),
        ("GET", "/api/terminals"),
        ("POST", "/api/terminals"),
        ("GET", "/api/config/x"),
        ("GET", "/api/nbconvert"),
        ("GET", "/files/x.txt"),
        ("GET", "/api/status"),
        ("POST", "/api/shutdown"),
    ],
)
def test_key_holders_cannot_reach_jupyter(
    server: ServerThread, alice: Api, method: str, path: str
) -> None:
    (server.root / "x.txt").write_text("secret")
    resp = alice.request(method, path, json={"type": "file", "name": "python3"})
    assert resp.status_code in (403, 404), (resp.status_code, resp.text[:200])
    assert "secret" not in resp.text


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/shutdown"), ("GET", "/api/terminals"), ("POST", "/api/terminals")],
)
def test_not_even_lab_users_stop_the_server_or_open_terminals(
    server: ServerThread, admin: Api, method: str, path: str
) -> None:
    resp = admin.request(method, path, json={})
    assert resp.status_code == 403, (resp.status_code, resp.text[:200])
    assert admin.get(f"{API}/me").status_code == 200  # still serving


def test_a_kernel_cannot_be_started_and_only_comm_messages_pass(server: ServerThread) -> None:
    km = server.app.kernel_manager  # type: ignore[union-attr]
    assert set(km.allowed_message_types) == {
        "comm_open", "comm_close", "comm_msg", "comm_info_request", "kernel_info_request",
    }  # fmt: skip
    assert server.app.web_app.settings.get("terminals_available") is not True  # type: ignore[union-attr]


# -- browser login --------------------------------------------------------------------------------
def test_the_login_page_accepts_a_key_and_revocation_ends_the_session(server: ServerThread) -> None:
    from opsjobs.auth import Auth, split_key
    from opsjobs.store import open_store

    key = server.key("browser@example.org", "debug")
    browser = requests.Session()
    root = browser.get(server.base + "/", timeout=30)  # → /opsjobs/ → the login page
    assert root.url.startswith(server.base + "/login"), root.url
    xsrf = browser.cookies.get("_xsrf")
    wrong = browser.post(
        server.base + "/login", data={"password": "nope", "_xsrf": xsrf}, timeout=30
    )
    # back to the sign-in page with a plain error (issue 18: a 303, not a 401 document that
    # Chromium would log as a console error), and no session
    assert wrong.history[0].status_code == 303 and wrong.status_code == 200
    assert "was not accepted" in wrong.text
    assert browser.get(server.base + f"{API}/me", timeout=30).status_code == 401
    ok = browser.post(
        server.base + "/login?next=%2Fopsjobs%2F", data={"password": key, "_xsrf": xsrf}, timeout=30
    )
    assert ok.status_code == 200 and "browser@example.org" in ok.text
    me = browser.get(server.base + f"{API}/me", timeout=30).json()
    assert me["user"]["email"] == "browser@example.org"
    # a cookie session must carry the XSRF token on writes
    resp = browser.post(server.base + f"{API}/jobs", json={"name": "x", "command": "1"}, timeout=30)
    assert resp.status_code == 403
    store = open_store(server.store_url)
    Auth(store).revoke(split_key(key) or "")
    store.close()
    assert browser.get(server.base + f"{API}/me", timeout=30).status_code == 401


def test_home_redirects_to_the_dashboard_when_it_exists(server: ServerThread, admin: Api) -> None:
    page = admin.get("/opsjobs/")
    assert page.status_code == 200 and "admin@example.org" in page.text
    (server.root / "dashboard.ipynb").write_text("{}")
    try:
        resp = admin.get("/opsjobs/")
        assert resp.status_code == 302
        assert resp.headers["Location"].endswith("/voila/render/dashboard.ipynb")
    finally:
        (server.root / "dashboard.ipynb").unlink()


# -- the OpenAPI document -------------------------------------------------------------------------
def test_openapi_document_matches_the_registered_routes(server: ServerThread, admin: Api) -> None:
    served = valid(admin.get(f"{API}/openapi.json"), "OpenApi")
    assert served == document()
    registered: dict[str, set[str]] = {}
    for rule in _rules(server.app.web_app.default_router):  # type: ignore[union-attr]
        pattern = getattr(rule.matcher, "regex", None)
        if pattern is None or not pattern.pattern.startswith((API, SEED, PROMETHEUS)):
            continue
        path = re.sub(r"\(\[\^/\]\+\)", "{}", pattern.pattern.rstrip("$"))
        handler = rule.target
        methods = {m for m in ("get", "post", "put", "patch", "delete") if m in handler.__dict__}
        registered[path] = methods
    documented = {re.sub(r"\{\w+\}", "{}", p): m for p, m in operations().items()}
    assert registered == documented


def _rules(router: Any) -> Iterator[Any]:
    """Every leaf rule of tornado's nested routers."""
    for rule in getattr(router, "rules", []):
        if hasattr(rule.target, "rules"):
            yield from _rules(rule.target)
        else:
            yield rule


def test_openapi_document_is_valid() -> None:
    from openapi_spec_validator import validate

    validate(document())  # type: ignore[arg-type]


def test_requests_are_timely(alice: Api) -> None:
    started = time.perf_counter()
    for _ in range(20):
        alice.get(f"{API}/jobs")
    assert (time.perf_counter() - started) / 20 < 0.5
