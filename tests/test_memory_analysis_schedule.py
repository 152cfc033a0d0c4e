"""The default ``memory-analysis`` schedules: one per opted-in worker, named by something that
survives a restart, re-aimed (not duplicated) when the worker comes back, pruned when it is gone
for good; the server's hosted worker gets one by default, ``opsjobs worker --memory-analysis``
and ``opsjobs.embed(memory_analysis=...)`` opt in."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from harness import client_for, run_cli, settings_for, start_worker, wait_for

import opsjobs
from opsjobs.analyzer.job import JOB_NAME, TARGET
from opsjobs.analyzer.schedule import (
    STALE_AFTER,
    opt_in,
    prune_schedules,
    schedule_name,
    validate_every,
)
from opsjobs.client import Client
from opsjobs.errors import Conflict, ValidationError
from opsjobs.model import JobState, WorkerInfo


def _register(client: Client, worker_id: str, *, seen: float) -> None:
    client.store.register_worker(
        WorkerInfo(worker_id, "h", 1, ["default", f"worker:{worker_id}"], 1, seen, seen, 30.0)
    )


def _analysis_schedules(client: Client) -> list[str]:
    return sorted(s.name for s in client.schedules.list() if s.name.startswith(JOB_NAME))


def test_schedule_names_survive_restarts() -> None:
    assert schedule_name() == "memory-analysis"  # the server's hosted worker
    assert schedule_name("web-2", ["default", "worker:0b1c"]) == "memory-analysis@web-2:default"
    assert schedule_name("web-2", ["web-2", "default"]) == "memory-analysis@web-2:default:web-2"
    assert schedule_name("web-2", "api") == "memory-analysis@web-2:api"
    assert schedule_name("my host/1", "a b") == "memory-analysis@my-host-1:a-b"
    assert len(schedule_name("h" * 200, ["q" * 120])) == 120
    assert validate_every("30m") == 1800.0
    for bad in ("0s", "400d", "soon"):
        with pytest.raises(ValidationError):
            validate_every(bad)


def test_opt_in_reaims_cancels_the_left_behind_job_and_prunes_gone_workers(
    tmp_path: Path,
) -> None:
    now = time.time()
    with client_for(settings_for(tmp_path)) as client:
        _register(client, "w1", seen=now)
        first = opt_in(client, "w1", host="h", key=["default"], every="30m", top_count=5)
        assert first.name == "memory-analysis@h:default" and first.spec.queue == "worker:w1"
        # the start-up analysis, queued for w1 at once (not one interval later); w1 then dies
        (left,) = client.results(states=["queued"], queue="worker:w1")
        assert left.spec.schedule_id == first.id and left.name == JOB_NAME
        with pytest.raises(Conflict):  # the instance limit: one analysis at a time
            client.schedules.run_now(first.name)
        assert opt_in(client, "w1", host="h", key=["default"], every="30m", top_count=5)
        assert [j.id for j in client.results(queue="worker:w1")] == [left.id]  # no second one

        # the worker restarts under a new id: the same schedule, re-aimed; the analysis left
        # on the old private queue is cancelled (it would block the instance limit forever)
        again = opt_in(client, "w2", host="h", key=["default"], every="30m", top_count=5)
        assert again.id == first.id and again.spec.queue == "worker:w2"
        assert client.get(left.id).state is JobState.CANCELLED
        assert _analysis_schedules(client) == ["memory-analysis@h:default"]
        (startup,) = client.results(states=["queued"], queue="worker:w2")  # not blocked
        assert startup.spec.schedule_id == first.id
        quiet = opt_in(client, "w2", host="h", key="quiet", analyse_now=False)
        assert not [j for j in client.results() if j.spec.schedule_id == quiet.id]

        # a second worker on the host, another key: its own schedule
        opt_in(client, "w3", host="h", key="batch")
        assert _analysis_schedules(client) == [
            "memory-analysis@h:batch",
            "memory-analysis@h:default",
            "memory-analysis@h:quiet",
        ]
        client.schedules.remove("memory-analysis@h:quiet")

        # w3 goes silent for longer than STALE_AFTER: the next opt-in removes its schedule;
        # schedules of workers not (yet) registered and other schedules are kept
        _register(client, "w3", seen=now - STALE_AFTER - 60)
        opt_in(client, "w9", host="other", key="x")
        client.schedules.add(f"{JOB_NAME}@hand-made", every="1h", command="print(1)")
        assert prune_schedules(client) == []  # w3 was pruned by the opt-in already
        assert _analysis_schedules(client) == [
            "memory-analysis@h:default",
            "memory-analysis@hand-made",
            "memory-analysis@other:x",
        ]

        # every analysis schedule is the system owner's (issue 18), whoever started the worker
        assert {
            s.spec.owner for s in client.schedules.list() if s.name != f"{JOB_NAME}@hand-made"
        } == {"system"}
        # so an operator's unrelated schedule of the server's name is neither taken nor in the way
        mine = client.schedules.add(
            JOB_NAME, every="1h", call="operator:add", kwargs={"a": 1, "b": 2}
        )
        server = opt_in(client, "w5", analyse_now=False)
        assert server.id != mine.id and server.spec.owner == "system"
        assert client.schedules.get(mine.id).spec.payload["target"] == "operator:add"


def test_embed_opts_in(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, host="svc-1")
    with client_for(settings) as client:
        handle = opsjobs.embed(
            ["default"], 1, store=client.store, settings=settings, memory_analysis="1h", name="api"
        )
        try:
            schedule = client.schedules.get("memory-analysis@svc-1:api")
            assert schedule.spec.queue == handle.queue and schedule.every_seconds == 3600
            assert schedule.spec.payload["target"] == TARGET
        finally:
            handle.stop()
        with pytest.raises(ValidationError):
            opsjobs.embed(store=client.store, settings=settings, memory_analysis="0s")


def test_worker_cli_rejects_bad_memory_analysis_options(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    done = run_cli(settings, "worker", "--memory-analysis", "0s")
    assert done.returncode == 2 and done.stderr.startswith("opsjobs: error: memory-analysis")
    done = run_cli(settings, "worker", "--name", "api")
    assert done.returncode == 2 and "--memory-analysis" in done.stderr


def _alive_worker(client: Client, not_id: str | None = None) -> str | None:
    now = time.time()
    alive = [w.id for w in client.store.workers() if w.alive(now) and w.id != not_id]
    return alive[0] if alive else None


def _analysed_by(client: Client, worker_id: str) -> bool:
    jobs = client.results(states=["succeeded"], name=JOB_NAME, limit=50)
    return any(j.worker_id == worker_id and j.spec.schedule_id for j in jobs)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return err


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_worker_with_memory_analysis_is_analysed_and_reaimed_after_a_restart(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, host="node-a")
    args = ("--queue", "q1", "--threads", "1", "--scheduler", "--memory-analysis", "2s")
    with client_for(settings) as client:
        proc = start_worker(settings, *args, OPSJOBS_HOST="node-a")
        try:
            first = wait_for(lambda: _alive_worker(client), 30, "the worker")
            wait_for(lambda: _analysed_by(client, first), 120, "a scheduled analysis")
        finally:
            _stop(proc)
        schedule = client.schedules.get("memory-analysis@node-a:q1")
        assert schedule.spec.queue == f"worker:{first}"

        proc = start_worker(settings, *args, OPSJOBS_HOST="node-a")
        try:
            second = wait_for(lambda: _alive_worker(client, not_id=first), 30, "the restart")
            wait_for(lambda: _analysed_by(client, second), 120, "an analysis after the restart")
        finally:
            _stop(proc)
        moved = client.schedules.get("memory-analysis@node-a:q1")
        assert moved.id == schedule.id and moved.spec.queue == f"worker:{second}"
        assert _analysis_schedules(client) == ["memory-analysis@node-a:q1"]


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning")
def test_the_servers_worker_gets_the_default_schedule_re_aimed_at_each_start(
    tmp_path: Path,
) -> None:
    from server_harness import ServerThread

    ids = []
    for _ in range(2):
        server = ServerThread(tmp_path).start()
        try:
            worker_id = wait_for(lambda: server.extension.worker_id, 30, "the hosted worker")  # noqa: B023
            ids.append(worker_id)
            with client_for(
                settings_for(tmp_path, store_url=server.store_url, data_dir=server.data)
            ) as client:
                aimed = f"worker:{worker_id}"
                schedule = wait_for(
                    lambda: [
                        s
                        for s in client.schedules.list()
                        if s.name == JOB_NAME and s.spec.queue == aimed  # noqa: B023
                    ],
                    30,
                    "the memory-analysis schedule aimed at the hosted worker",
                )[0]
                assert schedule.every_seconds == 1800
                assert _analysis_schedules(client) == [JOB_NAME]
        finally:
            server.stop()
    assert ids[0] != ids[1]

    off = tmp_path / "off"
    off.mkdir()
    server = ServerThread(off, memory_analysis=None).start()
    try:
        wait_for(lambda: server.extension.worker_id, 30, "the hosted worker")
        with client_for(
            settings_for(off, store_url=server.store_url, data_dir=server.data)
        ) as client:
            assert client.schedules.list() == []
    finally:
        server.stop()
