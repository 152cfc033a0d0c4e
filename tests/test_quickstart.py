"""``opsjobs quickstart`` against a running server (in-process) on the same store."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import run_cli, settings_for, wait_for
from server_harness import ServerThread

from opsjobs.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_quickstart_runs_the_seeds_workflow(tmp_path: Path) -> None:
    # A server started without its own analysis schedule: quickstart adds the seed's one.
    server = ServerThread(tmp_path, memory_analysis=None).start()
    try:
        settings = settings_for(tmp_path, store_url=server.store_url, data_dir=server.data)
        done = run_cli(settings, "quickstart", "--url", server.base, "--timeout", "120")
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "[5/5]" in out and f"dashboard: {server.base}/" in out
        assert "memory-analysis" in out and "True" in out
        again = run_cli(settings, "quickstart", "--url", server.base, "--timeout", "120")
        assert again.returncode == 0 and "already there" in again.stdout
    finally:
        server.stop()
    store = open_store(server.store_url)
    try:
        schedules = {s.name: s for s in store.list_schedules()}
        assert sorted(schedules) == ["MemoryAnalysisScheduler"]
        assert schedules["MemoryAnalysisScheduler"].every_seconds == 1800
        assert [u.email for u in store.list_users()] == ["test@localhost"]
    finally:
        store.close()


def test_quickstart_does_not_double_the_servers_own_schedule(tmp_path: Path) -> None:
    server = ServerThread(tmp_path).start()  # serve's default: its own memory-analysis schedule
    try:
        settings = settings_for(tmp_path, store_url=server.store_url, data_dir=server.data)
        # the server makes its schedule once its worker is up, which may follow the first
        # answered request on a loaded machine
        with open_store(server.store_url) as store:
            wait_for(lambda: store.list_schedules(), 60, "the server's own schedule")
        done = run_cli(settings, "quickstart", "--url", server.base, "--timeout", "120")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "schedule 'memory-analysis' already does this" in done.stdout
    finally:
        server.stop()
    store = open_store(server.store_url)
    try:
        assert [s.name for s in store.list_schedules()] == ["memory-analysis"]
    finally:
        store.close()


def test_quickstart_without_a_server_says_so(tmp_path: Path) -> None:
    done = run_cli(settings_for(tmp_path), "quickstart", "--url", "http://127.0.0.1:9")
    assert (
        done.returncode == 2
        and "no opsjobs server" in done.stderr
        and "opsjobs serve" in done.stderr
    )
