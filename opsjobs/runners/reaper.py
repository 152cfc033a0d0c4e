"""The reaper: processes whose worker died are killed by the next worker on the host.

A worker process marks itself in its environment before it runs a job,
``OPSJOBS_OWNER=<pid>:<start time>:<pid namespace>``; every process started from it inherits the
mark — a ``process`` child, a kernel, and what ``inline`` and ``thread`` jobs start with
``subprocess`` (they run in the worker's own process, so its environment is theirs). Each worker,
when it starts and then once per lease, reads the environment of this user's processes on the host
(``/proc/<pid>/environ``) and SIGKILLs those whose owner is no longer alive: a pid that is gone, a
zombie, or a pid reused by a process that started at another time. Marks made in another pid
namespace (processes of a container, seen from its host) are left alone: their pids do not name
processes here.

This is the backstop. A job's process group already dies with its worker
(:mod:`opsjobs.runners.guard`: ``PR_SET_PDEATHSIG`` and a group watchdog); the reaper finds what
left the group (``setsid``, a daemon) or was never in one (a subprocess of an inline job), as long
as it kept its environment. Linux only (``/proc``); elsewhere it finds nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal

__all__ = ["OWNER_ENV", "mark_owner", "owner_alive", "owner_tag", "reap_orphans"]

OWNER_ENV = "OPSJOBS_OWNER"
_PREFIX = OWNER_ENV.encode() + b"="

log = logging.getLogger("opsjobs.reaper")


def _start_ticks(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of ``pid``, None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()  # the name may hold spaces and brackets
    return fields[0].decode(), fields[19].decode()


def _pid_namespace() -> str:
    """This process's pid namespace (``pid:[4026531836]``): a pid means something only there."""
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        return ""


def owner_tag(pid: int | None = None) -> str | None:
    """``<pid>:<start time>:<pid namespace>`` of ``pid`` (default: this process); None
    without ``/proc``."""
    pid = os.getpid() if pid is None else pid
    found = _start_ticks(pid)
    return None if found is None else f"{pid}:{found[1]}:{_pid_namespace()}"


def owner_alive(tag: str, namespace: str | None = None) -> bool:
    """Whether the process named by a mark still runs (not a zombie, not a reused pid). A
    mark made in another pid namespace (a container seen from its host) is never judged dead."""
    pid, ticks, ns = [*tag.split(":"), "", ""][:3]
    here = _pid_namespace() if namespace is None else namespace
    if not pid.isdigit() or ns != here:
        return True  # not ours to judge
    found = _start_ticks(int(pid))
    return found is not None and found[0] != "Z" and found[1] == ticks


def mark_owner() -> None:
    """Mark this process as the owner of every process it starts from now on."""
    tag = owner_tag()
    if tag is not None and os.environ.get(OWNER_ENV) != tag:
        os.environ[OWNER_ENV] = tag


def _mark_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = fh.read()
    except OSError:  # gone, or another user's
        return None
    at = env.find(_PREFIX)
    if at < 0 or (at > 0 and env[at - 1] != 0):
        return None
    end = env.find(b"\0", at)
    return env[at + len(_PREFIX) : end if end >= 0 else None].decode(errors="replace")


def reap_orphans() -> list[int]:
    """SIGKILL this user's processes whose owning worker process is dead; returns their pids."""
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    me = os.getpid()
    namespace = _pid_namespace()
    verdicts: dict[str, bool] = {}
    killed = []
    for pid in pids:
        if pid == me:
            continue
        tag = _mark_of(pid)
        if tag is None:
            continue
        if tag not in verdicts:
            verdicts[tag] = owner_alive(tag, namespace)
        if verdicts[tag]:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    if killed:
        log.warning(
            "killed %d process(es) left behind by dead workers: %s",
            len(killed),
            " ".join(map(str, killed)),
        )
    return killed
