"""Test helpers: settings on a temporary data folder, embedded workers, waiting with deadlines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from opsjobs import Settings
from opsjobs.auth import Auth, User
from opsjobs.client import Client
from opsjobs.store import open_store

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
T = TypeVar("T")


def settings_for(tmp_path: Path, **kw: object) -> Settings:
    data = tmp_path / "data"
    base: dict[str, object] = {
        "data_dir": data,
        "store_url": f"sqlite://{data / 'opsjobs.db'}",
        "runtime_dir": str(tmp_path / "run"),
        "user": "tester",
    }
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def client_for(settings: Settings) -> Client:
    store = open_store(
        settings.store_url, runtime_dir=settings.runtime_dir, data_dir=settings.data_dir
    )
    return Client(store, settings)


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSJOBS_")}
    env.update(
        OPSJOBS_DATA=str(settings.data_dir),
        OPSJOBS_STORE=settings.store_url,
        OPSJOBS_RUNTIME_DIR=str(settings.runtime_dir),
        PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    return env


def run_cli(
    settings: Settings, *args: str, timeout: float = 60, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsjobs", *args],
        env=cli_env(settings, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=settings.data_dir.parent,
    )


def start_worker(
    settings: Settings, *args: str, background: bool = False, **extra: str
) -> subprocess.Popen[str]:
    """An ``opsjobs worker`` process; ``background``: started as a shell starts ``cmd &``
    (SIGINT ignored, which the new interpreter keeps)."""
    return subprocess.Popen(
        [sys.executable, "-m", "opsjobs", "worker", *args],
        env=cli_env(settings, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=settings.data_dir.parent,
        preexec_fn=_ignore_sigint if background else None,
    )


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def python_child(script: str, timeout: float = 240) -> Any:
    """Run ``script`` in a fresh interpreter (the repository importable) and return the JSON
    of the last line it prints; a failing child fails the test with its stderr."""
    import json

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


ADA, BOB, ROOT_USER = "ada@example.org", "bob@example.org", "root@example.org"


def dashboard_users(client: Client, *, bob_roles: str = "") -> dict[str, User]:
    """The dashboard tests' three people: ada (debug), bob (``bob_roles``), root (admin)."""
    auth = Auth(client.store)
    return {
        "ada": auth.create_key(ADA, roles="debug")[0],
        "bob": auth.create_key(BOB, roles=bob_roles)[0],
        "root": auth.create_key(ROOT_USER, roles="system_admin")[0],
    }
