"""Accuracy on planted problems, each in a real child process that analyses itself."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from harness import python_child

from opsjobs.analyzer import diff_reports, leak_verdict, recommend

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

PRELUDE = """
import json, sys, time
from opsjobs.analyzer import analyze as _analyze, report_metrics

def analyze(**kw):  # a walk cut short by load (the default 10 s budget) is not what is tested
    kw.setdefault("time_budget", 120.0)
    return _analyze(**kw)
"""


def run_child(body: str) -> Any:
    return python_child(PRELUDE + textwrap.dedent(body))


def test_duplicate_strings_are_counted() -> None:
    res = run_child("""
        PLANTED = ["".join(["dup-", "licated-value-", "0123456789abcdef"]) for _ in range(20000)]
        r = analyze(deep=True, top_count=10)
        print(json.dumps(r.to_dict()["strings"]))
    """)
    top = res["top"][0]
    assert top["preview"] == "dup-licated-value-0123456789abcdef"
    assert abs(top["copies"] - 20000) <= 200
    assert top["wasted_bytes"] == (top["copies"] - 1) * top["size_each"]
    assert res["sample_rate"] == 1.0


def test_growing_global_is_top_growth_and_a_leak() -> None:
    res = run_child("""
        GROW = []
        reports, series = [], []
        analyze(top_count=10)  # warm-up: first-use allocations are not growth
        for step in range(8):
            GROW.extend("".join(["row-", str(step), "-", str(i), "-" * 40]) for i in range(40000))
            r = analyze(top_count=10).to_dict()
            reports.append(r)
            # stamped as the scheduled analysis would be (every 30 minutes): a leak verdict
            # needs half an hour of data at least
            series.append((step * 1800.0, report_metrics(r)["rss_mb"]))
            time.sleep(0.05)
        print(json.dumps({"first": reports[0], "last": reports[-1], "series": series}))
    """)
    d = diff_reports(res["first"], res["last"])
    assert d.globals[0].name == "__main__.GROW"
    assert d.globals[0].count_delta == 7 * 40000
    assert d.types[0].name == "str"
    verdict = leak_verdict([tuple(p) for p in res["series"]])
    assert verdict.leaking, verdict
    assert verdict.growth_per_hour > 0


def test_large_global_dict_matches_pympler() -> None:
    pytest.importorskip("pympler")
    res = run_child("""
        BIG = {"".join(["key-", str(i)]): ["".join(["v", str(i)]) * 3, i * 7, (i, float(i))]
               for i in range(50000)}
        r = analyze(top_count=5).to_dict()
        from pympler import asizeof
        print(json.dumps({"top": r["globals"][0], "ref": asizeof.asizeof(BIG)}))
    """)
    top = res["top"]
    assert (top["module"], top["name"], top["type"], top["length"]) == (
        "__main__",
        "BIG",
        "dict",
        50000,
    )
    assert abs(top["deep_bytes"] - res["ref"]) <= 0.10 * res["ref"], res


def test_healthy_steady_process_has_no_findings() -> None:
    res = run_child("""
        import random
        STATE = {"config": list(range(1000))}
        series, last = [], None
        # The allocator warms up over the first ~6 cycles of churn and analysis (RSS rises
        # ~4 MB, then stays flat); steady state is what this test judges.
        for step in range(18):
            scratch = [{"n": i, "s": str(i) * 5} for i in range(20000)]  # churn, then freed
            del scratch
            last = analyze(top_count=10).to_dict()
            if step >= 6:
                series.append((step * 1800.0, report_metrics(last)["rss_mb"]))
            time.sleep(0.05)
        print(json.dumps({"last": last, "series": series}))
    """)
    verdict = leak_verdict([tuple(p) for p in res["series"]])
    assert not verdict.leaking, verdict
    recs = recommend(res["last"], verdict=verdict)
    assert all(r.severity == "info" for r in recs), recs
