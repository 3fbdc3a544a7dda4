import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from em_agent.models import Organization
from schedules.selectors import schedule_calendar_for_agent, schedule_days_for_agent
from tests.factories import AgentFactory
from tests.schedules.factories import ActivityCodeFactory, shift

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-10-20 08:00:00 +00:00", tick=False):
        yield


def _times(day):
    return [(a["start"], a["end"]) for a in day["activities"]]


def test_a_range_across_the_autumn_dst_change_and_a_month_end_in_amsterdam(agent, logged_in):
    for date in (dt.date(2026, 10, 24), dt.date(2026, 10, 25), dt.date(2026, 10, 31), dt.date(2026, 11, 1)):
        shift(agent, date, ("PHONE", "09:00", "17:00"))
    shift(agent, dt.date(2026, 10, 26), ("NIGHT", "23:00", "07:00"))
    client = logged_in(agent)

    response = client.get("/api/v1/schedule?start=2026-10-24&end=2026-11-01")

    assert response.status_code == 200
    days = {day["date"]: day for day in response.json()["days"]}
    assert len(days) == 9
    assert _times(days["2026-10-24"]) == [("2026-10-24T09:00:00+02:00", "2026-10-24T17:00:00+02:00")]
    assert _times(days["2026-10-25"]) == [("2026-10-25T09:00:00+01:00", "2026-10-25T17:00:00+01:00")]
    assert _times(days["2026-10-26"]) == [("2026-10-26T23:00:00+01:00", "2026-10-27T07:00:00+01:00")]
    assert _times(days["2026-11-01"]) == [("2026-11-01T09:00:00+01:00", "2026-11-01T17:00:00+01:00")]
    assert days["2026-10-28"] == {"date": "2026-10-28", "published": False, "note": "", "activities": []}


def test_the_spring_dst_change_in_new_york(logged_in):
    org = Organization.objects.create(name="Fabrikam", slug="fab", default_timezone="America/New_York")
    agent = AgentFactory(organization=org)
    with time_machine.travel("2027-03-01 12:00:00 +00:00", tick=False):
        # 2027-03-14: clocks go from 02:00 EST to 03:00 EDT; a 22:00-06:00 night is 7 hours.
        shift(agent, dt.date(2027, 3, 13), ("NIGHT", "22:00", "06:00"))
        shift(agent, dt.date(2027, 3, 14), ("PHONE", "09:00", "17:00"))
        response = logged_in(agent).get("/api/v1/schedule?start=2027-03-13&end=2027-03-14")

    days = response.json()["days"]
    assert _times(days[0]) == [("2027-03-13T22:00:00-05:00", "2027-03-14T06:00:00-04:00")]
    assert _times(days[1]) == [("2027-03-14T09:00:00-04:00", "2027-03-14T17:00:00-04:00")]


def test_default_is_today_in_the_agents_zone(agent, logged_in):
    with time_machine.travel("2026-10-20 23:30:00 +00:00", tick=False):  # already the 21st in Amsterdam
        response = logged_in(agent).get("/api/v1/schedule")
    assert [day["date"] for day in response.json()["days"]] == ["2026-10-21"]


def test_an_unpublished_day_shows_nothing_of_its_content(agent, logged_in):
    shift(agent, dt.date(2026, 10, 22), ("PHONE", "09:00", "17:00"), published=False, note="draft")

    day = logged_in(agent).get("/api/v1/schedule?start=2026-10-22").json()["days"][0]

    assert day == {"date": "2026-10-22", "published": False, "note": "", "activities": []}


@pytest.mark.parametrize(
    "query, field",
    [
        ("start=2026-10-01&end=2026-12-02", "end"),  # 63 days
        ("start=2026-10-10&end=2026-10-01", "end"),
        ("start=tomorrow", "start"),
    ],
)
def test_bad_ranges_are_400(agent, logged_in, query, field):
    response = logged_in(agent).get(f"/api/v1/schedule?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["fields"]


def test_62_days_is_allowed(agent, logged_in):
    response = logged_in(agent).get("/api/v1/schedule?start=2026-10-01&end=2026-12-01")
    assert response.status_code == 200
    assert len(response.json()["days"]) == 62


def test_reads_cost_the_same_few_queries_whatever_the_range(agent):
    for offset in range(40):
        shift(
            agent,
            dt.date(2026, 10, 20) + dt.timedelta(days=offset),
            ("PHONE", "09:00", "12:00"),
            ("PHONE", "13:00", "17:00"),
        )
    counts = []
    for days in (1, 62):
        with CaptureQueriesContext(connection) as queries:
            schedule_days_for_agent(
                agent=agent,
                start=dt.date(2026, 10, 20),
                end=dt.date(2026, 10, 20) + dt.timedelta(days=days - 1),
            )
        counts.append(len(queries))
    with CaptureQueriesContext(connection) as calendar_queries:
        schedule_calendar_for_agent(agent=agent, month=dt.date(2026, 11, 1))
    assert counts[0] == counts[1] <= 3
    assert len(calendar_queries) <= 3


def test_the_whole_request_costs_the_same_for_one_day_and_62(agent, logged_in):
    for offset in range(40):
        shift(agent, dt.date(2026, 10, 20) + dt.timedelta(days=offset), ("PHONE", "09:00", "17:00"))
    client = logged_in(agent)
    client.get("/api/v1/schedule")  # the session's first call warms its caches
    counts = []
    for end in ("2026-10-20", "2026-12-20"):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/api/v1/schedule?start=2026-10-20&end={end}").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_etag_answers_304_until_the_schedule_changes(agent, logged_in):
    shift(agent, dt.date(2026, 10, 22), ("PHONE", "09:00", "17:00"))
    client = logged_in(agent)
    first = client.get("/api/v1/schedule?start=2026-10-22")
    etag = first["ETag"]

    again = client.get("/api/v1/schedule?start=2026-10-22", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""

    shift(agent, dt.date(2026, 10, 22), ("PHONE", "10:00", "17:00"))
    changed = client.get("/api/v1/schedule?start=2026-10-22", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag

    calendar = client.get("/api/v1/schedule/calendar?month=2026-10")
    assert (
        client.get("/api/v1/schedule/calendar?month=2026-10", HTTP_IF_NONE_MATCH=calendar["ETag"]).status_code
        == 304
    )


def test_calendar_marks_published_days_of_the_month(agent, logged_in):
    shift(agent, dt.date(2027, 2, 1), ("PHONE", "09:00", "17:00"))
    shift(agent, dt.date(2027, 2, 28), ("PHONE", "09:00", "17:00"))
    shift(agent, dt.date(2027, 2, 10), ("PHONE", "09:00", "17:00"), published=False)
    shift(agent, dt.date(2027, 3, 1), ("PHONE", "09:00", "17:00"))

    body = logged_in(agent).get("/api/v1/schedule/calendar?month=2027-02").json()

    assert body["month"] == "2027-02"
    assert len(body["days"]) == 28
    published = [day["date"] for day in body["days"] if day["published"]]
    assert published == ["2027-02-01", "2027-02-28"]
    assert all(day["has_activities"] == day["published"] for day in body["days"])


@pytest.mark.parametrize("month", ["2026-13", "26-10", "2026-10-01", "9999-01"])
def test_calendar_refuses_a_bad_month(agent, logged_in, month):
    response = logged_in(agent).get(f"/api/v1/schedule/calendar?month={month}")
    assert response.status_code == 400
    assert "month" in response.json()["fields"]


def test_calendar_defaults_to_this_month(agent, logged_in):
    body = logged_in(agent).get("/api/v1/schedule/calendar").json()
    assert body["month"] == "2026-10"
    assert len(body["days"]) == 31


def test_nobody_sees_anothers_schedule(agent, outsider, logged_in):
    shift(agent, dt.date(2026, 10, 22), ("PHONE", "09:00", "17:00"))
    ActivityCodeFactory(organization=agent.organization, code="TRAIN", open_for_requests=True)

    client = logged_in(outsider)
    assert client.get("/api/v1/schedule?start=2026-10-22").json()["days"][0]["activities"] == []
    assert client.get("/api/v1/activity-codes").json() == []


def test_activity_codes_by_use(agent, logged_in):
    ActivityCodeFactory(organization=agent.organization, code="PHONE")
    ActivityCodeFactory(
        organization=agent.organization,
        code="TRAIN",
        category="training",
        color="#7B61FF",
        open_for_requests=True,
    )
    ActivityCodeFactory(
        organization=agent.organization, code="VAC", category="time_off", open_for_time_off=True
    )
    ActivityCodeFactory(organization=agent.organization, code="OLD", open_for_requests=True, active=False)
    client = logged_in(agent)

    assert client.get("/api/v1/activity-codes?usage=schedule").json() == [
        {"code": "TRAIN", "name": "Train", "category": "training", "color": "#7B61FF"}
    ]
    assert [c["code"] for c in client.get("/api/v1/activity-codes?usage=time_off").json()] == ["VAC"]
    assert [c["code"] for c in client.get("/api/v1/activity-codes").json()] == ["PHONE", "TRAIN", "VAC"]
    assert client.get("/api/v1/activity-codes?usage=lunch").status_code == 400


@pytest.mark.parametrize(
    "zone, change_day, before, after",
    [
        # Both changes in both zones: the night before each change runs across it.
        ("Europe/Amsterdam", "2027-03-28", "+01:00", "+02:00"),
        ("Europe/Amsterdam", "2026-10-25", "+02:00", "+01:00"),
        ("America/New_York", "2027-03-14", "-05:00", "-04:00"),
        ("America/New_York", "2026-11-01", "-04:00", "-05:00"),
    ],
)
def test_both_dst_changes_in_both_zones(logged_in, zone, change_day, before, after):
    org = Organization.objects.create(name=zone, slug=zone.replace("/", "-").lower(), default_timezone=zone)
    agent = AgentFactory(organization=org)
    day = dt.date.fromisoformat(change_day)
    eve = day - dt.timedelta(days=1)
    with time_machine.travel(
        dt.datetime.combine(eve - dt.timedelta(days=5), dt.time(12), tzinfo=dt.UTC), tick=False
    ):
        shift(agent, eve, ("NIGHT", "22:00", "06:00"))
        shift(agent, day, ("PHONE", "09:00", "17:00"))
        response = logged_in(agent).get(f"/api/v1/schedule?start={eve}&end={day}")

    night, phone = (d["activities"][0] for d in response.json()["days"])
    assert night["start"] == f"{eve}T22:00:00{before}"
    assert night["end"] == f"{day}T06:00:00{after}"
    assert phone["start"] == f"{day}T09:00:00{after}"
    assert phone["end"] == f"{day}T17:00:00{after}"


def test_a_weakened_or_star_etag_still_matches(agent, logged_in):
    shift(agent, dt.date(2026, 10, 22), ("PHONE", "09:00", "17:00"))
    client = logged_in(agent)
    etag = client.get("/api/v1/schedule?start=2026-10-22")["ETag"]

    weak = client.get("/api/v1/schedule?start=2026-10-22", HTTP_IF_NONE_MATCH=f'"other", W/{etag}')
    star = client.get("/api/v1/schedule?start=2026-10-22", HTTP_IF_NONE_MATCH="*")

    assert weak.status_code == star.status_code == 304
    assert "Content-Type" not in weak
