"""``opsjobs serve``: one jupyter_server process with the REST API, a worker, the scheduler and
the Voila dashboard."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from opsjobs.config import Settings, redact_url
from opsjobs.errors import ConfigError, OpsJobsError

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="the server: REST API, worker, scheduler and dashboard")
    p.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--notebooks", help="folder of the dashboard notebook served by Voila")
    p.add_argument("--no-worker", action="store_true", help="do not host a worker")
    p.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler")
    p.add_argument("--no-voila", action="store_true", help="do not load Voila")
    p.add_argument(
        "--memory-analysis",
        metavar="EVERY",
        default="30m",
        help="analyse the hosted worker's memory every EVERY: schedule memory-analysis "
        "(default 30m)",
    )
    p.add_argument(
        "--no-memory-analysis",
        action="store_true",
        help="do not create or re-aim the memory-analysis schedule",
    )
    p.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--keyfile", help="the certificate's private key (PEM)")
    p.add_argument(
        "--behind-proxy",
        action="store_true",
        help="trust X-Forwarded-Proto/-For of a TLS-terminating reverse proxy",
    )
    p.add_argument(
        "--no-lab",
        action="store_true",
        help="do not serve JupyterLab at /lab (served, when installed, to admins and the "
        "explore role: it runs any code as the server's OS user)",
    )
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from opsjobs.server.app import OpsJobsServerApp, server_config
    except ImportError as exc:
        raise ConfigError(
            f"the server needs the 'server' extra: pip install 'opsjobs[server]' ({exc})"
        ) from exc
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"invalid port {args.port}")
    every = None if args.no_memory_analysis else args.memory_analysis
    if every is not None:
        from opsjobs.analyzer.schedule import validate_every

        validate_every(every)
    root = Path(args.notebooks).resolve() if args.notebooks else None
    if root is not None and not root.is_dir():
        raise ConfigError(f"--notebooks {args.notebooks} is not a folder")
    for name in ("certfile", "keyfile"):
        value = getattr(args, name)
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"--{name} {value} is not a file")
    if args.keyfile and not args.certfile:
        raise ConfigError("--keyfile needs --certfile")
    config = server_config(
        port=args.port,
        ip=args.ip,
        root_dir=root,
        store_url=settings.store_url,
        data_dir=str(settings.data_dir),
        voila=False if args.no_voila else None,
        worker=not args.no_worker,
        scheduler=not args.no_scheduler,
        memory_analysis=every,
        certfile=str(Path(args.certfile).resolve()) if args.certfile else None,
        keyfile=str(Path(args.keyfile).resolve()) if args.keyfile else None,
        behind_proxy=args.behind_proxy,
        lab=False if args.no_lab else None,
    )
    app = OpsJobsServerApp.instance(config=config)
    app.initialize(argv=[])
    host = "localhost" if args.ip in ("127.0.0.1", "localhost", "") else args.ip
    scheme = "https" if args.certfile else "http"
    print(
        f"opsjobs serving {scheme}://{host}:{app.port}/ (store {redact_url(settings.store_url)})\n"
        "  a key: opsjobs keys create --email you@example.org --roles debug\n"
        "  then:  curl -H 'Authorization: Bearer <key>' "
        f"{scheme}://{host}:{app.port}/opsjobs/api/v1/jobs\n"
        "  Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    app.start()
    ext = app.web_app.settings.get("opsjobs")
    failure = getattr(ext, "start_failure", None)
    # Every job is recorded by now (finished, or marked failed by the worker's shutdown). A
    # thread job that ignores its cancel flag cannot be killed; it must not keep the process
    # alive, as Python would wait for its pool thread at exit.
    # Idle pool threads are told to exit at shutdown and need a moment to do so.
    deadline = time.monotonic() + 3.0
    others = [
        t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon
    ]
    for t in others:
        t.join(timeout=max(deadline - time.monotonic(), 0.0))
    others = [t for t in others if t.is_alive()]
    if others:
        jobs = [t for t in others if t.name.startswith("opsjobs-")]  # the worker's job pool
        if jobs:
            print(
                f"opsjobs: {len(jobs)} job thread(s) ignored the stop; exiting anyway",
                file=sys.stderr,
            )
        if failure:
            print(f"opsjobs: error: {failure}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2 if failure else 0)
    if failure:
        raise OpsJobsError(failure)
    return 0
