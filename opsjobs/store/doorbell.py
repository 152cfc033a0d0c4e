"""A local doorbell: wakes idle workers on this host the moment a job is submitted.

Each waiting worker binds a Unix datagram socket in a run folder private to one store file;
ringing sends one byte to every socket there. Delivery is immediate and costs a few
microseconds per worker; a socket whose worker died is unlinked by the first ring that finds it
refusing. The run folder lives under the runtime dir (``$XDG_RUNTIME_DIR`` or
``/tmp/opsjobs-<uid>``), keyed by a hash of the store's path, so socket paths stay short. A
runtime dir too deep for a socket path (the kernel's limit is 107 bytes) is swapped for one under
the temporary folder, keyed by a hash of both, which every process of that store computes alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import tempfile
from pathlib import Path

from opsjobs.errors import ConfigError
from opsjobs.store.base import Waiter

__all__ = ["Doorbell", "DoorbellWaiter"]

# sun_path holds 108 bytes with the closing NUL; a socket is named "<16 characters>.sock".
_MAX_SOCKET_PATH = 107
_SOCKET_NAME_LENGTH = len("0123456789abcdef.sock")


def _fits(folder: Path) -> bool:
    return len(os.fsencode(folder)) + 1 + _SOCKET_NAME_LENGTH <= _MAX_SOCKET_PATH


def doorbell_folder(key: str, runtime_dir: str | None = None) -> Path:
    """The folder of the sockets of the store ``key``: short enough for every socket path."""
    short_base = os.path.join(tempfile.gettempdir(), f"opsjobs-{os.getuid()}")
    base = runtime_dir or short_base
    folder = Path(base) / hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    if _fits(folder):
        return folder
    digest = hashlib.sha1(f"{base}\0{key}".encode()).hexdigest()[:16]
    for short in (short_base, f"/tmp/opsjobs-{os.getuid()}"):
        if _fits(Path(short) / digest):
            return Path(short) / digest
    raise ConfigError(
        "no folder short enough for the doorbell's sockets:"
        f" set OPSJOBS_RUNTIME_DIR to a short path (now {base})"
    )


class Doorbell:
    """The ringing side, shared by every connection to one store file."""

    def __init__(self, key: str, runtime_dir: str | None = None) -> None:
        self.folder = doorbell_folder(key, runtime_dir)
        self._sock: socket.socket | None = None

    def ring(self) -> None:
        """Wake every worker waiting on this store (best effort, never raises)."""
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return
        if not entries:
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        for entry in entries:
            if not entry.name.endswith(".sock"):
                continue
            try:
                self._sock.sendto(b"!", entry.path)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)  # its worker is gone
            except (BlockingIOError, OSError):
                pass  # its queue is full: it is awake already

    def waiter(self, worker_id: str) -> DoorbellWaiter:
        return DoorbellWaiter(self.folder, worker_id)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class DoorbellWaiter(Waiter):
    """The listening side: one bound socket per waiting worker."""

    def __init__(self, folder: Path, worker_id: str) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = folder / f"{worker_id[:16]}.sock"
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(str(self.path))
        except OSError:
            self._sock.close()
            raise
        self._sock.setblocking(False)

    def wait(self, timeout: float) -> bool:
        readable, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
        if not readable:
            return False
        # Drain every pending ring: one wake-up serves them all.
        with contextlib.suppress(BlockingIOError):
            while self._sock.recv(64):
                pass
        return True

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
