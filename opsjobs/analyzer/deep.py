"""Deep sizes by a bounded referents walk.

The walk follows :func:`gc.get_referents` from a root, counts ``sys.getsizeof`` of every
object reached once, and stops at shared program structure (modules and their namespaces,
classes, functions, code, frames), so the size of a global is the data it holds, much like
``pympler.asizeof`` but without touching ``__dict__`` (which would materialise instance dicts
on 3.11+). A large builtin container met anywhere in the walk is estimated from a sample of
its items instead of being walked whole (the result is then flagged ``estimated``).
"""

from __future__ import annotations

import gc
import sys
import types
from itertools import compress, filterfalse, islice, repeat
from operator import add, and_, not_
from typing import NamedTuple

from opsjobs.analyzer.kinds import Kinds, group_by_type
from opsjobs.analyzer.walk import CHUNK, Deadline, Dedupe, safe_sizes

__all__ = ["SAMPLE_ABOVE", "STOP_TYPES", "DeepSize", "StopCache", "aligned_total", "deep_size"]

#: Referents of these kinds are program structure, not data held by a global.
STOP_TYPES: tuple[type, ...] = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
    types.GeneratorType,
    types.CoroutineType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
)
#: Exact containers whose deep size is estimated from a sample when they are large.
SAMPLED_TYPES: frozenset[type] = frozenset({dict, list, tuple, set, frozenset})
#: Containers with more items than this are estimated from a sample.
SAMPLE_ABOVE = 20_000
#: Items (keys and values for a dict) walked for an estimate.
SAMPLE_ITEMS = 2_000
#: Exact types that reference nothing worth walking.
LEAVES: frozenset[type] = frozenset({str, int, float, bool, bytes, complex, type(None)})
_is_leaf = LEAVES.__contains__
#: A container this many bytes large may hold more than :data:`SAMPLE_ABOVE` items.
_SAMPLE_BYTES = 8 * SAMPLE_ABOVE
#: A walk step with at most this many new objects is sized object by object, not grouped.
SMALL_BATCH = 8


def aligned_total(sizes: list[int]) -> int:
    """Sum of ``sizes``, each rounded up to 8 bytes as ``pympler.asizeof`` does (the
    allocator hands out at least 8-byte-aligned blocks; a 28-byte int takes 32)."""
    return sum(map(and_, map(add, sizes, repeat(7)), repeat(-8)))


#: ``type.__flags__`` bit of classes whose instances keep their attributes without a dict
#: object until ``__dict__`` is read (3.11+: ``Py_TPFLAGS_MANAGED_DICT``).
_MANAGED_DICT = 1 << 4 if sys.version_info >= (3, 11) else 0
_TYPE_FLAGS = vars(type)["__flags__"]


#: ``sys.getsizeof`` of an instance dict created from ``n`` attributes kept in the object is
#: ``_DICT_BASE + 8 * (n + _DICT_SLACK)`` on 3.11-3.13 once a class has many instances (the
#: shared keys then hold three free slots); measured, and what ``pympler.asizeof`` counts.
_DICT_BASE = 48
_DICT_SLACK = 3


class AttrDicts(dict[type, int]):
    """type -> bytes of the dict its instances' attributes would take, 0 for most types.

    On 3.11+ an instance keeps its attributes in the object until its ``__dict__`` is read;
    ``pympler.asizeof`` reads it (creating the dict) and counts it. The analysis never reads
    ``__dict__``, so it adds what that dict would take (:data:`_DICT_BASE` ...) for an instance
    with as many attributes as the first instance of the type met holds (an estimate: the
    real figure depends on the class's history). An instance whose dict was already created
    has that dict counted too (a small overcount).
    """

    def _measure(self, t: type, obj: object) -> int:
        if not _TYPE_FLAGS.__get__(t) & _MANAGED_DICT:
            return 0
        n = len(gc.get_referents(obj)) - 1  # its values and its type
        return _DICT_BASE + 8 * (max(n, 0) + _DICT_SLACK)

    def of_type(self, t: type, sample: object) -> int:
        """Bytes of the would-be dict of an instance of ``t`` (``sample`` is one)."""
        found = self.get(t)
        if found is None:
            found = self[t] = self._measure(t, sample)
        return found

    def total(self, objs: list[object], types_: list[type] | None = None) -> int:
        """Bytes of the would-be dicts of ``objs`` (``types_``: their types, if known)."""
        if types_ is None:
            types_ = list(map(type, objs))
        try:  # every type met before: the common case, one C pass
            return sum(map(self.__getitem__, types_))
        except KeyError:
            pass
        for t in set(types_).difference(self):
            self[t] = self._measure(t, objs[types_.index(t)])
        return sum(map(self.__getitem__, types_))


class DeepDedupe(Dedupe):
    """The dedupe of one deep-size walk, with the walk's settings."""

    def __init__(
        self,
        exclude: frozenset[int] | set[int],
        sample_above: int | None,
        attr_dicts: AttrDicts,
        kinds: Kinds,
    ) -> None:
        super().__init__(untracked_only=False, exclude=exclude)
        self.sample_above = sample_above
        self.attr_dicts = attr_dicts
        self.kinds = kinds


class StopCache(dict[type, bool]):
    """type -> "is program structure, do not enter" (a cache of ``issubclass``)."""

    def __missing__(self, key: type) -> bool:
        stop = issubclass(key, STOP_TYPES)
        self[key] = stop
        return stop


class DeepSize(NamedTuple):
    """Result of one bounded deep-size walk; ``estimated`` when scaled up from a sample.

    A named tuple, not a frozen dataclass: one is made per global and per walk (thousands
    an analysis), and a frozen dataclass pays an ``object.__setattr__`` per field.
    """

    bytes: int
    objects: int
    truncated: bool
    estimated: bool = False


#: A batch of a walk: objects, and their dicts in lists (None: not known yet).
_Batch = tuple[list[object], list[list[object]] | None]


def _walk(
    stack: list[list[object]],
    dedupe: DeepDedupe,
    stop: dict[type, bool],
    deadline: Deadline,
    budget: int,
    shared_out: list[object] | None = None,
) -> DeepSize:
    """Sizes of everything reachable from ``stack`` not seen before (``truncated``: cut).

    Each batch is split by type once (:func:`~opsjobs.analyzer.kinds.group_by_type`): stop
    types dropped, sizes and would-be instance dicts summed a type group at a time, groups of
    types that reference nothing (atoms) not walked further, dict groups handed on for their
    keys. With ``shared_out``, objects that something else references too are not entered but
    collected there (a sample's private part is scaled up, its shared part is not).
    """
    total = count = 0
    estimated = False
    todo: list[_Batch] = [(chunk, None) for chunk in stack]
    del stack
    kinds = dedupe.kinds
    of_type = dedupe.attr_dicts.of_type
    above = dedupe.sample_above
    while todo:
        chunk, dicts = todo.pop()
        if len(chunk) > CHUNK:
            todo.append((chunk[CHUNK:], None))
            chunk, dicts = chunk[:CHUNK], None
        fresh, shared = dedupe.expand_split(chunk, dicts=dicts)
        del chunk, dicts
        if shared_out is None:
            fresh.extend(shared)
        else:
            shared_out.extend(compress(shared, map(not_, map(stop.__getitem__, map(type, shared)))))
        del shared
        big: list[object] = []  # large containers met: sized, their contents sampled below
        if len(fresh) <= SMALL_BATCH:
            # a few objects (a chain's step): per object, cheaper than grouping them
            small = [x for x in fresh if not stop[type(x)]]
            del fresh
            if small:
                sizes = safe_sizes(small)
                total += aligned_total(sizes) + dedupe.attr_dicts.total(small)
                count += len(small)
                if above is not None and max(sizes) > _SAMPLE_BYTES:
                    big = _large(small, sizes, above)
                    if big:
                        ids = set(map(id, big))
                        small = [x for x in small if id(x) not in ids]
                del sizes
                small = [x for x in small if type(x) not in LEAVES]
                if small:
                    todo.append((small, None))
        else:
            keep: list[object] = []  # what may reference further objects (gc types)
            keep_dicts: list[list[object]] = []
            for t, group in group_by_type(fresh).items():
                if stop[t]:
                    continue
                kind = kinds[t]
                count += len(group)
                total += kind.aligned_total(group) + of_type(t, group[0]) * len(group)
                if above is not None and t in SAMPLED_TYPES and max(map(len, group)) > above:  # type: ignore[arg-type]
                    found = [x for x in group if len(x) > above]  # type: ignore[arg-type]
                    big += found
                    ids = set(map(id, found))
                    group = [x for x in group if id(x) not in ids]  # rare: only beside a big one
                if kind.gc:
                    keep += group
                    if issubclass(t, dict):
                        keep_dicts.append(group)
            del fresh
            if keep:
                todo.append((keep, keep_dicts))
        for obj in big:
            inner = _contents(obj, deadline, budget - count, stop, dedupe)
            total += inner.bytes
            count += inner.objects
            estimated = estimated or inner.estimated
            if inner.truncated:
                return DeepSize(total, count, True, estimated)
        del big
        if count >= budget or (count > CHUNK and deadline.expired()):
            return DeepSize(total, count, bool(todo), estimated)
    return DeepSize(total, count, False, estimated)


def _large(keep: list[object], sizes: list[int], above: int) -> list[object]:
    """The exact builtin containers of ``keep`` with more than ``above`` items."""
    bulky = compress(keep, map(_SAMPLE_BYTES.__lt__, sizes))
    return [x for x in bulky if type(x) in SAMPLED_TYPES and len(x) > above]  # type: ignore[arg-type]


def _contents(
    obj: object, deadline: Deadline, budget: int, stop: dict[type, bool], dedupe: DeepDedupe
) -> DeepSize:
    """What ``obj`` holds (not its own size), estimated from a sample when it is large."""
    if dedupe.sample_above is not None and type(obj) in SAMPLED_TYPES:
        n = len(obj)  # type: ignore[arg-type]
        if n > dedupe.sample_above:
            estimate = _sampled_size(obj, n, deadline, budget, stop, dedupe)
            if estimate is not None:
                return estimate
    return _walk([[obj]], dedupe, stop, deadline, budget)


def _root_refcount() -> int:
    # What sys.getrefcount reports, on the path used by _split_roots, for an item that only
    # its container references: measured, not assumed for this Python version.
    probe: object = [0]
    box = [probe]
    del probe
    return _split_counts(box[::1])[0]


def _split_counts(sample: list[object]) -> list[int]:
    return list(map(sys.getrefcount, sample))


def _prime_at_least(k: int) -> int:
    while any(k % d == 0 for d in range(2, int(k**0.5) + 1)):
        k += 1
    return k


def _sample(root: object, n: int) -> tuple[list[object], int] | None:
    """Every ``step``-th item (keys and values of a dict) and how many items it stands for.

    The step is a prime, so that data with a period (every third item a dict) is not
    sampled at one phase only.
    """
    step = _prime_at_least(max(2, n // SAMPLE_ITEMS))
    t = type(root)
    try:
        if t is dict:
            keys = list(islice(root.keys(), 0, None, step))  # type: ignore[attr-defined]
            values = list(islice(root.values(), 0, None, step))  # type: ignore[attr-defined]
            return keys + values, len(keys)
        items = list(islice(iter(root), 0, None, step))  # type: ignore[call-overload]
    except RuntimeError:  # changed size during iteration (another thread)
        return None
    return items, len(items)


def _sampled_size(
    root: object,
    n: int,
    deadline: Deadline,
    budget: int,
    stop: dict[type, bool],
    dedupe: DeepDedupe,
) -> DeepSize | None:
    """What a large container holds (not its own size), estimated from an evenly spaced
    sample of its items.

    Objects that only the sampled items reference are scaled by ``n / sampled``; objects
    that something else references too (shared values, interned strings, singletons) and
    whatever they hold are counted once. An object referenced twice from inside one item
    (``{"a": x, "b": [x]}``) looks shared too and is not scaled: such data is under-counted.
    """
    found = _sample(root, n)
    if found is None or not found[1]:
        return None
    sample, sampled = found
    base = _root_refcount()
    counts = _split_counts(sample)
    private = [x for x, c in zip(sample, counts, strict=True) if c <= base]
    shared_roots = list(
        {id(x): x for x, c in zip(sample, counts, strict=True) if c > base}.values()
    )
    del sample, counts
    private = [x for x in private if not stop[type(x)]]
    shared_roots = list(filterfalse(dedupe.is_seen, shared_roots))
    dedupe.mark([root])
    dedupe.mark(shared_roots)
    shared = [x for x in shared_roots if not stop[type(x)]]
    del shared_roots
    own = aligned_total(safe_sizes(private)) + dedupe.attr_dicts.total(private)
    inner = _walk([list(private)], dedupe, stop, deadline, budget, shared)
    scale = n / sampled
    shared_bytes = aligned_total(safe_sizes(shared)) + dedupe.attr_dicts.total(shared)
    rest = _walk([shared], dedupe, stop, deadline, budget)
    return DeepSize(
        round((own + inner.bytes) * scale) + shared_bytes + rest.bytes,
        round((len(private) + inner.objects) * scale) + len(shared) + rest.objects,
        inner.truncated or rest.truncated,
        estimated=True,
    )


def deep_size(
    root: object,
    deadline: Deadline,
    max_objects: int = 2_000_000,
    stop: dict[type, bool] | None = None,
    *,
    exclude: frozenset[int] | set[int] = frozenset(),
    sample_above: int | None = SAMPLE_ABOVE,
    attr_dicts: AttrDicts | None = None,
    kinds: Kinds | None = None,
) -> DeepSize:
    """Size of ``root`` and everything it reaches, stopping at program structure.

    A list, tuple, dict, set or frozenset with more than ``sample_above`` items, the root or
    any container inside it, is estimated from a sample of :data:`SAMPLE_ITEMS` of its items
    (``estimated`` is then True).

    Parameters
    ----------
    root
        The object to measure.
    deadline
        Checked between chunks; the walk ends early (``truncated``) when spent.
    max_objects
        Upper bound on objects visited.
    stop
        Cache of type -> "do not enter"; shared between calls for speed.
    exclude
        ``id``s of objects never entered nor counted (module namespaces: a function's or a
        class's view of its module is not data the root holds).
    sample_above
        Containers with more items are estimated; None walks everything.
    attr_dicts
        Cache of the would-be instance dict sizes (see :class:`AttrDicts`), shared between
        calls for speed.
    kinds
        Cache of how each type is sized (see :class:`~opsjobs.analyzer.kinds.Kinds`), shared
        between calls for speed.
    """
    stop = StopCache() if stop is None else stop
    own = aligned_total(safe_sizes([root]))
    if type(root) in LEAVES or isinstance(root, types.ModuleType):  # gh-122695: see heap
        return DeepSize(own, 1, False)
    attr_dicts = AttrDicts() if attr_dicts is None else attr_dicts
    own += attr_dicts.total([root])
    dedupe = DeepDedupe(exclude, sample_above, attr_dicts, Kinds() if kinds is None else kinds)
    dedupe.mark([root])
    inside = _contents(root, deadline, max_objects - 1, stop, dedupe)
    return DeepSize(own + inside.bytes, 1 + inside.objects, inside.truncated, inside.estimated)
