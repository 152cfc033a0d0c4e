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


def test_prints_survive_the_streams_being_swapped_under_them() -> None:
    # print() holds sys.stdout as a borrowed reference across its writes. A job thread's
    # print, while another thread swapped the stream (a harness; the worker's release), wrote
    # through a proxy freed under it: a segfault at the end of tests/test_bulk_submit.py 1 run
    # in 3-9 (3.11 and 3.12), and in this child every time before proxies were kept.
    from harness import python_child

    script = """
import io, json, os, sys, tempfile, threading, time
sys.setswitchinterval(1e-6)
from opsjobs.runners.capture import OutputSink, ThreadRouter
folder = tempfile.mkdtemp()
stop = threading.Event()
def printer(k):
    router = ThreadRouter.acquire()
    sink = OutputSink(os.path.join(folder, f"{k}.log"), 10_000)
    while not stop.is_set():
        router.route(sink)  # as each job does: re-wraps the stream someone replaced
        print("x", k)
    router.route(None)
threads = [threading.Thread(target=printer, args=(k,)) for k in range(4)]
real = sys.stdout
for t in threads:
    t.start()
deadline = time.monotonic() + 3.0
swaps = 0
while time.monotonic() < deadline:
    sys.stdout = io.StringIO()  # a harness swapping streams: drops the proxy a job installed
    swaps += 1
stop.set()
for t in threads:
    t.join()
sys.stdout = real
print(json.dumps(["survived", swaps]))
"""
    survived, swaps = python_child(script, timeout=120)
    assert survived == "survived" and swaps > 1000
