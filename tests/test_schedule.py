"""Schedules: cron expressions in IANA zones across DST changes, Every, At, validation, JSON form."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from palyra_journal import At, CronSchedule, Every, InvalidScheduleError
from palyra_journal.schedule import coerce_schedule, schedule_from_dict

PRAGUE = ZoneInfo("Europe/Prague")


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def local(m: int, tz=PRAGUE) -> datetime:
    return datetime.fromtimestamp(m / 1000, tz)


def slots(schedule, start_ms: int, n: int) -> list[int]:
    out, t = [], start_ms
    for _ in range(n):
        t = schedule.first_slot(t)
        out.append(t)
    return out


def daily_runs(schedule, first: date, last: date) -> dict[date, list[datetime]]:
    start = ms(datetime(first.year, first.month, first.day, tzinfo=PRAGUE))
    end = ms(datetime(last.year, last.month, last.day, 23, 59, tzinfo=PRAGUE))
    runs: dict[date, list[datetime]] = {}
    t = start
    while True:
        t = schedule.first_slot(t)
        if t > end:
            return runs
        runs.setdefault(local(t).date(), []).append(local(t))


def test_croniter_alone_doubles_the_autumn_overlap():
    """Why schedule.py maps wall times itself: croniter with an aware start fires 02:30 twice."""
    it = croniter("30 2 * * *", datetime(2024, 10, 26, 12, 0, tzinfo=PRAGUE))
    fired = [it.get_next(datetime) for _ in range(3)]
    assert [d.date() for d in fired] == [date(2024, 10, 27), date(2024, 10, 27), date(2024, 10, 28)]


def test_0230_prague_spring_change_fires_once_at_first_instant_after_gap():
    sched = CronSchedule("30 2 * * *", timezone="Europe/Prague")
    runs = daily_runs(sched, date(2024, 3, 28), date(2024, 4, 2))
    assert sorted(runs) == [date(2024, 3, d) for d in range(28, 32)] + [date(2024, 4, 1),
                                                                         date(2024, 4, 2)]
    assert all(len(v) == 1 for v in runs.values())
    change_day = runs[date(2024, 3, 31)][0]
    # 02:30 does not exist on 31 March 2024; the first valid instant after the gap is 03:00 CEST.
    assert (change_day.hour, change_day.minute) == (3, 0)
    assert change_day.utcoffset() == timedelta(hours=2)
    assert change_day.astimezone(timezone.utc) == datetime(2024, 3, 31, 1, 0, tzinfo=timezone.utc)
    for d, (run,) in runs.items():
        if d != date(2024, 3, 31):
            assert (run.hour, run.minute) == (2, 30)


def test_0230_prague_autumn_change_fires_once_at_first_occurrence():
    sched = CronSchedule("30 2 * * *", timezone="Europe/Prague")
    runs = daily_runs(sched, date(2024, 10, 24), date(2024, 10, 30))
    assert sorted(runs) == [date(2024, 10, d) for d in range(24, 31)]
    assert all(len(v) == 1 for v in runs.values())
    (run,) = runs[date(2024, 10, 27)]
    assert (run.hour, run.minute, run.fold) == (2, 30, 0)
    assert run.utcoffset() == timedelta(hours=2)  # the first 02:30 (CEST), not the repeat (CET)


def test_hourly_across_both_changes_never_repeats_a_wall_time():
    sched = CronSchedule("0 * * * *", timezone="Europe/Prague")
    spring = [local(m) for m in slots(sched, ms(datetime(2024, 3, 31, 0, 30, tzinfo=PRAGUE)), 4)]
    assert [(d.hour, d.minute) for d in spring] == [(1, 0), (3, 0), (4, 0), (5, 0)]
    autumn = [local(m) for m in slots(sched, ms(datetime(2024, 10, 27, 0, 30, tzinfo=PRAGUE)), 4)]
    assert [(d.hour, d.fold) for d in autumn] == [(1, 0), (2, 0), (3, 0), (4, 0)]


def test_next_after_an_instant_inside_the_repeated_hour_skips_the_repeat():
    sched = CronSchedule("*/20 * * * *", timezone="Europe/Prague")
    # 02:10 CET, the second pass through the repeated hour: 02:20 and 02:40 already fired (CEST).
    inside = datetime(2024, 10, 27, 1, 10, tzinfo=timezone.utc)
    assert local(ms(inside)).fold == 1
    nxt = local(sched.first_slot(ms(inside)))
    assert (nxt.hour, nxt.minute, nxt.utcoffset()) == (3, 0, timedelta(hours=1))


def test_slots_strictly_increase_and_are_computed_in_the_zone():
    sched = CronSchedule("0 9 * * MON-FRI", timezone="America/New_York")
    got = slots(sched, ms(datetime(2024, 3, 9, 12, tzinfo=timezone.utc)), 3)  # Sat; DST on Sun
    ny = [local(m, ZoneInfo("America/New_York")) for m in got]
    assert [(d.weekday(), d.hour) for d in ny] == [(0, 9), (1, 9), (2, 9)]
    assert got == sorted(set(got))


@pytest.mark.parametrize("expr, first", [
    ("@hourly", datetime(2024, 1, 1, 1, 0, tzinfo=timezone.utc)),
    ("@daily", datetime(2024, 1, 2, 0, 0, tzinfo=timezone.utc)),
    ("0 0 1 JAN *", datetime(2025, 1, 1, tzinfo=timezone.utc)),
    # 6 fields: croniter puts the seconds field last
    ("* * * * * */15", datetime(2024, 1, 1, 0, 0, 15, tzinfo=timezone.utc)),
])
def test_names_macros_and_seconds(expr, first):
    sched = CronSchedule(expr)
    assert sched.first_slot(ms(datetime(2024, 1, 1, 0, 0, 0, tzinfo=timezone.utc))) == ms(first)


def test_utc_is_the_default_timezone():
    assert CronSchedule("* * * * *").timezone == "UTC"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"expression": "61 * * * *"}, "61 * * * *"),
    ({"expression": "* * *"}, "3 fields"),
    ({"expression": ""}, "non-empty"),
    ({"expression": "* * * * *", "timezone": "Mars/Olympus"}, "Mars/Olympus"),
    ({"expression": "* * * * *", "timezone": ""}, "timezone"),
])
def test_invalid_cron_schedules_name_the_reason(kwargs, fragment):
    with pytest.raises(InvalidScheduleError, match=None) as info:
        CronSchedule(**kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize("make, fragment", [
    (lambda: Every(0), "interval_ms"), (lambda: Every(-5), "interval_ms"),
    (lambda: Every(1.5), "interval_ms"), (lambda: Every(True), "interval_ms"),
    (lambda: At(-1), "at_unix_ms"), (lambda: At("soon"), "at_unix_ms"),
])
def test_invalid_every_and_at(make, fragment):
    with pytest.raises(InvalidScheduleError) as info:
        make()
    assert fragment in str(info.value)


def test_every_series_stays_on_its_grid():
    every = Every(1_000)
    assert every.first_slot(10_500) == 11_500
    assert every.next_slot(11_500, 11_500) == 12_500
    assert every.next_slot(11_500, 15_700) == 16_500  # late: the next grid point after now
    assert every.next_slot(11_500, 9_000) == 11_500


def test_at_fires_once():
    at = At(5_000)
    assert at.first_slot(1_000) == 5_000
    assert at.first_slot(5_000) is None
    assert at.next_slot(5_000, 5_000) is None


@pytest.mark.parametrize("sched", [CronSchedule("*/5 * * * *", timezone="Europe/Prague"),
                                   Every(250), At(1_700_000_000_000)])
def test_json_form_round_trips(sched):
    d = sched.to_dict()
    assert d["type"] in ("cron", "every", "at")
    assert schedule_from_dict(d) == sched
    assert coerce_schedule(d) == sched


def test_spec_json_forms():
    assert CronSchedule("0 * * * *", "UTC").to_dict() == {
        "type": "cron", "expression": "0 * * * *", "timezone": "UTC"}
    assert Every(5).to_dict() == {"type": "every", "interval_ms": 5}
    assert At(7).to_dict() == {"type": "at", "at_unix_ms": 7}


@pytest.mark.parametrize("bad, fragment", [
    ({"type": "weekly"}, "weekly"), ({"type": "every"}, "interval_ms"), ([1], "dict form"),
    ("{not json", "JSON"), (3.5, "float"),
])
def test_bad_schedule_forms(bad, fragment):
    with pytest.raises(InvalidScheduleError) as info:
        coerce_schedule(bad)
    assert fragment in str(info.value)


def test_expression_that_never_fires_has_no_slot():
    assert CronSchedule("0 0 30 2 *").first_slot(0) is None


def test_0230_prague_fires_exactly_once_on_every_day_of_a_year():
    sched = CronSchedule("30 2 * * *", timezone="Europe/Prague")
    runs = daily_runs(sched, date(2024, 1, 1), date(2024, 12, 31))
    assert len(runs) == 366 and all(len(v) == 1 for v in runs.values())
