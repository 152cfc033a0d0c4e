"""The ``opsjobs`` command.

Sub-commands live in modules of this package, each with a ``register(subparsers)`` function
listed in :data:`COMMAND_MODULES`. Exit codes: 0 success; 1 the waited-for job failed; 2 bad input
or an opsjobs error (one line on stderr, no traceback); 3 the job was cancelled; 4 it timed out;
5 it was lost.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from opsjobs.config import Settings
from opsjobs.errors import OpsJobsError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: Modules (relative to this package) that add sub-commands.
COMMAND_MODULES = (
    "jobs", "workers", "analyze", "keys", "serve", "schedules", "quickstart", "alerts",
    "notebooks", "notify",
    # one identity across CLI and browser (issue 18)
    "login",
    # exploration (issue 19)
    "demo", "lab",
)  # fmt: skip

Handler = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opsjobs", description="Operations jobs for Python services."
    )
    parser.add_argument(
        "--store", help="store URL (default: OPSJOBS_STORE or sqlite in the data folder)"
    )
    parser.add_argument("--data", help="data folder (default: OPSJOBS_DATA or ./data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = Settings.from_env(store_url=args.store, data_dir=args.data)
        handler: Handler = args.handler
        return handler(args, settings)
    except OpsJobsError as exc:
        print(f"opsjobs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug of ours: one line, the traceback only when asked for
        if args.verbose:
            raise
        print(
            f"opsjobs: internal error: {type(exc).__name__}: {exc} (-v shows the traceback)",
            file=sys.stderr,
        )
        return 2
