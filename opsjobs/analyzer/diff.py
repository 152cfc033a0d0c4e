"""Growth between two reports: per type and per module global."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from opsjobs.analyzer.model import Report, as_dict

__all__ = ["Growth", "ReportDiff", "diff_reports"]


@dataclass(frozen=True)
class Growth:
    """Change of one type or one global between two reports."""

    name: str
    count_before: int
    count_after: int
    count_delta: int
    bytes_before: int
    bytes_after: int
    bytes_delta: int


@dataclass(frozen=True)
class ReportDiff:
    """What grew between two analyses, largest byte growth first.

    ``previous`` labels the earlier report (e.g. the job id it came from) for display.
    """

    seconds: float | None
    rss_delta: int
    objects_delta: int
    bytes_delta: int
    types: list[Growth] = field(default_factory=list)
    globals: list[Growth] = field(default_factory=list)
    previous: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)


def _growth(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[Growth]:
    rows = []
    for name in before.keys() | after.keys():
        c0, b0 = before.get(name, (0, 0))
        c1, b1 = after.get(name, (0, 0))
        if (c0, b0) != (c1, b1):
            rows.append(Growth(name, c0, c1, c1 - c0, b0, b1, b1 - b0))
    rows.sort(key=lambda g: (g.bytes_delta, g.count_delta), reverse=True)
    return rows


def _types(report: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    return {row["type"]: (row["count"], row["bytes"]) for row in report["heap"]["types"]}


def _globals(report: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    out = {}
    for row in report["globals"]:
        count = row["length"] if row["length"] is not None else row["objects"]
        out[f"{row['module']}.{row['name']}"] = (count, row["deep_bytes"])
    return out


def _seconds(before: Mapping[str, Any], after: Mapping[str, Any]) -> float | None:
    try:
        t0 = datetime.fromisoformat(before["analysed_at"])
        t1 = datetime.fromisoformat(after["analysed_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return (t1 - t0).total_seconds()


def diff_reports(
    before: Report | Mapping[str, Any],
    after: Report | Mapping[str, Any],
    top_count: int | None = None,
    previous: str | None = None,
) -> ReportDiff:
    """Compare two reports of the same process (or their ``to_dict()`` forms).

    A type or global missing from one report (below its ``top`` tables) counts as zero
    there, so a newly large global shows its whole size as growth.

    Parameters
    ----------
    before, after
        The earlier and the later report.
    top_count
        Keep only this many rows per table (all by default).
    previous
        A label of the earlier report kept in the result (e.g. its job id).
    """
    b, a = as_dict(before), as_dict(after)
    types = _growth(_types(b), _types(a))
    globs = _growth(_globals(b), _globals(a))
    if top_count is not None:
        types, globs = types[:top_count], globs[:top_count]
    return ReportDiff(
        seconds=_seconds(b, a),
        rss_delta=a["process"]["rss"] - b["process"]["rss"],
        objects_delta=a["heap"]["objects"] - b["heap"]["objects"],
        bytes_delta=a["heap"]["bytes"] - b["heap"]["bytes"],
        types=types,
        globals=globs,
        previous=previous,
    )
