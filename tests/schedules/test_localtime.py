"""The one DST helper (em_agent.localtime) and its two callers, the admin's day form and the sync's
export rows, on Amsterdam's spring-forward day (28 March 2027, 02:00 -> 03:00) and fall-back day
(31 October 2027, 03:00 -> 02:00)."""

import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import ValidationError

from em_agent.localtime import (
    NonexistentLocalTime,
    local_datetime,
    local_day_bounds,
    local_time_exists,
    local_time_is_ambiguous,
    steady_utc_midnight,
)
from schedules import admin as schedules_admin
from sync import rows
from sync.rows import BadRow

AMSTERDAM = zoneinfo.ZoneInfo("Europe/Amsterdam")
SPRING = dt.date(2027, 3, 28)
FALL = dt.date(2027, 10, 31)


@pytest.mark.parametrize(
    ("date", "time", "exists", "ambiguous"),
    [
        (SPRING, dt.time(1, 59), True, False),
        (SPRING, dt.time(2, 0), False, False),
        (SPRING, dt.time(2, 30), False, False),
        (SPRING, dt.time(3, 0), True, False),
        (FALL, dt.time(1, 59), True, False),
        (FALL, dt.time(2, 0), True, True),
        (FALL, dt.time(2, 59), True, True),
        (FALL, dt.time(3, 0), True, False),
        (dt.date(2027, 6, 1), dt.time(2, 30), True, False),
    ],
)
def test_whether_a_wall_time_exists_and_whether_it_happens_twice(date, time, exists, ambiguous):
    assert local_time_exists(date, time, AMSTERDAM) is exists
    assert local_time_is_ambiguous(date, time, AMSTERDAM) is ambiguous


def test_a_skipped_time_is_refused_not_moved():
    with pytest.raises(NonexistentLocalTime) as refused:
        local_datetime(SPRING, dt.time(2, 30), AMSTERDAM)
    assert (
        str(refused.value) == "02:30 does not exist on 2027-03-28 in Europe/Amsterdam (the clocks go forward)"
    )
    assert local_datetime(SPRING, dt.time(3, 0), AMSTERDAM).astimezone(dt.UTC) == dt.datetime(
        2027, 3, 28, 1, 0, tzinfo=dt.UTC
    )


def test_a_repeated_time_is_the_first_occurrence_unless_fold_says_the_second():
    first = local_datetime(FALL, dt.time(2, 30), AMSTERDAM)
    second = local_datetime(FALL, dt.time(2, 30), AMSTERDAM, fold=1)
    assert first.astimezone(dt.UTC) == dt.datetime(2027, 10, 31, 0, 30, tzinfo=dt.UTC)  # summer time
    assert second.astimezone(dt.UTC) == dt.datetime(2027, 10, 31, 1, 30, tzinfo=dt.UTC)  # winter time
    assert second - first == dt.timedelta(0)  # same zone: wall-clock arithmetic
    assert second.astimezone(dt.UTC) - first.astimezone(dt.UTC) == dt.timedelta(hours=1)


def test_a_dst_day_lasts_23_or_25_hours_and_has_no_steady_midnight():
    begin, end = local_day_bounds(SPRING, AMSTERDAM)
    assert end - begin == dt.timedelta(hours=23)
    begin, end = local_day_bounds(FALL, AMSTERDAM)
    assert end - begin == dt.timedelta(hours=25)
    assert steady_utc_midnight(AMSTERDAM, SPRING) is None
    assert steady_utc_midnight(AMSTERDAM, FALL) is None
    assert steady_utc_midnight(AMSTERDAM, dt.date(2027, 6, 1)) == dt.datetime(2027, 5, 31, 22, tzinfo=dt.UTC)


# The callers: both refuse a skipped time and read a repeated one as its first occurrence.


def test_the_admin_form_refuses_a_skipped_time_and_reads_a_repeated_one_as_the_first():
    with pytest.raises(ValidationError) as refused:
        schedules_admin._local(SPRING, dt.time(2, 30), AMSTERDAM)
    assert "02:30 does not exist on" in str(refused.value.message % refused.value.params)
    assert schedules_admin._local(FALL, dt.time(2, 30), AMSTERDAM).astimezone(dt.UTC) == dt.datetime(
        2027, 10, 31, 0, 30, tzinfo=dt.UTC
    )


def test_the_sync_refuses_a_skipped_time_and_reads_a_repeated_one_as_the_first():
    codes = {"PHONE": 7}
    zones = {"A1": AMSTERDAM}
    with pytest.raises(BadRow) as refused:
        rows.day_row(
            {
                "agent": "A1",
                "date": "2027-03-28",
                "activities": [{"code": "PHONE", "start": "02:30", "end": "06:00"}],
            },
            zone_of=zones,
            codes=codes,
        )
    assert (
        str(refused.value) == "02:30 does not exist on 2027-03-28 in Europe/Amsterdam (the clocks go forward)"
    )

    fall = rows.day_row(
        {
            "agent": "A1",
            "date": "2027-10-31",
            "activities": [{"code": "PHONE", "start": "02:30", "end": "06:00"}],
        },
        zone_of=zones,
        codes=codes,
    )
    (activity,) = fall.activities
    assert activity.start == dt.datetime(2027, 10, 31, 0, 30, tzinfo=dt.UTC)
    assert activity.end - activity.start == dt.timedelta(hours=4, minutes=30)  # the repeated hour counts

    spring = rows.day_row(
        {
            "agent": "A1",
            "date": "2027-03-28",
            "activities": [{"code": "PHONE", "start": "01:00", "end": "04:00"}],
        },
        zone_of=zones,
        codes=codes,
    )
    assert spring.activities[0].end - spring.activities[0].start == dt.timedelta(hours=2)
