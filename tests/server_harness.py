"""A real opsjobs server (jupyter_server + the opsjobs extension) in a thread of the test process,
on a free port, with an API client bound to it."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from typing import Any

import requests
from harness import wait_for
from jsonschema import Draft202012Validator

from opsjobs.auth import Auth
from opsjobs.server.app import OpsJobsServerApp, server_config
from opsjobs.server.openapi import API, SCHEMAS
from opsjobs.store import open_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    """``requests`` bound to one server and one key."""

    def __init__(self, base: str, key: str | None) -> None:
        self.base = base
        self.session = requests.Session()
        # one connection per request: a kept-alive socket of a session nobody closes was
        # reported unclosed (ResourceWarning) when collected, failing whichever test ran then
        self.session.headers["Connection"] = "close"
        if key is not None:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        kw.setdefault("allow_redirects", False)
        return self.session.request(method, self.base + path, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)


# The zmq contexts of stopped in-process servers' kernel managers, kept to the end of the session
# and taken out of their managers' hands. jupyter_client's MultiKernelManager destroys the context
# it made in its own ``__del__``, and that can hang the collecting thread for good: when a socket
# of the context is garbage in the same cycle, the collector has already cleared its weak
# reference, so ``destroy()`` does not close it and ``term()`` then waits for it forever (a notebook
# job's thread hung so in a CI run; tests/test_server_harness.py). Left alone, the context
# closes with the process (pyzmq's exit hook neither destroys nor warns); held here, pyzmq never
# finalises it during the session either (its "Unclosed context" warning is an error here).
# Destroying it ourselves after the stop made a later collection in that process crash (segfault).
# The sockets a stopped server left open on it (a kernel websocket's channels, now and then: seen
# in two full runs) are closed here, as destroy() would have, without its term(): otherwise a later
# test's collection finalises them and pyzmq's "Unclosed socket" warning fails that test.
_KERNEL_CONTEXTS: list[Any] = []


def _retire_kernel_context(app: Any) -> None:
    manager = getattr(app, "kernel_manager", None)
    # read the trait's value without making a context where the server never made one
    context = getattr(manager, "_trait_values", {}).get("context")
    if context is not None:
        _KERNEL_CONTEXTS.append(context)
        manager._created_context = False  # its __del__ leaves the context alone
        for sock in list(context._sockets):  # pyzmq's own list of the context's sockets
            if not sock.closed:
                sock.close(linger=0)


class ServerThread:
    """Start with :meth:`start`, stop with :meth:`stop` (the server's own clean shutdown)."""

    def __init__(self, tmp_path: Path, *, voila: bool = False, **kw: Any) -> None:
        self.port = free_port()
        self.data = tmp_path / "data"
        self.store_url = f"sqlite://{self.data / 'opsjobs.db'}"
        self.root = tmp_path / "notebooks"
        self.root.mkdir(exist_ok=True)
        self.config = server_config(
            port=self.port,
            root_dir=self.root,
            store_url=self.store_url,
            data_dir=str(self.data),
            voila=voila,
            **kw,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.app: OpsJobsServerApp | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-server", daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self.app = OpsJobsServerApp(config=self.config)
            self.app.initialize(argv=[])
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        self.app.io_loop.add_callback(self._ready.set)
        try:
            self.app.start()
        finally:
            _retire_kernel_context(self.app)
            loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(60):
            raise AssertionError("the server did not start within 60 s")
        if self._error is not None:
            raise AssertionError(f"the server failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self.app is not None and self._thread.is_alive():
            self.app.io_loop.add_callback(self.app._stop)
        self._thread.join(90)
        assert not self._thread.is_alive(), "the server did not stop"

    @property
    def extension(self) -> Any:
        assert self.app is not None
        return self.app.web_app.settings["opsjobs"]

    def key(self, email: str, roles: str = "", **kw: Any) -> str:
        """A fresh API key (made through a second store handle, as the CLI would)."""
        store = open_store(self.store_url)
        try:
            return Auth(store).create_key(email, roles=roles, **kw)[2]
        finally:
            store.close()

    def api(self, key: str | None) -> Api:
        return Api(self.base, key)


def valid(resp: requests.Response, schema: str, status: int = 200) -> dict[str, Any]:
    """The JSON body, after checking status, content type and the OpenAPI schema."""
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    root = {"$ref": f"#/components/schemas/{schema}", "components": {"schemas": SCHEMAS}}
    errors = list(Draft202012Validator(root).iter_errors(body))
    assert not errors, errors[0]
    return body  # type: ignore[no-any-return]


def failed(resp: requests.Response, status: int) -> str:
    body = valid(resp, "Error", status)
    assert body["error"]
    assert "Traceback" not in body["error"]
    return str(body["error"])


def submit(api: Api, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "job")
    if not {"command", "call", "argv"} & set(body):
        body["command"] = "print('hello')"
    return valid(api.post(f"{API}/jobs", json=body), "JobReply", 201)["job"]  # type: ignore[no-any-return]


def finished(api: Api, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = valid(api.get(f"{API}/jobs/{job_id}"), "JobReply")["job"]
        return job if job["state"] not in ("queued", "running") else None

    return wait_for(done, 30, f"job {job_id} to finish")
