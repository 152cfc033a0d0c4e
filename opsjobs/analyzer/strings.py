"""Duplicate-string accounting for the deep heap census.

Strings are grouped by ``hash(s)`` (exact ``str`` only, so no user ``__hash__`` runs); a
64-bit hash collision between two different live strings is rare enough to ignore. To keep
memory bounded on heaps with millions of distinct strings the table samples adaptively:
when it holds more than ``max_distinct`` hashes, only hashes whose low bits are zero are kept
(halving the sample each time) and the totals are scaled back up. Copies counted for a value
that stays in the sample are exact.
"""

from __future__ import annotations

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

    Parameters
    ----------
    max_distinct
        Number of distinct hashes kept before the sample is halved.
    """

    def __init__(self, max_distinct: int = 400_000) -> None:
        self.max_distinct = max_distinct
        self.counts: dict[int, int] = {}
        self.info: dict[int, tuple[int, str, int]] = {}
        self.mask = 0
        self.seen = 0

    def add(self, strings: list[str], sizes: list[int]) -> None:
        """Count ``strings`` (exact ``str`` objects) with their ``getsizeof`` sizes."""
        counts, info, mask = self.counts, self.info, self.mask
        self.seen += len(strings)
        for s, size in zip(strings, sizes, strict=False):
            h = hash(s)
            if h & mask:
                continue
            n = counts.get(h, 0)
            counts[h] = n + 1
            if n == 1:
                info[h] = (size, s[:PREVIEW_CHARS], len(s))
        if len(counts) > self.max_distinct:
            self._halve()

    def _halve(self) -> None:
        self.mask = (self.mask << 1) | 1
        mask = self.mask
        self.counts = {h: n for h, n in self.counts.items() if not h & mask}
        self.info = {h: v for h, v in self.info.items() if not h & mask}

    def result(self, top_count: int) -> DupStringStats:
        """Summarise and drop the tables."""
        scale = float(self.mask + 1)
        rows: list[DupString] = []
        copies = wasted = 0
        for h, (size, preview, length) in self.info.items():
            n = self.counts[h]
            copies += n
            wasted += (n - 1) * size
            rows.append(DupString(preview, length, n, size, (n - 1) * size))
        distinct = len(self.counts)
        rows.sort(key=lambda r: r.wasted_bytes, reverse=True)
        self.counts, self.info = {}, {}
        return DupStringStats(
            strings_seen=self.seen,
            distinct_values=int(distinct * scale),
            duplicated_values=int(len(rows) * scale),
            copies=int(copies * scale),
            wasted_bytes=int(wasted * scale),
            sample_rate=1.0 / scale,
            top=rows[:top_count],
        )
