"""Text report, CSV export and the flat metrics a job records."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from opsjobs.analyzer.diff import ReportDiff
from opsjobs.analyzer.leaks import LeakVerdict
from opsjobs.analyzer.model import Report, as_dict
from opsjobs.analyzer.recommend import Recommendation, Thresholds, cut_short, recommend
from opsjobs.errors import ConfigError

__all__ = ["export_csv", "format_text", "report_metrics"]

MiB = 1024 * 1024


def _mb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / MiB:.2f}"


def _kv(rows: Sequence[tuple[str, object]]) -> list[str]:
    return [f"{k:<24}: {v}" for k, v in rows]


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _process(r: Mapping[str, Any]) -> list[str]:
    p = r["process"]
    return _kv(
        [
            ("RSS (MB)", _mb(p["rss"])),
            ("VMS (MB)", _mb(p["vms"])),
            ("USS (MB)", _mb(p["uss"])),
            ("PSS (MB)", _mb(p["pss"])),
            ("Swap (MB)", _mb(p["swap"])),
            ("cgroup limit (MB)", _mb(p["cgroup_limit"]) if p["cgroup_limit"] else "none"),
            ("Threads", p["threads"]),
            ("Open files", p["open_files"]),
            ("Heap walked (MB)", _mb(r["heap"]["bytes"])),
            ("Objects walked", r["heap"]["objects"]),
        ]
    )


def _gc(r: Mapping[str, Any]) -> list[str]:
    g = r["gc"]
    rows = [
        (
            f"Gen {x['generation']}",
            x["collections"],
            x["collected"],
            x["uncollectable"],
            f"{x['count']}/{x['threshold']}",
        )
        for x in g["generations"]
    ]
    lines = _table(["Generation", "Collections", "Collected", "Uncollectable", "Count"], rows)
    lines += _kv(
        [
            ("GC enabled", g["enabled"]),
            ("gc.garbage", g["garbage"]),
            ("Frozen objects", g["frozen"]),
        ]
    )
    if g["pauses"]:
        p = g["pauses"]
        lines += _kv(
            [
                ("Pauses recorded", p["samples"]),
                ("Pause max (ms)", p["max_ms"]),
                ("Pause p95 (ms)", p["p95_ms"]),
            ]
        )
    return lines


def _recommendations(recs: Sequence[Recommendation]) -> list[str]:
    if not recs:
        return ["[OK] No issues detected"]
    return [f"[{x.severity.upper()}] {x.message}\n    -> {x.suggestion}" for x in recs]


def _growth_rows(rows: Sequence[Any], top: int) -> list[tuple[object, ...]]:
    return [
        (
            g.name,
            f"{g.count_delta:+d}",
            f"{g.bytes_delta / 1024:+.2f}",
            f"{g.bytes_after / 1024:.2f}",
        )
        for g in rows[:top]
    ]


def _diff(diff: ReportDiff, top: int) -> list[str]:
    span = "" if diff.seconds is None else f" ({diff.seconds / 60:.1f} min earlier)"
    out = _kv(
        [
            ("Previous analysis", f"{diff.previous or 'given'}{span}"),
            ("RSS change (MB)", f"{diff.rss_delta / MiB:+.2f}"),
            ("Objects change", f"{diff.objects_delta:+d}"),
            ("Heap change (MB)", f"{diff.bytes_delta / MiB:+.2f}"),
        ]
    )
    header = ["Name", "CountDelta", "KBDelta", "KBNow"]
    grown_types = [g for g in diff.types if g.bytes_delta > 0 or g.count_delta > 0]
    grown_globals = [g for g in diff.globals if g.bytes_delta > 0 or g.count_delta > 0]
    out += ["Types that grew:", *_table(header, _growth_rows(grown_types, top))]
    out += ["Globals that grew:", *_table(header, _growth_rows(grown_globals, top))]
    return out


def _trend(v: LeakVerdict) -> list[str]:
    rows: list[tuple[str, object]] = [
        ("Verdict", "LEAKING" if v.leaking else "no leak detected"),
        ("Reason", v.reason),
        ("Points (windows)", f"{v.points} ({v.windows})"),
        ("RSS first -> last (MB)", f"{v.first:.2f} -> {v.last:.2f}"),
        ("Growth of minima (MB/h)", f"{v.growth_per_hour:.3f} (R²={v.r_squared:.2f})"),
    ]
    if v.hours_to_limit is not None:
        rows.append(("Hours to limit", v.hours_to_limit))
    return _kv(rows)


def format_text(
    report: Report | Mapping[str, Any],
    recommendations: Sequence[Recommendation] | None = None,
    thresholds: Thresholds | None = None,
    *,
    diff: ReportDiff | None = None,
    verdict: LeakVerdict | None = None,
) -> str:
    """The human-readable report, section by section.

    Parameters
    ----------
    report
        A report or its dict form.
    recommendations
        Findings to print; computed with :func:`recommend` and ``thresholds`` if None.
    thresholds
        Used only when ``recommendations`` is None.
    diff
        Growth since a previous analysis, shown as its own section.
    verdict
        Leak verdict on the memory series, shown as the "Memory Trend" section.
    """
    r = as_dict(report)
    if recommendations is None:
        recs: Sequence[Recommendation] = recommend(r, thresholds, verdict, diff)
    else:
        recs = recommendations
    when = datetime.fromisoformat(r["analysed_at"]).strftime("%Y-%m-%d %H:%M:%S")
    out = ["=== opsjobs Memory Analysis ===", f"Process ID: {r['pid']}", f"Analysis Time: {when}"]
    cov = r["coverage"]
    out.append(
        f"Coverage: {100 * cov['fraction']:.1f}% of tracked objects in {cov['elapsed_s']} s"
        + ((" ({}; not done: {})".format(*cut_short(cov))) if cov["cut_short"] else "")
    )
    out += ["", "=== Process Memory ===", *_process(r)]
    out += ["", "=== GC Statistics ===", *_gc(r)]
    rows: list[tuple[object, ...]] = [
        (
            g["module"],
            g["name"],
            g["type"],
            "" if g["length"] is None else g["length"],
            ("~" if g.get("estimated") else "") + f"{g['deep_bytes'] / 1024:.2f}",
        )
        for g in r["globals"]
    ]
    out += [
        "",
        "=== Global Variable Sizes ===",
        *_table(["Module", "Name", "Type", "Count", "SizeKB"], rows),
    ]
    if any(g.get("estimated") for g in r["globals"]):
        out.append("~ estimated from a sample of the container's items")
    rows = [
        (c["type"], c["length"], f"{c['shallow_bytes'] / 1024:.2f}", "; ".join(c["holders"]) or "?")
        for c in r["containers"]
    ]
    out += [
        "",
        "=== Largest Dicts and Lists ===",
        *_table(["Type", "Length", "ShallowKB", "Held by"], rows),
    ]
    if r["strings"] is not None:
        s = r["strings"]
        out += [
            "",
            "=== Duplicate Strings ===",
            *_kv(
                [
                    ("Strings seen", s["strings_seen"]),
                    ("Duplicated values", s["duplicated_values"]),
                    ("Copies", s["copies"]),
                    ("Wasted (MB)", _mb(s["wasted_bytes"])),
                ]
            ),
        ]
        rows = [
            (x["copies"], f"{x['wasted_bytes'] / 1024:.2f}", repr(x["preview"])) for x in s["top"]
        ]
        out += _table(["Copies", "WastedKB", "Value"], rows)
    rows = [
        (t["type"], t["count"], f"{t['bytes'] / 1024:.2f}")
        for t in r["heap"]["types"][: r["top_count"]]
    ]
    out += ["", "=== Top Types ===", *_table(["Type", "Count", "SizeKB"], rows)]
    if diff is not None:
        out += ["", "=== Growth Since Previous Analysis ===", *_diff(diff, r["top_count"])]
    if verdict is not None:
        out += ["", "=== Memory Trend (RSS) ===", *_trend(verdict)]
    out += ["", "=== Recommendations ===", *_recommendations(recs)]
    return "\n".join(out) + "\n"


_TABLES: dict[str, tuple[str, list[str]]] = {
    "globals": (
        "globals",
        ["module", "name", "type", "length", "deep_bytes", "objects", "truncated", "estimated"],
    ),
    "containers": ("containers", ["type", "length", "shallow_bytes", "holders"]),
    "types": ("heap.types", ["type", "count", "bytes"]),
    "strings": ("strings.top", ["preview", "length", "copies", "size_each", "wasted_bytes"]),
}


def _rows(r: Mapping[str, Any], path: str) -> list[Mapping[str, Any]] | None:
    node: Any = r
    for part in path.split("."):
        if node is None:
            return None
        node = node[part]
    return node


def export_csv(report: Report | Mapping[str, Any], directory: str | Path) -> list[Path]:
    """Write ``globals.csv``, ``containers.csv``, ``types.csv`` (and ``strings.csv`` in deep
    mode) into ``directory``, creating it; return the files written.

    Parameters
    ----------
    report
        A report or its dict form.
    directory
        Target folder, e.g. ``data/results/<job id>/``.
    """
    r = as_dict(report)
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create CSV folder {folder}: {exc}") from exc
    written = []
    for name, (path, columns) in _TABLES.items():
        rows = _rows(r, path)
        if rows is None:
            continue
        target = folder / f"{name}.csv"
        with target.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for row in rows:
                writer.writerow(
                    [
                        "; ".join(row[c]) if isinstance(row.get(c), list) else row.get(c)
                        for c in columns
                    ]
                )
        written.append(target)
    return written


def report_metrics(report: Report | Mapping[str, Any]) -> dict[str, float]:
    """The flat numeric metrics a job records (``rss_mb``, ``objects``, ``gc_gen2_collections``)."""
    r = as_dict(report)
    p = r["process"]
    out: dict[str, float] = {
        "rss_mb": round(p["rss"] / MiB, 3),
        "vms_mb": round(p["vms"] / MiB, 3),
        "threads": p["threads"],
        "objects": r["heap"]["objects"],
        "heap_mb": round(r["heap"]["bytes"] / MiB, 3),
        "gc_garbage": r["gc"]["garbage"],
        "analysis_seconds": r["coverage"]["elapsed_s"],
        "coverage_pct": round(100 * r["coverage"]["fraction"], 2),
    }
    for key in ("uss", "pss", "swap"):
        if p[key] is not None:
            out[f"{key}_mb"] = round(p[key] / MiB, 3)
    if p["open_files"] is not None:
        out["open_files"] = p["open_files"]
    if p["cgroup_limit"]:
        out["cgroup_limit_mb"] = round(p["cgroup_limit"] / MiB, 3)
    for g in r["gc"]["generations"]:
        out[f"gc_gen{g['generation']}_collections"] = g["collections"]
    out["gc_uncollectable"] = sum(g["uncollectable"] for g in r["gc"]["generations"])
    if r["globals"]:
        out["top_global_mb"] = round(r["globals"][0]["deep_bytes"] / MiB, 3)
    if r["strings"] is not None:
        out["dup_string_waste_mb"] = round(r["strings"]["wasted_bytes"] / MiB, 3)
    return out
