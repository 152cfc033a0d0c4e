"""Recommendations from a report (and optionally a leak verdict), with tunable thresholds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from opsjobs.analyzer.diff import ReportDiff
from opsjobs.analyzer.leaks import LeakVerdict
from opsjobs.analyzer.model import Report, as_dict

__all__ = ["Recommendation", "Thresholds", "recommend"]

MiB = 1024 * 1024
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Thresholds:
    """Where a figure turns into a recommendation. All sizes in bytes."""

    rss_warning: int = 1024 * MiB
    cgroup_warning_fraction: float = 0.80
    cgroup_critical_fraction: float = 0.95
    full_gc_per_minute: float = 1.0
    #: Fewer full collections than this say nothing about a rate (young processes).
    full_gc_min_count: int = 5
    #: Nor do the first minutes, while a process builds its state (each large build step
    #: triggers a full collection).
    full_gc_min_uptime_s: float = 600.0
    gc_pause_warning_ms: float = 100.0
    dup_string_waste_info: int = 10 * MiB
    dup_string_waste_warning: int = 50 * MiB
    global_share: float = 0.25
    global_min_bytes: int = 32 * MiB
    leak_critical_hours: float = 24.0
    coverage_info_fraction: float = 0.99
    growth_info_bytes: int = 16 * MiB
    #: A global that grew in each of the last two diffs by this much in all is named.
    growing_global_bytes: int = 1 * MiB


@dataclass(frozen=True)
class Recommendation:
    """One finding with a concrete suggestion."""

    severity: Severity
    code: str
    message: str
    suggestion: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)


def _mb(n: float) -> str:
    return f"{n / MiB:.1f} MB"


def _memory(r: Mapping[str, Any], th: Thresholds) -> list[Recommendation]:
    out = []
    rss, limit = r["process"]["rss"], r["process"]["cgroup_limit"]
    if limit and rss >= th.cgroup_warning_fraction * limit:
        sev: Severity = "critical" if rss >= th.cgroup_critical_fraction * limit else "warning"
        out.append(
            Recommendation(
                sev,
                "near-cgroup-limit",
                f"RSS {_mb(rss)} is {100 * rss / limit:.0f}% of the cgroup limit {_mb(limit)}",
                "Find what grows (diff two reports), lower caches, or raise the container limit.",
            )
        )
    elif rss >= th.rss_warning:
        out.append(
            Recommendation(
                "warning",
                "high-rss",
                f"RSS {_mb(rss)} is above {_mb(th.rss_warning)}",
                "Check the largest globals and containers below; bound caches and queues.",
            )
        )
    return out


def _gc(r: Mapping[str, Any], th: Thresholds) -> list[Recommendation]:
    out = []
    gens = r["gc"]["generations"]
    minutes = max(r["process"]["uptime_s"] / 60.0, 1.0)
    if gens:
        count = gens[-1]["collections"]
        full = count / minutes
        old_enough = r["process"]["uptime_s"] >= th.full_gc_min_uptime_s
        if full > th.full_gc_per_minute and count >= th.full_gc_min_count and old_enough:
            out.append(
                Recommendation(
                    "warning",
                    "frequent-full-gc",
                    f"{full:.1f} full (generation {len(gens) - 1}) collections per minute",
                    "Many long-lived container objects are being created; reuse them, or raise "
                    "gc thresholds / call gc.freeze() after start-up.",
                )
            )
    uncollectable = sum(g["uncollectable"] for g in gens) + r["gc"]["garbage"]
    if uncollectable:
        out.append(
            Recommendation(
                "warning",
                "uncollectable",
                f"{uncollectable} uncollectable objects in gc.garbage",
                "Inspect gc.garbage: objects with failing finalizers in cycles are never freed.",
            )
        )
    pauses = r["gc"]["pauses"]
    if pauses and pauses["max_ms"] > th.gc_pause_warning_ms:
        out.append(
            Recommendation(
                "warning",
                "long-gc-pause",
                f"longest GC pause {pauses['max_ms']:.0f} ms",
                "Reduce the number of live container objects or freeze the start-up heap.",
            )
        )
    return out


def _heap(r: Mapping[str, Any], th: Thresholds) -> list[Recommendation]:
    out = []
    strings = r["strings"]
    if strings and strings["wasted_bytes"] >= th.dup_string_waste_info:
        sev: Severity = (
            "warning" if strings["wasted_bytes"] >= th.dup_string_waste_warning else "info"
        )
        out.append(
            Recommendation(
                sev,
                "duplicate-strings",
                f"duplicate strings waste {_mb(strings['wasted_bytes'])}",
                "Intern repeated values (sys.intern) or share them when parsing input.",
            )
        )
    heap_bytes = r["heap"]["bytes"] or 1
    for row in r["globals"][:1]:
        share = row["deep_bytes"] / heap_bytes
        if share >= th.global_share and row["deep_bytes"] >= th.global_min_bytes:
            out.append(
                Recommendation(
                    "warning",
                    "dominant-global",
                    f"global {row['module']}.{row['name']} holds {_mb(row['deep_bytes'])} "
                    f"({100 * share:.0f}% of the walked heap)",
                    "Bound it (maxsize, TTL, pruning) or move the data out of process.",
                )
            )
    cov = r["coverage"]
    if cov["cut_short"] or cov["fraction"] < th.coverage_info_fraction:
        # rounded down: a walk cut at 99.7 % must not read "covered 100%"
        covered = f"heap walk covered {math.floor(1000 * cov['fraction']) / 10:g}%"
        if cov["cut_short"]:
            why, not_done = cut_short(cov)
            covered = f"{why} ({covered}); not done: {not_done}"
        out.append(
            Recommendation(
                "info", "partial-walk", covered, "Raise time_budget for a complete picture."
            )
        )
    return out


#: How the census says it stopped at its object bound (core.analyze puts it first in skipped).
CENSUS_STOPPED = "census stopped"


def cut_short(coverage: Mapping[str, Any]) -> tuple[str, str]:
    """Why an analysis was cut short (its time budget, or the census's object bound) and what
    it did not do, for the report and its recommendation."""
    skipped = list(coverage.get("skipped") or ())
    not_done = ", ".join(skipped) or "the rest of the census"
    if skipped and skipped[0].startswith(CENSUS_STOPPED):
        return "stopped at the census's object bound", not_done
    return f"time budget of {coverage['budget_s']:g} s reached", not_done


def _top_growth(diff: ReportDiff | None) -> str:
    if diff is None:
        return ""
    rows = [g for g in (diff.globals[:1] + diff.types[:1]) if g.bytes_delta > 0]
    if not rows:
        return ""
    g = max(rows, key=lambda row: row.bytes_delta)
    return f"{g.name} (+{_mb(g.bytes_delta)}, {g.count_delta:+d} items)"


def _leak(verdict: LeakVerdict, th: Thresholds, diff: ReportDiff | None) -> list[Recommendation]:
    if not verdict.leaking:
        return []
    hours = verdict.hours_to_limit
    sev: Severity = (
        "critical" if hours is not None and hours < th.leak_critical_hours else "warning"
    )
    when = f"; limit reached in about {hours:.1f} h" if hours is not None else ""
    top = _top_growth(diff)
    suggestion = (
        f"Largest growth since the previous analysis: {top}; bound it or find who keeps adding."
        if top
        else "Diff two reports taken hours apart to see which type or global grows."
    )
    return [
        Recommendation(
            sev,
            "sustained-growth",
            f"memory grows {verdict.growth_per_hour:.1f} MB/h{when}",
            suggestion,
        )
    ]


def _growth(diff: ReportDiff, th: Thresholds) -> list[Recommendation]:
    rows = [g for g in (diff.globals[:1] + diff.types[:1]) if g.bytes_delta >= th.growth_info_bytes]
    if not rows:
        return []
    g = max(rows, key=lambda row: row.bytes_delta)
    return [
        Recommendation(
            "info",
            "growth-since-previous",
            f"{g.name} grew by {_mb(g.bytes_delta)} ({g.count_delta:+d} items) since the "
            "previous analysis",
            "Watch the next analyses: steady growth of the same name is a leak.",
        )
    ]


def _global_deltas(diff: ReportDiff | Mapping[str, Any]) -> dict[str, int]:
    rows = diff.to_dict()["globals"] if isinstance(diff, ReportDiff) else diff.get("globals")
    return {g["name"]: g["bytes_delta"] for g in rows or () if g["bytes_delta"] > 0}


def _growing(
    diff: ReportDiff, earlier: ReportDiff | Mapping[str, Any], th: Thresholds
) -> list[Recommendation]:
    """Globals that grew between each of the last three analyses (two diffs in a row)."""
    before = _global_deltas(earlier)
    rows = [
        (g.bytes_delta + before[g.name], g)
        for g in diff.globals
        if g.bytes_delta > 0 and g.name in before
    ]
    rows = [row for row in rows if row[0] >= th.growing_global_bytes]
    if not rows:
        return []
    rows.sort(key=lambda row: row[0], reverse=True)
    total, g = rows[0]
    others = ", ".join(row[1].name for row in rows[1:3])
    return [
        Recommendation(
            "warning",
            "growing-global",
            f"{g.name} grew in each of the last three analyses (+{_mb(total)}, "
            f"{g.count_delta:+d} items in the last)"
            + (f"; also growing: {others}" if others else ""),
            f"Bound {g.name} (maxsize, TTL, pruning) or find who keeps adding to it.",
        )
    ]


def recommend(
    report: Report | Mapping[str, Any],
    thresholds: Thresholds | None = None,
    verdict: LeakVerdict | None = None,
    diff: ReportDiff | None = None,
    earlier: ReportDiff | Mapping[str, Any] | None = None,
) -> list[Recommendation]:
    """Findings ordered critical first; an empty list means no issues.

    Parameters
    ----------
    report
        A report or its dict form.
    thresholds
        Limits to apply; :class:`Thresholds` defaults otherwise.
    verdict
        A :func:`~opsjobs.analyzer.leak_verdict` result on this process's memory series.
    diff
        :func:`~opsjobs.analyzer.diff_reports` of the previous analysis and this one: names
        the largest growth in the leak finding, and large growth becomes an info finding.
    earlier
        The diff before ``diff`` (the previous analysis against the one before it), or its
        ``to_dict()`` form: a global that grew in both, by
        :attr:`Thresholds.growing_global_bytes` in all, is named in a warning.
    """
    th = thresholds or Thresholds()
    r = as_dict(report)
    found = _memory(r, th) + _gc(r, th) + _heap(r, th)
    if verdict is not None:
        found += _leak(verdict, th, diff)
    if diff is not None and earlier is not None:
        found += _growing(diff, earlier, th)
    if diff is not None and not any(rec.code == "sustained-growth" for rec in found):
        found += _growth(diff, th)
    order = {"critical": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda rec: order[rec.severity])
