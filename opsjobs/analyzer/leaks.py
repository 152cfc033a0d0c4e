"""Leak verdict on a memory series: the trend of per-window minima.

A process that allocates and frees has a saw-tooth memory curve; its peaks say little.
The minimum of each time window is the memory the process keeps, so a steady upward line
through those minima (good linear fit, positive slope) that is still rising in the latest
windows is the signature of a leak; a rise that levelled off is warm-up or a bounded cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from opsjobs.errors import ValidationError

__all__ = ["LeakVerdict", "leak_verdict"]


@dataclass(frozen=True)
class LeakVerdict:
    """Outcome of :func:`leak_verdict`; values are in the series' unit (MB by default)."""

    leaking: bool
    reason: str
    points: int
    windows: int
    growth_per_hour: float
    r_squared: float
    first: float
    last: float
    hours_to_limit: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)


#: The least span of data (hours) a leak verdict is given on: growth over less is a process
#: warming up as often as a leak (README: "Alerts").
MIN_LEAK_SPAN_HOURS = 0.5


def _seconds(t: float | datetime) -> float:
    return t.timestamp() if isinstance(t, datetime) else float(t)


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=False))
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0:
        return 0.0, my, 0.0
    slope = sxy / sxx
    r2 = 1.0 if syy == 0 else (sxy * sxy) / (sxx * syy)
    return slope, my - slope * mx, r2


def _window_minima(pts: list[tuple[float, float]], windows: int) -> list[tuple[float, float]]:
    t0, t1 = pts[0][0], pts[-1][0]
    width = (t1 - t0) / windows or 1.0
    best: dict[int, tuple[float, float]] = {}
    for t, v in pts:
        w = min(windows - 1, int((t - t0) / width))
        if w not in best or v < best[w][1]:
            best[w] = (t, v)
    return [best[w] for w in sorted(best)]


def leak_verdict(
    points: Sequence[tuple[float | datetime, float]],
    *,
    windows: int = 6,
    min_points: int = 6,
    min_growth_per_hour: float = 1.0,
    min_r_squared: float = 0.8,
    min_total_growth: float = 1.0,
    limit: float | None = None,
    min_span_hours: float = MIN_LEAK_SPAN_HOURS,
) -> LeakVerdict:
    """Decide whether a memory series (e.g. ``rss_mb`` over time) shows sustained growth.

    Parameters
    ----------
    points
        ``(timestamp, value)`` pairs; timestamps in epoch seconds or ``datetime``.
    windows
        The time span is cut into this many equal windows; each keeps its minimum.
    min_points
        Fewer points than this give a "not enough data" verdict (never a leak).
    min_growth_per_hour
        Slope of the minima (value units per hour) above which growth counts.
    min_r_squared
        Fit quality (R²) the minima must reach for the growth to count as sustained.
    min_total_growth
        Growth of the fitted line over the whole span that must also be exceeded.
    limit
        Value (same unit) at which the process fails, e.g. the cgroup limit in MB; gives
        ``hours_to_limit``.
    min_span_hours
        Points spanning less than this give "not enough data" (never a leak): a process
        warming up after its start grows for minutes, which is no leak.
    """
    if windows < 2:
        raise ValidationError("windows must be at least 2")
    pts = sorted((_seconds(t), float(v)) for t, v in points)
    span = pts[-1][0] - pts[0][0] if pts else 0.0
    if len(pts) < max(min_points, 2) or span <= 0 or span < 3600.0 * min_span_hours:
        first = pts[0][1] if pts else 0.0
        last = pts[-1][1] if pts else 0.0
        reason = "not enough data"
        if len(pts) >= max(min_points, 2) and span > 0:
            reason += (
                f" (the points span {span / 60:.0f} min of the {60 * min_span_hours:g} needed)"
            )
        return LeakVerdict(False, reason, len(pts), 0, 0.0, 0.0, first, last, None)
    minima = _window_minima(pts, min(windows, len(pts)))
    xs = [t / 3600.0 for t, _ in minima]
    slope, intercept, r2 = _fit(xs, [v for _, v in minima])
    span_h = (pts[-1][0] - pts[0][0]) / 3600.0
    fitted_last = slope * (pts[-1][0] / 3600.0) + intercept
    # A curve that rose and then levelled off (allocator warm-up, a cache reaching its bound)
    # is not a leak: the latest half of the windows must still rise, at a quarter of the
    # overall slope at least.
    recent = minima[len(minima) // 2 :]
    recent_slope = _fit([t / 3600.0 for t, _ in recent], [v for _, v in recent])[0]
    growing = (
        len(minima) >= 3
        and slope > min_growth_per_hour
        and r2 >= min_r_squared
        and slope * span_h > min_total_growth
    )
    leaking = growing and recent_slope > 0.25 * slope
    if leaking:
        reason = f"minima grow {slope:.2f}/h with R²={r2:.2f}"
    elif growing:
        reason = "grew, then levelled off (warm-up or a bounded cache)"
    elif slope <= min_growth_per_hour:
        reason = "no sustained growth"
    else:
        reason = f"growth {slope:.2f}/h but irregular (R²={r2:.2f})"
    hours = None
    if leaking and limit is not None and slope > 0:
        hours = max(0.0, (limit - fitted_last) / slope)
    return LeakVerdict(
        leaking=leaking,
        reason=reason,
        points=len(pts),
        windows=len(minima),
        growth_per_hour=round(slope, 4),
        r_squared=round(r2, 4),
        first=pts[0][1],
        last=pts[-1][1],
        hours_to_limit=None if hours is None else round(hours, 3),
    )
