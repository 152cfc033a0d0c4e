"""A fleet of real opsjobs processes on one store: workers standing for hosts, schedulers.

Each process writes its stderr to a file in the test's folder (a pipe nobody reads could fill up
and block a chatty worker), and :meth:`Fleet.stop` ends every process it started: SIGTERM, then
SIGKILL after a grace period.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from harness import cli_env

from opsjobs import Settings

#: A side-effect job: appends its job id to the file ``{log}`` (O_APPEND: lines never interleave).
RECORD_RUN = (
    "import os, opsjobs\n"
    "fd = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
    "os.write(fd, (opsjobs.context().job_id + '\\n').encode())\n"
    "os.close(fd)\n"
)

#: A job that runs for about ``seconds`` and then records its run like :data:`RECORD_RUN`.
SLOW_RECORD = (
    "import time, opsjobs\n"
    "for _ in range(int({seconds} * 20)):\n"
    "    if opsjobs.context().cancelled:\n"
    "        raise SystemExit(1)\n"
    "    time.sleep(0.05)\n"
) + RECORD_RUN


class Fleet:
    """Processes started with the environment of ``settings`` (plus per-process extras)."""

    def __init__(self, settings: Settings, folder: Path, **env: str) -> None:
        self.settings = settings
        self.folder = folder
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """``python -m opsjobs <args>`` as process ``name`` (stderr in ``<name>.err``)."""
        with open(self.folder / f"{name}.err", "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "opsjobs", *args],
                env=cli_env(self.settings, **{**self.env, **env}),
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=self.settings.data_dir.parent,
            )
        self.procs[name] = proc
        return proc

    def worker(self, host: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """A worker for ``host``: queue ``host`` (plus its private one), host name ``host``."""
        return self.start(host, "worker", "--queue", host, *args, OPSJOBS_HOST=host, **env)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        self.procs[f"{name} (killed {proc.pid})"] = proc

    def stderr(self, name: str) -> str:
        path = self.folder / f"{name}.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        """Fail with the process's stderr if one that should run has exited."""
        for name, proc in self.procs.items():
            if "(killed" not in name and proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {proc.returncode}: {self.stderr(name)[-2000:]}"
                )

    def stop(self, grace: float = 20.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
