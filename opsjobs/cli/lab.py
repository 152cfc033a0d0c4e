"""``opsjobs lab``: JupyterLab on the notebook catalog, on this machine, with this store.

Lab runs as the local user (its own Jupyter token, printed in the URL), in the catalog folder
(``OPSJOBS_NOTEBOOKS``, else ``./notebooks``), with ``OPSJOBS_STORE`` and ``OPSJOBS_DATA`` set
to this command's store and data folder, so ``opsjobs.connect()`` in a notebook opens the store
the worker uses. For Lab on a shared server, see ``opsjobs serve`` (admins and ``explore``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from opsjobs.config import Settings, redact_url
from opsjobs.errors import ConfigError

__all__ = ["lab_env", "register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lab", help="JupyterLab on the notebook catalog, with this store (local, your user)"
    )
    p.add_argument("--port", type=int, default=8888, help="port (default 8888)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(handler=cmd_lab)


def _absolute_store(url: str) -> str:
    """A relative SQLite path made absolute: Lab's kernels run in the catalog folder."""
    prefix = "sqlite://"
    if url.startswith(prefix) and not url[len(prefix) :].startswith(("/", ":memory:")):
        return prefix + str(Path(url[len(prefix) :]).resolve())
    return url


def lab_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of ``opsjobs lab``: ``base`` with this store and data folder."""
    env = dict(os.environ if base is None else base)
    env["OPSJOBS_STORE"] = _absolute_store(settings.store_url)
    env["OPSJOBS_DATA"] = str(settings.data_dir.resolve())
    if settings.runtime_dir:
        env["OPSJOBS_RUNTIME_DIR"] = str(Path(settings.runtime_dir).resolve())
    return env


def cmd_lab(args: argparse.Namespace, settings: Settings) -> int:
    if importlib.util.find_spec("jupyterlab") is None:
        raise ConfigError("opsjobs lab needs JupyterLab: pip install 'opsjobs[all]'")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"invalid port {args.port}")
    catalog = settings.catalog_dir.expanduser().resolve()
    if not catalog.is_dir():
        raise ConfigError(f"no notebook catalog at {catalog} (set OPSJOBS_NOTEBOOKS)")
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={catalog}",
        f"--ServerApp.ip={args.ip}",
        f"--ServerApp.port={args.port}",
        "--ServerApp.port_retries=0",
    ]
    if args.no_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")  # containers run as root, as serve allows
    print(
        f"opsjobs lab: {catalog} with store {redact_url(settings.store_url)} "
        f"on port {args.port}; Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    # Lab takes this process over: its signals (Ctrl-C, SIGTERM) and exit code are Lab's.
    os.execve(sys.executable, argv, lab_env(settings))
