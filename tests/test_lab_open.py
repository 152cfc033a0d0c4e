"""The dashboard's "Open in JupyterLab": ``GET /jobs/{id}/lab`` copies a notebook job's executed
notebook into the Lab user's own folder and redirects there; only to users who may use Lab, for
jobs they may see, and never over a copy they have changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from harness import ROOT
from server_harness import ServerThread

from opsjobs.client import Client
from opsjobs.config import Settings
from opsjobs.dashboard.render import job_actions
from opsjobs.model import JobState
from opsjobs.store import open_store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning"),
]
EXPLORER, OTHER = "explorer@example.org", "other@example.org"
API = "/opsjobs/api/v1"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    server = ServerThread(tmp_path_factory.mktemp("labopen"), lab=True, memory_analysis=None)
    server.start()
    store = open_store(server.store_url)
    client = Client(store, Settings(data_dir=server.data, store_url=server.store_url))
    try:
        ok = str(ROOT / "tests" / "notebooks" / "ok.ipynb")
        jobs = {
            "mine": client.submit("daily check", notebook=ok, owner=EXPLORER),
            "theirs": client.submit("their check", notebook=ok, owner=OTHER),
            "command": client.submit("plain", command="print(1)", owner=EXPLORER),
        }
        for job in jobs.values():
            assert client.wait(job.id, timeout=120).state is JobState.SUCCEEDED
        yield {"server": server, "client": client, "jobs": jobs}
    finally:
        client.close()
        server.stop()


def test_a_lab_user_gets_a_copy_in_their_folder_and_is_sent_to_it(site: dict[str, Any]) -> None:
    server: ServerThread = site["server"]
    job = site["jobs"]["mine"]
    api = server.api(server.key(EXPLORER, roles="explore"))
    resp = api.get(f"{API}/jobs/{job.id}/lab")
    assert resp.status_code == 302, resp.text
    where = resp.headers["Location"]
    assert where == f"/lab/tree/opsjobs-lab/{EXPLORER}/daily-check-{job.id[:8]}.ipynb"
    copy = server.root / where.removeprefix("/lab/tree/")
    executed = server.data / "outputs" / f"{job.id}.ipynb"
    assert copy.read_bytes() == executed.read_bytes()
    assert api.get(where).status_code == 200  # Lab opens it
    # a copy the user changed is kept: a second open sends them to it again, unchanged
    copy.write_text(json.dumps({**json.loads(copy.read_text()), "metadata": {"mine": 1}}))
    again = api.get(f"{API}/jobs/{job.id}/lab")
    assert again.headers["Location"] == where
    assert json.loads(copy.read_text())["metadata"] == {"mine": 1}


def test_no_copy_without_the_role_of_another_users_job_or_of_a_non_notebook(
    site: dict[str, Any],
) -> None:
    server: ServerThread = site["server"]
    jobs = site["jobs"]
    explorer = server.api(server.key(EXPLORER, roles="explore"))
    debug = server.api(server.key("debugger@example.org", roles="debug"))
    assert debug.get(f"{API}/jobs/{jobs['mine'].id}/lab").status_code == 403
    assert explorer.get(f"{API}/jobs/{jobs['theirs'].id}/lab").status_code == 404
    assert explorer.get(f"{API}/jobs/{jobs['command'].id}/lab").status_code == 404
    assert explorer.get(f"{API}/jobs/not-an-id/lab").status_code == 422
    assert server.api(None).get(f"{API}/jobs/{jobs['mine'].id}/lab").status_code == 401
    assert not (server.root / "opsjobs-lab" / "debugger@example.org").exists()


def test_the_detail_view_offers_lab_to_lab_users_on_finished_notebook_jobs(
    site: dict[str, Any],
) -> None:
    jobs, client = site["jobs"], site["client"]
    mine = client.get(jobs["mine"].id)
    link = f'href="{API}/jobs/{mine.id}/lab"'
    assert link in job_actions(mine, may_submit=False, may_use_lab=True)
    assert link not in job_actions(mine, may_submit=True, may_use_lab=False)
    plain = client.get(jobs["command"].id)
    assert "Open in JupyterLab" not in job_actions(plain, may_submit=True, may_use_lab=True)
