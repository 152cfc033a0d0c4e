"""The in-process server harness leaves nothing that can stall a later test of its process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# A stopped server's kernel manager, collected in one cycle with a socket of its context still
# open (a kernel channel the server never closed): jupyter_client's ``__del__`` destroyed the
# context, pyzmq's destroy skipped the socket (its weak reference was already cleared by the
# collector) and then waited in ``term()`` for it to close, which only the same collection could
# do. Whatever thread collected hung for good: a notebook job's thread in a CI run (the job stayed
# "running" until the test's 120 s wait gave up).
SCRIPT = """
import gc, os, sys, threading, types
import zmq
from jupyter_client.multikernelmanager import MultiKernelManager
import server_harness

gc.disable()
manager = MultiKernelManager()
channel = manager.context.socket(zmq.PUB)
server_harness._retire_kernel_context(types.SimpleNamespace(kernel_manager=manager))
cycle = [manager, channel]
cycle.append(cycle)
del manager, channel, cycle
collector = threading.Thread(target=gc.collect, daemon=True)
collector.start()
collector.join(30)
print("hung" if collector.is_alive() else "collected", flush=True)
os._exit(0)
"""


def test_a_stopped_servers_kernel_manager_is_collected_without_hanging() -> None:
    tests = Path(__file__).resolve().parent
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", SCRIPT],
        cwd=tests,
        env={**os.environ, "PYTHONPATH": str(tests)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "collected"


def test_a_stopped_servers_open_kernel_channels_are_closed_with_it() -> None:
    """A kernel channel the server left open (a websocket's, seen in two full runs: jupyter_server
    never closed it) was closed by no one once the context was kept: a later test's collection
    finalised it and pyzmq's "Unclosed socket" warning failed that unrelated test (a CI run)."""
    import types

    import zmq
    from jupyter_client.multikernelmanager import MultiKernelManager
    from server_harness import _retire_kernel_context

    manager = MultiKernelManager()
    left_open = manager.context.socket(zmq.DEALER)
    closed_before = manager.context.socket(zmq.SUB)
    closed_before.close()
    _retire_kernel_context(types.SimpleNamespace(kernel_manager=manager))
    assert left_open.closed
    assert not manager.context.closed  # kept: term() is what could hang (the test above)
