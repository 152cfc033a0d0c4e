"""Live memory analysis of the running Python process.

``analyze()`` walks the heap once within a time budget and returns a :class:`Report`;
the other functions are pure and work on reports (or their dicts) and memory series.
"""

from __future__ import annotations

from opsjobs.analyzer.core import analyze
from opsjobs.analyzer.diff import Growth, ReportDiff, diff_reports
from opsjobs.analyzer.gcstats import GcPauseRecorder
from opsjobs.analyzer.leaks import LeakVerdict, leak_verdict
from opsjobs.analyzer.model import Report
from opsjobs.analyzer.process import cgroup_memory_limit
from opsjobs.analyzer.recommend import Recommendation, Thresholds, recommend
from opsjobs.analyzer.report import export_csv, format_text, report_metrics

__all__ = [
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
