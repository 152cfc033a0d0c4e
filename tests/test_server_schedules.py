"""Schedule routes (CRUD, pause/resume, run-now), the seed's tasks listing and /analyze, on the
real server application in-process."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from server_harness import Api, ServerThread, failed, finished, valid

from opsjobs.server.openapi import API, SEED

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    # no memory analysis: its schedule and jobs are the system owner's, which every user
    # sees (issue 18; tests/test_identity.py): these tests count a user's own
    s = ServerThread(tmp_path_factory.mktemp("server"), memory_analysis=None).start()
    yield s
    s.stop()


@pytest.fixture
def alice(server: ServerThread) -> Api:
    return server.api(server.key(f"alice-{uuid.uuid4().hex[:8]}@example.org", "debug"))


@pytest.fixture
def bob(server: ServerThread) -> Api:
    return server.api(server.key(f"bob-{uuid.uuid4().hex[:8]}@example.org", "task_manager"))


def schedule_body(name: str, **kw: object) -> dict[str, object]:
    body: dict[str, object] = {"name": name, "every": "30m", "command": "print('tick')"}
    body.update(kw)
    return {k: v for k, v in body.items() if v is not None}


def test_schedule_crud_and_run_now(alice: Api) -> None:
    created = valid(alice.post(f"{API}/schedules", json=schedule_body("mem")), "ScheduleReply", 201)
    s = created["schedule"]
    assert s["every_seconds"] == 1800 and s["enabled"] and s["next_fire_at"]
    assert s["job"]["owner"].startswith("alice-")
    listed = valid(alice.get(f"{API}/schedules"), "ScheduleList")["schedules"]
    assert [x["id"] for x in listed] == [s["id"]]
    assert valid(alice.get(f"{API}/schedules/mem"), "ScheduleReply")["schedule"]["id"] == s["id"]
    paused = valid(
        alice.patch(f"{API}/schedules/{s['id']}", json={"enabled": False}), "ScheduleReply"
    )
    assert not paused["schedule"]["enabled"] and paused["schedule"]["next_fire_at"] is None
    changed = valid(
        alice.put(f"{API}/schedules/mem", json=schedule_body("mem", cron="0 2 * * *", every=None)),
        "ScheduleReply",
    )["schedule"]
    assert changed["trigger"] == "cron" and changed["id"] == s["id"]
    job = valid(alice.post(f"{API}/schedules/mem/run"), "JobReply", 201)["job"]
    assert job["schedule_id"] == s["id"]
    assert finished(alice, job["id"])["output"] == "tick\n"
    valid(alice.delete(f"{API}/schedules/mem"), "Deleted")
    failed(alice.get(f"{API}/schedules/mem"), 404)


def test_schedules_of_another_user_are_invisible(alice: Api, bob: Api) -> None:
    name = f"private-{uuid.uuid4().hex[:6]}"
    valid(alice.post(f"{API}/schedules", json=schedule_body(name)), "ScheduleReply", 201)
    assert valid(bob.get(f"{API}/schedules"), "ScheduleList")["schedules"] == []
    for resp in (
        bob.get(f"{API}/schedules/{name}"),
        bob.delete(f"{API}/schedules/{name}"),
        bob.post(f"{API}/schedules/{name}/run"),
        bob.patch(f"{API}/schedules/{name}", json={"enabled": False}),
    ):
        failed(resp, 404)
    assert valid(bob.get(f"{SEED}/tasks"), "SeedTasks")["count"] == 0
    alice.delete(f"{API}/schedules/{name}")


def test_schedule_names_are_per_owner(server: ServerThread, alice: Api, bob: Api) -> None:
    """Bob may use a name Alice already uses (no 409 telling him hers exists); each sees and
    runs his own by that name, and an admin resolves the shared name to neither by guessing."""
    name = f"shared-{uuid.uuid4().hex[:6]}"
    mine = valid(alice.post(f"{API}/schedules", json=schedule_body(name)), "ScheduleReply", 201)
    his = valid(bob.post(f"{API}/schedules", json=schedule_body(name)), "ScheduleReply", 201)
    a_id, b_id = mine["schedule"]["id"], his["schedule"]["id"]
    assert a_id != b_id
    failed(alice.post(f"{API}/schedules", json=schedule_body(name)), 409)  # her own clash
    assert valid(alice.get(f"{API}/schedules/{name}"), "ScheduleReply")["schedule"]["id"] == a_id
    assert valid(bob.get(f"{API}/schedules/{name}"), "ScheduleReply")["schedule"]["id"] == b_id
    job = valid(bob.post(f"{API}/schedules/{name}/run"), "JobReply", 201)["job"]
    assert job["schedule_id"] == b_id and job["owner"].startswith("bob-")
    admin = server.api(server.key(f"admin-{uuid.uuid4().hex[:6]}@example.org", "system_admin"))
    everyone = valid(admin.get(f"{API}/schedules?all=true"), "ScheduleList")["schedules"]
    assert {a_id, b_id} <= {s["id"] for s in everyone}
    ambiguous = failed(admin.get(f"{API}/schedules/{name}"), 409)
    assert "id" in ambiguous
    assert valid(admin.get(f"{API}/schedules/{b_id}"), "ScheduleReply")["schedule"]["id"] == b_id
    valid(bob.delete(f"{API}/schedules/{name}"), "Deleted")
    assert valid(alice.get(f"{API}/schedules/{name}"), "ScheduleReply")["schedule"]["id"] == a_id
    valid(alice.delete(f"{API}/schedules/{name}"), "Deleted")


def test_bad_schedules_change_nothing(server: ServerThread, alice: Api) -> None:
    for body in (
        schedule_body("x", cron="* * * * *"),  # both every and cron
        schedule_body("x", every="soon"),
        schedule_body("x", tz="Mars/Olympus", cron="0 * * * *", every=None),
        schedule_body("x", extra=1),
        {"name": "x", "every": 60},  # nothing to run
    ):
        assert alice.post(f"{API}/schedules", json=body).status_code in (400, 422)
    reader = server.api(server.key(f"reader-{uuid.uuid4().hex[:6]}@example.org", ""))
    failed(reader.post(f"{API}/schedules", json=schedule_body("y")), 403)
    assert valid(alice.get(f"{API}/schedules"), "ScheduleList")["schedules"] == []


def test_seed_tasks_lists_schedules_with_seed_names(alice: Api) -> None:
    body = schedule_body("MemoryAnalysisScheduler", mode="BackgroundJob", description="every 30")
    valid(alice.post(f"{API}/schedules", json=body), "ScheduleReply", 201)
    (task,) = valid(alice.get(f"{SEED}/tasks"), "SeedTasks")["tasks"]
    assert (
        task["TaskName"] == "MemoryAnalysisScheduler" and task["ExecutionMode"] == "BackgroundJob"
    )
    assert task["Schedule"] == "every 30m" and task["Enabled"] is True
    alice.delete(f"{API}/schedules/MemoryAnalysisScheduler")


def test_analyze_runs_inside_the_server_process(server: ServerThread, alice: Api) -> None:
    body = {"top_count": 5, "time_budget": 2}
    job = valid(alice.post(f"{API}/analyze", json=body), "JobReply", 201)["job"]
    assert job["kind"] == "call" and job["queue"] == f"worker:{server.extension.worker_id}"
    done = finished(alice, job["id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["pid"] == os.getpid()  # this very process hosts the server
    points = valid(alice.get(f"{API}/metrics/rss_mb", params={"job_id": job["id"]}), "Metrics")
    assert points["points"] and points["points"][0]["value"] > 0
    failed(alice.post(f"{API}/analyze", json={"top_count": 0}), 422)
