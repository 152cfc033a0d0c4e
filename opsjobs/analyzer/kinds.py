"""Per-type handling of heap objects: a batch grouped by exact type, each group sized at once.

``sys.getsizeof`` looks ``__sizeof__`` up on the type, binds it, calls it, converts the result
and adds the gc pre-header, for every object (~100 ns). The walks instead split a batch by
type once (one C pass into a dict of lists) and size each group through the type's own C
``__sizeof__`` descriptor (~15 ns an object), or not at all where every instance of the type has
the same size; a group whose type holds no references (not a gc type: ``str``, ``int``,
``float``, ``bytes`` ...) is not handed to ``gc.get_referents``. Types whose ``__sizeof__`` is
written in Python (or type objects, whose pre-header varies on 3.10) go through
:func:`~opsjobs.analyzer.walk.safe_sizes` as before.
"""

from __future__ import annotations

import sys
from collections import defaultdict, deque
from collections.abc import Callable
from itertools import repeat
from operator import add, and_, is_
from types import MethodDescriptorType, ModuleType, WrapperDescriptorType
from typing import cast

from opsjobs.analyzer.walk import safe_sizes

__all__ = ["Kind", "Kinds", "group_by_type"]

_TYPE_FLAGS = vars(type)["__flags__"]
_TYPE_MRO = vars(type)["__mro__"]
_TYPE_DICT = vars(type)["__dict__"]
_TYPE_ITEMSIZE = vars(type)["__itemsize__"]
_OBJECT_SIZEOF = vars(object)["__sizeof__"]
#: ``Py_TPFLAGS_HAVE_GC``: only instances of such types have referents for ``gc.get_referents``.
_HAVE_GC = 1 << 14
_append = list.append
_getsizeof = sys.getsizeof


class Kind:
    """How to size the instances of one type.

    ``sizer`` is the type's C ``__sizeof__`` (None: per object through ``safe_sizes``),
    ``extra`` what ``sys.getsizeof`` adds to it (the gc pre-header), ``fixed`` the size every
    instance has (``object.__sizeof__`` and no variable part; -1 otherwise), ``gc`` whether
    instances may reference other objects. ``extra`` and ``fixed`` are measured on the first
    instance met (:meth:`calibrate`), not assumed for this Python version.
    """

    __slots__ = ("_fixed_kind", "calibrated", "extra", "fixed", "gc", "sizer")

    def __init__(self, t: type) -> None:
        # Never the referents of a module object: what a module holds is its namespace, a
        # tracked dict walked anyway, and on CPython 3.12.0-3.12.5 the ``_asyncio`` module's
        # traverse hands out the freed iterators of its free list: ``gc.get_referents`` then
        # takes a reference to freed memory, and dropping it frees the object a second time.
        # The free list becomes a cycle, and the next collection (or get_referents) loops over
        # it forever, growing without bound when it builds a list (CPython gh-122695; the
        # 22 GB and the hang of issue 13).
        self.gc = bool(_TYPE_FLAGS.__get__(t) & _HAVE_GC) and not issubclass(t, ModuleType)
        self.sizer: Callable[[object], int] | None = None
        self.extra = 0
        self.fixed = -1
        self.calibrated = False
        self._fixed_kind = False
        if issubclass(t, type):
            return  # a type object's pre-header depends on the object (static or heap type)
        found = _lookup(t, "__sizeof__")
        if type(found) in (MethodDescriptorType, WrapperDescriptorType):
            self.sizer = cast(Callable[[object], int], found)
            self._fixed_kind = found is _OBJECT_SIZEOF and _TYPE_ITEMSIZE.__get__(t) == 0

    def calibrate(self, sample: object) -> None:
        """Measure ``extra`` (and ``fixed``) on one instance."""
        self.calibrated = True
        if self.sizer is None:
            return
        try:
            whole = _getsizeof(sample)
            self.extra = whole - self.sizer(sample)
        except Exception:  # a C __sizeof__ that fails: per object, as sys.getsizeof does
            self.sizer = None
            return
        if self._fixed_kind:
            self.fixed = whole

    def sizes(self, group: list[object]) -> list[int]:
        """``sys.getsizeof`` of each object of ``group`` (all of this kind's type)."""
        if not self.calibrated:
            self.calibrate(group[0])
        if self.fixed >= 0:
            return [self.fixed] * len(group)
        if self.sizer is None:
            return safe_sizes(group)
        try:
            own = list(map(self.sizer, group))
        except Exception:
            return safe_sizes(group)
        return list(map(add, own, repeat(self.extra))) if self.extra else own

    def total(self, group: list[object]) -> int:
        """Sum of :meth:`sizes`, without a list when it can."""
        if not self.calibrated:
            self.calibrate(group[0])
        if self.fixed >= 0:
            return self.fixed * len(group)
        if self.sizer is None:
            return sum(safe_sizes(group))
        try:
            return sum(map(self.sizer, group)) + self.extra * len(group)
        except Exception:
            return sum(safe_sizes(group))

    def aligned_total(self, group: list[object]) -> int:
        """Sum of :meth:`sizes`, each rounded up to 8 bytes (``pympler.asizeof``'s rule)."""
        if not self.calibrated:
            self.calibrate(group[0])
        if self.fixed >= 0:
            return ((self.fixed + 7) & -8) * len(group)
        return sum(map(and_, map(add, self.sizes(group), repeat(7)), repeat(-8)))


class Kinds(dict[type, Kind]):
    """type -> :class:`Kind`, filled on first use."""

    def __missing__(self, key: type) -> Kind:
        self[key] = kind = Kind(key)
        return kind


def _lookup(t: type, name: str) -> object:
    """``name`` as ``sys.getsizeof`` finds it: in the type's MRO (no metaclass hooks run)."""
    for klass in _TYPE_MRO.__get__(t):
        found = _TYPE_DICT.__get__(klass).get(name)
        if found is not None:
            return found
    return None


def group_by_type(batch: list[object], types: list[type] | None = None) -> dict[type, list[object]]:
    """``batch`` split by exact type, in one C pass (a batch of one type is returned as is)."""
    if not batch:
        return {}
    if types is None:
        types = list(map(type, batch))
    # identity only: list.count would call a metaclass's __eq__
    if all(map(is_, types, repeat(types[0]))):
        return {types[0]: batch}
    groups: defaultdict[type, list[object]] = defaultdict(list)
    deque(map(_append, map(groups.__getitem__, types), batch), maxlen=0)
    return groups
