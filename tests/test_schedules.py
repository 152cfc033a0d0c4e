"""Pure schedule arithmetic: interval and cron fire times (DST in named zones), validation, and
the misfire plans."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from opsjobs.errors import ValidationError
from opsjobs.model import JobSpec
from opsjobs.schedules import (
    FireOutcome,
    Misfire,
    Schedule,
    TriggerKind,
    due_times,
    next_fire,
    plan_fires,
)

SPEC = JobSpec(name="job", kind="command", payload={"source": "pass"})
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def interval(every: float, created: float = 1000.0, **kw: object) -> Schedule:
    return Schedule(
        "s", SPEC, TriggerKind.INTERVAL, every_seconds=every, created_at=created, **kw
    ).validated()  # type: ignore[arg-type]


def cron(expr: str, tz: str = "UTC", **kw: object) -> Schedule:
    return Schedule("s", SPEC, TriggerKind.CRON, cron=expr, tz=tz, **kw).validated()  # type: ignore[arg-type]


def fires(schedule: Schedule, start: datetime, n: int) -> list[datetime]:
    zone = start.tzinfo
    out, t = [], start.timestamp()
    for _ in range(n):
        t = next_fire(schedule, t)
        out.append(datetime.fromtimestamp(t, zone))
    return out


def test_interval_grid_is_anchored_at_creation() -> None:
    s = interval(30)
    assert next_fire(s, 500) == 1030
    assert next_fire(s, 1000) == 1030
    assert next_fire(s, 1029.999) == 1030
    assert next_fire(s, 1030) == 1060  # strictly later
    assert next_fire(s, 1000 + 30 * 1_000_000 + 1) == 1000 + 30 * 1_000_001


def test_interval_ignores_dst() -> None:
    s = interval(3600, created=datetime(2024, 3, 31, 0, 0, tzinfo=BERLIN).timestamp())
    got = fires(s, datetime(2024, 3, 31, 0, 0, tzinfo=BERLIN), 3)
    assert [d.strftime("%H:%M%z") for d in got] == ["01:00+0100", "03:00+0200", "04:00+0200"]


def test_cron_daily_in_utc() -> None:
    s = cron("0 2 * * *")
    got = fires(s, datetime(2024, 5, 1, 3, 0, tzinfo=ZoneInfo("UTC")), 2)
    assert [d.isoformat() for d in got] == [
        "2024-05-02T02:00:00+00:00",
        "2024-05-03T02:00:00+00:00",
    ]


def test_cron_spring_forward_gap_fires_once_shifted() -> None:
    # 2024-03-31 in Berlin: 02:00 → 03:00. 02:00 and 02:30 do not exist that night.
    s = cron("0 2 * * *", "Europe/Berlin")
    got = fires(s, datetime(2024, 3, 29, 12, 0, tzinfo=BERLIN), 4)
    assert [d.isoformat() for d in got] == [
        "2024-03-30T02:00:00+01:00",
        "2024-03-31T03:00:00+02:00",  # the missing 02:00, once
        "2024-04-01T02:00:00+02:00",
        "2024-04-02T02:00:00+02:00",
    ]
    half = fires(
        cron("*/30 * * * *", "Europe/Berlin"), datetime(2024, 3, 31, 1, 10, tzinfo=BERLIN), 4
    )
    assert [d.strftime("%H:%M%z") for d in half] == [
        "01:30+0100",
        "03:00+0200",  # 02:00 and 03:00 land on the same instant: one fire
        "03:30+0200",
        "04:00+0200",
    ]


def test_cron_fall_back_repeated_hour_fires_once() -> None:
    # 2024-10-27 in Berlin: 03:00 CEST → 02:00 CET; 02:30 happens twice.
    s = cron("30 2 * * *", "Europe/Berlin")
    got = fires(s, datetime(2024, 10, 26, 12, 0, tzinfo=BERLIN), 3)
    assert [d.isoformat() for d in got] == [
        "2024-10-27T02:30:00+02:00",  # first occurrence only
        "2024-10-28T02:30:00+01:00",
        "2024-10-29T02:30:00+01:00",
    ]
    # Starting inside the repeated hour (second 02:10, CET) does not fire 02:30 again.
    second = datetime(2024, 10, 27, 2, 10, tzinfo=BERLIN, fold=1)
    assert fires(s, second, 1)[0].date().isoformat() == "2024-10-28"


def test_cron_new_york_weekday_schedule_across_dst() -> None:
    s = cron("15 9 * * 1-5", "America/New_York")
    got = fires(s, datetime(2024, 3, 8, 10, 0, tzinfo=NEW_YORK), 2)  # Friday; DST starts Sunday
    assert [d.isoformat() for d in got] == [
        "2024-03-11T09:15:00-04:00",
        "2024-03-12T09:15:00-04:00",
    ]
    assert (got[0].timestamp() - datetime(2024, 3, 8, 9, 15, tzinfo=NEW_YORK).timestamp()) == (
        3 * 86400 - 3600
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trigger": TriggerKind.CRON, "cron": "61 * * * *"}, "invalid cron"),
        ({"trigger": TriggerKind.CRON, "cron": "* * * * * *"}, "invalid cron"),
        ({"trigger": TriggerKind.CRON, "cron": "0 2 * * *", "tz": "Mars/Base"}, "time zone"),
        ({"trigger": TriggerKind.INTERVAL, "every_seconds": 0.5}, "interval"),
        ({"trigger": TriggerKind.INTERVAL}, "every_seconds"),
        ({"trigger": TriggerKind.INTERVAL, "every_seconds": 5, "max_instances": 0}, "instances"),
        ({"trigger": TriggerKind.INTERVAL, "every_seconds": 5, "grace_seconds": -1}, "grace"),
        ({"trigger": TriggerKind.INTERVAL, "every_seconds": 5, "name": "bad\nname"}, "name"),
    ],
)
def test_validation(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"name": "ok", "spec": SPEC}
    base.update(fields)
    with pytest.raises(ValidationError, match=message):
        Schedule(**base).validated()  # type: ignore[arg-type]


def test_cron_shortcuts_are_accepted() -> None:
    assert cron("@daily").cron == "@daily"
    assert Misfire.parse("catch-up") is Misfire.CATCHUP


def test_due_times_and_backlog_limit() -> None:
    s = interval(10, next_fire_at=1010.0)
    assert due_times(s, 1009) == ([], 0)
    assert due_times(s, 1035) == ([1010, 1020, 1030], 0)
    times, dropped = due_times(s, 1010 + 10 * 999, limit=100)
    assert len(times) == 100 and dropped == 900 and times[-1] == 1010 + 10 * 999


def outcomes(plan: object) -> list[tuple[float, str]]:
    assert plan is not None
    return [(f.fire_at, f.outcome.value) for f in plan.fires]  # type: ignore[attr-defined]


def test_on_time_fires_all_run_and_next_is_after_now() -> None:
    s = interval(10, next_fire_at=1010.0, grace_seconds=60)
    plan = plan_fires(s, 1025)
    assert outcomes(plan) == [(1010, "fired"), (1020, "fired")]
    assert plan is not None and plan.next_fire_at == 1030


def test_coalesce_folds_missed_fires_into_one_run() -> None:
    s = interval(10, next_fire_at=1010.0, grace_seconds=15)
    # missed: 1010..1080 (late > 15 s); on time: 1090, 1100
    plan = plan_fires(s, 1100)
    got = outcomes(plan)
    assert got[-2:] == [(1090, "fired"), (1100, "fired")]
    assert {o for _, o in got[:-2]} == {"coalesced"} and len(got) == 10
    # everything missed: the latest runs once, the rest coalesce into it
    plan = plan_fires(interval(10, next_fire_at=1010.0, grace_seconds=0.1), 1100.5)
    got = outcomes(plan)
    assert got[-1] == (1100, "fired") and {o for _, o in got[:-1]} == {"coalesced"}
    assert plan is not None and "late" in plan.fires[-1].reason


def test_skip_records_missed_fires_without_running_them() -> None:
    s = interval(10, next_fire_at=1010.0, grace_seconds=5, misfire=Misfire.SKIP)
    plan = plan_fires(s, 1052)
    assert outcomes(plan) == [
        (1010, "skipped"),
        (1020, "skipped"),
        (1030, "skipped"),
        (1040, "skipped"),
        (1050, "fired"),
    ]
    assert plan is not None and "missed by 42 s" in plan.fires[0].reason


def test_catchup_runs_each_missed_fire_up_to_the_cap() -> None:
    s = interval(10, next_fire_at=1010.0, grace_seconds=0, misfire=Misfire.CATCHUP, catchup_cap=3)
    plan = plan_fires(s, 1065)
    assert outcomes(plan) == [
        (1010, "skipped"),
        (1020, "skipped"),
        (1030, "skipped"),
        (1040, "fired"),
        (1050, "fired"),
        (1060, "fired"),
    ]
    assert plan is not None and "cap of 3" in plan.fires[0].reason


def test_long_backlog_is_summarised_in_one_row() -> None:
    s = interval(1, next_fire_at=1001.0, grace_seconds=0, misfire=Misfire.SKIP)
    plan = plan_fires(s, 1001 + 86400)
    assert plan is not None and len(plan.fires) == 100
    head = plan.fires[0]
    assert head.outcome is FireOutcome.SKIPPED and "86301 earlier fire time(s)" in head.reason


def test_cron_plan_after_downtime() -> None:
    start = datetime(2024, 5, 1, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    s = cron("0 * * * *", next_fire_at=start, grace_seconds=60)
    plan = plan_fires(s, start + 5 * 3600 + 30)  # down for five hours; the 05:00 fire on time
    got = outcomes(plan)
    assert [o for _, o in got] == ["coalesced"] * 5 + ["fired"]
    assert plan is not None and plan.next_fire_at == start + 6 * 3600
