"""What Voila may render or show: the dashboard notebook, to signed-in users, and nothing else.

Voila as a jupyter_server extension renders *any* notebook under the server's root folder for
any signed-in user, lists the folder (``/voila``, ``/voila/tree``, ``/voila/api/contents``) and
serves its files (``/voila/files``, without asking who calls). A rendered notebook runs in a
kernel started by the server, as the server's OS user, with the server's environment: any
notebook placed beside the dashboard (``explore_results.ipynb`` opens the whole store) would
run for any key holder, roles or not.

:func:`install` therefore puts, in place of those Voila handlers:

* ``/voila/render/<path>``: the dashboard notebook (:data:`~opsjobs.server.voila.DASHBOARD`)
  for a signed-in opsjobs user; 404 for every other path, whoever asks;
* the tree, contents, files and progressive-execution routes: 404.

Templates, static assets, themes and lab extensions stay (they hold no data). Jupyter's own
contents, files, nbconvert, sessions and kernel-start routes are refused by
:class:`~opsjobs.server.identity.OpsJobsAuthorizer`.
"""

from __future__ import annotations

import posixpath
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import JupyterHandler
from tornado import web

__all__ = ["NotFoundHandler", "install", "may_render"]

#: Voila handler classes (by name) whose routes answer 404 once the gate is in.
_CLOSED = (
    "TornadoVoilaTreeHandler",
    "VoilaTreeHandler",
    "VoilaContentsHandler",
    "AllowListFileHandler",
    "ExecutionRequestHandler",
)


def may_render(path: str | None, dashboard: str) -> bool:
    """Is ``path`` (as Voila's render route got it) the dashboard notebook?"""
    if not path:
        return False
    clean = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    return clean == dashboard


class NotFoundHandler(JupyterHandler):
    """A closed Voila route: 404 to everyone, before anything is read or listed."""

    def prepare(self) -> None:  # type: ignore[override]
        raise web.HTTPError(404)


def _render_gate(base: type) -> type:
    """``base`` (Voila's render handler) answering only for the dashboard and a signed-in
    opsjobs user."""

    class DashboardOnlyHandler(base):
        async def prepare(self) -> None:
            await ensure_async(super().prepare())
            from opsjobs.server.identity import opsjobs_user
            from opsjobs.server.voila import DASHBOARD

            path = self.path_args[0] if self.path_args else None
            if not may_render(path, DASHBOARD):
                raise web.HTTPError(404)
            if self.current_user is not None and opsjobs_user(self) is None:
                raise web.HTTPError(403)  # a Jupyter identity that is not an opsjobs user

    DashboardOnlyHandler.__name__ = DashboardOnlyHandler.__qualname__ = "DashboardOnlyHandler"
    return DashboardOnlyHandler


def install(web_app: Any) -> int:
    """Gate Voila's routes on ``web_app`` (once Voila's handlers are added); returns how many
    routes were changed (0 when Voila is not loaded)."""
    try:
        from voila.tornado.handler import TornadoVoilaHandler
    except ImportError:
        return 0
    from opsjobs.server.voila import router_rules

    changed = 0
    gated = _render_gate(TornadoVoilaHandler)
    for rule in router_rules(web_app.default_router):
        target = rule.target
        if target is TornadoVoilaHandler:
            rule.target = gated
            changed += 1
        elif (
            isinstance(target, type)
            and target.__name__ in _CLOSED
            and str(getattr(target, "__module__", "")).startswith("voila")
        ):
            rule.target = NotFoundHandler
            rule.target_kwargs = {}
            changed += 1
    return changed
