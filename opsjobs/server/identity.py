"""Who is calling, and what they may reach: jupyter_server's own auth machinery, fed by API keys.

* :class:`OpsJobsIdentityProvider` maps ``Authorization: Bearer <key>`` to a user; the sign-in
  page (:mod:`opsjobs.server.signin`: one field, "API key", posted as ``password``) accepts a
  key and sets jupyter_server's signed login cookie, which
  carries the user id and the key's prefix, so a revoked key also ends its browser sessions.
  Keys in URLs (``?token=``) are not accepted: they would end up in logs.
* :class:`OpsJobsAuthorizer` lets a JupyterLab user (``admin`` or ``explore``, when the server
  serves Lab: :mod:`opsjobs.server.lab`) reach all of Jupyter but terminals; it lets any other
  key holder reach the opsjobs routes, the Voila dashboard and
  the kernel websocket of a page they opened themselves (the kernel's owner, see
  :mod:`opsjobs.server.kernels`; its messages are limited to comm traffic by the kernel
  manager's ``allowed_message_types``), and nothing else of Jupyter: no contents, sessions,
  terminals, kernel starts or listings, nor another user's kernel.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider
from jupyter_server.auth.identity import User as JupyterUser
from tornado import web

from opsjobs.auth import Auth, User
from opsjobs.errors import OpsJobsError
from opsjobs.server.kernels import SETTING as KERNEL_OWNERS
from opsjobs.server.kernels import starting_for
from opsjobs.server.lab import kernel_env, lab_user

__all__ = ["COMM_ONLY_MESSAGES", "OpsJobsAuthorizer", "OpsJobsIdentityProvider", "opsjobs_user"]

#: Kernel messages a dashboard's browser may send (widgets talk through comms).
COMM_ONLY_MESSAGES = [
    "comm_open",
    "comm_close",
    "comm_msg",
    "comm_info_request",
    "kernel_info_request",
]

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)
_KERNEL = r"/api/kernels/(?P<kernel>[0-9a-f-]{36})"


class _KeyUser(JupyterUser):
    """jupyter_server's user, remembering the opsjobs user and the key it came with."""

    opsjobs: User | None = None
    key_prefix: str = ""


def opsjobs_user(handler: web.RequestHandler) -> User | None:
    """The opsjobs user of an authenticated request (None if there is none)."""
    user = getattr(handler, "current_user", None)
    return getattr(user, "opsjobs", None)


def _jupyter_user(user: User, prefix: str) -> _KeyUser:
    ju = _KeyUser(username=user.id, name=user.email, display_name=user.name)
    ju.opsjobs, ju.key_prefix = user, prefix
    return ju


class OpsJobsIdentityProvider(IdentityProvider):
    """API keys as jupyter_server identities (see the module docstring)."""

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return True

    def _auth(self, handler: web.RequestHandler) -> Auth | None:
        return handler.settings.get("opsjobs_auth")

    async def get_user(self, handler: web.RequestHandler) -> JupyterUser | None:
        known = getattr(handler, "_jupyter_current_user", None)
        if known:
            return known
        auth = self._auth(handler)
        if auth is None:
            return None
        header = handler.request.headers.get("Authorization", "")
        if header:
            match = _BEARER.match(header)
            key = match.group(1) if match else ""
            user = await _lookup(handler, auth, key) if key else None
            if user is None:
                return None
            # Explicit credentials: no cookie, and no XSRF check (as for Jupyter's own tokens).
            handler._token_authenticated = True  # type: ignore[attr-defined]
            return _jupyter_user(user, key.split("_", 2)[1])
        cookie = handler.get_secure_cookie(
            self.get_cookie_name(handler), **self.get_secure_cookie_kwargs
        )
        if not cookie:
            return None
        found = await _off_loop(handler, self._from_cookie, auth, cookie.decode("utf-8", "replace"))
        if found is None:
            self.clear_login_cookie(handler)
        return found

    @staticmethod
    def _from_cookie(auth: Auth, value: str) -> JupyterUser | None:
        try:
            data = json.loads(value)
            uid, prefix = str(data["uid"]), str(data["key"])
        except (ValueError, KeyError, TypeError):
            return None
        key = auth.store.api_key_by_prefix(prefix)
        if key is None or not key.active or key.user_id != uid:
            return None
        try:
            return _jupyter_user(auth.store.get_user(uid), prefix)
        except OpsJobsError:
            return None

    def user_to_cookie(self, user: JupyterUser) -> str:
        return json.dumps({"uid": user.username, "key": getattr(user, "key_prefix", "")})

    def process_login_form(self, handler: web.RequestHandler) -> JupyterUser | None:
        auth = self._auth(handler)
        key = handler.get_argument("password", default="").strip()
        if auth is None or not key:
            return None
        user = auth.authenticate(key)
        return _jupyter_user(user, key.split("_", 2)[1]) if user is not None else None

    def validate_security(self, app: Any, ssl_options: dict[str, Any] | None = None) -> None:
        if not app.ip:
            app.log.warning("opsjobs serve listens on all addresses without TLS")


async def _lookup(handler: web.RequestHandler, auth: Auth, key: str) -> User | None:
    """Authenticate a bearer key. On a local store (SQLite, memory) the lookup is a short read
    done right here on the event loop — a hop to the thread pool and back cost more than the
    read, and under load the GIL hand-offs made the tail; the rare ``last_used`` write still
    goes to the pool. A network store (PostgreSQL) is always asked from the pool."""
    executor = handler.settings.get("opsjobs_executor")
    if handler.settings.get("opsjobs_local_store"):

        def touch(key_id: str, now: float) -> None:
            loop = asyncio.get_running_loop()
            loop.run_in_executor(executor, lambda: auth.store.touch_api_key(key_id, now=now))

        return auth.authenticate(key, touch=touch)
    return await asyncio.get_running_loop().run_in_executor(executor, auth.authenticate, key)


async def _off_loop(handler: web.RequestHandler, fn: Any, *args: Any) -> Any:
    """Run a store lookup on the API's thread pool, off the event loop."""
    executor = handler.settings.get("opsjobs_executor")
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


class OpsJobsAuthorizer(Authorizer):
    """Key holders reach opsjobs and the dashboard, and nothing else of Jupyter."""

    #: (resource, action, path pattern) a key holder may use.
    ALLOWED = (
        ("kernels", "execute", re.compile(rf"{_KERNEL}/channels$")),
        ("kernels", "read", re.compile(rf"{_KERNEL}$")),
        ("kernelspecs", "read", re.compile(r"/api/kernelspecs(/[^/]+)?$")),
    )

    def is_authorized(
        self, handler: web.RequestHandler, user: Any, action: str, resource: str
    ) -> bool:
        if resource == "opsjobs":
            return True
        base = handler.settings.get("base_url", "/").rstrip("/")
        path = handler.request.path[len(base) :] if base else handler.request.path
        explorer = lab_user(handler)  # JupyterLab's users (admin, explore): see opsjobs.server.lab
        if explorer is not None and resource not in ("terminals", "server"):  # no shutdown
            if resource in ("kernels", "sessions") and action == "write":
                starting_for(explorer.id, kernel_env(explorer))  # a kernel they may start
            return True
        allowed = False
        for res, act, pattern in self.ALLOWED:
            match = pattern.match(path) if resource == res and action == act else None
            if match is None:
                continue
            kernel_id = match.groupdict().get("kernel")
            if kernel_id is None:
                allowed = True
            else:  # a dashboard kernel: its page's user's only (see opsjobs.server.kernels)
                owners = handler.settings.get(KERNEL_OWNERS)
                who = getattr(user, "opsjobs", None)
                allowed = owners is not None and owners.owns(who.id if who else None, kernel_id)
            break
        if not allowed:
            self.log.warning("refused %s %s on %s to %s", action, resource, path, user.name)
        return allowed
