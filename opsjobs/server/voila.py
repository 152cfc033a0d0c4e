"""The server side of the Voila dashboard: its settings, template and identity hook, and the
routes of Voila that the server changes.

The dashboard itself (:mod:`opsjobs.dashboard`) runs in the kernel and imports nothing from the
server; the two meet only in :mod:`opsjobs.dashboard.session` (the signed session a kernel is
given, which :class:`DashboardLauncher` writes here and the kernel reads there).

The template lives in ``voila-templates/opsjobs/``. A wheel installs it where Voila looks
(``share/jupyter/voila/templates/opsjobs``), but an editable install or a plain clone does not,
so the server does not depend on Voila's search: :func:`install_template` points Voila's render
handler at the folder :func:`template_dir` finds (the source tree first, then the installed
copy), followed by the ``lab`` template it extends.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from opsjobs.auth import User
from opsjobs.config import Settings
from opsjobs.dashboard.session import SESSION_VARIABLE, ServerSide, sign_token
from opsjobs.server.kernels import SETTING, KernelOwners, OwnedShutdownHandler, starting_for

__all__ = [
    "CULL_IDLE_SECONDS",
    "DASHBOARD",
    "TEMPLATE",
    "DashboardLauncher",
    "install_template",
    "own_kernels",
    "prelaunch_hook",
    "router_rules",
    "session_cell",
    "template_dir",
    "template_paths",
    "voila_config",
]

#: The dashboard notebook, relative to the server's root folder.
DASHBOARD = "dashboard.ipynb"
#: The template's name (``VoilaConfiguration.template``).
TEMPLATE = "opsjobs"
#: A dashboard kernel whose page is gone (no connection, no ticks) is shut down after this long.
CULL_IDLE_SECONDS = 120


def template_dir() -> Path | None:
    """The opsjobs Voila template folder: the source tree's, else an installed copy."""
    source = Path(__file__).resolve().parents[2] / "voila-templates" / TEMPLATE
    if (source / "index.html.j2").is_file():
        return source
    from jupyter_core.paths import jupyter_path

    for root in jupyter_path("voila", "templates", TEMPLATE):
        if (Path(root) / "index.html.j2").is_file():
            return Path(root)
    return None


def template_paths() -> list[str]:
    """Jinja search paths for the opsjobs template: its folder, then Voila's ``lab``."""
    from voila.paths import collect_template_paths

    found = template_dir()
    lab = collect_template_paths(["voila", "nbconvert"], "lab")
    return ([str(found)] if found is not None else []) + lab


def voila_config(c: Any) -> None:
    """Voila and kernel-manager settings for the dashboard, into a traitlets ``Config``."""
    v = c.VoilaConfiguration
    v.template = TEMPLATE if template_dir() is not None else "lab"
    v.prelaunch_hook = prelaunch_hook
    v.show_tracebacks = False
    # Idle kernels without a connected page are culled; a visible page ticks every 5 s.
    k = c.MappingKernelManager
    k.cull_idle_timeout = CULL_IDLE_SECONDS
    k.cull_interval = 30
    k.cull_connected = False


def install_template(web_app: Any) -> bool:
    """Point Voila's render handler at :func:`template_paths`; False if Voila is not loaded."""
    try:
        from voila.tornado.handler import TornadoVoilaHandler
    except ImportError:
        return False
    # Voila's page loads MathJax from a public CDN unless both are "null" (its front end's own
    # test): the dashboard shows no LaTeX, and its machines often have no internet.
    web_app.settings.setdefault("mathjax_url", "null")
    web_app.settings.setdefault("mathjax_config", "null")
    if template_dir() is None:
        return False
    paths = template_paths()
    found = False
    for rule in router_rules(web_app.default_router):
        target = rule.target
        if (
            isinstance(target, type)
            and issubclass(target, TornadoVoilaHandler)
            and rule.target_kwargs is not None
        ):
            rule.target_kwargs["template_paths"] = paths
            found = True
    return found


def router_rules(router: Any) -> Iterator[Any]:
    """Every rule of a tornado ``router``, those of nested routers included."""
    for rule in getattr(router, "rules", []):
        yield rule
        if hasattr(rule.target, "rules"):
            yield from router_rules(rule.target)


class DashboardLauncher:
    """The server half: one per server, created on the first dashboard visit.

    Parameters
    ----------
    settings
        The server's settings (store and data folder the kernels will use).
    clock
        Time source (tests).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        catalog: str | None = None,
    ) -> None:
        self.side = ServerSide(
            store_url=settings.store_url,
            data_dir=str(settings.data_dir.resolve()),
            runtime_dir=settings.runtime_dir,
            secret=secrets.token_bytes(32),
            allowed_calls=settings.allowed_calls,
            catalog=catalog,
        )
        self.path = self.side.write()
        self.clock = clock

    def session_for(self, user: User) -> dict[str, str]:
        """The value of ``_opsjobs_session`` for a kernel working for ``user``."""
        token = sign_token(self.side.secret, user.id, now=self.clock())
        return {"config": str(self.path), "token": token}

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def session_cell(session: Mapping[str, str]) -> dict[str, Any]:
    """The hidden code cell that hands ``session`` to the kernel."""
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": "opsjobs-session",
        "metadata": {"tags": ["opsjobs-session"]},
        "outputs": [],
        "source": f"{SESSION_VARIABLE} = {dict(session)!r}",
    }


def prelaunch_hook(handler: Any, notebook: Any, cwd: str) -> Any:
    """Voila's ``prelaunch_hook``: give the kernel a signed session for the signed-in user.

    Installed by :func:`voila_config`. Notebooks other than the dashboard
    are left alone.
    """
    user = getattr(getattr(handler, "current_user", None), "opsjobs", None)
    if user is not None:
        starting_for(user.id)  # the kernel Voila starts next is this user's (any notebook)
    if not str(handler.request.path).rstrip("/").endswith("dashboard.ipynb"):
        return notebook
    ext = handler.settings.get("opsjobs")
    if user is None or ext is None or getattr(ext, "opsjobs_settings", None) is None:
        return notebook  # no opsjobs identity: the dashboard shows "not signed in"
    launcher = handler.settings.get("opsjobs_dashboard")
    if launcher is None:
        policy = getattr(getattr(ext, "service", None), "policy", None)
        catalog = str(policy.catalog) if policy is not None and policy.catalog else None
        launcher = DashboardLauncher(ext.opsjobs_settings, catalog=catalog)
        handler.settings["opsjobs_dashboard"] = launcher
    import nbformat

    session = launcher.session_for(user)
    job = _linked_job(handler)
    if job is not None:
        session = {**session, "job": job}  # a notification's link: open that job's detail
    notebook.cells.insert(0, nbformat.from_dict(session_cell(session)))
    return notebook


_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _linked_job(handler: Any) -> str | None:
    """The job id of a ``?job=<uuid>`` link (anything else is ignored)."""
    values = getattr(handler.request, "query_arguments", {}).get("job") or []
    text = values[0].decode("ascii", "replace") if values else ""
    return text if _JOB_ID.match(text) else None


def own_kernels(serverapp: Any, env: dict[str, str] | None = None) -> KernelOwners:
    """Track kernel owners on ``serverapp`` and put :class:`OwnedShutdownHandler` in place of
    Voila's shutdown handler (once Voila's routes are loaded); returns the tracker. ``env``
    (``OPSJOBS_*`` of the server's settings) goes into the environment of every kernel the
    server starts, so ``opsjobs.connect()`` there opens the server's store."""
    owners = serverapp.web_app.settings.get(SETTING)
    if owners is None:
        owners = KernelOwners(serverapp.kernel_manager, env)
        serverapp.web_app.settings[SETTING] = owners
    try:
        from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler
    except ImportError:
        return owners
    for rule in router_rules(serverapp.web_app.default_router):
        if rule.target is VoilaShutdownKernelHandler:
            rule.target = OwnedShutdownHandler
    return owners
