"""Run code in a Jupyter kernel through the server's REST API and kernel websocket, as
JupyterLab's page does (tornado's websocket client; Jupyter's JSON message protocol)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


def _message(code: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "username": "test",
            "session": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "version": "5.3",
            "date": datetime.now(timezone.utc).isoformat(),
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
        },
        "channel": "shell",
    }


async def _run(url: str, headers: dict[str, str], code: str, timeout: float) -> dict[str, Any]:
    conn = await websocket_connect(HTTPRequest(url, headers=headers, request_timeout=timeout))
    try:
        msg = _message(code)
        await conn.write_message(json.dumps(msg))
        out: list[str] = []
        error: str | None = None
        status = None
        idle = False

        # asyncio.wait_for, not asyncio.timeout: that is Python 3.11+
        async def collect() -> None:
            nonlocal error, status, idle
            while True:
                raw = await conn.read_message()
                if raw is None:
                    raise AssertionError("the kernel websocket closed")
                reply = json.loads(raw)
                if reply.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                    continue
                kind = reply["header"]["msg_type"]
                if kind == "stream":
                    out.append(reply["content"]["text"])
                elif kind == "error":
                    error = f"{reply['content']['ename']}: {reply['content']['evalue']}"
                elif kind == "execute_reply":
                    status = reply["content"]["status"]
                elif kind == "status" and reply["content"]["execution_state"] == "idle":
                    idle = True
                # the reply (shell) and the idle status (iopub) come in either order
                if status is not None and idle:
                    break

        await asyncio.wait_for(collect(), timeout)
        return {"stdout": "".join(out), "error": error, "status": status}
    finally:
        conn.close()

        # wait for the server's close frame: the socket is closed before the loop ends
        async def drain() -> None:
            while await conn.read_message() is not None:
                pass

        await asyncio.wait_for(drain(), 10)


def run_code(
    base: str, kernel_id: str, code: str, *, headers: dict[str, str], timeout: float = 120
) -> dict[str, Any]:
    """Execute ``code`` in the kernel; its stdout, error (``Name: value``) and reply status."""
    url = base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    return asyncio.run(_run(url, headers, code, timeout))
