"""Memory trend charts and per-name run history charts as PNG bytes, drawn with matplotlib's
object API (no pyplot, no GUI).

matplotlib is imported on the first chart only, so the dashboard starts without it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timezone

from opsjobs.dashboard.data import MemoryView
from opsjobs.model import Job, JobState

__all__ = ["history_chart", "memory_chart"]

_COLOURS = ("#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626")
_GC_STYLES = {"gc_gen0_collections": ":", "gc_gen1_collections": "--", "gc_gen2_collections": "-"}


def memory_chart(view: MemoryView, *, width: float = 12.0, height: float = 3.6) -> bytes:
    """Two panels side by side: rss (solid) and uss (dashed) in MB, and gc collections per
    generation, one colour per host / worker. A panel without data spans the chosen window
    (no meaningless value axis, no 1970 time axis) and says so."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    mem, gc = fig.subplots(1, 2)
    labels = sorted({label for by in view.series.values() for label in by})
    colour = {label: _COLOURS[i % len(_COLOURS)] for i, label in enumerate(labels)}

    def times(points: list[tuple[float, float]]) -> list[datetime]:
        return [datetime.fromtimestamp(t, tz=timezone.utc) for t, _ in points]

    for metric, style in (("rss_mb", "-"), ("uss_mb", "--")):
        for label, pts in sorted(view.series.get(metric, {}).items()):
            name = f"{metric.split('_')[0]} {label}"
            ys = [v for _, v in pts]
            mem.plot(times(pts), ys, style, color=colour[label], lw=1.6, label=name, marker=".")
    for metric, style in _GC_STYLES.items():
        for label, pts in sorted(view.series.get(metric, {}).items()):
            gen = metric.split("_")[1]
            ys = [v for _, v in pts]
            gc.plot(times(pts), ys, style, color=colour[label], lw=1.4, label=f"{gen} {label}")
    for ax, title, unit in ((mem, "Memory", "MB"), (gc, "GC collections", "count")):
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold", color="#1f2937")
        ax.set_ylabel(unit, color="#6b7280")
        ax.grid(True, color="#e5e7eb", lw=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_color("#d1d5db")
        ax.tick_params(colors="#4b5563", labelsize=8)
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        if ax.lines:
            ax.legend(fontsize=7, frameon=False, loc="upper left")
        else:
            if view.until > view.since:
                ax.set_xlim(*times([(view.since, 0.0), (view.until, 0.0)]))
            else:
                ax.set_xticks([])
            ax.set_yticks([])
            ax.text(
                0.5,
                0.5,
                "no data in this window",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="#9ca3af",
            )
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def history_chart(jobs: Sequence[Job], *, width: float = 12.0, height: float = 3.4) -> bytes:
    """The runs of one job name, oldest first, numbered 1..n (runs of a name are often
    seconds or days apart: a time axis would bunch them): runtime per run, a dot coloured by
    outcome, and the peak memory of each run in MiB. Both value axes start at 0."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    rt, mem = fig.subplots(1, 2)
    runs = list(enumerate(jobs, start=1))
    done = [(n, j) for n, j in runs if j.runtime is not None]
    if done:
        rt.plot([n for n, _ in done], [j.runtime for _, j in done], "-", color="#9ca3af", lw=1.0)
        outcomes = ((True, "#059669", "succeeded"), (False, "#dc2626", "failed or stopped"))
        for ok, colour, label in outcomes:
            pts = [(n, j.runtime) for n, j in done if _ok(j) is ok]
            if pts:
                xs, ys = zip(*pts, strict=True)
                rt.scatter(xs, ys, s=22, color=colour, label=label, zorder=3)
    peaks = [(n, j.peak_rss / 2**20) for n, j in runs if j.peak_rss is not None]
    if peaks:
        xs, ys = zip(*peaks, strict=True)
        mem.plot(xs, ys, "-", color="#2563eb", lw=1.4, marker=".")
    span = ""
    if jobs:
        first, last = (_day(j.submitted_at) for j in (jobs[0], jobs[-1]))
        span = f"run, oldest to newest ({first} → {last})" if first != last else f"run ({first})"
    panels = ((rt, "Runtime", "seconds"), (mem, "Peak memory (RSS)", "MiB"))
    for ax, title, unit in panels:
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold", color="#1f2937")
        ax.set_ylabel(unit, color="#6b7280")
        ax.set_xlabel(span, color="#6b7280", fontsize=8)
        ax.grid(True, color="#e5e7eb", lw=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.tick_params(colors="#4b5563", labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.lines or ax.collections:
            ax.set_ylim(bottom=0)
            ax.set_xlim(0.5, len(jobs) + 0.5)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    if rt.collections:
        rt.legend(fontsize=7, frameon=False, loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _ok(job: Job) -> bool:
    return job.state is JobState.SUCCEEDED
