"""Several hosts on one PostgreSQL: four worker processes standing for four hosts, two
schedulers, per-host memory analysis, a SIGKILLed worker's jobs recovered.

The four workers run on this machine; ``OPSJOBS_HOST=host-N`` makes each record itself (jobs,
metrics, the worker registry) as host ``host-N``, as four machines would.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import pytest
from fleet import RECORD_RUN, SLOW_RECORD, Fleet
from harness import client_for, settings_for, wait_for
from pg import isolated_schema

from opsjobs import JobState, Settings
from opsjobs.analyzer.job import JOB_NAME, TARGET, job_kwargs
from opsjobs.auth import User
from opsjobs.client import Client
from opsjobs.dashboard.data import DashboardData
from opsjobs.worker import Worker

HOSTS = [f"host-{i}" for i in range(4)]
JOBS = 2000
LEASE = 3.0  # short, so the killed worker's jobs come back quickly; 1 s heartbeats
EVERY = 2.0  # per-host memory analysis, every 2 s


def test_opsjobs_host_names_the_worker(tmp_path: Path) -> None:
    settings = Settings.from_env({"OPSJOBS_HOST": "host-7", "OPSJOBS_DATA": str(tmp_path)})
    assert settings.host == "host-7"
    from opsjobs.store import open_store

    store = open_store("memory://")
    try:
        assert Worker(store, settings).host == "host-7"
        assert Worker(store, Settings(data_dir=tmp_path)).host  # the machine's name
    finally:
        store.close()


def _analysis_schedules(client: Client) -> None:
    for host in HOSTS:
        client.schedules.add(
            f"memory-analysis-{host}",
            every=EVERY,
            call=TARGET,
            kwargs=job_kwargs(top_count=5, time_budget=5.0),
            job_name=JOB_NAME,
            mode="thread",
            queue=host,
            timeout=60,
        )


def _alive_hosts(client: Client) -> set[str]:
    now = time.time()
    return {w.host for w in client.store.workers() if w.alive(now)}


@pytest.mark.slow
@pytest.mark.postgres
def test_four_hosts_two_schedulers_one_postgres(tmp_path: Path) -> None:
    with isolated_schema() as url:
        settings = settings_for(tmp_path, store_url=url, lease_seconds=LEASE)
        client = client_for(settings)
        fleet = Fleet(settings, tmp_path, OPSJOBS_LEASE=str(LEASE))
        ran = tmp_path / "ran.log"
        try:
            _analysis_schedules(client)
            fleet.start("scheduler-a", "scheduler")
            fleet.start("scheduler-b", "scheduler")
            for host in HOSTS:
                fleet.worker(host)
            wait_for(lambda: _alive_hosts(client) == set(HOSTS), 30, "four hosts to register")
            (victim_id,) = [w.id for w in client.store.workers() if w.host == "host-0"]

            # SIGKILL a worker with two jobs running: one may run again, one may not.
            slow = SLOW_RECORD.format(seconds=3, log=str(ran))
            again = client.submit("again", command=slow, mode="thread", queue="host-0", retries=1)
            once = client.submit("once", command=slow, mode="thread", queue="host-0")
            wait_for(
                lambda: all(client.get(j.id).state is JobState.RUNNING for j in (again, once)),
                what="both jobs to run on host-0",
            )
            fleet.kill("host-0")
            killed_at = time.time()
            fleet.worker("host-0")  # the host's replacement, as systemd's Restart= would

            # 2,000 jobs across the four hosts' queues, half inline, half in threads.
            source = RECORD_RUN.format(log=str(ran))
            submitted = [
                client.submit(
                    f"mh-{i}", command=source, mode="inline" if i % 2 else "thread", queue=host
                )
                for i in range(JOBS)
                for host in [HOSTS[i % 4]]
            ]

            lost = client.wait(once.id, timeout=30)
            assert lost.state is JobState.LOST and "lease expired" in (lost.error or "")
            assert (lost.finished_at or 0) - killed_at < 2 * LEASE + 2.0
            rerun = client.wait(again.id, timeout=30)
            assert rerun.state is JobState.SUCCEEDED and rerun.attempt == 2
            assert rerun.host == "host-0" and rerun.worker_id != victim_id

            def drained() -> bool:
                fleet.check_alive()
                return client.count(states=["queued", "running"], name="mh-") == 0

            wait_for(drained, 60, f"{JOBS} jobs to finish")
            jobs = {j.id: j for j in client.results(limit=JOBS + 100, name="mh-")}
            ids = {j.id for j in submitted}
            assert collections.Counter(j.state for j in jobs.values() if j.id in ids) == {
                JobState.SUCCEEDED: JOBS
            }
            assert all(jobs[i].attempt == 1 for i in ids)
            assert all(jobs[i].host == jobs[i].spec.queue for i in ids)  # each on its host
            runs = collections.Counter(ran.read_text().split())
            assert {i: runs[i] for i in ids} == dict.fromkeys(ids, 1)  # exactly once
            assert runs[again.id] == 1 and once.id not in runs

            # Every host's analysis lands: a succeeded job and metrics labelled with the host.
            def analysed() -> set[str]:
                fleet.check_alive()
                done = client.results(name=JOB_NAME, states=["succeeded"], limit=500)
                labelled = {m.labels.get("host") for m in client.store.metrics("rss_mb")}
                return {j.host for j in done if j.host in labelled and j.result}

            wait_for(lambda: analysed() == set(HOSTS), 30, "an analysis of every host")
            for host in HOSTS:
                schedule = client.schedules.get(f"memory-analysis-{host}")
                fires = client.schedules.fires(schedule.id, limit=1000)
                times = [f.fire_at for f in fires]
                assert len(times) == len(set(times))  # two schedulers, each fire time once
                queued = {f.job_id for f in fires if f.job_id}
                fired = client.results(queue=host, name=JOB_NAME, limit=1000)
                assert {j.id for j in fired} == queued
            series = client.store.metrics("rss_mb")
            assert {m.host for m in series} == set(HOSTS)
            assert {m.labels["host"] for m in series} == set(HOSTS)

            # The dashboard's data layer (its workers and memory views) shows all four hosts,
            # and the killed worker among the dead.
            admin = User("admin", "admin@example.com", "Admin", ("system_admin",), True, 0.0)
            view = DashboardData(client, admin)
            view.everyone = True  # an admin's switch to everyone's jobs (the schedules' owner)
            now = time.time()
            assert {w.host for w in view.workers() if w.alive(now)} == set(HOSTS)
            dead = [w for w in view.workers() if w.id == victim_id]
            assert dead and not dead[0].alive(now + LEASE)
            memory = view.memory(window=600)
            assert {label.split(" / ")[0] for label in memory.series["rss_mb"]} == set(HOSTS)
            assert memory.latest_analysis is not None
        finally:
            fleet.stop()
            client.close()
