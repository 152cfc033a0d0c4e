"""Memory trend charts, a job's memory and per-name run history charts as PNG bytes, drawn
with matplotlib's object API (no pyplot, no GUI). Each ``*_figure`` builds the figure (tests
look at its axes and lines), each ``*_chart`` renders it.

They read the same with 1 point as with 10,000: every series has markers while it has few
enough points to tell apart; a time axis spans at least :data:`MIN_SPAN` (the Memory tab's:
the chosen window), so its ticks are times, never fractions of a second; a value axis around
one value gets room on both sides; counts are labelled as integers, with thousands separators.

matplotlib is imported on the first chart only, so the dashboard starts without it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from opsjobs.dashboard.data import MemoryView
from opsjobs.dashboard.jobmem import JobMemory
from opsjobs.model import Job, JobState

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "MIN_SPAN",
    "history_chart",
    "history_figure",
    "job_memory_chart",
    "job_memory_figure",
    "memory_chart",
    "memory_figure",
    "png",
]

_COLOURS = ("#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626")
#: Line style and marker per series of one host (the host gives the colour): with one point
#: a line style shows nothing, so the marker tells them apart.
_GC_STYLES = {
    "gc_gen0_collections": (":", "o"),
    "gc_gen1_collections": ("--", "s"),
    "gc_gen2_collections": ("-", "^"),
}
_MEM_STYLES = {"rss_mb": ("-", "o"), "uss_mb": ("--", "s")}
#: The narrowest time axis (seconds): one point or a few seconds of points sit inside it.
MIN_SPAN = 3600.0


def _figure(width: float, height: float, panels: int) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    return fig, list(axes)


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def markers(n: int, shape: str = "o") -> dict[str, Any]:
    """Marker style for a series of ``n`` points: clear ``shape`` markers while they can be
    told apart, small ones up to a few hundred, none for thousands (the line is the shape)."""
    if n <= 60:
        return {"marker": shape, "markersize": 4.5}
    if n <= 600:
        return {"marker": shape, "markersize": 2.0}
    return {"marker": None}


def _when(ts: float) -> float:
    """Epoch seconds as matplotlib's date number (the axes get date locators explicitly)."""
    from matplotlib.dates import date2num

    return float(date2num(datetime.fromtimestamp(ts, tz=timezone.utc)))


def _style(ax: Axes, title: str, unit: str) -> None:
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold", color="#1f2937")
    ax.set_ylabel(unit, color="#6b7280")
    ax.grid(True, color="#e5e7eb", lw=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#d1d5db")
    ax.tick_params(colors="#4b5563", labelsize=8)


def _time_axis(
    ax: Axes, lo: float, hi: float, min_span: float = MIN_SPAN, *, pad: float = 0.03
) -> None:
    """Times from ``lo`` to ``hi`` (epoch seconds, widened to ``min_span`` around their
    middle, then by ``pad`` of the span on each side) with concise UTC date labels."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    if hi - lo < min_span:
        mid = (lo + hi) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    margin = (hi - lo) * pad
    ax.set_xlim(_when(lo - margin), _when(hi + margin))
    locator = AutoDateLocator(minticks=3, maxticks=8, tz=timezone.utc)
    ax.xaxis.set_major_locator(locator)
    offsets = ["", "%Y", "%Y-%b", "%Y-%b-%d", "%Y-%b-%d", "%Y-%b-%d %H:%M"]
    ax.xaxis.set_major_formatter(
        ConciseDateFormatter(locator, tz=timezone.utc, offset_formats=[f"{o} UTC" for o in offsets])
    )


def _value_axis(ax: Axes, values: Sequence[float], *, integer: bool, floor: float | None) -> None:
    """Room around a single value (no ``120.00 120.00``), integer ticks for counts, and tick
    labels with thousands separators and only the decimals the tick step needs."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=integer, min_n_ticks=3))
    if values:
        lo, hi = min(values), max(values)
        if hi - lo < max(abs(hi) * 1e-3, 1e-9):
            pad = max(abs(hi) * 0.1, 1.0)
            lo, hi = lo - pad, hi + pad
        else:
            pad = (hi - lo) * 0.08
            lo, hi = lo - pad, hi + pad
        if floor is not None:
            lo = max(lo, floor)
        ax.set_ylim(lo, hi)

    def label(value: float, _: int) -> str:
        ticks = ax.yaxis.get_majorticklocs()
        step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
        decimals = 0 if integer or step >= 1 else min(3, math.ceil(-math.log10(step)))
        return f"{value:,.{decimals}f}"

    ax.yaxis.set_major_formatter(FuncFormatter(label))


def _legend(ax: Axes) -> None:
    """Above the plot, right of the title: it never hides a point."""
    ax.legend(fontsize=7, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2)


def _empty(ax: Axes, text: str) -> None:
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#9ca3af")


def memory_figure(view: MemoryView, *, width: float = 12.0, height: float = 3.6) -> Figure:
    """Two panels side by side: rss (solid) and uss (dashed) in MB, and gc collections per
    generation, one colour per host / worker; the time axis spans the chosen window."""
    fig, (mem, gc) = _figure(width, height, 2)
    labels = sorted({label for by in view.series.values() for label in by})
    colour = {label: _COLOURS[i % len(_COLOURS)] for i, label in enumerate(labels)}
    values: dict[str, list[float]] = {"mem": [], "gc": []}
    for metric, (style, shape) in _MEM_STYLES.items():
        for label, pts in sorted(view.series.get(metric, {}).items()):
            ys = [v for _, v in pts]
            values["mem"] += ys
            mem.plot(
                [_when(t) for t, _ in pts], ys, style, color=colour[label], lw=1.6,
                label=f"{metric.split('_')[0]} {label}", **markers(len(pts), shape),
            )  # fmt: skip
    for metric, (style, shape) in _GC_STYLES.items():
        for label, pts in sorted(view.series.get(metric, {}).items()):
            ys = [v for _, v in pts]
            values["gc"] += ys
            gc.plot(
                [_when(t) for t, _ in pts], ys, style, color=colour[label], lw=1.4,
                label=f"{metric.split('_')[1]} {label}", **markers(len(pts), shape),
            )  # fmt: skip
    times = [t for by in view.series.values() for pts in by.values() for t, _ in pts]
    window = view.until > view.since
    lo = view.since if window else min(times, default=0.0)
    hi = view.until if window else max(times, default=0.0)
    panels = ((mem, "Memory", "MB", "mem", False), (gc, "GC collections", "count", "gc", True))
    for ax, title, unit, key, integer in panels:
        _style(ax, title, unit)
        _time_axis(ax, lo, hi, pad=0.0 if window else 0.03)
        if ax.lines:
            _value_axis(ax, values[key], integer=integer, floor=0.0)
            _legend(ax)
        else:
            _empty(ax, "no data in this window")
    return fig


def memory_chart(view: MemoryView, *, width: float = 12.0, height: float = 3.6) -> bytes:
    """:func:`memory_figure` as PNG."""
    return png(memory_figure(view, width=width, height=height))


def job_memory_figure(mem: JobMemory, *, width: float = 10.0, height: float = 3.0) -> Figure:
    """One job's memory (see :mod:`opsjobs.dashboard.jobmem`): its series with markers, the
    marked point ringed and labelled, the measured peak of the run as a dashed line."""
    fig, (ax,) = _figure(width, height, 1)
    values: list[float] = []
    times: list[float] = []
    for i, (label, pts) in enumerate(sorted(mem.series.items())):
        ys = [v for _, v in pts]
        values += ys
        times += [t for t, _ in pts]
        ax.plot(
            [_when(t) for t, _ in pts], ys, "-", color=_COLOURS[i % len(_COLOURS)], lw=1.6,
            label=label, **markers(len(pts)),
        )  # fmt: skip
    if mem.mark is not None:
        at, value, text = mem.mark
        times.append(at)
        values.append(value)
        ax.plot([_when(at)], [value], "o", ms=11, mfc="none", mec="#dc2626", mew=2.2, label=text)
        ax.axvline(_when(at), color="#dc2626", lw=0.9, ls=":")
        ax.annotate(
            f"{text}: {value:,.1f} MB", (_when(at), value), xytext=(-10, 10),
            textcoords="offset points", fontsize=8, color="#991b1b", ha="right",
        )  # fmt: skip
    if mem.peak_mb is not None and not any(k.startswith("peak") for k in mem.series):
        values.append(mem.peak_mb)
        ax.axhline(mem.peak_mb, color="#6b7280", lw=1.0, ls="--", label="peak RSS of the run")
    _style(ax, mem.title, "MB")
    _time_axis(ax, min(times, default=0.0), max(times, default=0.0), mem.min_span)
    if values:
        _value_axis(ax, values, integer=False, floor=0.0)
        ax.legend(fontsize=7, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3)
    else:
        _empty(ax, "no memory recorded")
    return fig


def job_memory_chart(mem: JobMemory, *, width: float = 10.0, height: float = 3.0) -> bytes:
    """:func:`job_memory_figure` as PNG."""
    return png(job_memory_figure(mem, width=width, height=height))


def history_figure(jobs: Sequence[Job], *, width: float = 12.0, height: float = 3.4) -> Figure:
    """The runs of one job name, oldest first, numbered 1..n (runs of a name are often
    seconds or days apart: a time axis would bunch them): runtime per run, a dot coloured by
    outcome, and the peak memory of each run in MiB. Both value axes start at 0."""
    from matplotlib.ticker import MaxNLocator

    fig, (rt, mem) = _figure(width, height, 2)
    runs = list(enumerate(jobs, start=1))
    done = [(n, j) for n, j in runs if j.runtime is not None]
    size = 22 if len(done) <= 100 else 6
    if done:
        runtimes = [float(j.runtime or 0.0) for _, j in done]
        rt.plot([n for n, _ in done], runtimes, "-", color="#9ca3af", lw=1.0)
        outcomes = ((True, "#059669", "succeeded"), (False, "#dc2626", "failed or stopped"))
        for ok, colour, label in outcomes:
            pts = [(n, j.runtime) for n, j in done if _ok(j) is ok]
            if pts:
                xs, ys = zip(*pts, strict=True)
                rt.scatter(xs, ys, s=size, color=colour, label=label, zorder=3)
    peaks = [(n, j.peak_rss / 2**20) for n, j in runs if j.peak_rss is not None]
    if peaks:
        xs, ys = zip(*peaks, strict=True)
        mem.plot(xs, ys, "-", color="#2563eb", lw=1.4, **markers(len(peaks)))
    span = ""
    if jobs:
        first, last = (_day(j.submitted_at) for j in (jobs[0], jobs[-1]))
        span = f"run, oldest to newest ({first} → {last})" if first != last else f"run ({first})"
    panels = ((rt, "Runtime", "seconds", done), (mem, "Peak memory (RSS)", "MiB", peaks))
    for ax, title, unit, found in panels:
        _style(ax, title, unit)
        ax.set_xlabel(span, color="#6b7280", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if found:
            shown = (
                [float(j.runtime or 0.0) for _, j in done] if ax is rt else [v for _, v in peaks]
            )
            _value_axis(ax, [0.0, *shown], integer=False, floor=0.0)
            ax.set_xlim(0.5, len(jobs) + 0.5)
        else:
            ax.set_xticks([])
            _empty(ax, "no data")
    if rt.collections:
        rt.legend(fontsize=7, frameon=False, loc="lower right")
    return fig


def history_chart(jobs: Sequence[Job], *, width: float = 12.0, height: float = 3.4) -> bytes:
    """:func:`history_figure` as PNG."""
    return png(history_figure(jobs, width=width, height=height))


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _ok(job: Job) -> bool:
    return job.state is JobState.SUCCEEDED
