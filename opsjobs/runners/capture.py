"""Output capture: each job's stdout and stderr alone, complete in a log file, capped in the row.

In-process jobs (``inline``, ``thread``) print through :class:`ThreadRouter`, which replaces
``sys.stdout``/``sys.stderr`` once per process with proxies that send a write to the sink of the
job running on the *current thread*, and to the original stream otherwise — so other threads'
prints never leak into a job's output. Child processes write straight into the log file.
"""

from __future__ import annotations

import collections
import io
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar, TextIO

__all__ = ["OutputSink", "ThreadRouter", "capped_text", "read_capped"]

_OMITTED = "\n… [{n} characters omitted; the full output is in {path}] …\n"


def capped_text(head: str, tail: str, omitted: int, path: Path | str) -> str:
    if not omitted:
        return head + tail
    return head + _OMITTED.format(n=omitted, path=path) + tail


class OutputSink:
    """Writes everything to ``path`` and keeps at most ``cap`` characters in memory: the first
    half and the last half of the output, so both the start and the final error survive.

    The log file is created on the first write: a job that prints nothing costs no file (creating
    one was half the cost of a no-op job)."""

    def __init__(self, path: Path | str, cap: int) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._head_cap = cap // 2
        self._tail_cap = cap - self._head_cap
        self._head: list[str] = []
        self._head_len = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_len = 0
        self._omitted = 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            text = str(text)
        written = len(text)
        with self._lock:
            if self._closed:
                return written
            if self._file is None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(  # noqa: SIM115 - closed in close()
                    self.path, "w", encoding="utf-8", errors="replace", buffering=1 << 16
                )
            self._file.write(text)
            room = self._head_cap - self._head_len
            if room > 0:
                part = text[:room]
                self._head.append(part)
                self._head_len += len(part)
                text = text[room:]
            if text:
                self._tail.append(text)
                self._tail_len += len(text)
                while self._tail_len - len(self._tail[0]) >= self._tail_cap:
                    dropped = self._tail.popleft()
                    self._tail_len -= len(dropped)
                    self._omitted += len(dropped)
        return written

    @property
    def empty(self) -> bool:
        """Nothing was written (no log file either)."""
        return self._file is None

    def flush(self) -> None:
        with self._lock:
            if self._file is not None and not self._closed:
                self._file.flush()

    def text(self) -> str:
        """The capped output so far."""
        with self._lock:
            tail = "".join(self._tail)
            extra = max(len(tail) - self._tail_cap, 0)
            return capped_text("".join(self._head), tail[extra:], self._omitted + extra, self.path)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()


def read_capped(path: Path, cap: int) -> str:
    """The first and last ``cap/2`` characters of a log file written by a child process."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ""
    with open(path, "rb") as fh:
        if size <= cap:
            return fh.read().decode("utf-8", errors="replace")
        head = fh.read(cap // 2).decode("utf-8", errors="replace")
        fh.seek(size - (cap - cap // 2))
        tail = fh.read().decode("utf-8", errors="replace")
    return capped_text(head, tail, size - cap, path)


class _Proxy(io.TextIOBase):
    """Stands in for ``sys.stdout`` or ``sys.stderr``."""

    def __init__(self, router: ThreadRouter, original: TextIO) -> None:
        self._router = router
        self.original = original

    def write(self, text: str) -> int:
        sink = self._router.current()
        if sink is not None:
            return sink.write(text)
        return self.original.write(text)

    def flush(self) -> None:
        sink = self._router.current()
        if sink is not None:
            sink.flush()
        else:
            self.original.flush()

    def isatty(self) -> bool:
        return self._router.current() is None and self.original.isatty()

    def close(self) -> None:
        """Closes nothing: the original stream is the program's, and a proxy collected at exit
        must not flush a stream that is already closed (IOBase's finaliser calls close)."""

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class ThreadRouter:
    """Routes ``print`` of a thread to that thread's job sink. Install once per process."""

    _lock = threading.Lock()
    _users = 0
    _instance: ThreadRouter | None = None
    #: Every proxy ever installed, by the stream it wraps, kept for the life of the process.
    #: ``print`` holds ``sys.stdout`` as a borrowed reference across its writes; if another
    #: thread replaced the stream meanwhile (:meth:`release`, a harness swapping streams, a
    #: job re-wrapping them) and that dropped the proxy's last reference, ``print`` wrote
    #: through freed memory: a segfault (tests/test_capture.py; CPython gh-130163, fixed in
    #: 2025 patch releases of 3.12 and 3.13, never in 3.11). One proxy per original stream, so
    #: swapping back and forth makes no new ones.
    _proxies: ClassVar[dict[int, tuple[TextIO, _Proxy]]] = {}
    _replaced: ClassVar[list[_Proxy]] = []  # proxies whose entry above went to a newer one

    def __init__(self) -> None:
        self._local = threading.local()

    @classmethod
    def acquire(cls) -> ThreadRouter:
        """The process's router, installing the proxies on first use."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            cls._users += 1
            return cls._instance

    @classmethod
    def release(cls) -> None:
        """Undo one :meth:`acquire`; the last one unwraps the streams if they are still ours."""
        with cls._lock:
            cls._users = max(cls._users - 1, 0)
            if cls._users == 0:
                if isinstance(sys.stdout, _Proxy):
                    sys.stdout = sys.stdout.original
                if isinstance(sys.stderr, _Proxy):
                    sys.stderr = sys.stderr.original

    def _ensure_installed(self) -> None:
        """Re-wrap ``sys.stdout``/``sys.stderr`` if someone replaced them since (a test
        harness, a logging setup), so a job's prints are still routed to its sink."""
        if type(sys.stdout) is _Proxy and type(sys.stderr) is _Proxy:
            return  # the usual case, without the lock
        with self._lock:
            if not isinstance(sys.stdout, _Proxy):
                sys.stdout = self._proxy_of(sys.stdout)
            if not isinstance(sys.stderr, _Proxy):
                sys.stderr = self._proxy_of(sys.stderr)

    def _proxy_of(self, stream: TextIO) -> _Proxy:
        """The proxy of ``stream`` (made once, never freed: see :attr:`_proxies`)."""
        kept = self._proxies.get(id(stream))
        if kept is not None and kept[0] is stream and kept[1]._router is self:
            return kept[1]
        if kept is not None:
            self._replaced.append(kept[1])
        proxy = _Proxy(self, stream)
        self._proxies[id(stream)] = (stream, proxy)  # the stream too: its id stays its own
        return proxy

    def current(self) -> OutputSink | None:
        return getattr(self._local, "sink", None)

    def route(self, sink: OutputSink | None) -> OutputSink | None:
        """Send this thread's prints to ``sink`` (None: to the original streams); returns the
        sink it replaces, to be routed back in a ``finally``."""
        if sink is not None:
            self._ensure_installed()
        previous: OutputSink | None = getattr(self._local, "sink", None)
        self._local.sink = sink
        return previous
