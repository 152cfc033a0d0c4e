"""Memory trend charts as PNG bytes, drawn with matplotlib's object API (no pyplot, no GUI).

matplotlib is imported on the first chart only, so the dashboard starts without it.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone

from opsjobs.dashboard.data import MemoryView

__all__ = ["memory_chart"]

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
