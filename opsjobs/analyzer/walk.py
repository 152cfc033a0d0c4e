"""Low-level helpers for walking the live heap in bounded, GIL-friendly chunks.

The walk never calls ``gc.collect()``, never calls ``repr()`` and never touches
``obj.__dict__``: it only uses :func:`gc.get_referents` (which reads an object's
``tp_traverse`` and does not materialise instance dicts), :func:`type`, :func:`id`,
:func:`sys.getsizeof` and :func:`sys.getrefcount`, mostly through ``map`` so the per-object
work runs in C.

Deduplication uses reference counts to stay small: an object that exactly one reference
points at can be reached only once by any traversal, so only objects with more than one
reference are remembered (by ``id``) in a set of ints. Cycles always contain an object with
at least two references (the cycle edge and the edge that reaches it), so traversals end.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from itertools import chain, compress, filterfalse, repeat
from operator import is_, lt, not_
from typing import cast

__all__ = ["CHUNK", "SWITCH_INTERVAL", "Deadline", "Dedupe", "prompt_switches", "safe_sizes"]

#: Objects handled between two voluntary GIL releases.
CHUNK = 2000

_get_referents = gc.get_referents
_is_tracked = gc.is_tracked
_getrefcount = sys.getrefcount
_getsizeof = sys.getsizeof


#: The interpreter's forced GIL switch interval while an analysis runs (seconds). The analysis
#: is mostly C passes over the heap; at CPython's default of 5 ms another thread that wants the
#: GIL waits the interval plus the pass in progress (~12 ms at p99 on a heap of flat dicts).
SWITCH_INTERVAL = 0.001


@contextlib.contextmanager
def prompt_switches() -> Iterator[None]:
    """Lower the GIL switch interval to :data:`SWITCH_INTERVAL` for the block (when it is
    longer), then put the process's own setting back unless someone changed it meanwhile."""
    previous = sys.getswitchinterval()
    if previous <= SWITCH_INTERVAL:
        yield
        return
    sys.setswitchinterval(SWITCH_INTERVAL)
    ours = sys.getswitchinterval()
    try:
        yield
    finally:
        if sys.getswitchinterval() == ours:
            sys.setswitchinterval(previous)


class Deadline:
    """A monotonic time budget that also yields the GIL between chunks.

    Parameters
    ----------
    budget_s
        Seconds allowed from construction on.
    """

    #: Seconds between two voluntary GIL releases (the interpreter also forces a switch
    #: every ``sys.getswitchinterval()``; this only makes the hand-over prompt).
    YIELD_EVERY = 0.002

    def __init__(self, budget_s: float) -> None:
        self.start = time.perf_counter()
        self.budget_s = budget_s
        self.end = self.start + budget_s
        self.hit = False
        self._yielded = self.start

    def expired(self) -> bool:
        """Release the GIL briefly (at most every 2 ms) and tell whether the budget is spent."""
        now = time.perf_counter()
        if now - self._yielded >= self.YIELD_EVERY:
            # sleep(0) lets other threads run between chunks, but costs ~70 us (timer
            # slack) even alone; threads that threading does not list still get the GIL
            # at the interpreter's forced switch
            if threading.active_count() > 1:
                time.sleep(0)
            now = self._yielded = time.perf_counter()
        if now >= self.end:
            self.hit = True
        return self.hit

    def elapsed(self) -> float:
        """Seconds since construction."""
        return time.perf_counter() - self.start


class _DictTypes(dict[type, bool]):
    def __missing__(self, key: type) -> bool:
        self[key] = value = issubclass(key, dict)
        return value


#: type -> "is a dict" (shared by every walk: one deep-size walk per global)
_IS_DICT = _DictTypes()

#: Calibrated reference counts by ``untracked_only`` (constant for this interpreter), for
#: referents found by the gc and for items handed in (:meth:`Dedupe.filter`).
_BASES: dict[bool, int] = {}
_BASES_ITEMS: dict[bool, int] = {}


class Dedupe:
    """Expand chunks of objects into their not-yet-seen referents.

    Parameters
    ----------
    untracked_only
        Keep only referents the gc does not track (the census gets tracked objects from
        ``gc.get_objects()``); otherwise keep every referent (deep-size walks).
    exclude
        ``id``s of objects never returned (treated as seen; the set is shared, not copied).
    """

    def __init__(
        self,
        untracked_only: bool,
        exclude: frozenset[int] | set[int] = frozenset(),
    ) -> None:
        self.untracked_only = untracked_only
        self.exclude = exclude
        self.seen: set[int] = set()
        self._is_dict = _IS_DICT
        known = _BASES.get(untracked_only)
        if known is None:
            self.base = self.base_items = 0
            known = _BASES[untracked_only] = self._calibrate(False)
            _BASES_ITEMS[untracked_only] = self._calibrate(True)
        self.base = known
        self.base_items = _BASES_ITEMS[untracked_only]

    def _refcounts(
        self,
        chunk: list[object],
        types: list[type] | None = None,
        items: list[object] | None = None,
        dicts: list[list[object]] | None = None,
    ) -> tuple[list[object], list[int]]:
        # Calibration goes through this very function, so the number of references our
        # own temporaries add is measured, not guessed for this Python version.
        if items is not None:  # referents handed in (a slice of a large container's items)
            refs = items
        else:
            refs = _get_referents(*chunk)
            if dicts is None:  # else the caller's groups of the dicts of ``chunk``
                if types is None:
                    types = list(map(type, chunk))
                dicts = [list(compress(chunk, map(self._is_dict.__getitem__, types)))]
            found = cast(list[dict[object, object]], list(chain.from_iterable(dicts)))
            if found:
                # A dict whose keys are all exact str does not report its keys to the gc
                # (str cannot form cycles), so they are added here; keys of other dicts are
                # reported already and any duplicate is caught by the shared-object path.
                keys: list[object] = list(chain.from_iterable(map(dict.keys, found)))
                refs.extend(compress(keys, map(is_, map(type, keys), repeat(str))))
                del keys
            del dicts, found
        if self.untracked_only:
            refs = list(filterfalse(_is_tracked, refs))
        # above the base where something besides ``chunk`` (or the caller's ``items``)
        # references the object too
        return refs, list(map(_getrefcount, refs))

    def _calibrate(self, items: bool) -> int:
        probe: object = "".join(["opsjobs-", "probe"]) if self.untracked_only else [0]
        holder = [probe]
        del probe
        # the smallest base at which the probe, referenced only by ``holder``, is not shared
        for base in range(1, 64):
            self.base = self.base_items = base
            # index, not unpack: a name left holding the last ``refs`` would add a reference
            if items:
                pending = holder[:]  # as a caller's slice of a container's items
                if self._refcounts([], None, pending)[1][0] <= base:
                    return base
                del pending
            elif self._refcounts([holder])[1][0] <= base:
                return base
        raise RuntimeError("cannot calibrate reference counts")

    def expand(
        self,
        chunk: list[object],
        types: list[type] | None = None,
        dicts: list[list[object]] | None = None,
    ) -> list[object]:
        """Return the referents of ``chunk`` not returned before, each once.

        ``types``, when given, is ``type`` of each object of ``chunk``; ``dicts``, when given,
        holds every dict of ``chunk`` (in lists); either saves a pass.
        """
        fresh, shared = self.expand_split(chunk, types, dicts=dicts)
        fresh.extend(shared)
        return fresh

    def filter(self, items: list[object]) -> list[object]:
        """Like :meth:`expand`, for ``items`` already taken from a container (a slice of a
        large one's items, or its keys and values): those not returned before, each once."""
        fresh, shared = self.expand_split([], None, items)
        fresh.extend(shared)
        return fresh

    def expand_split(
        self,
        chunk: list[object],
        types: list[type] | None = None,
        items: list[object] | None = None,
        dicts: list[list[object]] | None = None,
    ) -> tuple[list[object], list[object]]:
        """Like :meth:`expand`, as (objects only ``chunk`` references, newly seen objects
        that have other references too)."""
        refs, counts = self._refcounts(chunk, types, items, dicts)
        base = self.base if items is None else self.base_items
        if not refs or max(counts) <= base:
            return refs, []
        # operator.lt with the base repeated: a bound ``int.__lt__`` costs ~5x more per call
        is_shared = list(map(lt, repeat(base), counts))
        del counts
        fresh = list(compress(refs, map(not_, is_shared)))
        shared = list(compress(refs, is_shared))
        del refs, is_shared
        by_id = dict(zip(map(id, shared), shared, strict=False))
        new_ids = by_id.keys() - self.seen
        if self.exclude:
            new_ids -= self.exclude
        if not new_ids:  # the common case: shared constants met before
            return fresh, []
        self.seen |= new_ids
        return fresh, list(map(by_id.__getitem__, new_ids))

    def is_seen(self, obj: object) -> bool:
        """Whether ``obj`` was returned or marked before (or is excluded)."""
        return id(obj) in self.seen or id(obj) in self.exclude

    def mark(self, objs: Iterable[object]) -> None:
        """Remember ``objs`` as seen (for roots of a walk)."""
        self.seen.update(map(id, objs))


def _one_size(obj: object) -> int:
    try:
        return _getsizeof(obj, 0)
    except Exception:  # a user-defined __sizeof__ may fail; count nothing for it
        return 0


def safe_sizes(objs: list[object]) -> list[int]:
    """``sys.getsizeof`` of each object, 0 where a custom ``__sizeof__`` fails."""
    try:
        return list(map(_getsizeof, objs))
    except Exception:
        return [_one_size(o) for o in objs]
