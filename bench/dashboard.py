"""Dashboard load time: from navigation to the results table being visible, with 100,000 stored
results, in Debian's Chromium (headless, playwright), against a real ``opsjobs serve`` process.

Side by side in the same run, alternating: an empty Voila page (one ``pass`` cell) on the same
server — Voila's own floor (page, kernel start, widget manager). The difference is ours. The
kernel-side part of ours (imports, session check, the first page query, count and stats on
100,000 rows, building the widgets) is also timed alone in a fresh interpreter.

    python bench/dashboard.py [--results 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from opsjobs.auth import Auth
from opsjobs.store import open_store

ROOT = Path(__file__).resolve().parent.parent
EMAIL = "bench@example.org"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EMPTY = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "empty", "metadata": {},
               "outputs": [], "source": "pass"}],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(db: Path, n: int) -> str:
    """The store with ``n`` finished jobs of the bench user (mixed states, runtimes, hosts)."""
    store = open_store(f"sqlite://{db}")
    key = Auth(store).create_key(EMAIL, roles="debug")[2]
    store.close()
    start = time.time() - n
    states = ["succeeded"] * 8 + ["failed", "timed_out"]
    rows = [
        (
            str(uuid.uuid4()),
            f"MemoryAnalysis_{i:06d}",
            EMAIL,
            "command",
            json.dumps({"source": "print('=== analysis ===')"}),
            ("inline", "thread", "process")[i % 3],
            "default",
            states[i % len(states)],
            start + i,
            start + i + 0.01,
            start + i + 0.01 + (i * 7919 % 1000) / 100,
            (i * 7919 % 1000) / 100,
            f"host-{i % 4}",
            "=== analysis ===\n" + "x" * 200,
        )
        for i in range(n)
    ]
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO jobs (id, name, owner, kind, payload, mode, queue, state, submitted_at,"
            " started_at, finished_at, runtime, host, output)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.execute("ANALYZE")
    conn.close()
    return key


def kernel_side(store_url: str, data: Path) -> dict[str, float]:
    """Our part inside a kernel, in a fresh interpreter: import, session, first refresh."""
    code = f"""
import json, time
t0 = time.perf_counter()
import ipywidgets
t1 = time.perf_counter()
from opsjobs.config import Settings
from opsjobs.auth import Auth
from opsjobs.store import open_store
from opsjobs.server.voila import DashboardLauncher
from pathlib import Path
settings = Settings(data_dir=Path({str(data)!r}), store_url={store_url!r})
store = open_store(settings.store_url)
user = Auth(store).store.find_user({EMAIL!r})
launcher = DashboardLauncher(settings)
session = launcher.session_for(user)
store.close()
t2 = time.perf_counter()
from opsjobs.dashboard import launch
widget = launch(session)
t3 = time.perf_counter()
launcher.close()
print(json.dumps({{"ipywidgets_import": t1 - t0, "launch": t3 - t2}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def wait_http(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("opsjobs serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data, notebooks = Path(tmp) / "data", Path(tmp) / "notebooks"
        data.mkdir()
        notebooks.mkdir()
        (notebooks / "dashboard.ipynb").write_bytes(
            (ROOT / "notebooks/dashboard.ipynb").read_bytes()
        )
        (notebooks / "empty.ipynb").write_text(json.dumps(EMPTY))
        db = data / "opsjobs.db"
        store_url = f"sqlite://{db}"
        open_store(store_url).close()
        t = time.perf_counter()
        key = fill(db, args.results)
        print(f"filled {args.results:,} results in {time.perf_counter() - t:.1f} s")
        ours = kernel_side(store_url, data)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSJOBS_")}
        server = subprocess.Popen(
            [sys.executable, "-m", "opsjobs", "--store", store_url, "--data", str(data),
             "serve", "--port", str(port), "--notebooks", str(notebooks)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        times: dict[str, list[float]] = {"empty": [], "dashboard": []}
        try:
            wait_http(port, time.monotonic() + 60)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(120_000)
                page.goto(f"{base}/login")
                page.fill("input[name=password]", key)
                page.press("input[name=password]", "Enter")
                page.wait_for_load_state()
                targets = {
                    "empty": ("/voila/render/empty.ipynb", "#rendered_cells"),
                    "dashboard": ("/voila/render/dashboard.ipynb", ".opsjobs-results-table"),
                }
                for run in range(args.runs + 1):  # the first round warms caches, not counted
                    for name, (path, selector) in targets.items():
                        page.goto("about:blank")
                        t = time.perf_counter()
                        page.goto(base + path)
                        page.wait_for_selector(selector, state="visible")
                        if run:
                            times[name].append(time.perf_counter() - t)
                browser.close()
        finally:
            server.terminate()
            server.wait(60)
    report(args, times, ours)


def report(args: Any, times: dict[str, list[float]], ours: dict[str, float]) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{args.results:,} results, {args.runs} runs each, median (min-max), seconds")
    for name in ("empty", "dashboard"):
        v = times[name]
        print(f"  {name:<10} {med[name]:.2f} ({min(v):.2f}-{max(v):.2f})")
    print(f"  ours over the empty page: {med['dashboard'] - med['empty']:+.2f}")
    print(
        f"  kernel side alone: launch {ours['launch']:.3f} s "
        f"(ipywidgets import {ours['ipywidgets_import']:.3f} s, already loaded in a kernel)"
    )


if __name__ == "__main__":
    main()
