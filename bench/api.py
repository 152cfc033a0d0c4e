"""REST API latency: submit, and listing 50 results from a store of 100,000, under 20
concurrent clients on loopback.

Usage::

    python bench/api.py [--results 100000] [--clients 20] [--requests 100]

A fresh temporary folder holds the store; ``opsjobs serve`` runs as a real process on a free
port with no worker, scheduler or Voila (submitted jobs stay queued, so the figures are the
API's and the store's alone). The store is pre-filled with ``--results`` finished jobs owned by
the benchmark user, so every listing pages through that user's 100,000 results (the
non-admin path: owner filter, newest first, and the total count). Each client is a thread with
its own keep-alive ``requests.Session``; all clients start together and each does
``--requests`` submits, then ``--requests`` listings (native ``GET /jobs?limit=50``) and as many
seed listings (``GET …/jobs/results?maxResults=50``). Latency is the client-side wall time of
one request.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402

from opsjobs.auth import Auth  # noqa: E402
from opsjobs.store import open_store  # noqa: E402

EMAIL = "bench@localhost"
SEED = "/apps/WebHostTaskManagement/api/v1"
#: What each client does, in this order, ``--requests`` times each.
KINDS = {
    "submit": ("POST", "/opsjobs/api/v1/jobs"),
    "list 50": ("GET", "/opsjobs/api/v1/jobs?limit=50"),
    "seed results 50": ("GET", f"{SEED}/jobs/results?maxResults=50"),
}


SERVE_FLAGS = ("--no-worker", "--no-scheduler", "--no-voila")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(db: Path, n: int) -> str:
    """Create the store with ``n`` finished jobs of the bench user; return the user's key."""
    store = open_store(f"sqlite://{db}")
    key = Auth(store).create_key(EMAIL, roles="debug")[2]
    store.close()
    now = time.time() - n
    rows = [
        (
            str(uuid.uuid4()),
            f"MemoryAnalysis_{i:06d}",
            "Memory analysis snapshot",
            EMAIL,
            "command",
            json.dumps({"source": "print('=== analysis ===')"}),
            "thread",
            "default",
            "succeeded",
            now + i,
            now + i + 0.01,
            now + i + 0.5,
            0.49,
            "=== analysis ===\n" + "x" * 200,
        )
        for i in range(n)
    ]
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO jobs (id, name, description, owner, kind, payload, mode, queue, state,"
            " submitted_at, started_at, finished_at, runtime, output)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.execute("ANALYZE")
    conn.close()
    return key


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_clients(base: str, key: str, clients: int, n: int) -> dict[str, list[float]]:
    """``clients`` threads, each on its own keep-alive connection, all starting together."""
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    lock = threading.Lock()
    start = threading.Barrier(clients)
    errors: list[str] = []
    host, port = base.split("//")[1].split(":")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def client(idx: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine: dict[str, list[float]] = {k: [] for k in KINDS}
        body = json.dumps({"name": f"bench-{idx}", "command": "1"})
        conn.request("GET", "/opsjobs/api/v1/me", headers=headers)  # connect before the clock
        conn.getresponse().read()
        start.wait()
        for what, (method, path) in KINDS.items():
            for _ in range(n):
                t0 = time.perf_counter()
                conn.request(method, path, body=body if method == "POST" else None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                dt = time.perf_counter() - t0
                if resp.status >= 300:
                    errors.append(f"{what}: {resp.status} {data[:200]!r}")
                mine[what].append(dt)
        conn.close()
        with lock:
            for k, v in mine.items():
                times[k].extend(v)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, first: {errors[0]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100, help="per client and kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opsjobs-bench-api-") as tmp:
        data = Path(tmp) / "data"
        db = data / "opsjobs.db"
        t0 = time.perf_counter()
        key = fill(db, args.results)
        print(f"store: {args.results} results in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSJOBS_")}
        env.update(OPSJOBS_DATA=str(data), OPSJOBS_STORE=f"sqlite://{db}", OPSJOBS_RUNTIME_DIR=tmp)
        server = subprocess.Popen(
            [sys.executable, "-m", "opsjobs", "serve", "--port", str(port), *SERVE_FLAGS],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    requests.get(base + "/opsjobs/api/v1/me", timeout=2)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            run_clients(base, key, args.clients, 5)  # warm-up: connections, caches
            t0 = time.perf_counter()
            times = run_clients(base, key, args.clients, args.requests)
            wall = time.perf_counter() - t0
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(60)
    print(
        f"{args.clients} clients x {args.requests} requests per kind, store of {args.results} "
        f"results; {sum(len(v) for v in times.values())} requests in {wall:.1f} s "
        f"({platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs)"
    )
    print("| request | p50 | p99 | max | target p99 | met? |")
    print("|---|---|---|---|---|---|")
    for what, values in times.items():
        p50, p99, top = (pct(values, 50) * 1000, pct(values, 99) * 1000, max(values) * 1000)
        targeted = what != "seed results 50"
        target = "<= 50 ms" if targeted else "-"
        met = ("yes" if p99 <= 50 else "**no**") if targeted else "-"
        print(f"| {what} | {p50:.1f} ms | {p99:.1f} ms | {top:.1f} ms | {target} | {met} |")


if __name__ == "__main__":
    main()
