"""The largest module globals: data globals, functions (their own parts) and class attributes.

Every global is measured with :func:`~opsjobs.analyzer.deep.deep_size`, which never enters a
module namespace: a function's ``__globals__`` (or any object's view of a module) is the
module's, not the data of the global that reaches it. Sizes follow ``pympler.asizeof`` of the
same object: an object reached twice inside one global is counted once, and an object bound
under several names is measured once, under the first module (in name order) that holds it.
"""

from __future__ import annotations

import heapq
import sys
import types
from dataclasses import dataclass

from opsjobs.analyzer.deep import AttrDicts, DeepSize, StopCache, aligned_total, deep_size
from opsjobs.analyzer.heap import type_name
from opsjobs.analyzer.kinds import Kinds
from opsjobs.analyzer.walk import Deadline, safe_sizes

__all__ = ["GlobalRow", "largest_globals", "module_namespaces"]

#: Exact builtin containers whose ``len()`` cannot run user code.
SIZED: frozenset[type] = frozenset({dict, list, tuple, set, frozenset, str, bytes, bytearray})
_MODULE_DICT = vars(types.ModuleType)["__dict__"]
_TYPE_DICT = vars(type)["__dict__"]
_TYPE_MODULE = vars(type)["__module__"]
_TYPE_NAME = vars(type)["__name__"]
_FUNC = types.FunctionType
_FUNC_PARTS = tuple(vars(_FUNC)[name] for name in ("__defaults__", "__kwdefaults__", "__closure__"))
_CODE = vars(_FUNC)["__code__"]


@dataclass(frozen=True)
class GlobalRow:
    """One module global and the data it holds (``estimated``: from a sample of its items).

    ``name`` is ``Class.attr`` for a class attribute; a function's size is its own: the
    function object, its code object, its defaults and its closure cells with what they hold.
    """

    module: str
    name: str
    type: str
    length: int | None
    deep_bytes: int
    objects: int
    truncated: bool
    estimated: bool = False


def module_namespaces() -> dict[str, dict[str, object]]:
    """``{module name: module dict}`` for every module in ``sys.modules``."""
    out: dict[str, dict[str, object]] = {}
    for name, mod in list(sys.modules.items()):
        if isinstance(mod, types.ModuleType):
            ns = _MODULE_DICT.__get__(mod)
            if type(ns) is dict:
                out[name] = ns
    return out


def _length(value: object) -> int | None:
    return len(value) if type(value) in SIZED else None  # type: ignore[arg-type]


class _Sizer:
    """Deep sizes of globals with one stop cache, the module namespaces excluded."""

    def __init__(self, exclude: frozenset[int], deadline: Deadline, max_objects: int) -> None:
        self.stop = StopCache()
        self.attr_dicts = AttrDicts()
        self.kinds = Kinds()
        self.exclude = exclude
        self.deadline = deadline
        self.max_objects = max_objects

    def data(self, value: object) -> DeepSize:
        return deep_size(
            value,
            self.deadline,
            self.max_objects,
            self.stop,
            exclude=self.exclude,
            attr_dicts=self.attr_dicts,
            kinds=self.kinds,
        )

    def bound(self, values: list[object]) -> int | None:
        """Bytes of all of ``values`` together (functions by their own parts, as
        :meth:`function`): at least the size of each; None when that is not known exactly
        (estimated from a sample, or more than :data:`BOUND_OBJECTS` objects)."""
        heads: list[object] = []
        held: list[object] = []
        for value in values:
            if type(value) is _FUNC:
                heads.append(value)
                heads.append(_CODE.__get__(value))
                held.extend(p for p in (d.__get__(value) for d in _FUNC_PARTS) if p is not None)
            else:
                held.append(value)
        together = deep_size(
            tuple(held),
            self.deadline,
            BOUND_OBJECTS,
            self.stop,
            exclude=self.exclude,
            attr_dicts=self.attr_dicts,
            kinds=self.kinds,
        )
        if together.truncated or together.estimated:
            return None
        return together.bytes + aligned_total(safe_sizes(heads))

    def function(self, func: types.FunctionType) -> DeepSize:
        """The function object, its code object, defaults and closure cells (and contents)."""
        code = _CODE.__get__(func)
        own = aligned_total(safe_sizes([func, code]))
        parts = tuple(p for p in (d.__get__(func) for d in _FUNC_PARTS) if p is not None)
        if not parts:
            return DeepSize(own, 2, False)
        held = self.data(parts)
        return DeepSize(
            own + held.bytes - aligned_total(safe_sizes([parts])),
            1 + held.objects,
            held.truncated,
            held.estimated,
        )


def _candidates(mod_name: str, ns: dict[str, object], stop: StopCache) -> list[tuple[str, object]]:
    """(name, value) of the globals of one module worth measuring: data, functions, and the
    data attributes of classes defined there."""
    out: list[tuple[str, object]] = []
    for name, value in list(ns.items()):
        if type(name) is not str or name.startswith("__"):
            continue
        t = type(value)
        if t is _FUNC:
            # wherever it was defined (a closure made by a factory elsewhere is this module's
            # data); one bound under several names is measured once (see largest_globals)
            out.append((name, value))
        elif issubclass(t, type):  # not isinstance: a 3.10 GenericAlias passes that
            if _TYPE_MODULE.__get__(value) != mod_name or _TYPE_NAME.__get__(value) != name:
                continue  # imported, or an alias: measured where it is defined
            for attr, item in list(_TYPE_DICT.__get__(value).items()):
                if type(attr) is str and not attr.startswith("__") and not stop[type(item)]:
                    out.append((f"{name}.{attr}", item))
        elif not stop[t]:
            out.append((name, value))
    return out


#: A module's globals are first bounded together (see :func:`largest_globals`) when it has
#: at least this many; the joint walk gives up after :data:`BOUND_OBJECTS` objects.
BOUND_MIN = 4
BOUND_OBJECTS = 20_000


def largest_globals(
    namespaces: dict[str, dict[str, object]],
    deadline: Deadline,
    top_count: int,
    max_objects: int = 2_000_000,
) -> tuple[list[GlobalRow], bool]:
    """Deep-size every data global, function and class attribute of every module; return
    the largest and "complete?".

    Modules, imported classes and dunder names are skipped; an object bound
    under several names is measured once, under the first module (in name order) that holds
    it.

    Most modules hold thousands of small globals that never make the top: each module's
    globals are first walked together (a bound: no global of the module is larger than all
    of them together), modules are then measured largest bound first, and a module whose
    bound is below the smallest of the top ``top_count`` so far is skipped. A bound that is
    an estimate, or was cut at :data:`BOUND_OBJECTS`, skips nothing.
    """
    sizer = _Sizer(frozenset(map(id, namespaces.values())), deadline, max_objects)
    done: set[int] = set()
    # per module, in name order: its globals as (order, name, value); order breaks ties
    modules: list[tuple[str, list[tuple[int, str, object]]]] = []
    order = 0
    for mod_name in sorted(namespaces):
        found = []
        for name, value in _candidates(mod_name, namespaces[mod_name], sizer.stop):
            if id(value) not in done:
                done.add(id(value))
                order += 1
                found.append((order, name, value))
        if found:
            modules.append((mod_name, found))
    del done
    bounds = []
    for i, (_, found) in enumerate(modules):
        bound = sizer.bound([value for _, _, value in found]) if len(found) >= BOUND_MIN else None
        bounds.append((-1 if bound is None else bound, i))
        if deadline.hit:
            break
    # unbounded (-1) first, then the largest bounds
    bounds.sort(key=lambda b: (b[0] >= 0, -b[0], b[1]))
    # the largest so far as (bytes, -order, row fields): a min-heap of top_count entries, so
    # that the thousands of small globals cost no row object (ties: the first in name order)
    best: list[tuple[int, int, tuple[str, str, type, int | None, DeepSize]]] = []
    walked = 0
    for bound, i in bounds if not deadline.hit else []:
        if bound >= 0 and len(best) >= top_count and bound < best[0][0]:
            continue
        mod_name, found = modules[i]
        for rank, name, value in found:
            walked += 1
            if walked % 256 == 0 and deadline.expired():
                break
            is_func = type(value) is _FUNC
            size = sizer.function(value) if is_func else sizer.data(value)  # type: ignore[arg-type]
            entry = (size.bytes, -rank, (mod_name, name, type(value), _length(value), size))
            if len(best) < top_count:
                heapq.heappush(best, entry)
            elif entry[:2] > best[0][:2]:
                heapq.heapreplace(best, entry)
            if deadline.hit:
                break
        if deadline.hit:
            break
    best.sort(reverse=True)
    rows = [
        GlobalRow(mod, name, type_name(t), length, s.bytes, s.objects, s.truncated, s.estimated)
        for _, _, (mod, name, t, length, s) in best
    ]
    return rows, not deadline.hit
