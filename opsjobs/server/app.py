"""The server process of ``opsjobs serve``: jupyter_server configured for opsjobs and Voila."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import ssl
import threading
from pathlib import Path
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.serverapp import ServerApp
from nbformat.sign import MemorySignatureStore
from tornado import web
from traitlets.config import Config

from opsjobs.server.identity import COMM_ONLY_MESSAGES, OpsJobsAuthorizer, OpsJobsIdentityProvider

__all__ = ["OpsJobsServerApp", "default_root", "server_config"]


def default_root() -> Path:
    """The folder served to Voila: the repository's ``notebooks/`` when present, else the
    package's ``dashboard/`` folder (only notebooks placed there can be rendered)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package.parent / "notebooks", package / "dashboard"):
        if candidate.is_dir():
            return candidate
    return package


def server_config(
    *,
    port: int,
    ip: str = "127.0.0.1",
    root_dir: Path | None = None,
    store_url: str | None = None,
    data_dir: str | None = None,
    voila: bool | None = None,
    worker: bool = True,
    scheduler: bool = True,
    memory_analysis: str | None = "30m",
    certfile: str | None = None,
    keyfile: str | None = None,
    behind_proxy: bool = False,
    lab: bool | None = None,
) -> Config:
    """The traitlets config of an opsjobs server (``memory_analysis``: interval of the hosted
    worker's ``memory-analysis`` schedule, None for none; ``certfile``/``keyfile``: serve
    HTTPS; ``behind_proxy``: trust ``X-Forwarded-*`` headers of a TLS-terminating proxy;
    ``lab``: serve JupyterLab at ``/lab`` to admins and the ``explore`` role, None: when it is
    installed)."""
    c = Config()
    s = c.ServerApp
    s.ip, s.port, s.port_retries = ip, port, 0
    s.open_browser = False
    s.allow_root = True  # opsjobs serve runs as root in containers; auth is by API key anyway
    s.answer_yes = True  # Ctrl-C stops at once, without the interactive confirmation
    s.root_dir = str(root_dir or default_root())
    s.terminals_enabled = False
    s.allow_unauthenticated_access = False
    s.default_url = "/opsjobs/"
    # An extension that fails to load stops the start (jupyter_server would log and run on
    # without it); parts that fail to start stop the server (OpsJobsExtension.start_failure).
    s.reraise_server_extension_failures = True
    s.identity_provider_class = OpsJobsIdentityProvider
    s.authorizer_class = OpsJobsAuthorizer
    c.OpsJobsIdentityProvider.token = ""  # no Jupyter token: API keys are the only credential
    # opsjobs' own sign-in page ("API key") and sign-out (issue 18; opsjobs.server.signin)
    c.OpsJobsIdentityProvider.login_handler_class = "opsjobs.server.signin.SignInHandler"
    c.OpsJobsIdentityProvider.logout_handler_class = "opsjobs.server.signin.SignOutHandler"
    # Lax: the cookie goes with top-level navigation to the server, not with other sites'
    # requests; jupyter_server adds Secure whenever the request came over HTTPS.
    c.OpsJobsIdentityProvider.cookie_options = {"samesite": "Lax"}
    if certfile:
        s.certfile, s.keyfile = certfile, keyfile or ""
        # jupyter_server's default, ssl.PROTOCOL_TLS, is deprecated (a warning per connection)
        s.ssl_options = {"ssl_version": ssl.PROTOCOL_TLS_SERVER}
    s.trust_xheaders = behind_proxy
    c.MappingKernelManager.allowed_message_types = COMM_ONLY_MESSAGES
    # Notebook trust signatures in memory: jupyter_server's default opened an SQLite file in the
    # user's Jupyter data folder for the first rendered notebook and never closed it.
    c.NotebookNotary.store_factory = MemorySignatureStore
    if voila is None:
        voila = importlib.util.find_spec("voila") is not None
    # Voila and jupyter_server_terminals enable themselves in jupyter_server_config.d; decide here.
    s.jpserver_extensions = {
        "opsjobs.server": True,
        "voila.server_extension": voila,
        "jupyter_server_terminals": False,
        # JupyterLab's package enables these for every jupyter_server; opsjobs serve loads
        # them only when it serves Lab (see opsjobs.server.lab)
        "jupyterlab": False,
        "jupyter_lsp": False,
        "notebook_shim": False,
    }
    # JupyterLab (issue 19): for admins and the explore role only (opsjobs.server.lab)
    from opsjobs.server.lab import available, connection_class

    s.kernel_websocket_connection_class = connection_class()
    if available() if lab is None else lab:
        s.jpserver_extensions["jupyterlab"] = True
        # nothing from outside the server: no news feed, no update check
        c.LabApp.news_url = None
        c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
    if voila:
        from opsjobs.server.voila import voila_config

        voila_config(c)  # the dashboard's template, identity hook and kernel culling
    ext = c.OpsJobsExtension
    ext.run_worker, ext.run_scheduler = worker, scheduler
    ext.memory_analysis = memory_analysis or ""
    if store_url:
        ext.store_url = store_url
    if data_dir:
        ext.data_dir = data_dir
    return c


class OpsJobsServerApp(ServerApp):
    """jupyter_server whose SIGINT and SIGTERM stop it cleanly (no prompt); off the main thread
    (tests) it installs no signal handlers."""

    name = "opsjobs-serve"

    def initialize(self, argv: Any = None, *args: Any, **kwargs: Any) -> None:
        super().initialize(argv, *args, **kwargs)
        # Before the first request: Voila renders the dashboard only (see opsjobs.server.gate).
        from opsjobs.server.gate import install as gate_voila
        from opsjobs.server.lab import install as gate_lab
        from opsjobs.server.voila import install_template

        install_template(self.web_app)
        gate_voila(self.web_app)
        gate_lab(self.web_app)  # JupyterLab for admins and the explore role only

    async def cleanup_kernels(self) -> None:
        """Shut every kernel down, each on its own: a kernel that went meanwhile (a dashboard
        page closing sends its own shutdown) is done, not an error. jupyter_server's
        ``shutdown_all`` raised 404 for it, its stop task failed and the server never stopped."""
        km = getattr(self, "kernel_manager", None)
        if not km:
            return
        ids = list(km.list_kernel_ids())
        self.log.info("Shutting down %d kernel%s", len(ids), "" if len(ids) == 1 else "s")

        async def shut(kernel_id: str) -> None:
            try:
                await ensure_async(km.shutdown_kernel(kernel_id))
            except (web.HTTPError, KeyError):
                if kernel_id in km:
                    raise  # not gone: a real failure

        await asyncio.gather(*(shut(k) for k in ids))

    def init_signal(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if getattr(self, "_stopping", False):
            return  # already stopping; a second Ctrl-C does not cut the shutdown short
        self.log.info("opsjobs: signal %s, stopping (running jobs get a grace period)", signum)
        self.stop(from_signal=True)
