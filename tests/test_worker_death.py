"""A worker that dies or is stopped mid-job: nothing it started outlives it, and a job it
stopped is never recorded as a success (issue 14, points 2 and 3).

Real workers (``opsjobs worker`` processes), real kernels, SQLite and PostgreSQL; short leases.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from opsjobs.runners.process import kill_tree


def test_kill_tree_leaves_the_exit_status_to_its_popen(tmp_path: Path) -> None:
    """kill_tree must not reap a child it did not start: the Popen that waits for it would get
    ECHILD and report exit status 0 (a stopped job recorded as a success)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    kill_tree(proc.pid, grace=2.0)
    assert proc.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)
