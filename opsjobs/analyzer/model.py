"""The analysis report: plain dataclasses holding only names, numbers and short strings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from opsjobs.analyzer.gcstats import GcStats
from opsjobs.analyzer.globals import GlobalRow
from opsjobs.analyzer.heap import TypeRow
from opsjobs.analyzer.process import ProcessMemory
from opsjobs.analyzer.strings import DupStringStats
from opsjobs.errors import ValidationError

__all__ = ["ContainerRow", "Coverage", "HeapSummary", "Report", "as_dict"]

#: Bumped when the report's dict layout changes incompatibly.
REPORT_VERSION = 1


@dataclass(frozen=True)
class ContainerRow:
    """One of the largest dicts or lists, with hints of who holds it."""

    type: str
    length: int
    shallow_bytes: int
    holders: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HeapSummary:
    """Totals of the census and the types with the most bytes."""

    objects: int
    bytes: int
    types: list[TypeRow]


@dataclass(frozen=True)
class Coverage:
    """How much of the heap the analysis walked within its time budget."""

    tracked_total: int
    tracked_walked: int
    untracked_found: int
    fraction: float
    budget_s: float
    elapsed_s: float
    cut_short: bool
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """Result of :func:`opsjobs.analyzer.analyze`; ``json.dumps(report.to_dict())`` works."""

    pid: int
    analysed_at: str
    python: str
    deep: bool
    top_count: int
    process: ProcessMemory
    gc: GcStats
    heap: HeapSummary
    globals: list[GlobalRow]
    containers: list[ContainerRow]
    strings: DupStringStats | None
    coverage: Coverage
    version: int = REPORT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the whole report."""
        return asdict(self)


def as_dict(report: Report | Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a :class:`Report` or its ``to_dict()`` form (e.g. loaded from JSON)."""
    if isinstance(report, Report):
        return report.to_dict()
    if isinstance(report, Mapping) and "heap" in report and "process" in report:
        return report
    raise ValidationError("expected an analyzer Report or the dict from Report.to_dict()")
