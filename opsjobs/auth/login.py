"""Who the CLI and the Python API act as: the saved login, ``OPSJOBS_KEY``, ``OPSJOBS_USER`` or
the OS user — the same person the dashboard and the REST API know by their key.

The login file
--------------
``opsjobs login`` checks a key against the store and saves it in
``$XDG_CONFIG_HOME/opsjobs/login.json`` (``~/.config/opsjobs/login.json`` by default), created
with mode 0600 in a 0700 folder, one key per store (by its URL without password)::

    {"keys": {"sqlite:///srv/opsjobs/data/opsjobs.db": "oj_…"}}

A file that others may read is refused (as ssh refuses such a key). The store keeps only the
key's hash; the file holds the key itself, like any API client's credentials file.

Which identity wins
-------------------
1. ``OPSJOBS_KEY``: a key, checked against the store;
2. ``OPSJOBS_USER``: a name recorded as the owner, not checked (whoever may open the store may
   write any owner anyway); the server sets it in the JupyterLab kernels of its users;
3. the login file's key for this store, checked;
4. the OS user — on a local store only (SQLite, memory: whoever may write its file owns it).
   A shared store (PostgreSQL) without any of the above has no identity: reading works as
   before, submitting says to ``opsjobs login``.

With a key, a user without an admin role is scoped (``scope_owner``) to their own jobs and
schedules, and sees the ``system`` owner's (the server's) without changing them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsjobs.config import Settings, login_path, redact_url
from opsjobs.errors import ConfigError

if TYPE_CHECKING:
    from opsjobs.store import Store

__all__ = [
    "FROM_ENV_KEY",
    "FROM_ENV_USER",
    "FROM_LOGIN",
    "FROM_OS",
    "Identity",
    "forget_key",
    "login_path",
    "resolve",
    "save_key",
    "saved_key",
    "store_label",
]

#: Where a settings' user or key came from (``Settings.user_source``/``key_source``).
FROM_ENV_KEY = "OPSJOBS_KEY"
FROM_ENV_USER = "OPSJOBS_USER"
FROM_LOGIN = "login"
FROM_OS = "os"


def store_label(store_url: str) -> str:
    """The key of a store in the login file: its URL without a password."""
    return redact_url(store_url)


def _read(path: Path) -> dict[str, str]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the login file {path}: {exc}") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the login file {path} may be read by others (mode {stat.S_IMODE(info.st_mode):04o})"
            f": chmod 600 {path}, or opsjobs logout and login again"
        )
    try:
        data = json.loads(path.read_text("utf-8"))
        keys = data["keys"]
        if not isinstance(keys, dict):
            raise TypeError("keys is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the login file {path} is damaged ({exc}): remove it") from exc
    return {str(k): str(v) for k, v in keys.items()}


def _write(path: Path, keys: Mapping[str, str]) -> None:
    """Replace the file at once; mode 0600 from its creation, the folder 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".login-", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"keys": dict(keys)}, fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def saved_key(path: Path, store_url: str) -> str:
    """The key saved for this store ('' if none)."""
    return _read(path).get(store_label(store_url), "")


def save_key(path: Path, store_url: str, key: str) -> None:
    """Save ``key`` for this store (replacing its previous one)."""
    keys = _read(path)
    keys[store_label(store_url)] = key
    _write(path, keys)


def forget_key(path: Path, store_url: str) -> bool:
    """Remove this store's key (the file too when it was the last); False if there was none."""
    keys = _read(path)
    if keys.pop(store_label(store_url), None) is None:
        return False
    if keys:
        _write(path, keys)
    else:
        path.unlink()
    return True


@dataclass(frozen=True)
class Identity:
    """Who a client acts as, and why."""

    #: The owner recorded on jobs and schedules ('' for none).
    user: str
    #: One of the ``FROM_*`` names, or "settings" (given in code), or "" (none).
    source: str
    #: Roles of a key's user (empty without a key).
    roles: tuple[str, ...] = ()
    #: Was a key checked against the store?
    verified: bool = False
    #: Reads and changes are limited to the user's own jobs (and reads to system's).
    scoped: bool = False
    #: The key's user's display name.
    name: str = ""

    def describe(self, settings: Settings) -> str:
        """Where the identity came from, in a sentence."""
        if self.source == FROM_ENV_KEY:
            return "the API key in OPSJOBS_KEY, checked against the store"
        if self.source == FROM_LOGIN:
            return f"the key saved by `opsjobs login` in {settings.login_file}, checked"
        if self.source == FROM_ENV_USER:
            return "OPSJOBS_USER (a name, not checked: no key)"
        if self.source == FROM_OS:
            return (
                "the OS user, as a fallback: no key and no OPSJOBS_USER, and the store is "
                "local (a shared store needs `opsjobs login`)"
            )
        if self.source == "settings":
            return "the user given in the settings"
        return (
            "nothing: a shared store needs a key — run `opsjobs login` or set OPSJOBS_KEY "
            "(OPSJOBS_USER names a user without a key)"
        )

    def to_dict(self, settings: Settings) -> dict[str, Any]:
        return {
            "user": self.user or None,
            "name": self.name or None,
            "roles": list(self.roles),
            "source": self.source or None,
            "from": self.describe(settings),
            "verified": self.verified,
            "scoped": self.scoped,
        }


def resolve(store: Store, settings: Settings) -> tuple[Identity, Settings]:
    """The identity of a client of ``store``, and ``settings`` acting as it (``user`` set,
    ``scope_owner`` set for a key's user without an admin role).

    Raises :class:`~opsjobs.errors.ConfigError` for a key the store does not know (unknown,
    revoked, mistyped)."""
    from opsjobs.auth.service import Auth

    if settings.user_source == FROM_OS and not settings.api_key and settings.login_file:
        key = saved_key(settings.login_file, settings.store_url)  # after OPSJOBS_KEY and _USER
        if key:
            settings = dataclasses.replace(settings, api_key=key, key_source=FROM_LOGIN)
    if settings.api_key:
        found = Auth(store).authenticate(settings.api_key)
        if found is None:
            where = "OPSJOBS_KEY" if settings.key_source == FROM_ENV_KEY else "the saved login"
            raise ConfigError(
                f"the API key from {where} is not valid for the store "
                f"{store_label(store.url)} (unknown, revoked or mistyped): run `opsjobs login`"
            )
        scoped = not found.sees_all
        identity = Identity(found.email, settings.key_source, found.roles, True, scoped, found.name)
        scope = settings.scope_owner or (found.email if scoped else "")
        return identity, dataclasses.replace(settings, user=found.email, scope_owner=scope)
    source = settings.user_source or "settings"
    if source == FROM_OS and not store.local:
        return Identity("", ""), dataclasses.replace(settings, user="")
    scoped = bool(settings.scope_owner)
    return Identity(settings.user, source, scoped=scoped), settings
