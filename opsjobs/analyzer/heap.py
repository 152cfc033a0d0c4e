"""The heap census: objects by type, largest dicts and lists, duplicate strings.

One pass over ``gc.get_objects()`` in chunks; the objects the gc does not track (strings,
numbers, atomic-only dicts and tuples) are reached through ``gc.get_referents`` of the
tracked ones and deduplicated with :class:`~opsjobs.analyzer.walk.Dedupe`. Each chunk is
split by type once and counted and sized a type group at a time
(:mod:`~opsjobs.analyzer.kinds`).
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from operator import lt
from types import FrameType, ModuleType
from typing import cast

from opsjobs.analyzer.kinds import Kinds, group_by_type
from opsjobs.analyzer.strings import StringCounter
from opsjobs.analyzer.walk import CHUNK, Deadline, Dedupe

__all__ = ["Census", "TypeRow", "run_census", "type_name"]

_TYPE_MODULE = type.__dict__["__module__"]
_TYPE_QUALNAME = type.__dict__["__qualname__"]
#: Exact containers whose referents are their items (and a dict's keys): sliced when large.
_SLICED = frozenset({list, tuple, dict, set, frozenset})
#: A container at least this large may hold more than ``CHUNK`` items.
_LARGE_BYTES = 8 * CHUNK
#: The only untracked objects asked for their referents: the containers CPython itself
#: untracks because they hold only atoms (an exact tuple or dict). Any other object the gc does
#: not track is never traversed by the collector, so its ``tp_traverse`` (and ``__sizeof__``)
#: need not be safe to call: a live frame's object is untracked, and its ``f_frame`` points
#: into the data stack of a thread or greenlet that may be gone (a greenlet suspended in a
#: thread that has ended is freed without unwinding its frames), and then both
#: ``gc.get_referents`` and ``sys.getsizeof`` read freed or reused memory and crash.
_UNTRACKED_EXPANDED = frozenset({tuple, dict})
#: What an untracked (live) frame is counted at: its object's fixed part and gc header, never
#: what ``f_frame`` points to (``object.__sizeof__`` is no help: a frame's ``ob_size`` is not
#: its slot count on 3.11+).
_LIVE_FRAME_BYTES = FrameType.__basicsize__ + sys.getsizeof([]) - [].__sizeof__()
#: What :func:`_account` does with a type group (:class:`_Rules`).
_COUNT, _EXPAND, _LIVE_FRAME = 0, 1, 2


class _Rules(dict[type, int]):
    """type -> what the census does with a group of that type: :data:`_COUNT` count and size
    it, :data:`_EXPAND` also ask for its referents, :data:`_LIVE_FRAME` count it as a live
    frame (never sized by ``__sizeof__`` nor traversed)."""

    def __init__(self, untracked: bool) -> None:
        super().__init__()
        self.untracked = untracked

    def __missing__(self, key: type) -> int:
        if self.untracked:
            rule = (
                _EXPAND
                if key in _UNTRACKED_EXPANDED
                else _LIVE_FRAME
                if issubclass(key, FrameType)
                else _COUNT
            )
        else:
            # A module's referents are its namespace, a tracked dict walked anyway; asking for
            # them hands out freed objects on CPython 3.12.0-3.12.5 (gh-122695: the _asyncio
            # module's free list), which hung or grew a process to 22 GB.
            rule = _COUNT if issubclass(key, ModuleType) else _EXPAND
        self[key] = rule
        return rule


#: Rules for objects the gc tracks (from ``gc.get_objects()``) and for the untracked ones.
_TRACKED_RULES = _Rules(untracked=False)
_UNTRACKED_RULES = _Rules(untracked=True)


@dataclass(frozen=True)
class TypeRow:
    """Live objects of one type."""

    type: str
    count: int
    bytes: int


@dataclass
class Census:
    """What one census pass found; ``containers`` holds live objects until dropped.

    ``totals`` holds ``[count, bytes]`` per exact type, summed a type group at a time
    (:func:`~opsjobs.analyzer.kinds.group_by_type`), never a Python step per object.
    """

    totals: dict[type, list[int]] = field(default_factory=dict)
    tracked_total: int = 0
    tracked_walked: int = 0
    untracked_found: int = 0
    total_bytes: int = 0
    containers: list[tuple[int, int, object]] = field(default_factory=list)
    #: Objects the walk may count before it stops (``overrun``): more than the process's
    #: memory can hold means it is going round something its deduplication cannot see.
    max_objects: int | None = None
    overrun: bool = False

    @property
    def types(self) -> dict[type, list[int]]:
        """``{type: [count, bytes]}`` of everything counted so far."""
        return {t: list(row) for t, row in self.totals.items() if row[0]}

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
    kinds: Kinds,
    batch: list[object],
    top_count: int,
    strings: StringCounter | None,
    rules: _Rules,
) -> tuple[list[object], list[list[object]], list[Iterator[object]]]:
    """Count ``batch`` into the census a type group at a time.

    Returns the objects to ask for their referents (``rules``: tracked objects but modules;
    untracked exact tuples and dicts; large exact containers left out), the groups of dicts
    among them (for their keys), and iterators over the items of the large containers: those
    are walked a slice at a time, so that no single C call (``gc.get_referents``, ``map``)
    runs over a million items while the GIL is held.
    """
    totals = census.totals
    expand: list[object] = []
    dicts: list[list[object]] = []
    large: list[Iterator[object]] = []
    for t, group in group_by_type(batch).items():
        rule = rules[t]
        row = totals.get(t)
        if row is None:
            row = totals[t] = [0, 0]
        row[0] += len(group)
        if rule == _LIVE_FRAME:  # never through its __sizeof__ (see _UNTRACKED_EXPANDED)
            row[1] += _LIVE_FRAME_BYTES * len(group)
            continue
        kind = kinds[t]
        if t in _SLICED or (t is str and strings is not None):
            sizes = kind.sizes(group)
            row[1] += sum(sizes)
            if t is str:
                strings.add(cast(list[str], group), sizes)  # type: ignore[union-attr]
                continue
            if t is dict or t is list:
                _top_containers(census.containers, group, sizes, top_count)
            if max(sizes) > _LARGE_BYTES:
                group = _split_large(group, sizes, large)
        else:
            row[1] += kind.total(group)
        if rule == _EXPAND and kind.gc:
            if issubclass(t, dict):
                dicts.append(group)
            expand.extend(group)
    return expand, dicts, large


def _top_containers(
    box: list[tuple[int, int, object]], group: list[object], sizes: list[int], top_count: int
) -> None:
    """Keep the ``top_count`` largest of ``group`` (exact dicts or lists) in the heap ``box``."""
    floor = box[0][0] if len(box) >= top_count else -1
    if max(sizes) <= floor:
        return
    big = list(map(lt, repeat(floor), sizes))
    for obj, size in zip(compress(group, big), compress(sizes, big), strict=True):
        if size > floor:
            item = (size, id(obj), obj)
            if len(box) < top_count:
                heapq.heappush(box, item)
            else:
                heapq.heapreplace(box, item)
            floor = box[0][0] if len(box) >= top_count else -1


def _items(obj: object) -> Iterator[object]:
    """What the gc reports as referents of an exact builtin container (a dict's keys too)."""
    if type(obj) is dict:
        return chain(obj.keys(), obj.values())
    return iter(obj)  # type: ignore[call-overload]


def _split_large(
    group: list[object], sizes: list[int], large: list[Iterator[object]]
) -> list[object]:
    """``group`` (one exact container type) without its containers of more than ``CHUNK``
    items, whose item iterators are appended to ``large``."""
    bulky = compress(group, map(lt, repeat(_LARGE_BYTES), sizes))
    found = [x for x in bulky if len(x) > CHUNK]  # type: ignore[arg-type]
    if not found:
        return group
    large.extend(map(_items, found))
    ids = set(map(id, found))
    return [x for x in group if id(x) not in ids]  # rare: only beside a large container


def _drain(
    census: Census,
    dedupe: Dedupe,
    todo: list[tuple[Iterator[object], bool]],
    kinds: Kinds,
    deadline: Deadline,
    top_count: int,
    strings: StringCounter | None,
) -> bool:
    """Count everything untracked reachable from ``todo`` (iterators of objects, and whether
    they still need deduplicating), depth first, ``CHUNK`` objects at a time; False when the
    deadline cut it short."""
    while todo:
        source, raw = todo[-1]
        try:
            pending = list(islice(source, CHUNK))
        except RuntimeError:  # a container changed size while sliced (another thread)
            pending = []
        if len(pending) < CHUNK:
            todo.pop()
        del source
        if raw and pending:
            pending = dedupe.filter(pending)
        if pending:
            census.untracked_found += len(pending)
            # of these, only untracked exact dicts and tuples are asked for their referents
            # (see _UNTRACKED_EXPANDED); the others are counted and sized, not traversed
            expand, dicts, large = _account(
                census, kinds, pending, top_count, strings, _UNTRACKED_RULES
            )
            del pending
            todo.extend((it, True) for it in large)
            if expand:
                more = dedupe.expand(expand, dicts=dicts)
                if more:
                    todo.append((iter(more), False))
                del more
            del expand, dicts, large
        else:
            del pending
        if deadline.expired():
            return False
        limit = census.max_objects
        if limit is not None and census.tracked_walked + census.untracked_found > limit:
            census.overrun = True
            return False
    return True


def run_census(
    objs: list[object],
    deadline: Deadline,
    top_count: int,
    strings: StringCounter | None = None,
    max_objects: int | None = None,
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
    max_objects
        Stop (``overrun``) after counting about this many objects (within one chunk).
    """
    census = Census(tracked_total=len(objs), max_objects=max_objects)
    dedupe = Dedupe(untracked_only=True)
    kinds = Kinds()
    n = len(objs)
    for start in range(0, n, CHUNK):
        chunk = objs[start : start + CHUNK]
        census.tracked_walked += len(chunk)
        expand, dicts, large = _account(census, kinds, chunk, top_count, strings, _TRACKED_RULES)
        del chunk
        todo = [(it, True) for it in large]
        todo.append((iter(dedupe.expand(expand, dicts=dicts)), False))
        del expand, dicts, large
        if not _drain(census, dedupe, todo, kinds, deadline, top_count, strings):
            break
        if deadline.expired():
            break
    census.total_bytes = sum(nbytes for _, nbytes in census.totals.values())
    return census
