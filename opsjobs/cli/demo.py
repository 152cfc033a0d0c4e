"""``opsjobs demo-data [PATH]``: build the sample store (see :mod:`opsjobs.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from opsjobs.config import Settings
from opsjobs.errors import ConfigError

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo-data", help="build a small deterministic sample store (a week of jobs and metrics)"
    )
    p.add_argument(
        "path",
        nargs="?",
        help="SQLite file or folder to create (default: the data folder's opsjobs.db)",
    )
    p.add_argument("--force", action="store_true", help="replace the file if it exists")
    p.set_defaults(handler=cmd_demo_data)


def cmd_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from opsjobs.demo import build, path_of
    from opsjobs.store import open_store

    target = path_of(args.path) if args.path else settings.data_dir / "opsjobs.db"
    if target.exists():
        if not args.force:
            raise ConfigError(f"{target} exists (--force replaces it)")
        for extra in ("", "-wal", "-shm"):
            Path(f"{target}{extra}").unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite://{target.resolve()}", data_dir=settings.data_dir)
    try:
        summary = build(store)
    finally:
        store.close()
    print(
        f"sample store {target}: {summary.jobs} jobs, {summary.metrics} metric points, "
        f"{summary.alert_events} alert events"
    )
    return 0
