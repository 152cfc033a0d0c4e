"""Deep sizes by a bounded referents walk, and the largest module globals.

The walk follows :func:`gc.get_referents` from a root, counts ``sys.getsizeof`` of every
object reached once, and stops at shared program structure (modules, classes, functions,
code, frames), so the size of a global is the data it holds, much like ``pympler.asizeof``
but without touching ``__dict__`` (which would materialise instance dicts on 3.11+).
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from itertools import compress
from operator import not_

from opsjobs.analyzer.heap import type_name
from opsjobs.analyzer.walk import CHUNK, Deadline, Dedupe, safe_sizes

__all__ = ["DeepSize", "GlobalRow", "deep_size", "largest_globals", "module_namespaces"]

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
#: Exact builtin containers whose ``len()`` cannot run user code.
SIZED: frozenset[type] = frozenset({dict, list, tuple, set, frozenset, str, bytes, bytearray})
#: Exact types that reference nothing worth walking.
LEAVES: frozenset[type] = frozenset({str, int, float, bool, bytes, complex, type(None)})
_MODULE_DICT = vars(types.ModuleType)["__dict__"]


class _StopCache(dict[type, bool]):
    def __missing__(self, key: type) -> bool:
        stop = issubclass(key, STOP_TYPES)
        self[key] = stop
        return stop


@dataclass(frozen=True)
class DeepSize:
    """Result of one bounded deep-size walk."""

    bytes: int
    objects: int
    truncated: bool


@dataclass(frozen=True)
class GlobalRow:
    """One module global and the data it holds."""

    module: str
    name: str
    type: str
    length: int | None
    deep_bytes: int
    objects: int
    truncated: bool


def deep_size(
    root: object,
    deadline: Deadline,
    max_objects: int = 2_000_000,
    stop: dict[type, bool] | None = None,
) -> DeepSize:
    """Size of ``root`` and everything it reaches, stopping at program structure.

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
    """
    stop = _StopCache() if stop is None else stop
    if type(root) in LEAVES:
        return DeepSize(safe_sizes([root])[0], 1, False)
    dedupe = Dedupe(untracked_only=False)
    dedupe.mark([root])
    total = safe_sizes([root])[0]
    count = 1
    stack: list[list[object]] = [[root]]
    truncated = False
    while stack:
        chunk = stack.pop()
        if len(chunk) > CHUNK:
            stack.append(chunk[CHUNK:])
            chunk = chunk[:CHUNK]
        found = dedupe.expand(chunk)
        del chunk
        keep = list(compress(found, map(not_, map(stop.__getitem__, map(type, found)))))
        del found
        if keep:
            total += sum(safe_sizes(keep))
            count += len(keep)
            stack.append(keep)
        if count >= max_objects or (count > CHUNK and deadline.expired()):
            truncated = bool(stack)
            break
    return DeepSize(total, count, truncated)


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


def largest_globals(
    namespaces: dict[str, dict[str, object]],
    deadline: Deadline,
    top_count: int,
    max_objects: int = 2_000_000,
) -> tuple[list[GlobalRow], bool]:
    """Deep-size every data global of every module; return the largest and "complete?".

    Modules, classes, functions and dunder names are skipped; an object bound under several
    names is measured once, under the first module (in name order) that holds it.
    """
    stop = _StopCache()
    done: set[int] = set()
    rows: list[GlobalRow] = []
    complete = True
    walked = 0
    for mod_name in sorted(namespaces):
        for name, value in list(namespaces[mod_name].items()):
            if type(name) is not str or name.startswith("__") or stop[type(value)]:
                continue
            if id(value) in done:
                continue
            done.add(id(value))
            walked += 1
            if walked % 256 == 0 and deadline.expired():
                complete = False
                break
            size = deep_size(value, deadline, max_objects, stop)
            rows.append(
                GlobalRow(
                    mod_name,
                    name,
                    type_name(type(value)),
                    _length(value),
                    size.bytes,
                    size.objects,
                    size.truncated,
                )
            )
            if deadline.hit:
                complete = False
                break
        if deadline.hit:
            complete = False
            break
    rows.sort(key=lambda r: r.deep_bytes, reverse=True)
    return rows[:top_count], complete
