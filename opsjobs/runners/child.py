"""Entry point of a ``process``-mode child:
``python -m opsjobs.runners.child <job folder> [<worker pid>]``.

The worker writes ``job.json`` (kind, payload, ids) into the job folder and points stdout and
stderr at the job's log file. The child runs the kind with a file-backed job context, writes
``result.json`` on success and ``error.json`` on failure, and exits 0 or non-zero.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from opsjobs.context import adopt, file_context
from opsjobs.runners import guard
from opsjobs.runners.kinds import default_registry
from opsjobs.runners.outcome import describe_exception, result_json


def _die_with_parent(parent: int) -> None:
    """If the worker dies (even by SIGKILL), take this job's process group down with it, so a
    re-queued job never runs twice at once."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.killpg(os.getpgid(0), signal.SIGKILL)


class Stopped(BaseException):
    """Raised in the job's code by SIGTERM: the worker is stopping (or the job timed out or
    was cancelled). A BaseException, so the job's own ``except Exception`` does not swallow
    it; its traceback in the output shows where the job was."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Stopped("stopped by SIGTERM")


def main(argv: list[str]) -> int:
    # with the worker's pid: lead a guarded group (before any thread starts: it forks)
    if len(argv) > 1 and not guard.arm(int(argv[1])):
        return 1  # the worker is gone already
    threading.Thread(target=_die_with_parent, args=(os.getppid(),), daemon=True).start()
    signal.signal(signal.SIGTERM, _on_sigterm)
    job_dir = Path(argv[0])
    meta = json.loads((job_dir / "job.json").read_text("utf-8"))
    ctx = file_context(job_dir, meta["job_id"], meta.get("worker_id"), meta.get("host"))
    adopt(ctx)
    try:
        kind = default_registry().get(meta["kind"])
        value = kind.run(meta["payload"], ctx)
        if ctx.result_json is None:
            text = result_json(value)
            if text is not None:
                ctx.set_result(json.loads(text))
    except SystemExit:
        raise
    except BaseException as exc:
        traceback.print_exc()
        (job_dir / "error.json").write_text(json.dumps({"error": describe_exception(exc)}), "utf-8")
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
