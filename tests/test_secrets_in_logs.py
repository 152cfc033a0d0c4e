"""No secret reaches a log: every output of ``opsjobs serve``, ``opsjobs worker``, the scheduler
and the CLI is searched for the store's database password and a webhook's secret path."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from harness import cli_env, client_for, run_cli, settings_for, wait_for
from pg import isolated_schema
from server_harness import free_port

from opsjobs.auth import Auth
from opsjobs.config import redact_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(240)]

PASSWORD = "Pw-0f-the-DB-42"
HOOK_SECRET = "T000-B111-hooksecretpath"


def with_password(url: str) -> str:
    """``url`` with a password (trust auth ignores it: the server never asks for it)."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


def test_redact_url_hides_passwords_and_webhook_paths() -> None:
    assert redact_url(f"postgresql://u:{PASSWORD}@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert PASSWORD not in redact_url(f"postgresql://db/x?password={PASSWORD}&sslmode=require")
    assert PASSWORD not in redact_url(f"host=db password={PASSWORD} dbname=x")
    assert redact_url(f"https://hooks.example.org/services/{HOOK_SECRET}") == (
        "https://hooks.example.org/…"
    )
    assert redact_url("sqlite:///srv/data/opsjobs.db") == "sqlite:///srv/data/opsjobs.db"


def _run_until(argv: list[str], env: dict[str, str], cwd: Path, marker: str) -> str:
    """Start ``opsjobs -v <argv>``, wait until its output shows ``marker``, SIGTERM it; return
    everything it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsjobs", "-v", *argv],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(
            lambda: proc.poll() is not None or marker in "".join(lines), 90, f"{argv[0]} to start"
        )
        assert proc.poll() is None, "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        reader.join(10)
        proc.stdout.close()  # type: ignore[union-attr]
    return "".join(lines)


def test_no_output_of_serve_worker_scheduler_or_cli_shows_a_secret(tmp_path: Path) -> None:
    with isolated_schema() as url:
        store_url = with_password(url)
        settings = settings_for(tmp_path, store_url=store_url)
        settings.data_dir.mkdir(parents=True)
        hook = f"https://127.0.0.1:9/services/{HOOK_SECRET}"
        env = cli_env(settings, OPSJOBS_WEBHOOKS=hook, OPSJOBS_LEASE="5")
        outputs: list[str] = []
        key = ""  # a shared store: the CLI acts as the user of an API key (issue 18)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            done = run_cli(settings, "-v", *args, OPSJOBS_WEBHOOKS=hook, OPSJOBS_KEY=key)
            outputs.append(done.stdout + done.stderr)
            return done

        assert cli("init").returncode == 0, outputs[-1]
        with client_for(settings) as client:
            key = Auth(client.store).create_key("ops@example.org", roles="debug")[2]
        assert cli("submit", "--name", "n", "--command", "print(1)").returncode == 0, outputs[-1]
        cli("list")
        cli("stats")
        cli("workers")
        # a failure names the store too
        done = run_cli(
            settings,
            "--store",
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test",
            "list",
        )
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == 2

        outputs.append(_run_until(["worker", "--scheduler"], env, tmp_path, "Ctrl-C"))
        outputs.append(_run_until(["scheduler"], env, tmp_path, "Ctrl-C"))
        port = free_port()
        serve = ["serve", "--no-voila", "--port", str(port)]
        outputs.append(_run_until(serve, env, tmp_path, "opsjobs: hosted worker"))
    everything = "\n".join(outputs)
    assert "opsjobs serving" in everything and "worker" in everything
    assert PASSWORD not in everything
    assert HOOK_SECRET not in everything
    assert key and key not in everything and key.split("_", 2)[2] not in everything
    for log in (settings.data_dir / "logs").rglob("*"):
        if log.is_file():
            assert PASSWORD not in log.read_text("utf-8", "replace"), log
