"""Verdicts: pure evaluation of a rule on the points of one series (no store, no clock).

A rule *holds* at a point when its condition is true of the point's value — or, for a rate
condition, of the counter's increase over the window ending at that point, per ``per_seconds``
(a decrease is a counter reset: the new value counts as the increase). It *fires* at the newest
point when it held at each of the last ``for_points`` points and, with ``for_seconds``, at every
point back to one at least ``for_seconds`` older than the newest.

A rate needs data: it is defined at a point only when the points of its window span at least
:data:`MIN_RATE_SPAN` of the window (30 minutes for the default one-hour ``gc-gen2-rate``).
Without that a start-up collection between two analyses seconds apart read as a storm (one
collection in 4 s is 15 a minute) and opened a warning on a healthy process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opsjobs.alerts.model import AlertRule
from opsjobs.model import Metric

__all__ = [
    "MAX_POINTS",
    "MIN_RATE_SPAN",
    "POINTS_LOOKBACK",
    "Verdict",
    "judge",
    "lookback",
    "rate_at",
]

#: How far back points are read for rules counting points or durations (seconds).
POINTS_LOOKBACK = 86_400.0
#: Most points of one series read for one evaluation.
MAX_POINTS = 2_000
#: The share of its window a rate's points must span before the rate is defined.
MIN_RATE_SPAN = 0.5


@dataclass(frozen=True)
class Verdict:
    """The rule at the newest point: does it fire, does its condition hold, on what value."""

    fires: bool
    holds: bool
    value: float | None


def lookback(rule: AlertRule) -> float:
    """Seconds before the newest point whose points the rule needs."""
    seconds = rule.for_seconds
    if rule.condition.is_rate:
        seconds += rule.window_seconds
    if rule.for_points > 1 or rule.for_seconds:
        seconds += POINTS_LOOKBACK
    return seconds


def rate_at(
    points: Sequence[Metric], i: int, window: float, per: float, *, min_span: float = 0.0
) -> float | None:
    """The increase per ``per`` seconds over the ``window`` ending at ``points[i]``; None
    without two points in the window, or when they span less than ``min_span`` seconds."""
    end = points[i].at
    first = i
    while first > 0 and points[first - 1].at > end - window:
        first -= 1
    span = end - points[first].at
    if first == i or span <= 0 or span < min_span:
        return None
    increase = 0.0
    for a, b in zip(points[first:i], points[first + 1 : i + 1], strict=True):
        increase += b.value - a.value if b.value >= a.value else b.value
    return increase / span * per


def judge(rule: AlertRule, points: Sequence[Metric]) -> Verdict:
    """The :class:`Verdict` of ``rule`` on ``points`` (one series, oldest first)."""
    if not points:
        return Verdict(False, False, None)
    cache: dict[int, float | None] = {}

    def value(i: int) -> float | None:
        if i not in cache:
            if rule.condition.is_rate:
                cache[i] = rate_at(
                    points,
                    i,
                    rule.window_seconds,
                    rule.per_seconds,
                    min_span=MIN_RATE_SPAN * rule.window_seconds,
                )
            else:
                cache[i] = points[i].value
        return cache[i]

    def holds(i: int) -> bool:
        v = value(i)
        return v is not None and rule.condition.holds(v, rule.threshold)

    last = len(points) - 1
    now = value(last)
    if not holds(last):
        return Verdict(False, False, now)
    if len(points) < rule.for_points:
        return Verdict(False, True, now)
    fires = all(holds(i) for i in range(last - rule.for_points + 1, last + 1))
    if fires and rule.for_seconds:
        start = points[last].at - rule.for_seconds
        i, old_enough = last, False
        while i >= 0 and holds(i):
            if points[i].at <= start:
                old_enough = True
                break
            i -= 1
        fires = old_enough
    return Verdict(fires, True, now)
