"""The heap census: objects by type, largest dicts and lists, duplicate strings.

One pass over ``gc.get_objects()`` in chunks; the objects the gc does not track (strings,
numbers, atomic-only dicts and tuples) are reached through ``gc.get_referents`` of the
tracked ones and deduplicated with :class:`~opsjobs.analyzer.walk.Dedupe`.
"""

from __future__ import annotations

import heapq
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from operator import is_, not_
from types import FrameType, ModuleType
from typing import cast

from opsjobs.analyzer.strings import StringCounter
from opsjobs.analyzer.walk import CHUNK, Deadline, Dedupe, safe_sizes

__all__ = ["Census", "TypeRow", "run_census", "type_name"]

_TYPE_MODULE = type.__dict__["__module__"]
_TYPE_QUALNAME = type.__dict__["__qualname__"]
#: ``Counter.update`` over an iterable counts in C (``_count_elements``).
_count = Counter.update
#: Exact types counted by :func:`_account_plain`.
_PLAIN = (str, int)
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


class _UntrackedKind(dict[type, int]):
    """type -> what the census does with an untracked instance: 0 count and size it, 1 also
    ask for its referents (:data:`_UNTRACKED_EXPANDED`), 2 count it as a live frame."""

    def __missing__(self, key: type) -> int:
        value = 1 if key in _UNTRACKED_EXPANDED else 2 if issubclass(key, FrameType) else 0
        self[key] = value
        return value


_UNTRACKED_KIND = _UntrackedKind()


@dataclass(frozen=True)
class TypeRow:
    """Live objects of one type."""

    type: str
    count: int
    bytes: int


@dataclass
class Census:
    """What one census pass found; ``containers`` holds live objects until dropped.

    ``sizes`` counts objects by ``(type, size)`` pair, which C code can do without a Python
    loop per object; ``plain`` holds ``[count, bytes]`` of exact ``str`` and ``int``, summed
    per batch; :meth:`types` folds both into per-type totals.
    """

    sizes: Counter[tuple[type, int]] = field(default_factory=Counter)
    tracked_total: int = 0
    tracked_walked: int = 0
    untracked_found: int = 0
    total_bytes: int = 0
    containers: list[tuple[int, int, object]] = field(default_factory=list)
    plain: dict[type, list[int]] = field(default_factory=lambda: {t: [0, 0] for t in _PLAIN})

    @property
    def types(self) -> dict[type, list[int]]:
        """``{type: [count, bytes]}`` of everything counted so far."""
        out = {t: list(row) for t, row in self.plain.items() if row[0]}
        for (t, size), n in self.sizes.items():
            row = out.get(t)
            if row is None:
                out[t] = [n, n * size]
            else:
                row[0] += n
                row[1] += n * size
        return out

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


class _NotPlain(dict[type, bool]):
    """type -> "not one of :data:`_PLAIN`"."""

    def __missing__(self, key: type) -> bool:
        self[key] = value = key not in _PLAIN
        return value


_NOT_PLAIN = _NotPlain()


def _account_plain(
    plain: dict[type, list[int]],
    batch: list[object],
    types: list[type],
    strings: StringCounter | None,
) -> list[object]:
    """Count the exact ``str`` and ``int`` objects of ``batch``; return the other objects.

    Their sizes come from the type's own ``__sizeof__``, called without the lookup and the
    bound method ``sys.getsizeof`` pays for; they are not gc objects, so ``getsizeof`` adds
    nothing to that size. Only their count and total are kept: no (type, size) pair per object.
    """
    left = len(batch)
    for t, row in plain.items():
        group = list(compress(batch, map(is_, types, repeat(t))))
        if group:
            left -= len(group)
            row[0] += len(group)
            sizer = cast(Callable[[object], int], t.__sizeof__)
            if strings is not None and t is str:
                found = list(map(sizer, group))
                strings.add(cast(list[str], group), found)
                row[1] += sum(found)
            else:
                row[1] += sum(map(sizer, group))
    return list(compress(batch, map(_NOT_PLAIN.__getitem__, types))) if left else []


def _account(
    census: Census, batch: list[object], top_count: int, types: list[type] | None = None
) -> tuple[list[type], list[int]]:
    """Count ``batch`` (no exact ``str`` or ``int`` in it; ``types``, when given, the type of
    each) into the census; return the type and the size of each object."""
    sizes = safe_sizes(batch)
    if types is None:
        types = list(map(type, batch))
    _count(census.sizes, zip(types, sizes, strict=False))
    box = census.containers
    floor = box[0][0] if len(box) >= top_count else -1
    if max(sizes, default=-1) > floor:
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
    return types, sizes


def _items(obj: object) -> Iterator[object]:
    """What the gc reports as referents of an exact builtin container (a dict's keys too)."""
    if type(obj) is dict:
        return chain(obj.keys(), obj.values())
    return iter(obj)  # type: ignore[call-overload]


def _split_large(
    batch: list[object], types: list[type], sizes: list[int]
) -> tuple[list[object], list[type], list[Iterator[object]]]:
    """``batch`` without its large exact containers, their types, and iterators over the
    items of those containers: they are walked a slice at a time, so that no single C call
    (``gc.get_referents``, ``map``) runs over a million items while the GIL is held."""
    bulky = compress(batch, map(_LARGE_BYTES.__lt__, sizes))
    large = [x for x in bulky if type(x) in _SLICED and len(x) > CHUNK]  # type: ignore[arg-type]
    if not large:
        return batch, types, []
    ids = set(map(id, large))
    small = [x for x in batch if id(x) not in ids]  # rare: only beside a large container
    return small, list(map(type, small)), [_items(x) for x in large]


def _drain(
    census: Census,
    dedupe: Dedupe,
    todo: list[tuple[Iterator[object], bool]],
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
            pending = _account_plain(census.plain, pending, list(map(type, pending)), strings)
        if pending:
            types = list(map(type, pending))
            kinds = list(map(_UNTRACKED_KIND.__getitem__, types))
            if 2 in kinds:  # live frames: counted, never sized by __sizeof__ nor traversed
                frames = list(map(is_, kinds, repeat(2)))
                n_frames = sum(frames)
                census.sizes[FrameType, _LIVE_FRAME_BYTES] += n_frames
                keep = list(map(not_, frames))
                pending = list(compress(pending, keep))
                types = list(compress(types, keep))
                kinds = list(compress(kinds, keep))
                del frames, keep
        if pending:
            types, sizes = _account(census, pending, top_count, types)
            pending, types, large = _split_large(pending, types, sizes)
            todo.extend((it, True) for it in large)
            # only untracked exact dicts and tuples are asked for their referents (see
            # _UNTRACKED_EXPANDED); the others are counted and sized, not traversed
            if 0 in kinds:
                expand = list(map(_UNTRACKED_EXPANDED.__contains__, types))
                pending = list(compress(pending, expand))
                types = list(compress(types, expand))
                del expand
            del kinds
            more = dedupe.expand(pending, types)
            if more:
                todo.append((iter(more), False))
            del more, types, sizes, large
        del pending
        if deadline.expired():
            return False
    return True


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
        # str and int are never gc-tracked: only untracked batches go through _account_plain
        types, sizes = _account(census, chunk, top_count)
        chunk, types, large = _split_large(chunk, types, sizes)
        # A module's referents are its namespace, a tracked dict walked anyway; asking for
        # them hands out freed objects on CPython 3.12.0-3.12.5 (gh-122695: the _asyncio
        # module's free list), which hung or grew a process to 22 GB.
        plain = list(map(not_, map(issubclass, types, repeat(ModuleType))))
        if not all(plain):
            chunk, types = list(compress(chunk, plain)), list(compress(types, plain))
        todo = [(it, True) for it in large]
        todo.append((iter(dedupe.expand(chunk, types)), False))
        del chunk, types, sizes, large
        if not _drain(census, dedupe, todo, deadline, top_count, strings) or deadline.expired():
            break
    census.total_bytes = sum(n * size for (_, size), n in census.sizes.items())
    census.total_bytes += sum(nbytes for _, nbytes in census.plain.values())
    return census
