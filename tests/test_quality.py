"""The toolchain is part of the suite: lint, format and types of the package, and the public API."""

from __future__ import annotations

import ast
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


def test_no_sqlite_connection_is_left_to_the_collector() -> None:
    """``with sqlite3.connect(...)`` commits but never closes: the connection waits for the
    collector, which Python 3.13 reports (ResourceWarning, an error here) inside whichever test
    it happens to run in. ``contextlib.closing`` or an explicit ``close()`` says when."""
    found = []
    for path in sorted(
        [*ROOT.glob("opsjobs/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]
    ):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.With | ast.AsyncWith):
                for item in node.items:
                    call = item.context_expr
                    if isinstance(call, ast.Call) and ast.unparse(call.func) == "sqlite3.connect":
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
