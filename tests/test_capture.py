"""The stand-ins for sys.stdout/sys.stderr that route a thread job's prints to its log."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path


def test_a_collected_proxy_leaves_the_original_stream_alone(tmp_path: Path) -> None:
    # A proxy dropped after its original stream was closed (pytest's capture at exit, a
    # harness swapping streams) used to flush that stream from IOBase's finaliser: Python
    # printed "Exception ignored … ValueError: I/O operation on closed file" at exit.
    code = f"""
import gc, sys
from opsjobs.runners.capture import ThreadRouter, _Proxy
original = open({str(tmp_path / "stream.txt")!r}, "w")
proxy = _Proxy(ThreadRouter(), original)
proxy.write("kept")
original.close()
del proxy
gc.collect()
print("done")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "done\n", done
    assert "Exception ignored" not in done.stderr and "ValueError" not in done.stderr, done.stderr
    assert (tmp_path / "stream.txt").read_text() == "kept"


def test_closing_a_proxy_does_not_close_the_programs_stream() -> None:
    from opsjobs.runners.capture import ThreadRouter, _Proxy

    original = io.StringIO()
    proxy = _Proxy(ThreadRouter(), original)
    proxy.close()
    assert not original.closed
    proxy.write("still")
    assert original.getvalue() == "still"
