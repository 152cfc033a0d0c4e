"""A dashboard kernel is its page's user's only: another key holder who learns its id can neither
reach it (the kernel route, its websocket) nor stop it (Voila's page-unload shutdown route)."""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from harness import ROOT
from server_harness import ServerThread

pytestmark = pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    server = ServerThread(tmp_path, voila=True)
    shutil.copy(ROOT / "notebooks" / "dashboard.ipynb", server.root / "dashboard.ipynb")
    server.start()
    yield server
    server.stop()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            raise ConnectionError("the server closed the connection without a close frame")
        data += more
    return data


def _frames_until_close(sock: socket.socket) -> bool:
    """Read the server's frames up to its close frame: a kernel message (a text frame, such as
    its status) may come first (seen once on a fresh machine)."""
    for _ in range(1000):
        head = _read(sock, 2)
        length = head[1] & 0x7F
        if length >= 126:
            length = int.from_bytes(_read(sock, 2 if length == 126 else 8), "big")
        _read(sock, length)
        if head[0] & 0x0F == 0x8:
            return True
    return False


def _websocket(server: ServerThread, key: str, kernel_id: str) -> int:
    """The HTTP status of a websocket handshake on the kernel's channels (101: it opened)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(
            "GET",
            f"/api/kernels/{kernel_id}/channels",
            headers={
                **_bearer(key),
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            },
        )
        status = conn.getresponse().status
        if status == 101:  # close it properly: the server then closes the kernel's channels
            assert conn.sock is not None
            conn.sock.sendall(b"\x88\x80" + os.urandom(4))  # a masked close frame, no payload
            assert _frames_until_close(conn.sock)  # the server answers with its close frame
        return status
    finally:
        conn.close()


def test_only_the_pages_user_reaches_or_stops_its_kernel(server: ServerThread) -> None:
    ada, bob = server.key("ada@example.org", "debug"), server.key("bob@example.org", "debug")
    page = requests.get(
        server.base + "/voila/render/dashboard.ipynb", headers=_bearer(ada), timeout=120
    )
    assert page.status_code == 200
    found = re.search(r'"kernelId": "([0-9a-f-]{36})"', page.text)
    assert found is not None, page.text[:500]
    kernel_id = found.group(1)
    km = server.app.kernel_manager  # type: ignore[union-attr]
    assert kernel_id in km

    kernel = f"{server.base}/api/kernels/{kernel_id}"
    shutdown = f"{server.base}/voila/api/shutdown/{kernel_id}"
    assert requests.get(kernel, headers=_bearer(bob), timeout=30).status_code == 403
    assert _websocket(server, bob, kernel_id) == 403
    refused = requests.post(shutdown, headers=_bearer(bob), timeout=30)
    assert refused.status_code == 403 and kernel_id in km

    assert requests.get(kernel, headers=_bearer(ada), timeout=30).status_code == 200
    assert _websocket(server, ada, kernel_id) == 101
    assert requests.post(shutdown, headers=_bearer(ada), timeout=30).status_code == 204
    assert kernel_id not in km
    # gone: the same refusal as someone else's kernel
    assert requests.post(shutdown, headers=_bearer(ada), timeout=30).status_code == 403
