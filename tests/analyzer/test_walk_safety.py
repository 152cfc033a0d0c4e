"""The analysis never corrupts the interpreter it inspects.

Each case runs in a child process under a memory cap and a timeout, so a regression shows as a
failed test, not as a machine out of memory.
"""

from __future__ import annotations

import textwrap

import pytest
from harness import python_child

pytestmark = pytest.mark.slow

#: Address space of the child: far above what an analysis of its small heap needs.
CAP = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
"""


def test_asyncio_free_list_survives_an_analysis() -> None:
    # CPython 3.12.0-3.12.5 (gh-122695): the _asyncio module's traverse hands out the freed
    # future iterators of its free list. An analysis that asked for the module's referents
    # freed one of them a second time; the free list became a cycle and the next collection
    # looped forever (issue 13: a pytest process that had run the notebook tests hung, or
    # grew to 22 GB, in test_pure's analyze()). Harmless on other versions; run everywhere.
    res = python_child(
        CAP
        + textwrap.dedent("""
        import asyncio, gc, json
        from opsjobs.analyzer import analyze
        loop = asyncio.new_event_loop()
        it = iter(loop.create_future())
        del it  # now on _asyncio's free list
        analyze(time_budget=5.0)
        analyze(deep=True, time_budget=5.0)
        gc.collect()  # looped forever over the corrupted free list
        it = iter(loop.create_future())  # and the free list still hands out sound objects
        del it
        gc.collect()
        loop.close()
        print(json.dumps("survived"))
        """),
        timeout=120,
    )
    assert res == "survived"
