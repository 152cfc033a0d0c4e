"""Any process seen from outside: psutil figures only, no heap, GC or globals.

``opsjobs analyze --pid`` uses this for processes that run no opsjobs worker (or are not
Python at all). What a process keeps in its heap can only be seen from inside it, so the
report says plainly which figures it lacks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from opsjobs.analyzer.process import ProcessMemory, process_memory
from opsjobs.errors import NotFound, PermissionDenied, ValidationError

__all__ = ["ExternalReport", "format_external", "inspect_process"]

MiB = 1024 * 1024
#: Characters of the command line kept in the report.
CMDLINE_CHARS = 200
NOTE = (
    "External view: psutil figures only. Heap census, GC statistics, globals, containers and "
    "duplicate strings need the analysis to run inside the process (a worker's private queue: "
    "opsjobs analyze --queue worker:<id>)."
)


@dataclass(frozen=True)
class ExternalReport:
    """What psutil can tell about another process."""

    pid: int
    analysed_at: str
    name: str
    cmdline: str
    status: str
    username: str | None
    fds: int | None
    children: int
    process: ProcessMemory
    note: str = NOTE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)


def _or_none(call: Any) -> Any:
    try:
        return call()
    except (psutil.AccessDenied, psutil.ZombieProcess, NotImplementedError):
        return None


def inspect_process(pid: int, cgroup_root: Path = Path("/sys/fs/cgroup")) -> ExternalReport:
    """Memory and resource figures of process ``pid`` as seen from outside.

    Parameters
    ----------
    pid
        The process to inspect.
    cgroup_root
        Mount point of the cgroup file system (for the memory limit).

    Raises
    ------
    ValidationError
        ``pid`` is not a positive integer.
    NotFound
        No such process.
    PermissionDenied
        The process belongs to another user and may not be read.
    """
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValidationError(f"pid must be a positive integer, got {pid!r}")
    try:
        proc = psutil.Process(pid)
        memory = process_memory(pid, cgroup_root)
        with proc.oneshot():
            name = proc.name()
            cmdline = _or_none(proc.cmdline) or []
            status = proc.status()
            username = _or_none(proc.username)
            fds = _or_none(proc.num_fds)
            children = len(_or_none(proc.children) or [])
    except psutil.NoSuchProcess:
        raise NotFound(f"no process with pid {pid}") from None
    except psutil.AccessDenied:
        raise PermissionDenied(f"not allowed to read process {pid}") from None
    return ExternalReport(
        pid=pid,
        analysed_at=datetime.now().astimezone().isoformat(timespec="seconds"),
        name=name,
        cmdline=" ".join(cmdline)[:CMDLINE_CHARS],
        status=status,
        username=username,
        fds=fds,
        children=children,
        process=memory,
    )


def _mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / MiB:.2f}"


def format_external(report: ExternalReport) -> str:
    """The text report of :func:`inspect_process`, with the note on what it cannot show."""
    p = report.process
    limit = _mb(p.cgroup_limit) if p.cgroup_limit else "none"
    rows: list[tuple[str, object]] = [
        ("Name", report.name),
        ("Command line", report.cmdline or "n/a"),
        ("Status", report.status),
        ("User", report.username or "n/a"),
        ("RSS (MB)", _mb(p.rss)),
        ("VMS (MB)", _mb(p.vms)),
        ("USS (MB)", _mb(p.uss)),
        ("PSS (MB)", _mb(p.pss)),
        ("Swap (MB)", _mb(p.swap)),
        ("cgroup limit (MB)", limit),
        ("Threads", p.threads),
        ("Open files", "n/a" if p.open_files is None else p.open_files),
        ("File descriptors", "n/a" if report.fds is None else report.fds),
        ("Child processes", report.children),
        ("Uptime (s)", p.uptime_s),
    ]
    when = datetime.fromisoformat(report.analysed_at).strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        "=== opsjobs Process Memory (external, psutil only) ===",
        f"Process ID: {report.pid}",
        f"Analysis Time: {when}",
        "",
        *(f"{k:<24}: {v}" for k, v in rows),
        "",
        report.note,
    ]
    return "\n".join(lines) + "\n"
