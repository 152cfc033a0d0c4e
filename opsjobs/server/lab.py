"""JupyterLab in ``opsjobs serve``, for users who may run code: ``admin`` or ``explore``.

Lab runs any code as the server's OS user, so it is served only to a user whose
:attr:`~opsjobs.auth.User.may_use_lab` holds; everyone else gets 403 from Lab's pages and
settings (:func:`install`) and from Jupyter's contents, sessions, kernels and terminals routes
(:class:`~opsjobs.server.identity.OpsJobsAuthorizer`). Terminals stay off for everyone.

A kernel a Lab user starts (``POST /api/sessions`` or ``/api/kernels``) is filed under that
user (:mod:`opsjobs.server.kernels`) and gets, over the server's store settings,
``OPSJOBS_USER`` (their e-mail, the owner the REST API records) and, unless they are an admin,
``OPSJOBS_SCOPE_OWNER``: ``opsjobs.connect()`` in it then sees their jobs only, as the REST API
does. That is a view, not a wall: the kernel runs as the server's OS user and could open the
store file itself — the role is what grants trust.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from tornado import web

from opsjobs.auth import User
from opsjobs.server.kernels import SETTING as KERNEL_OWNERS

__all__ = [
    "LAB_SETTING",
    "TerminalsOffHandler",
    "available",
    "connection_class",
    "install",
    "kernel_env",
    "lab_user",
]

#: The web app setting that says Lab is served (``opsjobs serve`` loaded JupyterLab).
LAB_SETTING = "opsjobs_lab"


def available() -> bool:
    """Is JupyterLab installed (the ``all`` extra)?"""
    return importlib.util.find_spec("jupyterlab") is not None


def lab_user(handler: web.RequestHandler) -> User | None:
    """The request's opsjobs user when Lab is served and they may use it."""
    if not handler.settings.get(LAB_SETTING):
        return None
    user = getattr(getattr(handler, "current_user", None), "opsjobs", None)
    return user if user is not None and user.may_use_lab else None


def kernel_env(user: User) -> dict[str, str]:
    """What a Lab kernel of ``user`` gets over the server's store settings."""
    # OPSJOBS_KEY empty: a key in the server's own environment would win over OPSJOBS_USER
    # (opsjobs.auth.login), so the kernel must not inherit it
    env = {"OPSJOBS_USER": user.email, "OPSJOBS_KEY": ""}
    if not user.sees_all:
        env["OPSJOBS_SCOPE_OWNER"] = user.email
    return env


def _gate(base: type) -> type:
    """``base`` (a JupyterLab page or API handler) for Lab users only: 403 for others."""

    class LabOnlyHandler(base):
        async def prepare(self) -> None:
            await ensure_async(super().prepare())
            if self.current_user is not None and lab_user(self) is None:
                raise web.HTTPError(403, "JupyterLab needs the explore role or an admin role")

    LabOnlyHandler.__name__ = LabOnlyHandler.__qualname__ = f"LabOnly{base.__name__}"
    return LabOnlyHandler


def install(web_app: Any) -> int:
    """Gate JupyterLab's handlers on ``web_app`` (once they are added); returns how many."""
    from opsjobs.server.voila import router_rules

    changed = 0
    for rule in router_rules(web_app.default_router):
        target = rule.target
        module = str(getattr(target, "__module__", ""))
        if (
            isinstance(target, type)
            and module.startswith(("jupyterlab", "jupyter_lsp", "notebook_shim"))
            and issubclass(target, web.RequestHandler)
            and not issubclass(target, web.StaticFileHandler)
            and not target.__name__.startswith("LabOnly")
        ):
            rule.target = _gate(target)
            changed += 1
    web_app.settings[LAB_SETTING] = changed > 0
    if changed:
        web_app.settings["page_config_hook"] = _page_config
    return changed


#: Lab's plugin that asks "get notified about official Jupyter news?" at every first visit
#: (with the news feed off, as ``opsjobs serve`` has it, the answer would change nothing).
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"


def _page_config(handler: web.RequestHandler, config: dict[str, Any]) -> dict[str, Any]:
    """jupyterlab_server's ``page_config_hook``: the announcements plugin disabled."""
    disabled = config.get("disabledExtensions")
    if isinstance(disabled, dict):
        disabled[ANNOUNCEMENTS] = True
    else:
        config["disabledExtensions"] = [*(disabled or []), ANNOUNCEMENTS]
    return config


class TerminalsOffHandler(APIHandler):
    """``/api/terminals``: off in ``opsjobs serve`` — 403 for everyone."""

    def prepare(self) -> None:  # type: ignore[override]
        raise web.HTTPError(403, "terminals are off in opsjobs serve")


def connection_class() -> type:
    """The kernel websocket connection: a Lab kernel takes every message type, a dashboard
    kernel only comm traffic (``MappingKernelManager.allowed_message_types``)."""
    from jupyter_server.services.kernels.connection.channels import (
        ZMQChannelsWebsocketConnection,
    )

    class OpsJobsConnection(ZMQChannelsWebsocketConnection):
        def handle_incoming_message(self, incoming_msg: Any) -> None:
            owners = self.websocket_handler.settings.get(KERNEL_OWNERS)
            if owners is None or not owners.is_lab(self.kernel_id):
                super().handle_incoming_message(incoming_msg)
                return
            # A Lab kernel: no restriction. The method is synchronous, so no other message
            # is handled on the event loop while the manager's list is lifted.
            km = self.multi_kernel_manager
            allowed = km.allowed_message_types
            km.allowed_message_types = []
            try:
                super().handle_incoming_message(incoming_msg)
            finally:
                km.allowed_message_types = allowed

    return OpsJobsConnection
