"""The ``opsjobs`` command as users run it: a real worker process, real SQLite, real exits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import client_for, run_cli, settings_for, start_worker, wait_for

from opsjobs import Settings


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Settings]:
    settings = settings_for(tmp_path)
    proc = start_worker(settings, "--threads", "2")
    client = client_for(settings)
    try:
        wait_for(
            lambda: any(w.alive(time.time()) for w in client.store.workers()),
            what="worker to register",
        )
        yield settings
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        client.close()
    assert proc.returncode == 0, err


def test_submit_wait_results_show_delete(worker: Settings) -> None:
    done = run_cli(
        worker,
        "submit",
        "--name",
        "hello",
        "--command",
        "print('hi')",
        "--mode",
        "thread",
        "--wait",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi\n"
    assert "[succeeded in" in done.stderr
    listing = run_cli(worker, "results")
    assert listing.returncode == 0
    header = listing.stdout.splitlines()[0].split()
    assert header == ["ID", "Job", "Name", "Status", "Started", "Runtime", "Mode"]
    jobs = json.loads(run_cli(worker, "results", "--json").stdout)
    assert [(j["name"], j["state"], j["mode"]) for j in jobs] == [("hello", "succeeded", "thread")]
    job_id = jobs[0]["id"]
    shown = run_cli(worker, "show", job_id)
    assert shown.returncode == 0 and f"id               : {job_id}" in shown.stdout
    assert shown.stdout.rstrip().endswith("--- output ---\nhi")
    assert run_cli(worker, "delete", job_id).returncode == 0
    gone = run_cli(worker, "show", job_id)
    assert gone.returncode == 2 and gone.stderr == f"opsjobs: error: no job with id {job_id}\n"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--command", "raise SystemExit(1)"], 1),
        (["--command", "import time; time.sleep(20)", "--timeout", "0.5", "--mode", "process"], 4),
        (["--argv", "sh", "-c", "exit 0"], 0),
    ],
)
def test_wait_exits_with_the_jobs_status(worker: Settings, args: list[str], code: int) -> None:
    if "--argv" in args:
        args = ["--mode", "process", *args]
    done = run_cli(worker, "submit", "--name", "x", *args, "--wait")
    assert done.returncode == code, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "not-a-uuid"], "malformed job id 'not-a-uuid' (expected a UUID)"),
        (["submit", "--name", "x", "--command", "pass", "--mode", "warp"], "unknown mode 'warp'"),
        (
            ["submit", "--name", "x", "--call", "os:getcwd", "--kwargs", "{oops"],
            "--kwargs is not valid JSON",
        ),
        (
            ["submit", "--name", "x", "--call", "os:getcwd", "--kwargs", "[1]"],
            "--kwargs must be a JSON object",
        ),
        (["submit", "--name", "x", "--argv", "ls"], "runs only in process mode"),
        (["purge", "--older-than", "soon"], "invalid duration 'soon'"),
        (["results", "--sort", "colour"], "cannot sort by 'colour'"),
        (["results", "--state", "exploded"], "unknown state 'exploded'"),
        (["--store", "ftp://x", "results"], "unknown store URL"),
    ],
)
def test_errors_are_one_readable_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_cli(settings_for(tmp_path), *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("opsjobs: error: ") and message in done.stderr


def test_delete_running_is_refused_then_cancel(worker: Settings) -> None:
    job_id = run_cli(
        worker,
        "submit",
        "--name",
        "slow",
        "--command",
        "import time, opsjobs\nwhile not opsjobs.context().cancelled: time.sleep(0.01)",
    ).stdout.strip()
    client = client_for(worker)
    wait_for(lambda: client.get(job_id).state.value == "running", what="job to run")
    refused = run_cli(worker, "delete", job_id)
    assert refused.returncode == 2 and "is running: cancel it before deleting it" in refused.stderr
    assert run_cli(worker, "cancel", job_id).stdout.strip() == f"{job_id}: cancelled"
    assert run_cli(worker, "delete", job_id).returncode == 0
    client.close()


def test_stats_workers_and_purge(worker: Settings) -> None:
    for source in ("pass", "raise ValueError('x')"):
        run_cli(worker, "submit", "--name", "s", "--command", source, "--wait")
    stats = json.loads(run_cli(worker, "stats", "--json").stdout)
    assert (stats["total"], stats["succeeded"], stats["failed"]) == (2, 1, 1)
    workers = run_cli(worker, "workers")
    assert workers.returncode == 0 and "alive" in workers.stdout
    assert run_cli(worker, "purge", "--older-than", "1h").stdout.startswith("purged 0 job(s)")
    kept = run_cli(worker, "purge", "--older-than", "0s", "--keep-last", "1")
    assert kept.stdout.startswith("purged 1 job(s)"), kept  # both are named "s": one stays
    assert "(keeping the last 1 of each name)" in kept.stdout
    bad = run_cli(worker, "purge", "--older-than", "0s", "--keep-last", "-1")
    assert bad.returncode == 2 and "keep_last must be a non-negative integer" in bad.stderr
    assert run_cli(worker, "purge", "--older-than", "0s").stdout.startswith("purged 1 job(s)")


def test_python_dash_m_and_help() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "opsjobs"), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and "submit" in done.stdout and "worker" in done.stdout


def test_a_row_that_cannot_be_read_is_one_line_and_can_be_deleted(tmp_path: Path) -> None:
    # a finished job whose stored payload is not JSON (a hand edit, another version): the
    # listing names it in one line, exits 2, and the job can still be deleted
    import sqlite3

    settings = settings_for(tmp_path)
    client = client_for(settings)
    bad = client.submit("bad", command="pass")
    client.submit("fine", command="pass")
    client.close()
    raw = sqlite3.connect(settings.data_dir / "opsjobs.db")
    raw.execute(
        "UPDATE jobs SET payload = '{nope', state = 'succeeded', finished_at = 1 WHERE id = ?",
        (bad.id,),
    )
    raw.commit()
    raw.close()
    for args in (["results"], ["show", bad.id]):
        out = run_cli(settings, *args)
        assert out.returncode == 2, out
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert f"job {bad.id}: its stored row cannot be read (JSONDecodeError" in out.stderr
    assert run_cli(settings, "delete", bad.id).returncode == 0
    listing = run_cli(settings, "results", "--json")
    assert listing.returncode == 0, listing.stderr
    assert [j["name"] for j in json.loads(listing.stdout)] == ["fine"]


def test_an_internal_error_is_one_line_unless_verbose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from opsjobs import cli
    from opsjobs.cli import jobs

    def broken(*_: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(jobs, "cmd_stats", broken)  # registered when main builds the parser
    monkeypatch.setenv("OPSJOBS_DATA", str(tmp_path / "data"))
    assert cli.main(["stats"]) == 2
    err = capsys.readouterr().err
    assert err == "opsjobs: internal error: RuntimeError: a bug (-v shows the traceback)\n"
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["-v", "stats"])
