"""The ``opsjobs`` jupyter_server extension: the REST API, a hosted worker and the scheduler.

The hosted worker claims jobs on its own thread; its ``inline`` jobs (the seed's MainLoop) run on
the server's event loop — they block it, as in the seed, so they should be quick — and its
``thread`` and ``process`` jobs on its pool. On shutdown (Ctrl-C, SIGTERM) the worker stops
first: cooperative jobs are told, every job gets a grace period, what is left is marked failed;
then the store is closed. Nothing is left ``running``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.application import ExtensionApp
from tornado import web
from tornado.ioloop import IOLoop
from traitlets import Bool, Int, List, Unicode

from opsjobs.auth import SYSTEM_OWNER, Auth, RunPolicy
from opsjobs.client import Client
from opsjobs.config import Settings, redact_url
from opsjobs.store import Store, open_store
from opsjobs.worker import Worker, WorkerHandle

if TYPE_CHECKING:
    from opsjobs.scheduler import SchedulerHandle
from opsjobs.server.alerts import alert_routes
from opsjobs.server.files import file_routes
from opsjobs.server.handlers import NoRouteHandler, native_routes
from opsjobs.server.lab_open import lab_open_routes
from opsjobs.server.notify import notify_routes
from opsjobs.server.prometheus import prometheus_routes
from opsjobs.server.schedules import schedule_routes
from opsjobs.server.seed import seed_routes
from opsjobs.server.service import ApiService
from opsjobs.server.voila import DASHBOARD

__all__ = ["DASHBOARD", "OpsJobsExtension", "tornado_pattern"]

log = logging.getLogger("opsjobs.server")


def tornado_pattern(path: str) -> str:
    """``/jobs/{job_id}`` → ``/jobs/([^/]+)``."""
    import re

    return re.sub(r"\{\w+\}", r"([^/]+)", path) + "$"


class HomeHandler(JupyterHandler):
    """``/opsjobs/``: the dashboard when it exists, else a small status page."""

    @web.authenticated
    def get(self) -> None:
        root = Path(self.settings.get("server_root_dir", "."))
        if (root / DASHBOARD).is_file():
            query = f"?{self.request.query}" if self.request.query else ""  # ?job=<id> links
            self.redirect(f"{self.base_url}voila/render/{DASHBOARD}{query}")
            return
        ext: OpsJobsExtension = self.settings["opsjobs"]
        user = getattr(self.current_user, "opsjobs", None)
        who = web.escape.xhtml_escape(user.email if user else "?")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            "<!doctype html><title>opsjobs</title><h1>opsjobs</h1>"
            f"<p>Signed in as {who}. Store: {web.escape.xhtml_escape(ext.store_label)}.</p>"
            f"<p>Hosted worker: {web.escape.xhtml_escape(ext.worker_id or 'none')}.</p>"
            '<p>API: <a href="api/v1/openapi.json">api/v1/openapi.json</a> '
            "(send <code>Authorization: Bearer &lt;key&gt;</code>).</p>"
            "<p>The dashboard appears here once notebooks/dashboard.ipynb exists.</p>"
        )


class OpsJobsExtension(ExtensionApp):
    """The opsjobs server extension (configurable as ``OpsJobsExtension.<trait>``)."""

    name = "opsjobs"
    load_other_extensions = True

    store_url = Unicode("", help="store URL (default: OPSJOBS_STORE or data/opsjobs.db)").tag(
        config=True
    )
    data_dir = Unicode("", help="data folder (default: OPSJOBS_DATA or ./data)").tag(config=True)
    run_worker = Bool(True, help="host a worker in the server process").tag(config=True)
    worker_threads = Int(4, help="concurrent thread/process jobs of the hosted worker").tag(
        config=True
    )
    queues = List(Unicode(), default_value=["default"], help="queues of the hosted worker").tag(
        config=True
    )
    run_scheduler = Bool(True, help="run the scheduler in the server process").tag(config=True)
    memory_analysis = Unicode(
        "30m",
        help="interval of the hosted worker's memory-analysis schedule (empty: none)",
    ).tag(config=True)
    api_threads = Int(16, help="threads running store calls of API requests").tag(config=True)

    store: Store | None = None
    worker_id: str | None = None
    store_label = ""
    #: Why a part (worker, scheduler, ...) failed to start; the server then stops itself and
    #: ``opsjobs serve`` exits with this line.
    start_failure: str | None = None
    worker: Worker | None = None
    _handle: WorkerHandle | None = None
    _scheduler: SchedulerHandle | None = None
    executor: ThreadPoolExecutor | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # set before anything can fail: stop_extension runs even after a failed start
        self._closing = threading.Event()

    def initialize_settings(self) -> None:
        settings = Settings.from_env(
            store_url=self.store_url or None, data_dir=self.data_dir or None
        )
        self.opsjobs_settings = settings
        self.store = open_store(
            settings.store_url,
            runtime_dir=settings.runtime_dir,
            data_dir=settings.data_dir,
            settings=settings,
        )
        self.store.serialize_writes()  # request latency over worker throughput
        self.store_label = redact_url(self.store.url)
        self.executor = ThreadPoolExecutor(self.api_threads, thread_name_prefix="opsjobs-api")
        auth = Auth(self.store)
        root = getattr(self.serverapp, "root_dir", None)
        # the catalog: OPSJOBS_NOTEBOOKS, else the folder Voila serves (--notebooks)
        catalog = settings.notebooks_dir or (Path(root) if root else settings.catalog_dir)
        policy = RunPolicy(
            allowed_calls=frozenset(settings.allowed_calls),
            catalog=catalog.expanduser().resolve(),
        )
        self.service = ApiService(Client(self.store, settings), auth, policy=policy)
        self.settings.update(
            opsjobs_service=self.service,
            opsjobs_auth=auth,
            opsjobs_executor=self.executor,
            # reads of a local store are short enough for the event loop (see handlers.call)
            opsjobs_local_store=self.store.local,
        )
        log.info("opsjobs: store %s", self.store_label)

    def initialize_handlers(self) -> None:
        routes = {**native_routes(), **schedule_routes(), **seed_routes(), **file_routes()}
        routes.update({**alert_routes(), **notify_routes(), **prometheus_routes()})
        routes.update(lab_open_routes())
        self.handlers.extend(
            (tornado_pattern(path), cls, {"route": path}) for path, cls in routes.items()
        )
        self.handlers.append((r"/opsjobs/?$", HomeHandler))
        from opsjobs.server.lab import TerminalsOffHandler

        self.handlers.append((r"/api/terminals.*", TerminalsOffHandler))  # 403: terminals are off
        self.handlers.append((r"/opsjobs/api/.*", NoRouteHandler))  # last: a JSON 404

    # -- hosting ----------------------------------------------------------------------------------
    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if self.store is None:
            return
        try:
            await self._start_parts(serverapp)
        except Exception as exc:  # any part: the server must not run without it
            self.start_failure = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
            log.error("opsjobs: cannot start: %s; stopping the server", self.start_failure)
            serverapp.stop()

    async def _start_parts(self, serverapp: Any) -> None:
        assert self.store is not None
        from opsjobs.server.gate import install as gate_voila
        from opsjobs.server.voila import install_template, own_kernels

        install_template(serverapp.web_app)  # Voila is loaded by now
        gate_voila(serverapp.web_app)  # the dashboard only (OpsJobsServerApp did it already)
        own_kernels(serverapp, self._kernel_env())  # a dashboard kernel is its user's only
        if self.run_scheduler:
            from opsjobs.scheduler import Scheduler

            self._scheduler = Scheduler(self.store, self.opsjobs_settings).start()
            log.info("opsjobs: scheduler %s", self._scheduler.id)
        if not self.run_worker:
            return
        loop = IOLoop.current()
        self.worker = Worker(
            self.store,
            self.opsjobs_settings,
            queues=list(self.queues),
            threads=self.worker_threads,
            inline_executor=self._on_loop(loop),
        )
        self.worker_id = self.worker.id
        self.service.worker_ids.append(self.worker.id)
        self._handle = WorkerHandle(self.worker)
        log.info(
            "opsjobs: hosted worker %s serving %s", self.worker.id, ", ".join(self.worker.queues)
        )
        if self.memory_analysis:
            await asyncio.get_running_loop().run_in_executor(
                self.executor, self._ensure_memory_analysis, self.worker.id
            )

    def _kernel_env(self) -> dict[str, str]:
        """The store settings every kernel the server starts gets in its environment."""
        settings = self.opsjobs_settings
        env = {
            "OPSJOBS_STORE": settings.store_url,
            "OPSJOBS_DATA": str(settings.data_dir.resolve()),
        }
        if settings.runtime_dir:
            env["OPSJOBS_RUNTIME_DIR"] = settings.runtime_dir
        return env

    def _ensure_memory_analysis(self, worker_id: str) -> None:
        """The default ``memory-analysis`` schedule, aimed at the hosted worker (re-aimed at
        every start); a failure is logged, the server runs on."""
        from opsjobs.analyzer.schedule import opt_in
        from opsjobs.errors import OpsJobsError

        assert self.store is not None
        try:
            # the server's own schedule: the system owner's, whoever runs the server
            system = dataclasses.replace(self.opsjobs_settings, user=SYSTEM_OWNER)
            schedule = opt_in(Client(self.store, system), worker_id, every=self.memory_analysis)
        except OpsJobsError as exc:
            log.warning("opsjobs: no memory-analysis schedule: %s", exc)
            return
        log.info(
            "opsjobs: schedule %s analyses the hosted worker every %s",
            schedule.name,
            self.memory_analysis,
        )

    def _on_loop(self, loop: IOLoop) -> Callable[[Callable[[], None]], None]:
        """An inline executor: run the work on the server's event loop and wait for it."""

        def run(work: Callable[[], None]) -> None:
            done = threading.Event()

            def step() -> None:
                try:
                    work()
                finally:
                    done.set()

            loop.add_callback(step)
            # The loop runs it unless the server is going away before it got there.
            while not done.wait(0.25):
                if self._closing.is_set() and not _running(loop):
                    return

        return run

    async def stop_extension(self) -> None:
        self._closing.set()
        loop = asyncio.get_running_loop()
        if self._scheduler is not None:
            await loop.run_in_executor(None, self._scheduler.stop)
            self._scheduler = None
        if self._handle is not None:
            # Off the loop: the worker may be waiting for an inline job queued on it.
            await loop.run_in_executor(None, self._handle.stop, 60.0)
            self._handle = None
        if self.executor is not None:
            self.executor.shutdown(wait=True)
        if self.store is not None:
            self.store.close()
            self.store = None
        log.info("opsjobs: stopped")


def _running(loop: IOLoop) -> bool:
    aloop = getattr(loop, "asyncio_loop", None)
    return bool(aloop is not None and aloop.is_running() and not aloop.is_closed())
