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
from itertools import compress, islice
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
#: Exact containers whose deep size is estimated from a sample when they are large.
SAMPLED_TYPES: frozenset[type] = frozenset({dict, list, tuple, set, frozenset})
#: Containers with more items than this are estimated from a sample.
SAMPLE_ABOVE = 20_000
#: Items (keys and values for a dict) walked for an estimate.
SAMPLE_ITEMS = 2_000
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
    """Result of one bounded deep-size walk; ``estimated`` when scaled up from a sample."""

    bytes: int
    objects: int
    truncated: bool
    estimated: bool = False


@dataclass(frozen=True)
class GlobalRow:
    """One module global and the data it holds (``estimated``: from a sample of its items)."""

    module: str
    name: str
    type: str
    length: int | None
    deep_bytes: int
    objects: int
    truncated: bool
    estimated: bool = False


def _walk(
    stack: list[list[object]],
    dedupe: Dedupe,
    stop: dict[type, bool],
    deadline: Deadline,
    budget: int,
    shared_out: list[object] | None = None,
) -> tuple[int, int, bool]:
    """Sizes of everything reachable from ``stack`` not seen before: (bytes, objects, cut).

    With ``shared_out``, objects that something else references too are not entered but
    collected there (a sample's private part is scaled up, its shared part is not).
    """
    total = count = 0
    while stack:
        chunk = stack.pop()
        if len(chunk) > CHUNK:
            stack.append(chunk[CHUNK:])
            chunk = chunk[:CHUNK]
        fresh, shared = dedupe.expand_split(chunk)
        del chunk
        if shared_out is None:
            fresh.extend(shared)
        else:
            shared_out.extend(compress(shared, map(not_, map(stop.__getitem__, map(type, shared)))))
        del shared
        keep = list(compress(fresh, map(not_, map(stop.__getitem__, map(type, fresh)))))
        del fresh
        if keep:
            total += sum(safe_sizes(keep))
            count += len(keep)
            stack.append(keep)
        if count >= budget or (count > CHUNK and deadline.expired()):
            return total, count, bool(stack)
    return total, count, False


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
    root: object, n: int, deadline: Deadline, max_objects: int, stop: dict[type, bool]
) -> DeepSize | None:
    """Deep size of a large container estimated from an evenly spaced sample of its items.

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
    dedupe = Dedupe(untracked_only=False)
    dedupe.mark([root])
    dedupe.mark(shared_roots)
    shared = [x for x in shared_roots if not stop[type(x)]]
    del shared_roots
    own = sum(safe_sizes(private))
    inner, inner_count, cut1 = _walk([list(private)], dedupe, stop, deadline, max_objects, shared)
    scale = n / sampled
    shared_bytes = sum(safe_sizes(shared))
    rest, rest_count, cut2 = _walk([shared], dedupe, stop, deadline, max_objects)
    return DeepSize(
        safe_sizes([root])[0] + round((own + inner) * scale) + shared_bytes + rest,
        1 + round((len(private) + inner_count) * scale) + len(shared) + rest_count,
        cut1 or cut2,
        estimated=True,
    )


def deep_size(
    root: object,
    deadline: Deadline,
    max_objects: int = 2_000_000,
    stop: dict[type, bool] | None = None,
) -> DeepSize:
    """Size of ``root`` and everything it reaches, stopping at program structure.

    A list, tuple, dict, set or frozenset with more than :data:`SAMPLE_ABOVE` items is
    estimated from a sample of :data:`SAMPLE_ITEMS` of them (``estimated`` is then True).

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
    t = type(root)
    if t in LEAVES:
        return DeepSize(safe_sizes([root])[0], 1, False)
    if t in SAMPLED_TYPES:
        n = len(root)  # type: ignore[arg-type]
        if n > SAMPLE_ABOVE:
            estimate = _sampled_size(root, n, deadline, max_objects, stop)
            if estimate is not None:
                return estimate
    dedupe = Dedupe(untracked_only=False)
    dedupe.mark([root])
    total, count, truncated = _walk([[root]], dedupe, stop, deadline, max_objects - 1)
    return DeepSize(safe_sizes([root])[0] + total, count + 1, truncated)


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
                    size.estimated,
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
