"""Duplicate-string accounting for the deep heap census.

Strings are grouped by ``hash(s)`` (exact ``str`` only, so no user ``__hash__`` runs); a
64-bit hash collision between two different live strings is rare enough to ignore. To keep
memory bounded on heaps with millions of distinct strings the table samples adaptively:
when it holds more than ``max_distinct`` hashes, only hashes whose low bits are zero are kept
(halving the sample each time) and the totals are scaled back up. Copies counted for a value
that stays in the sample are exact.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

__all__ = ["DupString", "DupStringStats", "StringCounter"]

#: Characters of a duplicated value kept in the report.
PREVIEW_CHARS = 60


@dataclass(frozen=True)
class DupString:
    """One duplicated string value."""

    preview: str
    length: int
    copies: int
    size_each: int
    wasted_bytes: int


@dataclass(frozen=True)
class DupStringStats:
    """Duplicate strings found in the heap (deep mode)."""

    strings_seen: int
    distinct_values: int
    duplicated_values: int
    copies: int
    wasted_bytes: int
    sample_rate: float
    top: list[DupString] = field(default_factory=list)


class StringCounter:
    """Accumulate string copies by value while the census runs.

    The table is keyed by the strings themselves (their hash is cached in the object, and an
    equal string finds the existing key), so counting allocates no Python object per string:
    an earlier version keyed by ``hash(s)`` created one int object per distinct value and left
    several MiB of fragmented allocator arenas behind in the host.

    Parameters
    ----------
    max_distinct
        Number of distinct values kept before the sample is halved.
    """

    def __init__(self, max_distinct: int = 400_000) -> None:
        self.max_distinct = max_distinct
        self.counts: dict[str, int] = {}
        self.mask = 0
        self.seen = 0

    def add(self, strings: list[str], sizes: list[int]) -> None:
        """Count ``strings`` (exact ``str`` objects); ``sizes`` is accepted for compatibility."""
        counts, mask = self.counts, self.mask
        self.seen += len(strings)
        get = counts.get
        if mask:
            for s in strings:
                if not hash(s) & mask:
                    counts[s] = get(s, 0) + 1
        else:
            for s in strings:
                counts[s] = get(s, 0) + 1
        if len(counts) > self.max_distinct:
            self._halve()

    def _halve(self) -> None:
        self.mask = (self.mask << 1) | 1
        mask = self.mask
        self.counts = {s: n for s, n in self.counts.items() if not hash(s) & mask}

    def result(self, top_count: int) -> DupStringStats:
        """Summarise and drop the table (no reference to a heap string survives)."""
        scale = float(self.mask + 1)
        copies = wasted = duplicated = 0
        best: list[tuple[int, str, int]] = []  # (wasted, value, copies) of the top values
        for value, n in self.counts.items():
            if n < 2:
                continue
            size = sys.getsizeof(value)
            duplicated += 1
            copies += n
            lost = (n - 1) * size
            wasted += lost
            if len(best) < top_count or lost > best[-1][0]:
                best.append((lost, value, n))
                best.sort(key=lambda row: row[0], reverse=True)
                del best[top_count:]
        distinct = len(self.counts)
        self.counts = {}
        rows = [
            DupString(
                preview=_copy(value[:PREVIEW_CHARS]),
                length=len(value),
                copies=n,
                size_each=sys.getsizeof(value),
                wasted_bytes=lost,
            )
            for lost, value, n in best
        ]
        best.clear()
        return DupStringStats(
            strings_seen=self.seen,
            distinct_values=int(distinct * scale),
            duplicated_values=int(duplicated * scale),
            copies=int(copies * scale),
            wasted_bytes=int(wasted * scale),
            sample_rate=1.0 / scale,
            top=rows,
        )


def _copy(text: str) -> str:
    """A new string equal to ``text`` (a short slice is the heap's own object otherwise)."""
    return (text + "\x00")[:-1]
