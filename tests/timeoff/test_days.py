"""The days a time-off request covers and what each counts, in zones other than UTC and on DST days."""

import datetime as dt

import pytest

from em_agent.exceptions import ApplicationError
from tests.factories import AgentFactory
from tests.schedules.factories import ActivityCodeFactory, shift
from timeoff.days import full_days, partial_day

pytestmark = pytest.mark.django_db

WEEKDAYS_8H = (480, 480, 480, 480, 480, 0, 0)  # Monday first


@pytest.fixture
def anna(org):
    agent = AgentFactory(organization=org, timezone="Europe/Amsterdam")
    ActivityCodeFactory(organization=org, code="LUNCH", paid=False)
    return agent


@pytest.fixture
def ned(org):
    return AgentFactory(organization=org, timezone="America/New_York")


def _minutes(days) -> dict[str, int]:
    return {day.date.isoformat(): day.minutes for day in days}


def _hours(span: tuple[dt.datetime, dt.datetime]) -> float:
    return (span[1] - span[0]).total_seconds() / 3600


def _full(agent, start: str, end: str):
    return full_days(
        agent=agent,
        start_date=dt.date.fromisoformat(start),
        end_date=dt.date.fromisoformat(end),
        default_minutes=lambda: WEEKDAYS_8H,
    )


def test_a_published_day_counts_its_paid_time_and_a_day_off_nothing(anna):
    shift(
        anna,
        dt.date(2026, 12, 7),
        ("PHONE", "09:00", "12:00"),
        ("LUNCH", "12:00", "12:30"),
        ("PHONE", "12:30", "17:30"),
    )
    shift(anna, dt.date(2026, 12, 8))  # published, nothing scheduled

    assert _minutes(_full(anna, "2026-12-07", "2026-12-08")) == {"2026-12-07": 480, "2026-12-08": 0}


def test_an_unpublished_day_counts_the_organisations_default_for_its_weekday(anna):
    shift(anna, dt.date(2026, 12, 11), ("PHONE", "09:00", "13:00"), published=False)  # Friday

    assert _minutes(_full(anna, "2026-12-11", "2026-12-14")) == {
        "2026-12-11": 480,  # the WFM's planned 4 hours are not published: the default counts
        "2026-12-12": 0,
        "2026-12-13": 0,
        "2026-12-14": 480,
    }


def test_a_whole_day_spans_the_local_day_23_or_25_hours_on_dst_days(anna, ned):
    spring, autumn = _full(anna, "2026-03-29", "2026-03-29")[0], _full(anna, "2026-10-25", "2026-10-25")[0]
    new_york = _full(ned, "2026-11-01", "2026-11-01")[0]

    assert _hours((spring.start, spring.end)) == 23
    assert _hours((autumn.start, autumn.end)) == 25
    assert _hours((new_york.start, new_york.end)) == 25
    assert spring.start == dt.datetime(2026, 3, 28, 23, 0, tzinfo=dt.UTC)  # Amsterdam's midnight, CET


def test_a_night_shift_counts_on_the_day_it_starts_with_what_the_clock_ran(anna):
    shift(anna, dt.date(2026, 3, 28), ("PHONE", "22:00", "06:00"))  # across the spring-forward night
    shift(anna, dt.date(2026, 3, 29))

    assert _minutes(_full(anna, "2026-03-28", "2026-03-29")) == {"2026-03-28": 7 * 60, "2026-03-29": 0}


def test_at_most_31_days_in_order(anna):
    assert len(_full(anna, "2026-12-01", "2026-12-31")) == 31
    with pytest.raises(ApplicationError) as refused:
        _full(anna, "2026-12-01", "2027-01-01")
    assert list(refused.value.fields) == ["end_date"]
    with pytest.raises(ApplicationError) as backwards:
        _full(anna, "2026-12-02", "2026-12-01")
    assert list(backwards.value.fields) == ["end_date"]


def test_the_days_cost_one_query_however_many(anna, django_assert_num_queries):
    for offset in range(10):
        shift(anna, dt.date(2026, 12, 1) + dt.timedelta(days=offset), ("PHONE", "09:00", "17:00"))

    with django_assert_num_queries(1):
        days = _full(anna, "2026-12-01", "2026-12-31")

    assert sum(day.minutes for day in days) == 10 * 480 + 15 * 480  # ten published, fifteen default weekdays


def _partial(agent, date: str, start: str, end: str):
    return partial_day(
        agent=agent,
        date=dt.date.fromisoformat(date),
        start_time=dt.time.fromisoformat(start),
        end_time=dt.time.fromisoformat(end),
    )


def test_part_of_a_published_day_counts_real_time_across_each_dst_change(anna, ned):
    for agent, date in ((anna, "2026-03-29"), (anna, "2026-10-25"), (ned, "2026-03-08"), (ned, "2026-11-01")):
        shift(agent, dt.date.fromisoformat(date))

    assert _partial(anna, "2026-03-29", "01:00", "04:00").minutes == 120  # 02:00-03:00 never happens
    assert _partial(anna, "2026-10-25", "01:00", "04:00").minutes == 240  # 02:00-03:00 happens twice
    assert _partial(ned, "2026-03-08", "01:00", "04:00").minutes == 120
    assert _partial(ned, "2026-11-01", "00:30", "02:30").minutes == 180


def test_part_of_a_day_needs_a_published_day(anna):
    shift(anna, dt.date(2026, 12, 7), ("PHONE", "09:00", "17:00"), published=False)

    with pytest.raises(ApplicationError) as refused:
        _partial(anna, "2026-12-07", "09:00", "12:00")

    assert refused.value.code == "partial_day_needs_published_schedule"


@pytest.mark.parametrize(
    "start, end, code, field",
    [
        ("09:00", "09:59", "duration_out_of_range", "end_time"),
        ("09:00", "17:01", "duration_out_of_range", "end_time"),
        ("09:00", "09:00", "validation_error", "end_time"),
        ("12:00", "09:00", "validation_error", "end_time"),
    ],
)
def test_part_of_a_day_is_1_to_8_hours(anna, start, end, code, field):
    shift(anna, dt.date(2026, 12, 7), ("PHONE", "09:00", "17:00"))
    assert _partial(anna, "2026-12-07", "09:00", "10:00").minutes == 60
    assert _partial(anna, "2026-12-07", "09:00", "17:00").minutes == 480

    with pytest.raises(ApplicationError) as refused:
        _partial(anna, "2026-12-07", start, end)

    assert (refused.value.code, list(refused.value.fields)) == (code, [field])


def test_a_time_the_clocks_skip_is_refused(anna):
    shift(anna, dt.date(2026, 3, 29))

    with pytest.raises(ApplicationError) as refused:
        _partial(anna, "2026-03-29", "02:30", "05:00")

    assert list(refused.value.fields) == ["start_time"]
