"""The toolchain is part of the suite: lint, format and types of the package, and the public API."""

from __future__ import annotations

import subprocess
import sys

import pytest
from harness import ROOT

import opsjobs


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "ruff", "check", "opsjobs", "tests", "bench"],
        [sys.executable, "-m", "ruff", "format", "--check", "opsjobs", "tests", "bench"],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_toolchain_is_clean(argv: list[str]) -> None:
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_public_api_is_pinned() -> None:
    assert sorted(opsjobs.__all__) == [
        "Client", "ConfigError", "Conflict", "Job", "JobContext", "JobNotFound", "JobSpec",
        "JobState", "Metric", "Mode", "NotFound", "OpsJobsError", "PermissionDenied",
        "RunnerError", "Settings", "Stats", "StoreError", "ValidationError", "Worker",
        "WorkerHandle", "WorkerInfo", "__version__", "connect", "context", "embed",
        "record_metric",
    ]  # fmt: skip
    for name in opsjobs.__all__:
        assert hasattr(opsjobs, name), name


def test_import_does_no_work() -> None:
    code = (
        "import threading; import opsjobs; "
        "assert threading.active_count() == 1, threading.enumerate(); "
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
