"""The analysis never corrupts the interpreter it inspects, and its walks stay bounded.

Each case runs in a child process under a memory cap and a timeout, so a regression shows as a
failed test, not as a machine out of memory.
"""

from __future__ import annotations

import gc
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


def test_a_frame_of_an_ended_threads_greenlet_survives_an_analysis() -> None:
    # A greenlet suspended in a thread that has ended cannot be unwound: when it is freed, its
    # frames are dropped with it, and a frame object still referenced elsewhere (gr_frame here;
    # playwright keeps the caller's frame of each sync call on its task) is left untracked with
    # ``f_frame`` pointing into freed memory, or into another thread's data stack once that
    # memory is reused. The collector never traverses an untracked object; the census did, and
    # sized it: sys.getsizeof (frame.__sizeof__ reads f_frame->f_code) or gc.get_referents
    # (frame_traverse reads f_frame->owner) then crashed the process with a segfault.
    pytest.importorskip("greenlet")
    res = python_child(
        CAP
        + textwrap.dedent("""
        import faulthandler, gc, json, threading
        faulthandler.enable()
        import greenlet
        from opsjobs.analyzer import analyze
        FRAMES, LETS = [], []

        def suspend_one():
            def body():
                held = ["a local of the suspended frame"]
                greenlet.getcurrent().parent.switch()
            let = greenlet.greenlet(body)
            let.switch()
            FRAMES.append(let.gr_frame)
            LETS.append(let)

        for _ in range(3):
            t = threading.Thread(target=suspend_one)
            t.start()
            t.join()
            LETS.clear()  # freed after its thread ended: its frames are not unwound
        assert not any(map(gc.is_tracked, FRAMES))
        report = analyze(time_budget=20.0)
        analyze(deep=True, time_budget=20.0)
        frames = [r for r in report.heap.types if r.type == "frame"]
        print(json.dumps(["survived", bool(frames)]))
        """),
        timeout=120,
    )
    assert res == ["survived", True]


def test_census_stops_at_its_object_bound() -> None:
    # A walk must never grow without bound, whatever the heap: past ``max_objects`` the census
    # stops and says so (analyze() sets it from the process's resident memory).
    from opsjobs.analyzer.heap import run_census
    from opsjobs.analyzer.walk import CHUNK, Deadline

    held = [["".join(["held-", str(i), "-", str(j)]) for j in range(50)] for i in range(400)]
    census = run_census(gc.get_objects(), Deadline(60), 5, max_objects=10_000)
    assert census.overrun
    assert census.tracked_walked + census.untracked_found <= 10_000 + 2 * CHUNK
    whole = run_census(gc.get_objects(), Deadline(60), 5)
    assert not whole.overrun
    assert whole.untracked_found > 20_000  # the strings held above, at least
    del held


def test_a_census_stopped_by_its_bound_is_not_reported_as_a_budget_cut() -> None:
    from opsjobs.analyzer import analyze
    from opsjobs.analyzer.model import as_dict
    from opsjobs.analyzer.recommend import recommend
    from opsjobs.analyzer.report import format_text

    report = dict(as_dict(analyze(time_budget=60.0)))
    report["coverage"] = {
        **report["coverage"],
        "cut_short": True,
        "skipped": ["census stopped: it counted more objects than the process holds", "globals"],
    }
    said = [r.message for r in recommend(report) if r.code == "partial-walk"]
    text = format_text(report)
    assert len(said) == 1 and "stopped at the census's object bound" in said[0], said
    assert "not done: census stopped" in said[0]
    assert "time budget" not in said[0] and "time budget" not in text
    assert "stopped at the census's object bound; not done: census stopped" in text
