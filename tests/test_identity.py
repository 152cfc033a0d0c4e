"""One identity across CLI, Python API and REST (issue 18): ``opsjobs login``/``logout``/
``whoami``, ``OPSJOBS_KEY``, ``OPSJOBS_USER``, the OS-user fallback on a local store only, and
the ``system`` owner's jobs and schedules that every user sees and only admins change."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import cli_env, client_for, run_cli, settings_for

import opsjobs
from opsjobs.auth import Auth
from opsjobs.client import Client
from opsjobs.config import Settings
from opsjobs.errors import ConfigError, JobNotFound, PermissionDenied
from opsjobs.model import JobSpec

pytestmark = pytest.mark.timeout(180)


def _cli(settings: Settings, *args: str, stdin: str | None = None, **env: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "opsjobs", *args],
        env=cli_env(settings, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.data_dir.parent,
    )


def _key(settings: Settings, email: str, roles: str = "debug") -> str:
    with client_for(settings) as client:
        return Auth(client.store).create_key(email, roles=roles)[2]


def _system_job(settings: Settings, name: str = "memory-analysis") -> str:
    """A finished job of the server's own (the system owner's)."""
    with client_for(settings) as client:
        spec = JobSpec(name=name, kind="command", payload={"source": "print(1)"}, owner="system")
        job = client.store.submit(spec.validated(), now=1.0)
        client.store.request_cancel(job.id, now=2.0)
        return job.id


def test_login_saves_the_key_0600_and_whoami_says_where_it_came_from(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True)
    key = _key(settings, "ada@example.org")
    login_file = Path(os.environ["XDG_CONFIG_HOME"]) / "opsjobs" / "login.json"

    fallback = _cli(settings, "whoami")
    assert fallback.returncode == 0, fallback.stderr
    assert f"user:   {getpass.getuser()}" in fallback.stdout
    assert "the OS user, as a fallback" in fallback.stdout and "local" in fallback.stdout

    done = _cli(settings, "login", stdin=key + "\n")
    assert done.returncode == 0, done.stderr
    assert "signed in as ada@example.org" in done.stderr
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(login_file.parent.stat().st_mode) == 0o700
    assert key in login_file.read_text()  # the key itself; the store keeps its hash only

    me = json.loads(_cli(settings, "whoami", "--json").stdout)
    assert me["user"] == "ada@example.org" and me["roles"] == ["debug"]
    assert me["source"] == "login" and me["verified"] and me["scoped"]
    assert str(login_file) in me["from"]

    job_id = _cli(settings, "submit", "--name", "mine", "--command", "print(1)").stdout.strip()
    with client_for(settings) as client:
        assert client.store.get(job_id).owner == "ada@example.org"

    out = _cli(settings, "logout")
    assert out.returncode == 0 and "signed out" in out.stderr
    assert not login_file.exists()
    assert "the OS user, as a fallback" in _cli(settings, "whoami").stdout


def test_a_wrong_key_is_one_line_and_saves_nothing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True)
    _key(settings, "ada@example.org")
    bad = _cli(settings, "login", stdin="oj_0000000000_" + "x" * 43 + "\n")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "not valid for the store" in bad.stderr
    assert not (Path(os.environ["XDG_CONFIG_HOME"]) / "opsjobs" / "login.json").exists()
    revoked = _cli(settings, "results", OPSJOBS_KEY="oj_0000000000_" + "y" * 43)
    assert revoked.returncode == 2 and "OPSJOBS_KEY is not valid" in revoked.stderr


def test_a_login_file_others_may_read_is_refused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True)
    key = _key(settings, "ada@example.org")
    assert _cli(settings, "login", "--key", key).returncode == 0
    login_file = Path(os.environ["XDG_CONFIG_HOME"]) / "opsjobs" / "login.json"
    login_file.chmod(0o644)
    done = _cli(settings, "results")
    assert done.returncode == 2 and "chmod 600" in done.stderr


def test_a_key_scopes_the_cli_to_its_user_and_the_system_jobs(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True)
    ada, root = _key(settings, "ada@example.org"), _key(settings, "root@example.org", "site_admin")
    system = _system_job(settings)
    with client_for(settings) as client:
        other = client.submit("bobs", command="print(1)", owner="bob@example.org")
    assert (
        _cli(settings, "submit", "--name", "adas", "--command", "x=1", OPSJOBS_KEY=ada).returncode
        == 0
    )
    listed = json.loads(_cli(settings, "results", "--json", OPSJOBS_KEY=ada).stdout)
    assert {j["owner"] for j in listed} == {"ada@example.org", "system"}
    refused = _cli(settings, "delete", system, OPSJOBS_KEY=ada)
    assert refused.returncode == 2 and "only an admin" in refused.stderr
    hidden = _cli(settings, "show", other.id, OPSJOBS_KEY=ada)
    assert hidden.returncode == 2 and "no job" in hidden.stderr
    assert _cli(settings, "delete", system, OPSJOBS_KEY=root).returncode == 0  # an admin may
    purge = _cli(settings, "purge", "--older-than", "1s", OPSJOBS_KEY=ada)
    assert purge.returncode == 2 and "no admin" in purge.stderr  # everyone's old jobs: no


def test_the_python_api_acts_as_the_key_and_sees_the_system_schedules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True)
    monkeypatch.setenv("OPSJOBS_STORE", settings.store_url)
    ada = _key(settings, "ada@example.org")
    system = _system_job(settings)
    with client_for(settings) as admin_side:
        system_settings = dataclasses.replace(settings, user="system")
        Client(admin_side.store, system_settings).schedules.add(
            "memory-analysis", every="30m", command="print(1)"
        )
        admin_side.schedules.add("bobs-nightly", every="1h", command="print(1)", owner="bob@x.org")
        bobs = admin_side.submit("bobs", command="print(1)", owner="bob@x.org").id
    monkeypatch.setenv("OPSJOBS_KEY", ada)
    with opsjobs.connect() as client:
        assert client.identity.user == "ada@example.org" and client.identity.scoped
        job = client.submit("hello", command="print(1)")
        assert job.owner == "ada@example.org"
        assert client.get(system).owner == "system"
        with pytest.raises(PermissionDenied, match="only an admin"):
            client.delete(system)
        assert [s.name for s in client.schedules.list()] == ["memory-analysis"]
        with pytest.raises(PermissionDenied, match="only an admin"):
            client.schedules.pause("memory-analysis")
        with pytest.raises(JobNotFound):
            client.get(bobs)
    monkeypatch.setenv("OPSJOBS_KEY", "oj_0000000000_" + "z" * 43)
    with pytest.raises(ConfigError, match="OPSJOBS_KEY is not valid"):
        opsjobs.connect()


def test_a_shared_store_without_a_key_has_no_identity(tmp_path: Path) -> None:
    from pg import isolated_schema

    with isolated_schema() as url:
        settings = settings_for(tmp_path, store_url=url)
        settings.data_dir.mkdir(parents=True)
        env = {"OPSJOBS_STORE": url}
        me = _cli(settings, "whoami", **env)
        assert me.returncode == 0 and "user:   (none)" in me.stdout
        assert "a shared store needs a key" in me.stdout
        refused = _cli(settings, "submit", "--name", "x", "--command", "print(1)", **env)
        assert refused.returncode == 2 and "opsjobs login" in refused.stderr
        assert refused.stderr.strip().count("\n") == 0
        assert _cli(settings, "results", **env).returncode == 0  # reading works as before
        named = _cli(settings, "submit", "--name", "x", "--command", "1", OPSJOBS_USER="ci", **env)
        assert named.returncode == 0, named.stderr
        key = _key(settings, "ada@example.org")
        assert _cli(settings, "login", "--key", key, **env).returncode == 0
        assert "user:   ada@example.org" in _cli(settings, "whoami", **env).stdout
        # OPSJOBS_USER wins over the saved key (the server sets it in JupyterLab kernels)
        over = _cli(settings, "whoami", OPSJOBS_USER="ci", **env).stdout
        assert "user:   ci" in over and "OPSJOBS_USER" in over


def test_run_cli_helper_still_acts_as_the_os_user(tmp_path: Path) -> None:
    """Existing scripts on a local store keep working without any login."""
    settings = settings_for(tmp_path)
    done = run_cli(settings, "submit", "--name", "x", "--command", "print(1)")
    assert done.returncode == 0, done.stderr
    with client_for(settings) as client:
        assert client.store.get(done.stdout.strip()).owner == getpass.getuser()


def _analysis(client: Client, owner: str, at: float, rss: float) -> str:
    """A finished analysis of ``owner`` that recorded one rss_mb point at ``at``."""
    from opsjobs.analyzer.job import JOB_NAME, RESULT_MARK
    from opsjobs.model import JobState, Metric
    from opsjobs.store.base import Finish

    job = client.submit(JOB_NAME, command="pass", owner=owner, queue=f"q-{owner}-{at}")
    claimed = client.store.claim("w1", "alpha", [job.queue], now=at, lease=30)
    assert claimed is not None
    result = json.dumps({"analyzer": RESULT_MARK, "rss_mb": rss})
    assert client.store.finish(
        job.id, "w1", claimed.attempt, Finish(JobState.SUCCEEDED, result_json=result), now=at
    )
    labels = {"host": "alpha", "worker": "w1"}
    client.store.record_metrics([Metric("rss_mb", rss, labels, at=at, job_id=job.id)])
    return job.id


def test_the_dashboard_shows_system_jobs_and_the_newest_analysis_of_the_chart(
    tmp_path: Path,
) -> None:
    """The Memory tab's "latest analysis" is the newest one the chart shows — the server's
    (system) one, newer than the user's own — and the user sees but cannot delete it."""
    import time

    from opsjobs.dashboard.data import DashboardData, ResultsState

    with client_for(settings_for(tmp_path)) as client:
        ada = Auth(client.store).create_key("ada@example.org", roles="debug")[0]
        now = time.time()
        own = _analysis(client, "ada@example.org", now - 600, 100.0)
        newest = _analysis(client, "system", now - 60, 120.0)
        _analysis(client, "root", now - 30, 130.0)  # another person's: not hers to see
        data = DashboardData(client, ada)
        view = data.memory(3600)
        assert view.latest_analysis is not None and view.latest_analysis.id == newest
        page = data.results(ResultsState())
        assert {j.owner for j in page.rows} == {"ada@example.org", "system"}
        assert page.total == 2 and page.stats.total == 2
        with pytest.raises(PermissionDenied, match="only an admin"):
            data.delete(newest)
        data.delete(own)  # her own she may


def test_a_lab_kernel_does_not_inherit_the_servers_key(tmp_path: Path) -> None:
    """A key in the server's environment would win over the kernel's OPSJOBS_USER."""
    from opsjobs.auth import User
    from opsjobs.server.lab import kernel_env

    explorer = User("u1", "eve@example.org", "eve", ("explore",), False, 0.0)
    server_env = {"OPSJOBS_KEY": "oj_0000000000_" + "k" * 43, "OPSJOBS_DATA": str(tmp_path)}
    settings = Settings.from_env({**server_env, **kernel_env(explorer)})
    assert settings.api_key == "" and settings.user == "eve@example.org"
    assert settings.user_source == "OPSJOBS_USER" and settings.scope_owner == "eve@example.org"
    assert "k" * 43 not in repr(Settings.from_env(server_env))  # never shown
