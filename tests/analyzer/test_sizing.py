"""Sizes of planted globals against ``pympler.asizeof``, each case in a child process.

Every global of 1 MiB or more, on every bench heap shape (built small) and of every planted
kind, must be within 10 % of asizeof in default and in deep mode; a function's size is its
own (code, defaults, closure cells), never its module's globals.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from harness import python_child

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
pytest.importorskip("pympler")

PRELUDE = f"""
import json, sys
sys.path.insert(0, {str(ROOT / "bench")!r})
from pympler import asizeof
from opsjobs.analyzer import analyze
MiB = 1024 * 1024

def rows(module):
    out = {{}}
    for deep in (False, True):
        r = analyze(deep=deep, top_count=300, time_budget=120).to_dict()
        assert not r["coverage"]["cut_short"]
        out[deep] = {{g["name"]: g for g in r["globals"] if g["module"] == module}}
    return out
"""


def run_child(body: str) -> Any:
    return python_child(PRELUDE + textwrap.dedent(body))


def assert_close(found: list[dict[str, Any]]) -> None:
    assert found
    for row in found:
        for mode in ("default", "deep"):
            err = abs(row[mode] - row["ref"]) / row["ref"]
            assert err <= 0.10, (mode, row)


def test_every_large_global_of_every_shape_matches_asizeof() -> None:
    found = run_child("""
        import heap_shapes

        def reference(value):
            # pympler walks no deque items and stops 100 levels deep (a linked ring): measure
            # the same objects in a flat list instead
            if type(value).__name__ == "deque":
                return asizeof.asizeof(list(value)) - sys.getsizeof([]) - 8 * len(value) \\
                    + sys.getsizeof(value)
            if type(value).__name__ == "Node":
                nodes, node = [], value
                while not nodes or node is not value:
                    nodes.append(node)
                    node = node.next
                return asizeof.asizeof(nodes) - sys.getsizeof(nodes)
            return asizeof.asizeof(value)

        found = []
        for shape in heap_shapes.SHAPES:
            module = heap_shapes.build(shape, 0.1)
            got = rows(module.__name__)
            for name, row in got[False].items():
                if row["deep_bytes"] >= MiB:
                    found.append({"shape": shape, "name": name, "default": row["deep_bytes"],
                                  "deep": got[True][name]["deep_bytes"],
                                  "estimated": row["estimated"], "length": row["length"],
                                  "ref": reference(getattr(module, name))})
            heap_shapes.drop(shape)
        print(json.dumps(found))
    """)
    assert {row["shape"] for row in found} == {
        "issue",
        "instances",
        "flat_dicts",
        "nested",
        "huge",
        "strings_buffers",
        "callables",
        "one_graph",
    }  # many_globals holds no single global of 1 MiB: its data is spread out
    assert_close(found)
    # a global with more items than the sampling threshold says its size is an estimate
    for row in found:
        assert row["estimated"] == ((row["length"] or 0) > 20_000), row


PLANTED_CALLABLES = """
BIG = ["".join(["payload-", str(i)]) for i in range(40000)]

def make():
    cells = [("".join(["cell-", str(i)]), i) for i in range(30000)]
    def handler():
        return len(cells)
    return handler

handler = make()

def with_default(table={str(i): [i] for i in range(20000)}):
    return table

class Registry:
    entries = [[i, "".join(["e", str(i)])] for i in range(25000)]

    def method(self):
        return BIG
""" + "".join(f"\ndef f{i}(x):\n    return BIG[x] + str({i})\n" for i in range(10))


def test_functions_are_their_own_size_and_class_attributes_are_rows() -> None:
    found = run_child(f"""
        import types
        mod = types.ModuleType("planted_callables")
        sys.modules[mod.__name__] = mod
        exec({PLANTED_CALLABLES!r}, mod.__dict__)
        got = rows(mod.__name__)
        from opsjobs.analyzer.globals import largest_globals
        from opsjobs.analyzer.walk import Deadline
        alone = largest_globals({{mod.__name__: mod.__dict__}}, Deadline(60), 1000)[0]
        small = {{g.name: g.deep_bytes for g in alone if g.type == "function"}}
        fat = [g["name"] for d in (False, True) for g in got[d].values()
               if g["type"] == "function" and g["deep_bytes"] > 64 * 1024]
        ref = {{
            "handler": asizeof.asizeof(*mod.handler.__closure__),
            "with_default": asizeof.asizeof(mod.with_default.__defaults__),
            "Registry.entries": asizeof.asizeof(mod.Registry.entries),
            "BIG": asizeof.asizeof(mod.BIG),
        }}
        found = [{{"name": n, "default": got[False][n]["deep_bytes"],
                   "deep": got[True][n]["deep_bytes"], "ref": r}} for n, r in ref.items()]
        print(json.dumps({{"found": found, "small": small, "fat": fat,
                          "names": sorted(got[False])}}))
    """)
    assert_close(found["found"])
    assert all(row["ref"] >= 1024 * 1024 for row in found["found"])
    # ten functions of the module that holds BIG: each its own few hundred bytes, not BIG's
    assert {f"f{i}" for i in range(10)} <= set(found["small"])
    assert max(found["small"][f"f{i}"] for i in range(10)) < 4096, found["small"]
    assert sorted(set(found["fat"])) == ["handler", "with_default"]
    assert "Registry.method" not in found["names"]
