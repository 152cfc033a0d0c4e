"""Settings: one frozen object built at the edges from ``OPSJOBS_*`` variables and an optional
``opsjobs.toml``; library code receives it and never reads ``os.environ`` itself.

================================  ========================================  ===================
variable                          meaning                                   default
================================  ========================================  ===================
``OPSJOBS_DATA``                  data folder (store file, logs, outputs)   ``./data``
``OPSJOBS_STORE``                 store URL                                 ``sqlite:///<data>/opsjobs.db``
``OPSJOBS_OUTPUT_CAP``            bytes of output kept in the job row       ``1048576``
``OPSJOBS_LEASE``                 seconds a running job's lease lasts       ``30``
``OPSJOBS_POLL``                  fallback poll interval of idle workers    ``5``
``OPSJOBS_RUNTIME_DIR``           folder of the local doorbell sockets      ``/tmp/opsjobs-<uid>``
``OPSJOBS_KEY``                   an API key: the CLI and ``connect()`` act  the key saved by
                                  as its user (never logged or shown)       ``opsjobs login``
``OPSJOBS_USER``                  owner recorded on jobs submitted locally  the OS login name
                                  (a name, not checked; see                 (local stores
                                  :mod:`opsjobs.auth.login`)                only)
``OPSJOBS_HOST``                  host name workers record                  ``socket.gethostname()``
``OPSJOBS_WEBHOOKS``              alert webhooks: comma-separated http(s)   none
                                  URLs (JSON with a Slack ``text`` field)
``OPSJOBS_ALLOWED_CALLS``         ``pkg.mod:func`` targets (comma-          none
                                  separated) the ``operator`` role may run
``OPSJOBS_NOTEBOOKS``             the notebook catalog: the folder whose    ``./notebooks``
                                  notebooks REST, dashboard and schedules   (the server: its
                                  may run                                   ``--notebooks``)
``OPSJOBS_PG_POOL``               PostgreSQL: connections a process's pool  ``4``
                                  may open (it keeps one open)
``OPSJOBS_PG_POOL_IDLE``          seconds an extra pooled connection may    ``60``
                                  stay unused before it is closed
``OPSJOBS_BASE_URL``              the server's address as people reach it:  ``http://localhost:8888``
                                  the links in notifications
``OPSJOBS_SMTP_HOST``             SMTP server of e-mail notifications       none (no e-mail)
``OPSJOBS_SMTP_PORT``             its port                                  ``25``
``OPSJOBS_SMTP_STARTTLS``         ``true``: upgrade with STARTTLS first     ``false``
``OPSJOBS_SMTP_CA_FILE``          CA certificates (PEM) that verify the     the system's
                                  SMTP server's certificate
``OPSJOBS_SMTP_USER``             login name (none: no login)               none
``OPSJOBS_SMTP_PASSWORD``         login password (never logged or shown)    none
``OPSJOBS_SMTP_FROM``             sender address of notifications           ``opsjobs@localhost``
``OPSJOBS_SMTP_TIMEOUT``          seconds one SMTP exchange may take        ``10``
``OPSJOBS_SCOPE_OWNER``           a client reads and changes only this      none (every owner)
                                  owner's jobs (set in Lab kernels)
================================  ========================================  ===================
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from opsjobs.errors import ConfigError

__all__ = ["Settings", "login_path", "parse_webhooks", "redact_url", "validate_webhook_url"]

_CALL_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_STORE_SCHEMES = frozenset({"postgresql", "postgres", "sqlite", "memory"})
_USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@/\s]*@")
_PASSWORD_PARAM = re.compile(r"(password\s*=\s*)('[^']*'|[^\s&]+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` as it may be printed or logged: the one redaction used for store and webhook URLs.

    A store URL (``postgresql://``, libpq ``key=value`` text, ``sqlite:``) keeps everything but
    its password; any other URL (a webhook) keeps only scheme and host, as its path is often
    the secret itself (Slack, Teams).
    """
    text = str(url)
    parts = urlsplit(text) if "://" in text else None
    if parts is not None and parts.scheme.lower() not in _STORE_SCHEMES:
        try:
            host = parts.hostname or "?"
        except ValueError:
            host = "?"
        return f"{parts.scheme}://{host}/…"
    text = _USERINFO_PASSWORD.sub(r"\1:***@", text)
    return _PASSWORD_PARAM.sub(r"\1***", text)


def login_path(environ: Mapping[str, str]) -> Path:
    """The login file of ``opsjobs login``: ``$XDG_CONFIG_HOME/opsjobs/login.json``, else
    ``~/.config/opsjobs/login.json`` (see :mod:`opsjobs.auth.login`)."""
    base = environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "opsjobs" / "login.json"


def validate_webhook_url(url: object) -> str:
    """``url`` if it is an absolute ``http(s)`` URL with a host; else :class:`ConfigError`."""
    text = url.strip() if isinstance(url, str) else ""
    parts = urlsplit(text)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(text) > 2000
        or any(c.isspace() or ord(c) < 32 for c in text)
    ):
        raise ConfigError(
            f"invalid webhook URL {redact_url(str(url))[:80]!r}: use http(s)://host/..."
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigError(f"invalid port in webhook URL {redact_url(text)[:80]!r}") from None
    return text


def parse_webhooks(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Webhook URLs from a comma-separated text or a list, each validated."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    urls = (validate_webhook_url(u) for u in items if str(u).strip())
    return tuple(dict.fromkeys(urls))  # each receiver once


def _flag(raw: object, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"setting {name} must be true or false, not {text[:20]!r}")


@dataclass(frozen=True)
class Settings:
    """Every tunable of opsjobs in one place."""

    data_dir: Path = Path("data")
    store_url: str = ""
    output_cap: int = 1 << 20
    lease_seconds: float = 30.0
    poll_interval: float = 5.0
    runtime_dir: str | None = None
    user: str = "local"
    #: Host name workers record on jobs, metrics and the registry; empty: the machine's name.
    #: Lets several workers on one machine stand for several hosts (containers, tests).
    host: str = ""
    #: URLs that receive every alert change (see :mod:`opsjobs.alerts.webhooks`).
    webhooks: tuple[str, ...] = ()
    #: ``pkg.module:function`` targets the ``operator`` role may run as ``call`` jobs.
    allowed_calls: tuple[str, ...] = ()
    #: The notebook catalog folder (``OPSJOBS_NOTEBOOKS``); None: see :attr:`catalog_dir`.
    notebooks_dir: Path | None = None
    #: PostgreSQL: the most connections one process's pool opens. It keeps one open; more are
    #: opened while threads of the process use the store at once, and closed again (one per
    #: ``pg_pool_idle`` seconds) once unused. A worker also holds one ``LISTEN`` connection.
    pg_pool_size: int = 4
    pg_pool_idle: float = 60.0
    #: The server's address as people reach it: the links in notifications point there.
    base_url: str = ""
    #: E-mail notifications (see :mod:`opsjobs.alerts.mail`): no host, no e-mail.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    #: PEM file of the CA certificates that verify the SMTP server (None: the system's).
    smtp_ca_file: str = ""
    smtp_user: str = ""
    #: Never shown: left out of the settings' repr, and out of every log line.
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = "opsjobs@localhost"
    smtp_timeout: float = 10.0
    #: Exploration (issue 19): when set, a client reads and changes only the jobs of this
    #: owner, as the REST API scopes a user without an admin role. ``opsjobs serve`` sets it
    #: (``OPSJOBS_SCOPE_OWNER``) in the JupyterLab kernels of such users.
    scope_owner: str = ""
    #: Issue 18: an API key the client acts with (``OPSJOBS_KEY``, or the one ``opsjobs login``
    #: saved for this store); see :mod:`opsjobs.auth.login`. Never shown.
    api_key: str = field(default="", repr=False)
    #: Where ``api_key`` came from: ``OPSJOBS_KEY`` or ``login`` ('' for none).
    key_source: str = ""
    #: Where ``user`` came from: ``OPSJOBS_USER``, ``os`` (the fallback) or '' (given in code).
    user_source: str = ""
    #: The login file (``$XDG_CONFIG_HOME/opsjobs/login.json``); None: not looked at.
    login_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.store_url:
            object.__setattr__(
                self, "store_url", f"sqlite://{self.data_dir.resolve() / 'opsjobs.db'}"
            )
        if self.output_cap < 1024:
            raise ConfigError("output cap must be at least 1024 bytes")
        if not 1.0 <= self.lease_seconds <= 3600:
            raise ConfigError("lease must be between 1 and 3600 seconds")
        if not 0.05 <= self.poll_interval <= 600:
            raise ConfigError("poll interval must be between 0.05 and 600 seconds")
        if not 1 <= self.pg_pool_size <= 100:
            raise ConfigError("the PostgreSQL pool size must be between 1 and 100")
        if not 0.1 <= self.pg_pool_idle <= 86400:
            raise ConfigError("the PostgreSQL pool idle time must be between 0.1 and 86400 s")
        if not 1 <= self.smtp_port <= 65535:
            raise ConfigError("the SMTP port must be between 1 and 65535")
        if not 0.1 <= self.smtp_timeout <= 600:
            raise ConfigError("the SMTP timeout must be between 0.1 and 600 seconds")
        if self.base_url and not re.match(r"^https?://[^\s/]+(/\S*)?$", self.base_url):
            raise ConfigError(f"invalid base URL {self.base_url[:80]!r}: use http(s)://host/...")
        object.__setattr__(self, "webhooks", parse_webhooks(self.webhooks))
        calls = self.allowed_calls
        items = calls.split(",") if isinstance(calls, str) else list(calls)
        object.__setattr__(
            self,
            "allowed_calls",
            tuple(dict.fromkeys(str(c).strip() for c in items if str(c).strip())),
        )
        for target in self.allowed_calls:
            if not _CALL_TARGET.match(target):
                raise ConfigError(f"invalid allowed call {target[:80]!r}: use pkg.module:function")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        toml_path: Path | None = None,
        **overrides: object,
    ) -> Settings:
        """Build settings from ``opsjobs.toml`` (if present), then ``OPSJOBS_*``, then overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        path = toml_path or Path(env.get("OPSJOBS_CONFIG", "opsjobs.toml"))
        if path.is_file():
            try:
                values.update(tomllib.loads(path.read_text("utf-8")).get("opsjobs", {}))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read {path}: {exc}") from exc
        names = {
            "OPSJOBS_DATA": "data_dir",
            "OPSJOBS_STORE": "store_url",
            "OPSJOBS_OUTPUT_CAP": "output_cap",
            "OPSJOBS_LEASE": "lease_seconds",
            "OPSJOBS_POLL": "poll_interval",
            "OPSJOBS_RUNTIME_DIR": "runtime_dir",
            "OPSJOBS_USER": "user",
            "OPSJOBS_HOST": "host",
            "OPSJOBS_WEBHOOKS": "webhooks",
            "OPSJOBS_ALLOWED_CALLS": "allowed_calls",
            "OPSJOBS_NOTEBOOKS": "notebooks_dir",
            "OPSJOBS_PG_POOL": "pg_pool_size",
            "OPSJOBS_PG_POOL_IDLE": "pg_pool_idle",
            "OPSJOBS_BASE_URL": "base_url",
            "OPSJOBS_SMTP_HOST": "smtp_host",
            "OPSJOBS_SMTP_PORT": "smtp_port",
            "OPSJOBS_SMTP_STARTTLS": "smtp_starttls",
            "OPSJOBS_SMTP_CA_FILE": "smtp_ca_file",
            "OPSJOBS_SMTP_USER": "smtp_user",
            "OPSJOBS_SMTP_PASSWORD": "smtp_password",
            "OPSJOBS_SMTP_FROM": "smtp_from",
            "OPSJOBS_SMTP_TIMEOUT": "smtp_timeout",
            "OPSJOBS_SCOPE_OWNER": "scope_owner",
            "OPSJOBS_KEY": "api_key",
        }
        for var, name in names.items():
            if env.get(var):
                values[name] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        # who the client acts as comes from these (see opsjobs.auth.login, which also reads
        # the key `opsjobs login` saved in login_file, after OPSJOBS_KEY and OPSJOBS_USER)
        if values.get("api_key"):
            values.setdefault("key_source", "OPSJOBS_KEY")
        if env.get("OPSJOBS_USER") and values.get("user") == env["OPSJOBS_USER"]:
            values.setdefault("user_source", "OPSJOBS_USER")
        if "user" not in values:
            values["user_source"] = "os"
            try:
                values["user"] = getpass.getuser()
            except (KeyError, OSError):
                values["user"] = "local"
        values.setdefault("login_file", login_path(env))
        return cls._coerce(values)

    @classmethod
    def _coerce(cls, values: Mapping[str, object]) -> Settings:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(values) - set(fields)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, object] = {}
        for name, raw in values.items():
            try:
                if name in ("data_dir", "notebooks_dir", "login_file"):
                    kwargs[name] = Path(str(raw))
                elif name in ("output_cap", "pg_pool_size", "smtp_port"):
                    kwargs[name] = int(str(raw))
                elif name == "smtp_starttls":
                    kwargs[name] = _flag(raw, name)
                elif name in ("lease_seconds", "poll_interval", "pg_pool_idle", "smtp_timeout"):
                    kwargs[name] = float(str(raw))
                elif name in ("webhooks", "allowed_calls"):
                    kwargs[name] = raw if isinstance(raw, list | tuple) else str(raw)
                else:
                    kwargs[name] = str(raw)
            except ValueError:
                raise ConfigError(f"setting {name} has an invalid value {raw!r}") from None
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def catalog_dir(self) -> Path:
        """The notebook catalog: ``OPSJOBS_NOTEBOOKS``, else ``./notebooks`` (the server uses
        its ``--notebooks`` folder when the setting is not given)."""
        return self.notebooks_dir if self.notebooks_dir is not None else Path("notebooks")

    # Folders inside the data folder -----------------------------------------------------
    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def jobs_dir(self) -> Path:
        """Per-job scratch folders of running jobs (result and metrics hand-over)."""
        return self.data_dir / "jobs"

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"
