"""Every notebook in ``notebooks/`` runs under ``pytest --nbval-lax`` against a temporary store
seeded with a few jobs and metrics. A notebook added there is picked up without touching this
file. (The scenario fixtures in ``tests/notebooks/`` fail on purpose and are not run here.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT, cli_env, client_for, settings_for

import opsjobs
from opsjobs import Settings

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(tmp_path_factory.mktemp("nbval"), poll_interval=60.0)
    with client_for(settings) as client:
        handle = opsjobs.embed(store=client.store, settings=settings, threads=2)
        try:
            jobs = [
                client.submit("hello", command="print('hi')"),
                client.submit("hello", command="print('hi again')"),
                client.submit("broken", command="raise ValueError('planted')"),
                client.submit(
                    "measure",
                    command="import opsjobs\nopsjobs.record_metric('rss_mb', 120.5, host='a')",
                ),
            ]
            for job in jobs:
                client.wait(job.id, timeout=30)
        finally:
            handle.stop()
        client.submit("waiting", command="print(1)", queue="nobody")  # stays queued
    return settings


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_under_nbval(seeded: Settings, notebook: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-q",
            "-p",
            "no:cacheprovider",
            str(notebook),
        ],
        env=cli_env(seeded),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
