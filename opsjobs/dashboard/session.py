"""Who the dashboard's kernel works for, without the API key ever reaching the kernel or the page.

The server (``opsjobs serve``) knows the signed-in user from its identity provider. When Voila is
about to start a dashboard kernel, :func:`opsjobs.server.voila.prelaunch_hook` inserts one hidden
first cell into the notebook::

    _opsjobs_session = {"config": "/tmp/opsjobs-dashboard-….json", "token": "<signed>"}

* ``config`` is a file the server wrote once (mode 0600) with its store URL, data folder and a
  random secret. The store URL may hold a database password, so it travels through this file,
  never through the notebook (Voila strips cell sources from the page anyway).
* ``token`` names the user id and an expiry a few minutes ahead, signed with HMAC-SHA256 under
  that secret. The kernel (:func:`open_session`) checks signature and expiry, then opens the
  store as a trusted server-side process and loads the user — the same :class:`~opsjobs.auth.User`
  the REST API works with, so the same scoping rules apply.

The browser can only exchange widget (comm) messages with the kernel: it cannot run code, so it
cannot change whom the kernel works for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsjobs.auth import Auth, RunPolicy, User
from opsjobs.client import Client
from opsjobs.config import Settings
from opsjobs.errors import OpsJobsError, PermissionDenied

__all__ = [
    "SESSION_VARIABLE",
    "TOKEN_TTL",
    "ServerSide",
    "open_session",
    "sign_token",
    "verify_token",
]

#: Name of the variable the injected cell defines in the kernel.
SESSION_VARIABLE = "_opsjobs_session"
#: Seconds a launch token stays valid (a kernel starts well within this).
TOKEN_TTL = 300.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(secret: bytes, user_id: str, *, now: float, ttl: float = TOKEN_TTL) -> str:
    """A token naming ``user_id``, valid for ``ttl`` seconds from ``now``."""
    body = _b64(json.dumps({"uid": user_id, "exp": now + ttl}).encode("utf-8"))
    sig = _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest())
    return f"{body}.{sig}"


def verify_token(secret: bytes, token: str, *, now: float) -> str:
    """The user id of a valid token; :class:`~opsjobs.errors.PermissionDenied` otherwise."""
    try:
        body, sig = str(token).split(".", 1)
        expected = _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest())
        if not hmac.compare_digest(sig, expected):
            raise PermissionDenied("the dashboard session is not valid; reload the page")
        data = json.loads(_unb64(body))
        uid, exp = str(data["uid"]), float(data["exp"])
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise PermissionDenied("the dashboard session is not valid; reload the page") from None
    if now > exp:
        raise PermissionDenied("the dashboard session has expired; reload the page")
    return uid


@dataclass(frozen=True)
class ServerSide:
    """What a dashboard kernel needs from its server: where the store is, and the secret."""

    store_url: str
    data_dir: str
    runtime_dir: str | None
    secret: bytes
    #: What users without a code role may run: allowed calls and the notebook catalog.
    allowed_calls: tuple[str, ...] = ()
    catalog: str | None = None

    def write(self, folder: str | None = None) -> Path:
        """Write to a new private file (mode 0600) and return its path."""
        fd, name = tempfile.mkstemp(prefix="opsjobs-dashboard-", suffix=".json", dir=folder)
        data = {
            "store_url": self.store_url,
            "data_dir": self.data_dir,
            "runtime_dir": self.runtime_dir,
            "secret": _b64(self.secret),
            "allowed_calls": list(self.allowed_calls),
            "catalog": self.catalog,
        }
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        return Path(name)

    @classmethod
    def read(cls, path: str | Path) -> ServerSide:
        try:
            data = json.loads(Path(path).read_text("utf-8"))
            return cls(
                store_url=str(data["store_url"]),
                data_dir=str(data["data_dir"]),
                runtime_dir=data.get("runtime_dir"),
                secret=_unb64(str(data["secret"])),
                allowed_calls=tuple(str(c) for c in data.get("allowed_calls") or ()),
                catalog=data.get("catalog"),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PermissionDenied(
                "the dashboard cannot reach its server's settings; reload the page"
            ) from exc

    def settings(self) -> Settings:
        return Settings(
            data_dir=Path(self.data_dir),
            store_url=self.store_url,
            runtime_dir=self.runtime_dir,
            user="dashboard",
            allowed_calls=self.allowed_calls,
        )

    def policy(self) -> RunPolicy:
        return RunPolicy(
            allowed_calls=frozenset(self.allowed_calls),
            catalog=Path(self.catalog) if self.catalog else None,
        )


def open_session(
    session: Mapping[str, Any] | None, *, now: float | None = None
) -> tuple[Client, User]:
    """The kernel half: a client on the server's store and the verified user.

    Raises :class:`~opsjobs.errors.PermissionDenied` when there is no valid session (the
    notebook was not opened through ``opsjobs serve``, or the token expired or was forged).
    """
    if not isinstance(session, Mapping) or "config" not in session or "token" not in session:
        raise PermissionDenied("open the dashboard through `opsjobs serve` and sign in with a key")
    side = ServerSide.read(str(session["config"]))
    uid = verify_token(side.secret, str(session["token"]), now=time.time() if now is None else now)
    settings = side.settings()
    from opsjobs.store import open_store

    store = open_store(
        settings.store_url,
        runtime_dir=settings.runtime_dir,
        data_dir=settings.data_dir,
        settings=settings,
    )
    try:
        user = Auth(store).store.get_user(uid)
    except OpsJobsError:
        store.close()
        raise PermissionDenied("the signed-in user no longer exists") from None
    return Client(store, settings), user
