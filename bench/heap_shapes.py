"""A family of deterministic heap shapes for the analyzer bench and tests.

Each builder plants its data in a fresh module (``opsjobs_shape_<name>``, registered in
``sys.modules``) so the analyzer sees it as module globals, and returns that module. At
``scale=1.0`` every shape holds roughly one million live objects; tests build them at a
small scale. Nothing is random: the same scale gives the same heap.
"""

from __future__ import annotations

import collections
import dataclasses
import sys
import types
from collections.abc import Callable

__all__ = ["SHAPES", "build", "drop"]


class Plain:
    def __init__(self, i: int) -> None:
        self.name = "".join(["plain-", str(i)])
        self.value = i * 1000
        self.ratio = i / 7


class Slotted:
    __slots__ = ("name", "ratio", "value")

    def __init__(self, i: int) -> None:
        self.name = "".join(["slot-", str(i)])
        self.value = i * 1000
        self.ratio = i / 7


@dataclasses.dataclass
class Record:
    key: str
    count: int
    tags: list[int]


class Owner:
    def __init__(self, i: int) -> None:
        self.parts = ["".join(["a", str(i)]), "".join(["b", str(i)])]


class Node:
    def __init__(self, i: int) -> None:
        self.label = "".join(["node-", str(i)])
        self.prev: Node | None = None
        self.next: Node | None = None


class Handler:
    def __init__(self, i: int) -> None:
        self.code = i

    def handle(self) -> int:
        return self.code


def _n(scale: float, count: int) -> int:
    return max(1, int(count * scale))


def _s(prefix: str, i: int) -> str:
    return "".join([prefix, str(i)])  # a fresh (not interned) string


def issue(m: types.ModuleType, scale: float) -> None:
    """The heap of issue 16: instances owning lists, flat dicts, caches, tuples, sets."""
    m.OWNERS = [Owner(i) for i in range(_n(scale, 150_000))]
    m.ROWS = [{"id": i, "name": _s("r", i), "score": i * 0.5} for i in range(_n(scale, 150_000))]
    m.TRIPLES = [[i, i + 1, i + 2] for i in range(_n(scale, 100_000))]
    m.CACHE = {_s("key-", i): _s("value-", i) for i in range(_n(scale, 100_000))}
    m.PAIRS = [(i, _s("p", i)) for i in range(_n(scale, 50_000))]
    m.TAGS = {_s("tag-", i) for i in range(_n(scale, 50_000))}
    for d in range(10):
        setattr(m, f"GROUP_{d}", {_s("g", i): [i] for i in range(_n(scale, 2_000))})


def instances(m: types.ModuleType, scale: float) -> None:
    """Many small class instances: with ``__dict__``, with ``__slots__``, dataclasses."""
    m.PLAIN = [Plain(i) for i in range(_n(scale, 110_000))]
    m.SLOTTED = [Slotted(i) for i in range(_n(scale, 110_000))]
    m.RECORDS = [Record(_s("rec-", i), i, [i, i * 2]) for i in range(_n(scale, 90_000))]


def flat_dicts(m: types.ModuleType, scale: float) -> None:
    """Flat dicts of atomic values only (the gc does not track them)."""
    m.EVENTS = [
        {"id": i, "kind": _s("k", i % 97), "host": _s("h-", i), "ms": i * 0.25}
        for i in range(_n(scale, 200_000))
    ]


def nested(m: types.ModuleType, scale: float) -> None:
    """Deeply nested dicts and lists: a config-like tree of depth seven."""

    def tree(depth: int, seed: int) -> object:
        if depth == 0:
            return [seed, _s("leaf-", seed)]
        return {_s("k", j): tree(depth - 1, seed * 4 + j) for j in range(4)}

    count = _n(scale, 40)
    m.TREES = [tree(6, t) for t in range(count)]
    m.DEEP = [[[[[[i, _s("x", i)]]]]] for i in range(_n(scale, 60_000))]


def huge(m: types.ModuleType, scale: float) -> None:
    """A few huge containers (dict, list, set, tuple, deque) of strings and of objects."""
    n = _n(scale, 100_000)
    m.BIG_DICT = {_s("d", i): Plain(i) for i in range(n)}
    m.BIG_LIST = [_s("l", i) for i in range(n)]
    m.BIG_SET = {_s("s", i) for i in range(n)}
    m.BIG_TUPLE = tuple(Slotted(i) for i in range(n))
    m.BIG_DEQUE = collections.deque([_s("q", i), i] for i in range(n))


def strings_buffers(m: types.ModuleType, scale: float) -> None:
    """Many duplicate (non-interned) strings, plus large bytes and bytearray buffers."""
    values = [_s("status-code-and-reason-", v) for v in range(300)]
    m.LOG = [(values[i % 300] + "!")[:-1] for i in range(_n(scale, 500_000))]
    m.NAMES = [_s("user-", i % 5000) for i in range(_n(scale, 300_000))]
    m.BLOBS = [bytes(64 * 1024) for _ in range(_n(scale, 200))]
    m.BUFFERS = {i: bytearray(128 * 1024) for i in range(_n(scale, 100))}


def callables(m: types.ModuleType, scale: float) -> None:
    """Closures, bound methods and reference cycles."""

    def make(i: int) -> Callable[[], int]:
        data = [i, _s("c", i)]

        def closure() -> int:
            return len(data)

        return closure

    m.CLOSURES = [make(i) for i in range(_n(scale, 80_000))]
    m.METHODS = [Handler(i).handle for i in range(_n(scale, 80_000))]
    nodes = [Node(i) for i in range(_n(scale, 100_000))]
    for a, b in zip(nodes, nodes[1:] + nodes[:1], strict=True):
        a.next, b.prev = b, a  # one big ring: every node in a cycle
    m.RING = nodes[0]
    m.PAIRS = []
    for i in range(_n(scale, 40_000)):
        parent: dict[str, object] = {"name": _s("p", i)}
        parent["child"] = {"parent": parent}
        m.PAIRS.append(parent)


def one_graph(m: types.ModuleType, scale: float) -> None:
    """Most memory in one object graph reachable from a single global."""
    m.APP = types.SimpleNamespace(
        users={_s("u", i): Record(_s("mail-", i), i, [i]) for i in range(_n(scale, 60_000))},
        sessions=[{"user": _s("u", i), "hits": [i, i]} for i in range(_n(scale, 60_000))],
        index={i: (_s("i", i), i) for i in range(_n(scale, 60_000))},
    )


def many_globals(m: types.ModuleType, scale: float) -> None:
    """Data spread over thousands of module globals."""
    for g in range(_n(scale, 5_000)):
        setattr(m, f"v{g}", [[_s("x", g * 64 + i), i] for i in range(64)])


SHAPES: dict[str, Callable[[types.ModuleType, float], None]] = {
    "issue": issue,
    "instances": instances,
    "flat_dicts": flat_dicts,
    "nested": nested,
    "huge": huge,
    "strings_buffers": strings_buffers,
    "callables": callables,
    "one_graph": one_graph,
    "many_globals": many_globals,
}


def build(name: str, scale: float = 1.0) -> types.ModuleType:
    """Build shape ``name`` into module ``opsjobs_shape_<name>`` and return the module."""
    module = types.ModuleType(f"opsjobs_shape_{name}")
    sys.modules[module.__name__] = module
    SHAPES[name](module, scale)
    return module


def drop(name: str) -> None:
    """Forget shape ``name`` (its module and everything only it held)."""
    sys.modules.pop(f"opsjobs_shape_{name}", None)
