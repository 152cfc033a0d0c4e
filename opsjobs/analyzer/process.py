"""Process-level memory figures (psutil) and the cgroup memory limit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["ProcessMemory", "cgroup_memory_limit", "process_memory"]

#: cgroup v1 reports "no limit" as a page-rounded huge number; anything above is unlimited.
_V1_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class ProcessMemory:
    """Memory and resource figures of one process, in bytes where a size."""

    pid: int
    rss: int
    vms: int
    uss: int | None
    pss: int | None
    swap: int | None
    threads: int
    open_files: int | None
    uptime_s: float
    cgroup_limit: int | None


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _V1_UNLIMITED else value


def _own_cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    v2 = v1 = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def cgroup_memory_limit(
    root: Path = Path("/sys/fs/cgroup"),
    proc_cgroup: Path = Path("/proc/self/cgroup"),
) -> int | None:
    """The memory limit of this process's cgroup in bytes, or None when unlimited/unknown.

    cgroup v2 ``memory.max`` is tried first (own group, then the mount root as seen from a
    container), then cgroup v1 ``memory/memory.limit_in_bytes``.

    Parameters
    ----------
    root
        Where the cgroup file system is mounted.
    proc_cgroup
        The ``/proc/<pid>/cgroup`` file naming this process's groups.
    """
    v2, v1 = _own_cgroup_paths(proc_cgroup)
    candidates: list[Path] = []
    if v2 is not None:
        candidates.append(root / v2.lstrip("/") / "memory.max")
    candidates.append(root / "memory.max")
    if v1 is not None:
        candidates.append(root / "memory" / v1.lstrip("/") / "memory.limit_in_bytes")
    candidates.append(root / "memory" / "memory.limit_in_bytes")
    for path in candidates:
        if path.is_file():
            return _read_limit(path)
    return None


def process_memory(
    pid: int | None = None, cgroup_root: Path = Path("/sys/fs/cgroup")
) -> ProcessMemory:
    """Collect RSS, VMS, USS, PSS, swap, threads and open files of a process.

    USS/PSS/swap need ``memory_full_info`` (Linux ``smaps``); they are None where the
    platform or permissions do not allow it.

    Parameters
    ----------
    pid
        Process to inspect; this process by default.
    cgroup_root
        Mount point of the cgroup file system.
    """
    proc = psutil.Process(pid)
    with proc.oneshot():
        info = proc.memory_info()
        uss = pss = swap = None
        try:
            full = proc.memory_full_info()
            uss = getattr(full, "uss", None)
            pss = getattr(full, "pss", None)
            swap = getattr(full, "swap", None)
        except (psutil.AccessDenied, psutil.ZombieProcess, NotImplementedError):
            pass
        try:
            open_files: int | None = len(proc.open_files())
        except (psutil.AccessDenied, NotImplementedError):
            open_files = None
        threads = proc.num_threads()
        uptime = max(0.0, time.time() - proc.create_time())
    proc_cgroup = Path(f"/proc/{proc.pid}/cgroup")
    return ProcessMemory(
        pid=proc.pid,
        rss=info.rss,
        vms=info.vms,
        uss=uss,
        pss=pss,
        swap=swap,
        threads=threads,
        open_files=open_files,
        uptime_s=round(uptime, 3),
        cgroup_limit=cgroup_memory_limit(cgroup_root, proc_cgroup),
    )
