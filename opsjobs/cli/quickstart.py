"""``opsjobs quickstart``: the seed's Test-MemoryAnalysisWorkflow against a running server.

1. creates (or reuses the user of) an API key with the ``debug`` role on the local store;
2. adds the 30-minute memory-analysis schedule (kept if it exists);
3. submits a one-time analysis of the server's own process;
4. waits for it and prints the results;
5. prints the dashboard URL and how to log in.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from opsjobs.auth import Auth
from opsjobs.cli.output import client_for, fmt_runtime, table
from opsjobs.config import Settings
from opsjobs.errors import OpsJobsError

__all__ = ["register"]

API = "/opsjobs/api/v1"
SEED = "/apps/WebHostTaskManagement/api/v1"
SCHEDULE = "MemoryAnalysisScheduler"


def register(sub: Any) -> None:
    p = sub.add_parser("quickstart", help="key, 30-minute analysis schedule and a first analysis")
    p.add_argument("--url", default="http://127.0.0.1:8866", help="the running opsjobs serve")
    p.add_argument("--email", default="test@localhost", help="user of the key (test@localhost)")
    p.add_argument("--name", default="MemoryAnalysisTest", help="name of the key")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the analysis")
    p.set_defaults(handler=cmd_quickstart)


class _Http:
    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        self.key = key

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {"error": exc.reason}
        except (urllib.error.URLError, OSError) as exc:
            raise OpsJobsError(
                f"no opsjobs server at {self.url} ({exc}); start one with: opsjobs serve"
            ) from None


def _step(n: int, text: str) -> None:
    print(f"\n[{n}/5] {text}")


def cmd_quickstart(args: argparse.Namespace, settings: Settings) -> int:
    from opsjobs.analyzer.job import JOB_NAME, TARGET, job_kwargs
    from opsjobs.analyzer.schedule import schedule_name

    _Http(args.url, "")("GET", f"{API}/me")  # is a server there at all? (401 without a key)
    _step(1, f"API key with the debug role for {args.email}")
    with client_for(settings) as client:
        user, _, key = Auth(client.store).create_key(
            args.email, name=args.name, roles="debug", is_test=True, key_name=args.name
        )
    print(f"  key (shown once, save it): {key}")
    print(f"  roles: {', '.join(user.roles)}")
    http = _Http(args.url, key)
    status, _ = http("GET", f"{API}/me")
    if status == 401:
        raise OpsJobsError(
            f"the server at {args.url} does not know this key: it uses another store; run "
            "quickstart with the server's --store/--data (or OPSJOBS_STORE)"
        )

    _step(2, f"schedule {SCHEDULE}: a memory analysis every 30 minutes")
    with client_for(settings) as client:
        # names are per owner: the server's own is the analysis of that name, whoever owns it
        own = next(
            (
                s
                for s in client.schedules.list()
                if s.name == schedule_name() and s.spec.payload.get("target") == TARGET
            ),
            None,
        )
    if own is not None and own.enabled:
        # `opsjobs serve` already analyses its own process on a schedule: a second one would
        # only run the same analysis twice.
        print(f"  the server's schedule {own.name!r} already does this; not adding another")
    else:
        _add_schedule(http, job_kwargs(), TARGET, JOB_NAME)

    _step(3, "one-time analysis of the server's own process")
    status, reply = http("POST", f"{API}/analyze", {})
    if status != 201:
        raise OpsJobsError(f"could not submit the analysis: {reply.get('error', status)}")
    job_id = reply["job"]["id"]
    print(f"  job {job_id}")

    _step(4, "waiting for it")
    deadline = time.monotonic() + args.timeout
    while True:
        status, reply = http("GET", f"{API}/jobs/{job_id}")
        job = reply.get("job", {})
        if job.get("state") not in ("queued", "running"):
            break
        if time.monotonic() > deadline:
            raise OpsJobsError(f"the analysis is still {job.get('state')} after {args.timeout:g} s")
        time.sleep(0.5)
    _, results = http("GET", f"{SEED}/jobs/results?maxResults=5")
    rows = [
        [
            r["JobName"],
            str(r["Success"]),
            r["DateStarted"] or "-",
            fmt_runtime(r["Runtime"]),
        ]
        for r in results.get("results", [])
    ]
    print(table(["JobName", "Success", "DateStarted", "Runtime"], rows))
    print(f"\n--- output of {job_id} ({job.get('state')}) ---")
    print((job.get("output") or job.get("error") or "").rstrip())

    _step(5, "next steps")
    print(f"  dashboard: {args.url}/  (log in by pasting the key above as the password)")
    print(f"  API:       curl -H 'Authorization: Bearer <key>' {args.url}{SEED}/jobs/results")
    sys.stdout.flush()
    return 0 if job.get("state") == "succeeded" else 1


def _add_schedule(http: _Http, kwargs: dict[str, Any], target: str, job_name: str) -> None:
    schedule = {
        "name": SCHEDULE,
        "every": "30m",
        "call": target,
        "kwargs": kwargs,
        "mode": "thread",
        "job_name": job_name,
        "description": "Recurring memory analysis",
    }
    status, reply = http("POST", f"{API}/schedules", schedule)
    if status == 201:
        print(f"  added; next run {reply['schedule']['next_fire_at']}")
    elif status == 409:
        print("  already there (kept as it is)")
    else:
        raise OpsJobsError(f"could not add the schedule: {reply.get('error', status)}")
