"""The heap census: objects by type, largest dicts and lists, duplicate strings.

One pass over ``gc.get_objects()`` in chunks; the objects the gc does not track (strings,
numbers, atomic-only dicts and tuples) are reached through ``gc.get_referents`` of the
tracked ones and deduplicated with :class:`~opsjobs.analyzer.walk.Dedupe`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_
from typing import cast

from opsjobs.analyzer.strings import StringCounter
from opsjobs.analyzer.walk import CHUNK, Deadline, Dedupe, safe_sizes

__all__ = ["Census", "TypeRow", "run_census", "type_name"]

_TYPE_MODULE = type.__dict__["__module__"]
_TYPE_QUALNAME = type.__dict__["__qualname__"]


@dataclass(frozen=True)
class TypeRow:
    """Live objects of one type."""

    type: str
    count: int
    bytes: int


@dataclass
class Census:
    """What one census pass found; ``containers`` holds live objects until dropped."""

    types: dict[type, list[int]] = field(default_factory=dict)
    tracked_total: int = 0
    tracked_walked: int = 0
    untracked_found: int = 0
    total_bytes: int = 0
    containers: list[tuple[int, int, object]] = field(default_factory=list)

    def type_rows(self, limit: int) -> list[TypeRow]:
        """The ``limit`` types with the most bytes, as plain rows."""
        rows = [TypeRow(type_name(t), c, b) for t, (c, b) in self.types.items()]
        rows.sort(key=lambda r: (r.bytes, r.count), reverse=True)
        return rows[:limit]


def type_name(t: type) -> str:
    """``qualname`` for builtins, ``module.qualname`` otherwise.

    The type's own descriptors are used, so a metaclass cannot run code here.
    """
    module = _TYPE_MODULE.__get__(t)
    qual = _TYPE_QUALNAME.__get__(t)
    if not isinstance(qual, str):
        qual = "?"
    if module == "builtins" or not isinstance(module, str):
        return qual
    return f"{module}.{qual}"


def _account(
    census: Census,
    batch: list[object],
    strings: StringCounter | None,
    top_count: int,
) -> None:
    sizes = safe_sizes(batch)
    types = list(map(type, batch))
    acc = census.types
    for t, s in zip(types, sizes, strict=False):
        row = acc.get(t)
        if row is None:
            acc[t] = [1, s]
        else:
            row[0] += 1
            row[1] += s
    census.total_bytes += sum(sizes)
    box = census.containers
    floor = box[0][0] if len(box) >= top_count else -1
    big = list(map(floor.__lt__, sizes))
    for obj, s in zip(compress(batch, big), compress(sizes, big), strict=True):
        t = type(obj)
        if (t is dict or t is list) and s > floor:
            item = (s, id(obj), obj)
            if len(box) < top_count:
                heapq.heappush(box, item)
            else:
                heapq.heapreplace(box, item)
            floor = box[0][0] if len(box) >= top_count else -1
    if strings is not None:
        is_str = list(map(is_, types, repeat(str)))
        found = cast(list[str], list(compress(batch, is_str)))
        strings.add(found, list(compress(sizes, is_str)))


def run_census(
    objs: list[object],
    deadline: Deadline,
    top_count: int,
    strings: StringCounter | None = None,
) -> Census:
    """Walk ``objs`` (from ``gc.get_objects()``) and everything untracked they reach.

    Parameters
    ----------
    objs
        The tracked objects to walk; the list itself is not modified.
    deadline
        Stops the walk between chunks when the budget is spent.
    top_count
        How many of the largest dicts and lists (by shallow size) to keep.
    strings
        When given, exact ``str`` objects are counted into it (deep mode).
    """
    census = Census(tracked_total=len(objs))
    dedupe = Dedupe(untracked_only=True)
    n = len(objs)
    for start in range(0, n, CHUNK):
        chunk = objs[start : start + CHUNK]
        census.tracked_walked += len(chunk)
        _account(census, chunk, strings, top_count)
        pending = dedupe.expand(chunk)
        del chunk
        while pending:
            census.untracked_found += len(pending)
            _account(census, pending, strings, top_count)
            # untracked dicts and tuples may hold further untracked objects
            pending = dedupe.expand(pending)
        if deadline.expired():
            break
    return census
