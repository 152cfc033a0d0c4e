"""Shared fixtures: settings isolation, stores for the contract suite, a worker harness."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsjobs.store import Store, open_store

STORE_BACKENDS = ["memory", "sqlite", "postgres"]


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Every test gets its own data folder and no OPSJOBS_* from the caller's environment."""
    for key in list(os.environ):
        if key.startswith("OPSJOBS_"):
            monkeypatch.delenv(key)
    data = tmp_path / "data"
    monkeypatch.setenv("OPSJOBS_DATA", str(data))
    monkeypatch.setenv("OPSJOBS_RUNTIME_DIR", str(tmp_path / "run"))
    # no `opsjobs login` of the developer's own (issue 18): a login file per test
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield data


def make_store(backend: str, tmp_path: Path) -> Store:
    if backend == "memory":
        return open_store("memory://")
    if backend == "sqlite":
        return open_store(f"sqlite://{tmp_path / 'store.db'}", runtime_dir=str(tmp_path / "run"))
    if backend == "postgres":
        from pg import schema_store  # its own schema, dropped on close; skips without a server

        return schema_store()
    raise ValueError(backend)


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser(site: Any) -> Iterator[Any]:
    """Headless Chromium (tests/browser.py) for a browser test module, once its ``site``
    fixture (the server it browses) is up."""
    from browser import launch_chromium
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    """A client of a fresh SQLite store in ``tmp_path`` (files that need more define their own)."""
    from harness import client_for, settings_for

    with client_for(settings_for(tmp_path)) as c:
        yield c
