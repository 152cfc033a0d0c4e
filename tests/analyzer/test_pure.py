"""Fast unit tests of the analyzer's pure functions and small parts."""

from __future__ import annotations

import copy
import csv
import gc
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import opsjobs.analyzer as analyzer
from opsjobs.analyzer import (
    GcPauseRecorder,
    Thresholds,
    analyze,
    cgroup_memory_limit,
    diff_reports,
    export_csv,
    format_text,
    leak_verdict,
    recommend,
    report_metrics,
)
from opsjobs.analyzer.strings import StringCounter
from opsjobs.errors import ValidationError

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    # a whole walk even at load 8 (a 5 s budget cut it to 78 %)
    return analyze(top_count=5, time_budget=120.0).to_dict()


def healthy(base: dict[str, Any]) -> dict[str, Any]:
    r = copy.deepcopy(base)
    r["process"].update(rss=200 * MiB, cgroup_limit=None, uptime_s=3600.0)
    for g in r["gc"]["generations"]:
        g.update(collections=5, uncollectable=0)
    r["gc"]["garbage"] = 0
    r["coverage"].update(fraction=1.0, cut_short=False)
    return r


def test_public_api_is_pinned() -> None:
    assert sorted(analyzer.__all__) == sorted(
        [
            "GcPauseRecorder",
            "Growth",
            "LeakVerdict",
            "Recommendation",
            "Report",
            "ReportDiff",
            "Thresholds",
            "analyze",
            "cgroup_memory_limit",
            "diff_reports",
            "export_csv",
            "format_text",
            "leak_verdict",
            "recommend",
            "report_metrics",
        ]
    )


def test_report_is_json_and_complete(base: dict[str, Any]) -> None:
    json.dumps(base)
    assert base["process"]["rss"] > 0
    assert len(base["gc"]["generations"]) == len(gc.get_stats())
    assert base["heap"]["objects"] > base["coverage"]["tracked_walked"] > 0
    assert base["coverage"]["fraction"] == 1.0
    assert {"str", "dict", "int"} <= {t["type"] for t in base["heap"]["types"]}
    assert base["strings"] is None


def test_analyze_does_not_materialise_instance_dicts() -> None:
    class Plain:
        def __init__(self) -> None:
            self.a = [1, 2, 3]
            self.b = "x" * 10

    items = [Plain() for _ in range(50)]
    before = [any(type(r) is dict for r in gc.get_referents(o)) for o in items]
    analyze(top_count=3)
    after = [any(type(r) is dict for r in gc.get_referents(o)) for o in items]
    assert before == after


def test_tiny_budget_reports_cut_short() -> None:
    r = analyze(time_budget=1e-9)
    assert r.coverage.cut_short
    assert r.coverage.fraction < 1.0 or r.coverage.skipped


def test_invalid_arguments() -> None:
    with pytest.raises(ValidationError):
        analyze(top_count=0)
    with pytest.raises(ValidationError):
        analyze(time_budget=0)
    with pytest.raises(ValidationError):
        diff_reports({"x": 1}, {"y": 2})


def test_leak_verdict_flags_steady_growth_of_minima() -> None:
    # saw-tooth: +5 MB per hour under a 40 MB jitter of allocations
    pts = [(h * 600.0, 500 + 5 * h / 6 + (40 if h % 3 else 0)) for h in range(72)]
    v = leak_verdict(pts, limit=600)
    assert v.leaking, v
    assert 4.0 < v.growth_per_hour < 6.0
    assert v.r_squared > 0.9
    assert v.hours_to_limit is not None and 0 < v.hours_to_limit < 30


def test_leak_verdict_steady_and_short_series() -> None:
    steady = [(t * 60.0, 300 + (15 if t % 2 else 0)) for t in range(120)]
    assert not leak_verdict(steady).leaking
    assert leak_verdict([(0, 1), (1, 2)]).reason == "not enough data"
    with pytest.raises(ValidationError):
        leak_verdict(steady, windows=1)


def test_a_leak_needs_half_an_hour_of_data() -> None:
    """A fresh server analysed every 2 s (or 30 s) grows while it warms up: six points of
    steady growth over minutes opened a critical memory-leak-suspected alert (3.10 run)."""
    minutes = [(i * 30.0, 100.0 + 1.0 * i) for i in range(12)]  # 5.5 min, +2 MB a minute
    v = leak_verdict(minutes)
    assert not v.leaking and v.reason.startswith("not enough data"), v
    hours = [(i * 1800.0, 100.0 + 1.0 * i) for i in range(12)]  # the same points, 5.5 h
    assert leak_verdict(hours).leaking


def test_leak_verdict_plateau_is_not_a_leak() -> None:
    # warm-up: a straight rise for the first half, then flat (real processes after start-up)
    pts = [(i * 300.0, min(28.8 + 0.8 * i, 33.6)) for i in range(12)]
    v = leak_verdict(pts)
    assert not v.leaking, v
    assert "levelled off" in v.reason
    still = [(i * 300.0, 28.8 + 0.4 * i) for i in range(12)]
    assert leak_verdict(still).leaking


def test_diff_reports_orders_growth(base: dict[str, Any]) -> None:
    after = copy.deepcopy(base)
    after["globals"].append(
        {
            "module": "app",
            "name": "CACHE",
            "type": "list",
            "length": 1000,
            "deep_bytes": 10 * MiB,
            "objects": 1001,
            "truncated": False,
        }
    )
    after["heap"]["types"][0]["count"] += 100
    after["heap"]["types"][0]["bytes"] += 5000
    d = diff_reports(base, after)
    assert d.globals[0].name == "app.CACHE" and d.globals[0].bytes_delta == 10 * MiB
    assert d.types[0].count_delta == 100 and d.types[0].bytes_delta == 5000
    json.dumps(d.to_dict())


def test_recommend_ok_and_text(base: dict[str, Any]) -> None:
    r = healthy(base)
    assert recommend(r) == []
    text = format_text(r)
    for section in (
        "=== opsjobs Memory Analysis ===",
        "=== Process Memory ===",
        "=== GC Statistics ===",
        "=== Global Variable Sizes ===",
        "=== Largest Dicts and Lists ===",
        "=== Top Types ===",
        "=== Recommendations ===",
        "[OK] No issues detected",
    ):
        assert section in text
    assert "=== Duplicate Strings ===" not in text


def test_recommend_findings(base: dict[str, Any]) -> None:
    r = healthy(base)
    r["process"].update(rss=900 * MiB, cgroup_limit=1000 * MiB)
    r["gc"]["generations"][-1]["collections"] = 600
    r["strings"] = {
        "strings_seen": 1,
        "distinct_values": 1,
        "duplicated_values": 1,
        "copies": 2,
        "wasted_bytes": 60 * MiB,
        "sample_rate": 1.0,
        "top": [],
    }
    r["heap"]["bytes"] = 100 * MiB
    r["globals"].insert(
        0,
        {
            "module": "app",
            "name": "BIG",
            "type": "dict",
            "length": 3,
            "deep_bytes": 64 * MiB,
            "objects": 7,
            "truncated": False,
        },
    )
    pts = [(h * 3600.0, 100.0 + 10 * h) for h in range(10)]
    recs = recommend(r, verdict=leak_verdict(pts, limit=1000))
    codes = {x.code: x.severity for x in recs}
    assert codes == {
        "near-cgroup-limit": "warning",
        "frequent-full-gc": "warning",
        "duplicate-strings": "warning",
        "dominant-global": "warning",
        "sustained-growth": "warning",
    }
    strict = Thresholds(cgroup_critical_fraction=0.85, leak_critical_hours=1000)
    assert recommend(r, strict, leak_verdict(pts, limit=1000))[0].severity == "critical"
    with pytest.raises(AttributeError):
        strict.rss_warning = 1  # type: ignore[misc]


def test_export_csv_and_metrics(base: dict[str, Any], tmp_path: Path) -> None:
    r = analyze(deep=True, top_count=5)
    files = export_csv(r, tmp_path / "results" / "job1")
    assert sorted(f.name for f in files) == [
        "containers.csv",
        "globals.csv",
        "strings.csv",
        "types.csv",
    ]
    with (tmp_path / "results" / "job1" / "types.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and set(rows[0]) == {"type", "count", "bytes"}
    m = report_metrics(r)
    for key in ("rss_mb", "uss_mb", "objects", "gc_gen0_collections", "dup_string_waste_mb"):
        assert key in m
    assert "=== Duplicate Strings ===" in format_text(r)
    assert len(export_csv(base, tmp_path / "b")) == 3


def test_cgroup_limit(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/app\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "memory.max").write_text("max\n")
    assert cgroup_memory_limit(tmp_path, proc) is None
    (tmp_path / "app" / "memory.max").write_text("536870912\n")
    assert cgroup_memory_limit(tmp_path, proc) == 512 * MiB
    v1 = tmp_path / "v1"
    (v1 / "memory" / "grp").mkdir(parents=True)
    proc.write_text("4:memory:/grp\n0::/\n")
    (v1 / "memory" / "grp" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_memory_limit(v1, proc) is None
    (v1 / "memory" / "grp" / "memory.limit_in_bytes").write_text("1073741824\n")
    assert cgroup_memory_limit(v1, proc) == 1024 * MiB


def test_gc_pause_recorder() -> None:
    rec = GcPauseRecorder(capacity=4)
    with rec:
        assert rec.installed
        for _ in range(6):
            gc.collect(0)  # the test triggers collections; the analyzer never does
        r = analyze(pause_recorder=rec, top_count=2)
    assert not rec.installed
    assert len(rec.pauses()) == 4
    assert r.gc.pauses is not None and r.gc.pauses.samples == 4


def test_string_counter_sampling_keeps_exact_counts() -> None:
    counter = StringCounter(max_distinct=100)
    values = ["".join(["v", str(i)]) for i in range(1000)]
    dup = ["".join(["dup", "licate"]) for _ in range(50)]
    counter.add(values + dup, [50] * 1050)
    res = counter.result(5)
    assert res.sample_rate < 1.0
    assert res.strings_seen == 1050


def test_large_containers_are_estimated_from_a_sample() -> None:
    from opsjobs.analyzer.deep import SAMPLE_ABOVE, deep_size
    from opsjobs.analyzer.walk import Deadline

    shared = {"cfg": list(range(500))}
    periodic = [
        ("".join(["s", str(i)]) if i % 3 else {"n": i, "l": [i + 1, -i]}) for i in range(60_000)
    ]
    mixed = {str(i): [shared, "".join(["v", str(i)])] for i in range(SAMPLE_ABOVE + 5000)}
    inner = [{"a": i, "b": [i]} for i in range(30_000)]  # i referenced twice inside its item
    cases = [(periodic, 0.03), (mixed, 0.03), (set(map(str, range(50_000))), 0.03), (inner, 0.2)]
    for value, tolerance in cases:
        est = deep_size(value, Deadline(30))
        exact = deep_size([value], Deadline(30), sample_above=None)  # walked whole
        assert est.estimated and not exact.estimated
        body = exact.bytes - sys.getsizeof([value])
        assert abs(est.bytes - body) <= tolerance * body, (est, exact)


def test_globals_bounded_per_module_are_the_globals_measured_one_by_one() -> None:
    from opsjobs.analyzer.deep import deep_size
    from opsjobs.analyzer.globals import largest_globals
    from opsjobs.analyzer.walk import Deadline

    def blob(n: int, tag: str) -> list[str]:
        return ["".join([tag, str(i), "-" * 40]) for i in range(n)]

    namespaces: dict[str, dict[str, object]] = {
        # many small globals: the module's joint bound is below the top's floor (skipped)
        "a_small": {f"s{i}": blob(3, f"s{i}-") for i in range(40)},
        # each global below the floor, all of them together above it (measured, none kept)
        "b_spread": {f"p{i}": blob(300, f"p{i}-") for i in range(30)},
        # the largest, in a module of fewer globals than are bounded together
        "c_big": {f"big{i}": blob(2_000 + 500 * i, f"b{i}-") for i in range(4)},
        "d_mixed": {"large": blob(1_500, "l-"), "tiny": [1], "f": blob, "t": (1, 2), "u": "x"},
    }
    rows, complete = largest_globals(namespaces, Deadline(60), 5)
    assert complete
    every = [
        (deep_size(v, Deadline(60)).bytes, m, n)
        for m, ns in namespaces.items()
        for n, v in ns.items()
        if isinstance(v, list)
    ]  # in name order: a tie goes to the first
    expected = sorted(every, key=lambda row: -row[0])[:5]
    assert [(r.deep_bytes, r.module, r.name) for r in rows] == expected
    assert all(row[1] != "b_spread" for row in expected)  # their bound was above the floor


def test_other_threads_get_the_gil_every_millisecond_while_it_runs() -> None:
    # The analysis is mostly C passes over the heap; at the interpreter's default 5 ms switch
    # interval a 1 ms ticker beside it waited ~12 ms at p99 (bench/README, flat_dicts), twice
    # what it waits beside a plain loop. While analyze() runs the interval is 1 ms; after, the
    # host's own setting is back.
    import threading

    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    seen: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.append(sys.getswitchinterval())

    sampler = threading.Thread(target=sample)
    try:
        sampler.start()
        analyzer.analyze(top_count=3)
        done.set()
        sampler.join()
        assert min(seen) <= 0.001 + 1e-9
        assert sys.getswitchinterval() == pytest.approx(0.004)
    finally:
        done.set()
        sampler.join()
        sys.setswitchinterval(previous)
