"""Garbage-collector statistics and an optional pause-time recorder."""

from __future__ import annotations

import gc
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType

__all__ = ["GcGeneration", "GcPauseRecorder", "GcPauses", "GcStats", "gc_stats"]


@dataclass(frozen=True)
class GcGeneration:
    """Counters of one generation (from ``gc.get_stats()``)."""

    generation: int
    count: int
    threshold: int
    collections: int
    collected: int
    uncollectable: int


@dataclass(frozen=True)
class GcPauses:
    """Summary of the pauses a :class:`GcPauseRecorder` saw (milliseconds)."""

    samples: int
    total_ms: float
    max_ms: float
    p50_ms: float
    p95_ms: float
    by_generation: dict[str, int]


@dataclass(frozen=True)
class GcStats:
    """State of the cyclic garbage collector."""

    enabled: bool
    generations: list[GcGeneration]
    garbage: int
    frozen: int
    pauses: GcPauses | None


class GcPauseRecorder:
    """Time every collection through ``gc.callbacks``, keeping a bounded ring of pauses.

    Nothing is installed until :meth:`install` (or ``with recorder:``); :meth:`uninstall`
    removes the callback again.

    Parameters
    ----------
    capacity
        Number of most recent pauses kept.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._ring: deque[tuple[int, float]] = deque(maxlen=capacity)
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif phase == "stop" and self._started:
            self._ring.append((info.get("generation", -1), time.perf_counter() - self._started))
            self._started = 0.0

    @property
    def installed(self) -> bool:
        """Whether the callback is in ``gc.callbacks``."""
        return any(cb == self._callback for cb in gc.callbacks)

    def install(self) -> GcPauseRecorder:
        """Add the timing callback (idempotent)."""
        if not self.installed:
            gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        """Remove the timing callback if present."""
        gc.callbacks[:] = [cb for cb in gc.callbacks if cb != self._callback]

    def __enter__(self) -> GcPauseRecorder:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    def pauses(self) -> list[tuple[int, float]]:
        """``(generation, seconds)`` of the recorded pauses, oldest first."""
        return list(self._ring)

    def summary(self) -> GcPauses:
        """Count, total, max and percentiles of the recorded pauses."""
        pauses = self.pauses()
        ms = sorted(d * 1000.0 for _, d in pauses)
        by_gen: dict[str, int] = {}
        for gen, _ in pauses:
            by_gen[str(gen)] = by_gen.get(str(gen), 0) + 1

        def pct(q: float) -> float:
            return round(ms[min(len(ms) - 1, int(q * len(ms)))], 3) if ms else 0.0

        return GcPauses(
            samples=len(ms),
            total_ms=round(sum(ms), 3),
            max_ms=round(ms[-1], 3) if ms else 0.0,
            p50_ms=pct(0.5),
            p95_ms=pct(0.95),
            by_generation=by_gen,
        )


def gc_stats(recorder: GcPauseRecorder | None = None) -> GcStats:
    """Read the collector's counters, adapting to this Python's number of generations."""
    stats = gc.get_stats()
    counts = gc.get_count()
    thresholds = gc.get_threshold()
    generations = [
        GcGeneration(
            generation=i,
            count=counts[i] if i < len(counts) else 0,
            threshold=thresholds[i] if i < len(thresholds) else 0,
            collections=int(s.get("collections", 0)),
            collected=int(s.get("collected", 0)),
            uncollectable=int(s.get("uncollectable", 0)),
        )
        for i, s in enumerate(stats)
    ]
    return GcStats(
        enabled=gc.isenabled(),
        generations=generations,
        garbage=len(gc.garbage),
        frozen=gc.get_freeze_count(),
        pauses=recorder.summary() if recorder is not None else None,
    )
