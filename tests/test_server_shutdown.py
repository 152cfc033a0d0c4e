"""The server stops even when a page shuts its own kernel down while the server shuts down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_harness import ServerThread


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    server = ServerThread(tmp_path, worker=False, scheduler=False, memory_analysis=None).start()
    try:
        yield server
    finally:
        server.stop()


def on_loop(server: ServerThread, coro: object, timeout: float = 60) -> object:
    app = server.app
    assert app is not None
    loop = app.io_loop.asyncio_loop  # type: ignore[attr-defined]
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)  # type: ignore[arg-type]


def test_a_kernel_gone_during_the_shutdown_does_not_stop_it(server: ServerThread) -> None:
    # A CI run: a Voila page's own POST /voila/api/shutdown/<kernel> removed its kernel after
    # jupyter_server's shutdown_all had listed it; shutdown_all then raised 404 for it, the
    # server's stop task failed and the server never stopped ("the server did not stop").
    app = server.app
    assert app is not None
    km = app.kernel_manager
    kernel = on_loop(server, km.start_kernel())
    listed = km.list_kernel_ids
    km.list_kernel_ids = lambda: [*listed(), "4c0ffee0-0000-4000-8000-000000000000"]  # gone
    try:
        on_loop(server, app.cleanup_kernels())
    finally:
        km.list_kernel_ids = listed
    assert kernel not in km.list_kernel_ids()
