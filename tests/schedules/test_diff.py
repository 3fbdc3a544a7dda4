"""The day diff and the carve, without a database: what a preview of time off asks before anything is
written (schedules.diff). Times in Europe/Amsterdam, a DST day included."""

import datetime as dt
import zoneinfo

import pytest

from em_agent.models import Agent
from schedules.diff import (
    ActivitySpec,
    CurrentActivity,
    CurrentDay,
    DayPlan,
    day_carve,
    day_diff,
)

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
DAY = dt.date(2027, 6, 1)
SPRING = dt.date(2027, 3, 28)  # 02:00 -> 03:00
PHONE, LUNCH, VACATION = 1, 2, 3
AGENT = Agent(timezone="Europe/Amsterdam")  # never saved: nothing here reads the database


def at(hhmm: str, date: dt.date = DAY) -> dt.datetime:
    hour, minute = map(int, hhmm.split(":"))
    return dt.datetime.combine(date, dt.time(hour, minute), tzinfo=AMS).astimezone(dt.UTC)


def spec(
    code: int, start: str, end: str, *, id: int | None = None, date: dt.date = DAY, **kw
) -> ActivitySpec:
    return ActivitySpec(code, at(start, date), at(end, date), id=id, **kw)


def current(code: int, start: str, end: str, *, id: int, date: dt.date = DAY, source: str = "wfm"):
    return CurrentActivity(id, code, at(start, date), at(end, date), "", source)


WORKDAY = [current(PHONE, "09:00", "12:00", id=11), current(LUNCH, "12:00", "12:30", id=12)]
WORKDAY.append(current(PHONE, "12:30", "17:00", id=13))
THE_DAY = CurrentDay(id=5, published=True, note="", updated_at=at("00:00"), wfm_hash="h")


def _times(specs):
    return [
        (
            s.activity_code_id,
            s.start.astimezone(AMS).strftime("%H:%M"),
            s.end.astimezone(AMS).strftime("%H:%M"),
            s.id,
        )
        for s in specs
    ]


def test_the_same_activities_by_content_keep_their_rows_and_nothing_changes():
    plan = DayPlan(
        agent=AGENT,
        date=DAY,
        activities=[
            spec(PHONE, "09:00", "12:00"),
            spec(LUNCH, "12:00", "12:30"),
            spec(PHONE, "12:30", "17:00"),
        ],
    )
    diff = day_diff(plan, THE_DAY, WORKDAY)
    assert diff.same and not diff.visible
    assert [s.id for s in diff.kept] == [11, 12, 13]
    assert diff.created == diff.updated == diff.removed == []


def test_a_changed_lunch_is_one_new_row_and_one_removed_and_the_agent_sees_it():
    plan = DayPlan(
        agent=AGENT,
        date=DAY,
        activities=[
            spec(PHONE, "09:00", "12:00"),
            spec(LUNCH, "12:30", "13:00"),
            spec(PHONE, "13:00", "17:00", id=13),
        ],
    )
    diff = day_diff(plan, THE_DAY, WORKDAY)
    assert not diff.same and diff.visible
    assert sorted(s.id for s in diff.kept) == [11, 13]
    assert _times(diff.updated) == [(PHONE, "13:00", "17:00", 13)]  # named by id: the same row, new times
    assert _times(diff.created) == [(LUNCH, "12:30", "13:00", None)]
    assert diff.removed == [12]
    assert [a["id"] for a in diff.before["activities"]] == [11, 12, 13]


def test_a_change_of_origin_only_is_written_but_not_news():
    plan = DayPlan(
        agent=AGENT,
        date=DAY,
        activities=[
            spec(PHONE, "09:00", "12:00", id=11, source="supervisor"),
            spec(LUNCH, "12:00", "12:30", id=12),
            spec(PHONE, "12:30", "17:00", id=13),
        ],
    )
    diff = day_diff(plan, THE_DAY, WORKDAY)
    assert not diff.same and not diff.visible
    assert [s.id for s in diff.updated] == [11]


def test_a_new_day_is_all_created_and_an_empty_new_day_is_no_change():
    plan = DayPlan(agent=AGENT, date=DAY, activities=[spec(PHONE, "09:00", "17:00", id=99)], published=True)
    diff = day_diff(plan, None, ())
    assert diff.visible and not diff.same
    assert _times(diff.created) == [(PHONE, "09:00", "17:00", None)]  # an id only a revert keeps
    assert _times(day_diff(plan, None, (), reverts=True).created) == [(PHONE, "09:00", "17:00", 99)]
    assert day_diff(DayPlan(agent=AGENT, date=DAY, activities=[]), None, ()).same


def test_carving_a_span_drops_what_is_inside_shortens_the_edges_and_splits_what_spans_it():
    day = [
        spec(PHONE, "09:00", "12:00", id=11),
        spec(LUNCH, "12:00", "12:30", id=12),
        spec(PHONE, "12:30", "17:00", id=13),
    ]
    assert _times(day_carve(day, start=at("11:00"), end=at("13:00"))) == [
        (PHONE, "09:00", "11:00", 11),
        (PHONE, "13:00", "17:00", 13),
    ]
    assert _times(day_carve(day, start=at("14:00"), end=at("15:00"))) == [
        (PHONE, "09:00", "12:00", 11),
        (LUNCH, "12:00", "12:30", 12),
        (PHONE, "12:30", "14:00", 13),  # the first part keeps the row
        (PHONE, "15:00", "17:00", None),  # the second is another activity
    ]
    assert day_carve(day, start=at("18:00"), end=at("19:00")) == day
    assert day_carve(day, start=at("08:00"), end=at("18:00")) == []
    assert _times(day_carve(day, start=at("12:30"), end=at("13:30"))) == [
        (PHONE, "09:00", "12:00", 11),
        (LUNCH, "12:00", "12:30", 12),  # touching is not overlapping
        (PHONE, "13:30", "17:00", 13),  # shortened at its start: still itself
    ]
    with pytest.raises(ValueError):
        day_carve(day, start=at("13:00"), end=at("13:00"))


def test_carving_across_the_skipped_hour_leaves_real_elapsed_time():
    night = [spec(PHONE, "00:00", "08:00", id=21, date=SPRING)]  # 7 real hours: the clocks skip 02:00
    carved = day_carve(night, start=at("01:00", SPRING), end=at("04:00", SPRING))  # 2 real hours
    assert [s.end - s.start for s in carved] == [dt.timedelta(hours=1), dt.timedelta(hours=4)]
    assert _times(carved) == [(PHONE, "00:00", "01:00", 21), (PHONE, "04:00", "08:00", None)]


def test_a_carved_day_filled_with_time_off_diffs_as_the_schedule_service_would_write_it():
    carved = day_carve(
        [
            spec(PHONE, "09:00", "12:00", id=11),
            spec(LUNCH, "12:00", "12:30", id=12),
            spec(PHONE, "12:30", "17:00", id=13),
        ],
        start=at("13:00"),
        end=at("17:00"),
    )
    plan = DayPlan(
        agent=AGENT, date=DAY, activities=[*carved, spec(VACATION, "13:00", "17:00", source="time_off")]
    )
    diff = day_diff(plan, THE_DAY, WORKDAY)
    assert sorted(s.id for s in diff.kept) == [11, 12, 13]
    assert _times(diff.updated) == [(PHONE, "12:30", "13:00", 13)]
    assert _times(diff.created) == [(VACATION, "13:00", "17:00", None)]
    assert diff.removed == [] and diff.visible
    assert [s.id for s in diff.final()] == [11, 12, 13, None]
