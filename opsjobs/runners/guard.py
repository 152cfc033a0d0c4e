"""Launcher of a job's process group: ``python -I -S guard.py <parent pid> <program> [args...]``.

Every process a worker starts for a job — a ``process``-mode program, a notebook's kernel — is
started through this script, as the leader of its own session and process group (the Python
child of ``call`` and ``command`` jobs calls :func:`arm` itself, saving an interpreter). It

* asks the kernel to SIGKILL the program when the thread that started it dies
  (``prctl(PR_SET_PDEATHSIG)``, Linux), so a SIGKILLed worker takes its children with it;
* forks a **group watchdog** that stays in the group and kills the whole group as soon as its
  leader (the program) is gone, however it went: what the job's code started in the background
  (``sleep 300 &``, a kernel's subprocess) does not outlive the job;
* then replaces itself with the program (same pid, so the caller's ``Popen`` is the program's).

It is run by path with ``-I -S`` and imports only the standard library: it costs a few
milliseconds, not an ``import opsjobs``. A program that removes itself from the group
(``setsid``) escapes the watchdog; the worker's reaper (:mod:`opsjobs.runners.reaper`) still finds
it by the ``OPSJOBS_OWNER`` mark in its environment once its worker is dead.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1
#: The watchdog's "leader gone" signal: one nobody sends to a process group by accident
#: (SIGTERM and SIGINT are: ``kill_tree`` and kernel interrupts signal the whole group).
LEADER_GONE = signal.SIGRTMIN + 3


def set_pdeathsig(sig: int) -> bool:
    """Have this process sent ``sig`` when the thread that forked it exits; False where the
    kernel cannot (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _kill_group(*_: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)  # this watchdog included


def _watch(leader: int) -> None:
    """The watchdog's life (in the forked child): wait for the leader to go, then end the group."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    # SIGTERM (the group being stopped gracefully): step aside, the stopper kills what stays.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(LEADER_GONE, _kill_group)
    armed = set_pdeathsig(LEADER_GONE)
    if os.getppid() != leader:  # the leader went before the signal was armed
        _kill_group()
    while True:
        if armed:
            signal.pause()
        else:  # pragma: no cover - without prctl: poll
            time.sleep(0.5)
            if os.getppid() != leader:
                _kill_group()


def command(program: list[str], parent: int | None = None) -> list[str]:
    """``program`` started through this guard, from the process ``parent`` (default: this
    one); the interpreter is this one."""
    pid = os.getpid() if parent is None else parent
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(pid), *program]


def arm(parent: int) -> bool:
    """Make this process the guarded leader of a job's group: SIGKILL when the thread of
    ``parent`` that started it dies, and a watchdog in its group. Call it first thing, while
    the process has one thread (it forks). False if ``parent`` is already gone."""
    set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:  # the worker died before the signal was armed
        return False
    if os.getpgrp() != os.getpid():
        os.setsid()
    leader = os.getpid()
    if os.fork() == 0:
        try:
            _watch(leader)
        finally:
            os._exit(0)
    return True


def main(argv: list[str]) -> int:
    parent, program = int(argv[0]), argv[1:]
    if not arm(parent):
        return 1
    try:
        os.execvp(program[0], program)
    except OSError as exc:
        print(f"cannot start {program[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
