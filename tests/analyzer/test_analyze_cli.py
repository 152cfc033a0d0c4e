"""``opsjobs analyze`` as users run it: a real worker process, a real child, real exits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import client_for, run_cli, settings_for, start_worker, wait_for

from opsjobs import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    settings = settings_for(tmp_path)
    proc = start_worker(settings, "--threads", "2")
    client = client_for(settings)
    try:
        found = wait_for(
            lambda: [w for w in client.store.workers() if w.alive(time.time())],
            what="worker to register",
        )
        yield settings, found[0].id
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        client.close()
    assert proc.returncode == 0, err


def _one_line_error(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsjobs: error: "), done.stderr
    assert text in lines[0], lines[0]


def test_analyze_worker_twice_with_csv(worker: tuple[Settings, str]) -> None:
    settings, worker_id = worker
    first = run_cli(settings, "analyze", "--wait", "--csv", "--top", "5", timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"to worker:{worker_id}" in first.stderr
    for section in ("Process Memory", "GC Statistics", "Global Variable Sizes", "Recommendations"):
        assert f"=== {section} ===" in first.stdout
    assert "Growth Since Previous Analysis" not in first.stdout
    jobs = json.loads(run_cli(settings, "results", "--json").stdout)
    assert [(j["name"], j["state"], j["mode"]) for j in jobs] == [
        ("memory-analysis", "succeeded", "thread")
    ]
    job = jobs[0]
    assert job["queue"] == f"worker:{worker_id}" and job["worker_id"] == worker_id
    assert job["result"]["summary"]["rss_mb"] > 0
    csv_dir = settings.results_dir / job["id"]
    assert {p.name for p in csv_dir.iterdir()} == {"globals.csv", "containers.csv", "types.csv"}

    second = run_cli(
        settings, "analyze", "--queue", f"worker:{worker_id}", "--deep", "--wait", timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert "=== Growth Since Previous Analysis ===" in second.stdout
    assert f"Previous analysis       : {job['id']}" in second.stdout
    assert "=== Duplicate Strings ===" in second.stdout

    queued = run_cli(settings, "analyze", "--queue", "default")  # a queue the worker serves
    assert queued.returncode == 0, queued.stderr
    uuid.UUID(queued.stdout.strip())


def test_analyze_pid_of_a_child(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; b = bytearray(64 << 20); time.sleep(120)"],
    )
    try:
        done = wait_for(
            lambda: (lambda d: d if d.returncode == 0 and "RSS (MB)" in d.stdout else None)(
                run_cli(settings, "analyze", "--pid", str(child.pid))
            ),
            what="pid report",
        )
    finally:
        child.kill()
        child.wait()
    out = done.stdout
    assert "(external, psutil only)" in out and f"Process ID: {child.pid}" in out
    assert "psutil figures only" in out
    assert "Global Variable Sizes" not in out
    rss = float(next(line for line in out.splitlines() if line.startswith("RSS")).split(":")[1])
    assert rss >= 64


def test_analyze_here(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True)
    done = run_cli(settings, "analyze", "--here", "--deep", "--top", "3", "--csv")
    assert done.returncode == 0, done.stderr
    sections = [line for line in done.stdout.splitlines() if line.startswith("=== ")]
    assert sections == [
        "=== opsjobs Memory Analysis ===",
        "=== Process Memory ===",
        "=== GC Statistics ===",
        "=== Global Variable Sizes ===",
        "=== Largest Dicts and Lists ===",
        "=== Duplicate Strings ===",
        "=== Top Types ===",
        "=== Recommendations ===",
    ]
    [folder] = list(settings.results_dir.iterdir())
    assert folder.name.startswith("here-")
    assert (folder / "strings.csv").is_file()


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.data_dir.mkdir(parents=True)
    cases = [
        (["--pid", "abc"], "--pid must be an integer"),
        (["--pid", "0"], "--pid must be a positive integer"),
        (["--pid", "999999999"], "no process with pid 999999999"),
        (["--pid", "1", "--csv"], "psutil figures only"),
        (["--queue", "bad queue!"], "invalid queue"),
        (["--queue", f"worker:{uuid.uuid4()}"], "no worker with id"),
        (["--queue", "nobody-serves-this"], "no live worker serves queue"),
        ([], "no live worker to analyse"),
        (["--here", "--top", "0"], "--top must be a positive integer"),
        (["--here", "--budget", "soon"], "--budget must be a number"),
    ]
    for args, text in cases:
        _one_line_error(run_cli(settings, "analyze", *args), text)
