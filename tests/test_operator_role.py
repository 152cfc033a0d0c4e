"""The ``operator`` role runs no code of its own: only notebooks of the server's catalog and the
``call`` functions on ``OPSJOBS_ALLOWED_CALLS``. The live analysis (a thread job inside the
server process) needs a role that may run code."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ROOT
from server_harness import Api, ServerThread, failed, finished, valid

from opsjobs.auth import Auth, RunPolicy, User
from opsjobs.client import Client
from opsjobs.dashboard.data import DashboardData, SubmitForm
from opsjobs.errors import PermissionDenied
from opsjobs.server.openapi import API
from opsjobs.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SEED = "/apps/WebHostTaskManagement/api/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    mp = pytest.MonkeyPatch()
    mp.setenv("OPSJOBS_ALLOWED_CALLS", "jobfuncs:add, jobfuncs:measured")
    mp.syspath_prepend(str(ROOT / "tests"))
    s = ServerThread(tmp_path_factory.mktemp("operator"), memory_analysis=None)
    shutil.copy(ROOT / "tests" / "notebooks" / "ok.ipynb", s.root / "ok.ipynb")
    s.start()
    yield s
    s.stop()
    mp.undo()


@pytest.fixture(scope="module")
def operator(server: ServerThread) -> Api:
    return server.api(server.key("op@example.org", "operator"))


@pytest.mark.parametrize(
    "body",
    [
        {"command": "import os; os.system('id')"},
        {"argv": ["id"], "mode": "process"},
        {"call": "os:system", "kwargs": {"command": "id"}},
        {"call": "jobfuncs:boom"},
    ],
    ids=["command", "argv", "call-os-system", "call-not-allowed"],
)
def test_an_operator_cannot_run_code_of_its_own(operator: Api, body: dict[str, object]) -> None:
    assert "operator" in failed(operator.post(f"{API}/jobs", json={"name": "x", **body}), 403)


def test_an_operator_runs_allowed_calls_and_catalog_notebooks(
    server: ServerThread, operator: Api
) -> None:
    call = valid(
        operator.post(
            f"{API}/jobs", json={"name": "c", "call": "jobfuncs:add", "kwargs": {"a": 2, "b": 3}}
        ),
        "JobReply",
        201,
    )["job"]
    assert finished(operator, call["id"])["state"] == "succeeded"
    nb = valid(
        operator.post(f"{API}/jobs", json={"name": "n", "notebook": "ok.ipynb", "mode": "process"}),
        "JobReply",
        201,
    )["job"]
    assert nb["kind"] == "notebook"
    for outside in ("../ok.ipynb", "/etc/passwd", "missing.ipynb", "sub/ok.ipynb"):
        resp = operator.post(f"{API}/jobs", json={"name": "n", "notebook": outside})
        assert resp.status_code in (403, 422), (outside, resp.text)


def test_the_seed_route_schedules_and_analysis_follow_the_role(
    server: ServerThread, operator: Api
) -> None:
    seed = operator.post(f"{SEED}/jobs/submit", json={"jobName": "s", "command": "print(1)"})
    assert seed.status_code == 403
    schedule = {"name": "op-s", "every": "1h"}
    failed(operator.post(f"{API}/schedules", json={**schedule, "command": "1"}), 403)
    valid(
        operator.post(f"{API}/schedules", json={**schedule, "call": "jobfuncs:measured"}),
        "ScheduleReply",
        201,
    )
    failed(operator.post(f"{API}/analyze", json={}), 403)
    admin = server.api(server.key("ops-admin@example.org", "system_admin"))
    valid(admin.post(f"{API}/analyze", json={}), "JobReply", 201)


def test_the_dashboard_submit_follows_the_role(tmp_path: Path) -> None:
    store = open_store("memory://")
    from harness import settings_for

    client = Client(store, settings_for(tmp_path))
    user = User("u1", "op@example.org", "op", ("operator",), False, 0.0)
    catalog, outside = tmp_path / "catalog", tmp_path / "outside"
    for folder in (catalog, outside):
        folder.mkdir()
        shutil.copy(ROOT / "tests" / "notebooks" / "ok.ipynb", folder / "ok.ipynb")
    policy = RunPolicy(allowed_calls=frozenset({"jobfuncs:add"}), catalog=catalog)
    data = DashboardData(client, user, policy=policy)
    with pytest.raises(PermissionDenied):
        data.submit(SubmitForm(name="x", kind="command", target="print(1)"))
    with pytest.raises(PermissionDenied):
        data.submit(SubmitForm(name="x", kind="notebook", target=str(outside / "ok.ipynb")))
    with pytest.raises(PermissionDenied):
        data.submit(SubmitForm(name="x", kind="call", target="jobfuncs:boom"))
    job = data.submit(SubmitForm(name="x", kind="call", target="jobfuncs:add"))
    assert job.owner == "op@example.org"
    nb = data.submit(SubmitForm(name="n", kind="notebook", target=str(catalog / "ok.ipynb")))
    assert nb.kind == "notebook"
    assert Auth.may_access(user, job)
    store.close()


def test_allowed_calls_come_from_the_environment_and_are_checked() -> None:
    from opsjobs.config import Settings
    from opsjobs.errors import ConfigError

    env = {"OPSJOBS_ALLOWED_CALLS": " jobfuncs:add,pkg.mod:f , jobfuncs:add"}
    assert Settings.from_env(env).allowed_calls == ("jobfuncs:add", "pkg.mod:f")
    with pytest.raises(ConfigError, match="allowed call"):
        Settings.from_env({"OPSJOBS_ALLOWED_CALLS": "print(1)"})
