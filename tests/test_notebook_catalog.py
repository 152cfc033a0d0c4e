"""The notebook catalog and typed parameters: :mod:`opsjobs.notebooks` on its own, then through
the Python API, the CLI and the REST API (catalog listing, path containment, submits and
schedules of notebook jobs)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import run_cli, settings_for
from server_harness import Api, ServerThread, failed, valid

from opsjobs.client import Client
from opsjobs.errors import ValidationError
from opsjobs.notebooks import Catalog, Inspector, check_parameters
from opsjobs.server.openapi import API
from opsjobs.store import open_store

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "tests" / "notebooks"
HEALTH = ROOT / "notebooks" / "health_check.ipynb"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for name in ("typed_parameters.ipynb", "ok.ipynb"):
        shutil.copy(NOTEBOOKS / name, folder / name)
    shutil.copy(HEALTH, folder / "health_check.ipynb")
    outside = tmp_path / "outside.ipynb"
    shutil.copy(NOTEBOOKS / "ok.ipynb", outside)
    os.symlink(outside, folder / "escape.ipynb")
    return folder


# -- the catalog on its own ---------------------------------------------------------------------
def test_the_catalog_lists_titles_and_typed_parameters(catalog_dir: Path) -> None:
    found = {n.path: n for n in Catalog(catalog_dir).list()}
    assert sorted(found) == ["health_check.ipynb", "ok.ipynb", "typed_parameters.ipynb"]
    health = found["health_check.ipynb"]
    assert health.title == "opsjobs health check"
    disk = health.parameters[0].to_dict()
    assert disk == {
        "name": "max_disk_pct",
        "type": "float",
        "default": 90.0,
        "default_text": "90.0",
        "help": "use of the file system holding the data folder, %",
    }
    types = {p.name: p.type for p in found["typed_parameters.ipynb"].parameters}
    assert types == {
        "count": "int",
        "ratio": "float",
        "enabled": "bool",
        "label": "str",
        "nothing": "str",
        "items": "list",
    }
    assert {p.name: p.type for p in health.parameters}["max_cpu_pct"] == "any"  # None default


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../outside.ipynb", "leaves the catalog"),
        ("../../etc/passwd", "leaves the catalog"),
        ("/etc/passwd", "not an absolute one"),
        ("escape.ipynb", "out of the catalog"),
        ("missing.ipynb", "no notebook"),
        ("sub/ok.ipynb", "directly in its folder"),
        ("ok.txt", "not a .ipynb"),
        ("", "relative to the catalog"),
    ],
)
def test_names_outside_the_catalog_are_refused(catalog_dir: Path, name: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Catalog(catalog_dir).resolve(name)


def test_inspection_is_cached_by_path_and_mtime(catalog_dir: Path) -> None:
    inspector = Inspector()
    path = catalog_dir / "ok.ipynb"
    first = inspector.inspect(path)
    assert inspector.inspect(path) is first
    nb = json.loads(path.read_text())
    nb["cells"][1]["source"] = "greeting = 'hi'\nloud = True"
    path.write_text(json.dumps(nb))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert [p.name for p in inspector.inspect(path).parameters] == ["greeting", "loud"]


def test_parameters_are_checked_and_coerced(catalog_dir: Path) -> None:
    info = Catalog(catalog_dir).info("typed_parameters.ipynb")
    got = check_parameters(
        info,
        {"count": "5", "ratio": 2, "enabled": "true", "label": 85, "items": "[1, 2]"},
    )
    assert got == {"count": 5, "ratio": 2.0, "enabled": True, "label": "85", "items": [1, 2]}
    assert check_parameters(info, {"nothing": None}) == {"nothing": None}
    with pytest.raises(ValidationError, match="declares only count, ratio, enabled"):
        check_parameters(info, {"cuont": 1})
    assert check_parameters(info, {"cuont": 1}, allow_unknown=True) == {"cuont": 1}
    for name, value in [("count", "many"), ("count", True), ("enabled", 3), ("items", {"a": 1})]:
        with pytest.raises(ValidationError, match=f"parameter '{name}'"):
            check_parameters(info, {name: value})


def test_a_notebook_without_a_parameters_cell_accepts_none(tmp_path: Path) -> None:
    nb = {
        "cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "plain.ipynb").write_text(json.dumps(nb))
    info = Catalog(tmp_path).info("plain.ipynb")
    assert not info.has_parameters_cell and info.title == "plain"
    with pytest.raises(ValidationError, match="no cell tagged 'parameters'"):
        check_parameters(info, {"x": 2})


# -- Python API and CLI -------------------------------------------------------------------------
def test_the_python_api_checks_parameters_at_submit_and_for_schedules(tmp_path: Path) -> None:
    client = Client(open_store("memory://"), settings_for(tmp_path))
    path = HEALTH
    with pytest.raises(ValidationError, match=r"max_disk_pcnt.*declares only max_disk_pct"):
        client.submit("h", notebook=path, parameters={"max_disk_pcnt": 85})
    job = client.submit("h", notebook=path, parameters={"max_disk_pct": "85"})
    assert job.spec.payload["parameters"] == {"max_disk_pct": 85.0}
    job = client.submit("h", notebook=path, parameters={"extra": 1}, allow_unknown=True)
    assert job.spec.payload["allow_unknown"] is True
    with pytest.raises(ValidationError, match="max_disk_pcnt"):
        client.schedules.add("s", every="1h", notebook=str(path), parameters={"max_disk_pcnt": 1})
    added = client.schedules.add(
        "s", every="1h", notebook=str(path), parameters={"min_alive_workers": "2"}
    )
    assert added.spec.payload["parameters"] == {"min_alive_workers": 2}
    client.close()


def test_the_cli_refuses_an_undeclared_parameter_in_one_line(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    base = ("submit", "--name", "h", "--notebook", str(HEALTH))
    done = run_cli(settings, *base, "-p", "max_disk_pcnt", "85")
    assert done.returncode == 2
    assert done.stderr.startswith("opsjobs: error: unknown parameter 'max_disk_pcnt'")
    assert "max_disk_pct, max_memory_pct" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = run_cli(settings, *base, "-p", "max_disk_pcnt", "85", "--allow-unknown")
    assert done.returncode == 0, done.stderr
    done = run_cli(settings, *base, "-p", "min_alive_workers", "two")
    assert done.returncode == 2 and "is a int" in done.stderr


def test_the_cli_lists_the_catalog(tmp_path: Path, catalog_dir: Path) -> None:
    settings = settings_for(tmp_path)
    done = run_cli(settings, "notebooks", OPSJOBS_NOTEBOOKS=str(catalog_dir))
    assert done.returncode == 0, done.stderr
    assert f"catalog: {catalog_dir}" in done.stdout
    assert "health_check.ipynb  opsjobs health check" in done.stdout
    assert "max_disk_pct: float = 90.0  # use of the file system" in done.stdout
    done = run_cli(settings, "notebooks", "--json", OPSJOBS_NOTEBOOKS=str(catalog_dir))
    listed = json.loads(done.stdout)
    assert listed["folder"] == str(catalog_dir)
    assert listed["notebooks"][0]["path"] == "health_check.ipynb"


# -- REST ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("catalog-server")
    s = ServerThread(tmp, memory_analysis=None)
    for name in ("typed_parameters.ipynb", "ok.ipynb", "long_running.ipynb"):
        shutil.copy(NOTEBOOKS / name, s.root / name)
    shutil.copy(HEALTH, s.root / "health_check.ipynb")
    shutil.copy(NOTEBOOKS / "ok.ipynb", tmp / "outside.ipynb")
    os.symlink(tmp / "outside.ipynb", s.root / "escape.ipynb")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(server: ServerThread) -> Api:
    return server.api(server.key("nb@example.org", "debug"))


def test_rest_lists_the_catalog(server: ServerThread, api: Api) -> None:
    body = valid(api.get(f"{API}/notebooks"), "NotebookList")
    assert body["folder"] == str(server.root.resolve())
    paths = [n["path"] for n in body["notebooks"]]
    assert paths == [
        "health_check.ipynb",
        "long_running.ipynb",
        "ok.ipynb",
        "typed_parameters.ipynb",
    ]
    typed = next(n for n in body["notebooks"] if n["path"] == "typed_parameters.ipynb")
    assert [(p["name"], p["type"], p["default"]) for p in typed["parameters"]][:3] == [
        ("count", "int", 0),
        ("ratio", "float", 0.0),
        ("enabled", "bool", False),
    ]
    failed(server.api(None).get(f"{API}/notebooks"), 401)


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "escape.ipynb", "..%2Fok.ipynb", "sub/ok.ipynb"]
)
def test_rest_refuses_notebooks_outside_the_catalog(api: Api, name: str) -> None:
    message = failed(api.post(f"{API}/jobs", json={"name": "n", "notebook": name}), 422)
    assert "notebook" in message
    schedule = {"name": "s-out", "every": "1h", "notebook": name}
    failed(api.post(f"{API}/schedules", json=schedule), 422)


def test_rest_submits_a_typed_notebook_job_and_refuses_a_misspelled_parameter(api: Api) -> None:
    body = {
        "name": "typed",
        "notebook": "typed_parameters.ipynb",
        "mode": "process",
        "parameters": {"count": 3, "ratio": 0.5, "enabled": True, "label": "x", "items": [1]},
    }
    job = valid(api.post(f"{API}/jobs", json=body), "JobReply", 201)["job"]
    done = _wait(api, job["id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["count"] == [3, "int"] and done["result"]["items"] == [[1], "list"]
    bad = {**body, "parameters": {"cuont": 3}}
    message = failed(api.post(f"{API}/jobs", json=bad), 422)
    assert "unknown parameter 'cuont'" in message and "count, ratio, enabled" in message
    wrong = {**body, "parameters": {"count": "many"}}
    assert "is a int" in failed(api.post(f"{API}/jobs", json=wrong), 422)
    loose = {**body, "parameters": {"cuont": 3}, "allow_unknown": True}
    valid(api.post(f"{API}/jobs", json=loose), "JobReply", 201)


def test_rest_schedules_take_notebook_jobs_checked_at_definition(api: Api) -> None:
    body = {
        "name": "nightly-health",
        "every": "1h",
        "notebook": "health_check.ipynb",
        "mode": "process",
        "parameters": {"max_disk_pct": 99},
    }
    made = valid(api.post(f"{API}/schedules", json=body), "ScheduleReply", 201)["schedule"]
    assert made["job"]["payload"]["parameters"] == {"max_disk_pct": 99.0}
    bad = {**body, "name": "bad-health", "parameters": {"max_disk_pcnt": 99}}
    assert "max_disk_pcnt" in failed(api.post(f"{API}/schedules", json=bad), 422)


def _wait(api: Api, job_id: str) -> dict[str, object]:
    from harness import wait_for

    def done() -> dict[str, object] | None:
        job = valid(api.get(f"{API}/jobs/{job_id}"), "JobReply")["job"]
        return job if job["state"] not in ("queued", "running") else None

    return wait_for(done, 120, f"job {job_id} to finish")


# -- downloads ----------------------------------------------------------------------------------
def test_downloads_of_a_notebook_job_are_owner_scoped(server: ServerThread, api: Api) -> None:
    import nbformat

    body = {
        "name": "dl",
        "notebook": "typed_parameters.ipynb",
        "mode": "process",
        "parameters": {"count": 7, "label": "web-1"},
    }
    job = valid(api.post(f"{API}/jobs", json=body), "JobReply", 201)["job"]
    assert _wait(api, job["id"])["state"] == "succeeded"
    results = server.data / "results" / job["id"]
    (results / "sub").mkdir(parents=True)
    (results / "census.csv").write_text("type,count\ndict,3\n")
    (results / "sub" / "more.csv").write_text("a\n1\n")
    (results / "escape.csv").symlink_to("/etc/passwd")
    listed = valid(api.get(f"{API}/jobs/{job['id']}/files"), "JobFiles")["files"]
    names = [f["name"] for f in listed]
    assert names == [
        "notebook.ipynb",
        "notebook.html",
        "output.log",
        "results/census.csv",
        "results/sub/more.csv",
    ]
    got = api.get(next(f["url"] for f in listed if f["name"] == "notebook.ipynb"))
    assert got.status_code == 200, got.text
    assert got.headers["Content-Disposition"].startswith(
        f'attachment; filename="dl-{job["id"][:8]}-notebook.ipynb"'
    )
    nb = nbformat.reads(got.text, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.papermill.parameters == {"count": 7, "label": "web-1"}
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "count = 7" in injected[0].source
    assert "opsjobs" in nb.metadata  # provenance
    html = api.get(f"{API}/jobs/{job['id']}/files/notebook.html")
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    log = api.get(f"{API}/jobs/{job['id']}/files/output.log")
    assert "[cell 0 (1/3)] count = 0" in log.text
    csv = api.get(f"{API}/jobs/{job['id']}/files/results%2Fsub%2Fmore.csv")
    assert csv.text == "a\n1\n" and csv.headers["Content-Type"].startswith("text/csv")
    for name in ("results%2Fescape.csv", "..%2F..%2Fopsjobs.db", "nope"):
        failed(api.get(f"{API}/jobs/{job['id']}/files/{name}"), 404)
    other = server.api(server.key("other@example.org", "debug"))
    failed(other.get(f"{API}/jobs/{job['id']}/files"), 404)
    failed(other.get(f"{API}/jobs/{job['id']}/files/notebook.ipynb"), 404)


# -- rerun, run-now overrides, schedule parameters ----------------------------------------------
def test_rerun_with_a_changed_parameter_links_both_jobs(server: ServerThread, api: Api) -> None:
    body = {
        "name": "again",
        "notebook": "typed_parameters.ipynb",
        "mode": "process",
        "parameters": {"count": 3, "label": "first"},
    }
    first = valid(api.post(f"{API}/jobs", json=body), "JobReply", 201)["job"]
    assert _wait(api, first["id"])["state"] == "succeeded"
    resp = api.post(f"{API}/jobs/{first['id']}/rerun", json={"parameters": {"count": 9}})
    second = valid(resp, "JobReply", 201)["job"]
    assert second["rerun_of"] == first["id"] and second["id"] != first["id"]
    assert second["payload"]["parameters"] == {"count": 9, "label": "first"}
    done = _wait(api, second["id"])
    assert done["state"] == "succeeded" and done["result"]["count"] == [9, "int"]
    assert done["peak_rss"] > 20 << 20  # the child's peak (wait4), the kernel included
    assert done["rerun_of"] == first["id"]
    assert valid(api.get(f"{API}/jobs/{first['id']}"), "JobReply")["job"]["rerun_of"] is None
    history = valid(api.get(f"{API}/history/again"), "History")
    assert [r["rerun_of"] for r in history["runs"]] == [None, first["id"]]
    # an empty body runs it as it was; a misspelled parameter is refused like at submit
    same = valid(api.post(f"{API}/jobs/{first['id']}/rerun"), "JobReply", 201)["job"]
    assert same["payload"]["parameters"] == {"count": 3, "label": "first"}
    bad = api.post(f"{API}/jobs/{first['id']}/rerun", json={"parameters": {"cuont": 1}})
    assert "count, ratio" in failed(bad, 422)
    other = server.api(server.key("rerun-other@example.org", "debug"))
    failed(other.post(f"{API}/jobs/{first['id']}/rerun", json={}), 404)


def test_run_now_honours_parameter_overrides_and_patch_edits_them(api: Api) -> None:
    body = {
        "name": "typed-hourly",
        "every": "1h",
        "notebook": "typed_parameters.ipynb",
        "mode": "process",
        "parameters": {"count": 1},
    }
    valid(api.post(f"{API}/schedules", json=body), "ScheduleReply", 201)
    run = api.post(f"{API}/schedules/typed-hourly/run", json={"parameters": {"count": 5}})
    job = valid(run, "JobReply", 201)["job"]
    assert job["payload"]["parameters"] == {"count": 5}
    assert _wait(api, job["id"])["result"]["count"] == [5, "int"]
    schedule = valid(api.get(f"{API}/schedules/typed-hourly"), "ScheduleReply")["schedule"]
    assert schedule["job"]["payload"]["parameters"] == {"count": 1}
    bad = api.post(f"{API}/schedules/typed-hourly/run", json={"parameters": {"cuont": 5}})
    failed(bad, 422)
    patched = api.patch(f"{API}/schedules/typed-hourly", json={"parameters": {"ratio": "0.25"}})
    schedule = valid(patched, "ScheduleReply")["schedule"]
    assert schedule["job"]["payload"]["parameters"] == {"count": 1, "ratio": 0.25}
    assert schedule["enabled"] is True
    failed(api.patch(f"{API}/schedules/typed-hourly", json={"parameters": {"x": 1}}), 422)


# -- live output --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["process", "thread"])
def test_a_running_jobs_output_is_served_before_it_ends(
    server: ServerThread, api: Api, tmp_path: Path, mode: str
) -> None:
    from harness import wait_for

    body = {
        "name": f"live-{mode}",
        "notebook": "long_running.ipynb",
        "mode": mode,
        "parameters": {"pid_file": str(tmp_path / "pids.json")},
    }
    job = valid(api.post(f"{API}/jobs", json=body), "JobReply", 201)["job"]
    url = f"{API}/jobs/{job['id']}/output"

    def started() -> dict[str, object] | None:
        got = valid(api.get(url), "JobOutput")
        return got if "started" in str(got["text"]) else None

    first = wait_for(started, 90, "the job's first output")
    assert first["state"] == "running" and not first["finished"]
    assert "[cell 1 (1/5)] pid_file" in str(first["text"])  # progress, live
    offset = int(first["offset"])  # type: ignore[call-overload]
    assert offset == first["size"] > 0
    later = valid(api.get(url, params={"offset": offset}), "JobOutput")
    assert not str(later["text"]).startswith(str(first["text"])[:20])
    assert valid(api.post(f"{API}/jobs/{job['id']}/cancel"), "JobReply")
    done = _wait(api, job["id"])
    assert done["state"] == "cancelled"
    failed(api.get(url, params={"offset": "-1"}), 422)
    other = server.api(server.key("live-other@example.org", "debug"))
    failed(other.get(url), 404)


# -- per-name history ---------------------------------------------------------------------------
def test_exact_name_filter_and_per_name_history(api: Api) -> None:
    ids = []
    for i in range(21):
        body = {"name": "nightly", "command": f"print({i})" if i != 4 else "1/0"}
        ids.append(valid(api.post(f"{API}/jobs", json=body), "JobReply", 201)["job"]["id"])
    valid(api.post(f"{API}/jobs", json={"name": "nightly-extra", "command": "1"}), "JobReply", 201)
    for job_id in ids:
        _wait(api, job_id)
    exact = valid(api.get(f"{API}/jobs", params={"name": "nightly", "total": "1"}), "JobList")
    assert exact["total"] == 21 and {j["name"] for j in exact["jobs"]} == {"nightly"}
    like = valid(api.get(f"{API}/jobs", params={"name_like": "nightly", "total": "1"}), "JobList")
    assert like["total"] == 22
    stats = valid(api.get(f"{API}/stats", params={"name": "nightly"}), "Stats")["stats"]
    assert stats["total"] == 21 and stats["failed"] == 1
    history = valid(api.get(f"{API}/history/nightly"), "History")
    assert [r["id"] for r in history["runs"]] == ids  # oldest first
    summary = history["summary"]
    assert summary["runs"] == 21 and summary["succeeded"] == 20
    assert summary["success_rate"] == pytest.approx(20 / 21)
    assert all(r["peak_rss"] and r["peak_rss"] > 1 << 20 for r in history["runs"])
    assert all(r["runtime"] is not None for r in history["runs"])
    assert valid(api.get(f"{API}/history/nobody"), "History")["summary"]["runs"] == 0


# -- the CLI's rerun and schedule parameters ----------------------------------------------------
def test_cli_rerun_and_schedule_parameters(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    client = Client(open_store(settings.store_url), settings)
    try:
        old = client.submit("typed", notebook=NOTEBOOKS / "ok.ipynb", mode="process")
        done = run_cli(settings, "rerun", old.id, "-p", "greeting", "hi")
        assert done.returncode == 0, done.stderr
        new = client.get(done.stdout.strip())
        assert new.spec.rerun_of == old.id and new.spec.payload["parameters"] == {"greeting": "hi"}
        done = run_cli(settings, "rerun", old.id, "-p", "greting", "hi")
        assert done.returncode == 2 and "declares only greeting" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        show = run_cli(settings, "show", new.id)
        assert f"rerun_of         : {old.id}" in show.stdout
        client.schedules.add("nb", every="1h", notebook=str(NOTEBOOKS / "ok.ipynb"))
        done = run_cli(settings, "schedule", "params", "nb", "-p", "greeting", "yo")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"greeting": "yo"}
        done = run_cli(settings, "schedule", "run-now", "nb", "-p", "greeting", "now")
        assert done.returncode == 0, done.stderr
        assert client.get(done.stdout.strip()).spec.payload["parameters"] == {"greeting": "now"}
        assert client.schedules.get("nb").spec.payload["parameters"] == {"greeting": "yo"}
    finally:
        client.close()
