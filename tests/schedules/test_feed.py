import datetime as dt
import hashlib
from urllib.parse import urlsplit

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from icalendar import Calendar

from schedules.feed import calendar_feed_for_token, calendar_feed_get_or_create, calendar_feed_ics
from schedules.feed_apis import FEED_RATE_LIMIT
from schedules.models import CalendarFeed
from schedules.services import ActivitySpec, DayPlan, schedule_days_apply
from tests.conftest import run_together
from tests.schedules.factories import ActivityCodeFactory, local, shift

pytestmark = pytest.mark.django_db

FEED_URL = "/api/v1/schedule/feed-url"


@pytest.fixture(autouse=True)
def _frozen():
    # Tuesday 20 October 2026, 10:00 in Amsterdam.
    with time_machine.travel("2026-10-20 08:00:00 +00:00", tick=False) as traveller:
        yield traveller


def _path(url: str) -> str:
    return urlsplit(url).path


def _fetch(path: str, **headers):
    return Client().get(path, **headers)


def _events(response) -> dict[str, tuple[dt.datetime, dt.datetime, str]]:
    calendar = Calendar.from_ical(response.content)
    return {str(event.uid): (event.start, event.end, str(event["SUMMARY"])) for event in calendar.events}


def _activity_ids(agent, date: dt.date) -> list[int]:
    return list(agent.activities.filter(day__date=date).order_by("start").values_list("id", flat=True))


def test_the_feed_holds_the_published_activities_of_the_next_six_weeks(agent, teammate, logged_in):
    today = dt.date(2026, 10, 20)
    shift(agent, today, ("PHONE", "07:00", "09:00"), ("MEET", "09:00", "10:00"))  # earlier today
    shift(agent, dt.date(2026, 11, 30), ("PHONE", "09:00", "17:00"))  # the 42nd day
    shift(agent, dt.date(2026, 10, 19), ("PHONE", "09:00", "17:00"))  # yesterday
    shift(agent, dt.date(2026, 12, 1), ("PHONE", "09:00", "17:00"))  # the 43rd day
    shift(agent, dt.date(2026, 10, 22), ("PHONE", "09:00", "17:00"), published=False)
    shift(teammate, dt.date(2026, 10, 21), ("PHONE", "09:00", "17:00"))
    expected = _activity_ids(agent, today) + _activity_ids(agent, dt.date(2026, 11, 30))

    response = logged_in(agent).get(FEED_URL)
    assert response.status_code == 200
    body = response.json()
    assert body["url"].startswith("http://testserver/calendar/")
    assert body["url"].endswith(".ics")
    assert body["webcal_url"] == "webcal://" + body["url"].removeprefix("http://")
    assert body["created_at"] == "2026-10-20T10:00:00+02:00"
    assert response["Cache-Control"] == "no-store"

    feed = _fetch(_path(body["url"]))

    assert feed.status_code == 200
    assert feed["Content-Type"] == "text/calendar; charset=utf-8"
    assert feed["Cache-Control"] == "private, max-age=300"
    events = _events(feed)
    assert sorted(events) == sorted(f"activity-{pk}@em-agent" for pk in expected)
    assert events[f"activity-{expected[0]}@em-agent"] == (
        dt.datetime(2026, 10, 20, 5, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 20, 7, 0, tzinfo=dt.UTC),
        "Phone",
    )
    calendar = Calendar.from_ical(feed.content)
    assert str(calendar["X-WR-CALNAME"]) == "Work schedule – Alice"
    assert feed.content.count(b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n") == 1
    assert feed.content.count(b"X-PUBLISHED-TTL:PT1H\r\n") == 1


def test_an_event_carries_the_note_and_category_and_a_dutch_agent_reads_dutch(agent, logged_in):
    code = ActivityCodeFactory(
        organization=agent.organization, code="TRAIN", name="Training", category="training"
    )
    date = dt.date(2026, 10, 23)
    schedule_days_apply(
        plans=[
            DayPlan(
                agent=agent,
                date=date,
                published=True,
                activities=[
                    ActivitySpec(
                        activity_code_id=code.pk,
                        start=local(agent, date, "13:00"),
                        end=local(agent, date, "15:00"),
                        note="Room 4, bring a headset",
                    )
                ],
            )
        ],
        source="wfm",
    )
    agent.language = "nl"
    agent.save(update_fields=["language"])

    calendar = Calendar.from_ical(_fetch(_path(logged_in(agent).get(FEED_URL).json()["url"])).content)

    [event] = calendar.events
    assert str(event["SUMMARY"]) == "Training"
    assert str(event["DESCRIPTION"]) == "Room 4, bring a headset"
    assert [str(category) for category in event.categories] == ["Training"]
    assert event["DTSTAMP"].dt == dt.datetime(2026, 10, 20, 8, 0, tzinfo=dt.UTC)
    assert str(calendar["X-WR-CALNAME"]) == "Werkrooster – Alice"


def test_an_activity_without_a_note_has_no_description(agent, logged_in):
    shift(agent, dt.date(2026, 10, 21), ("PHONE", "09:00", "17:00"))

    calendar = Calendar.from_ical(_fetch(_path(logged_in(agent).get(FEED_URL).json()["url"])).content)

    [event] = calendar.events
    assert "DESCRIPTION" not in event


def test_the_same_url_on_every_get(agent, logged_in):
    client = logged_in(agent)

    first = client.get(FEED_URL).json()
    second = client.get(FEED_URL).json()

    assert first == second
    assert CalendarFeed.objects.filter(agent=agent).count() == 1
    assert _fetch(_path(first["url"])).status_code == 200


def test_the_url_has_the_requests_scheme(agent, logged_in):
    body = logged_in(agent).get(FEED_URL, secure=True).json()

    assert body["url"].startswith("https://testserver/calendar/")
    assert body["webcal_url"].startswith("webcal://testserver/calendar/")


@pytest.mark.django_db(transaction=True)
def test_the_app_asking_twice_at_once_gets_one_url(postgres, agent):
    def ask() -> str:
        return calendar_feed_get_or_create(agent=agent)[1]

    tokens = run_together([ask] * 4)

    assert len(set(tokens)) == 1
    assert CalendarFeed.objects.filter(agent=agent).count() == 1


def test_replacing_the_url_kills_the_old_one(agent, logged_in, _frozen):
    client = logged_in(agent)
    old = client.get(FEED_URL).json()["url"]
    _frozen.shift(dt.timedelta(minutes=30))

    response = client.post(FEED_URL)

    assert response.status_code == 201
    new = response.json()
    assert new["url"] != old
    assert new["created_at"] == "2026-10-20T10:30:00+02:00"
    assert _fetch(_path(old)).status_code == 404
    assert _fetch(_path(new["url"])).status_code == 200
    assert client.get(FEED_URL).json()["url"] == new["url"]


def test_post_without_a_feed_makes_one(agent, logged_in):
    response = logged_in(agent).post(FEED_URL)

    assert response.status_code == 201
    assert _fetch(_path(response.json()["url"])).status_code == 200


def test_delete_revokes_the_url(agent, logged_in):
    client = logged_in(agent)
    url = client.get(FEED_URL).json()["url"]

    assert client.delete(FEED_URL).status_code == 204

    assert _fetch(_path(url)).status_code == 404
    assert not CalendarFeed.objects.filter(agent=agent).exists()
    assert client.delete(FEED_URL).status_code == 204  # nothing left to revoke: still 204
    assert client.get(FEED_URL).json()["url"] != url  # a fresh one on request


@pytest.mark.parametrize("how", ["login_disabled", "not_activated"])
def test_an_agent_who_may_not_use_the_app_has_no_feed(agent, logged_in, how):
    url = logged_in(agent).get(FEED_URL).json()["url"]
    unknown = _fetch("/calendar/" + "x" * 43 + ".ics")
    if how == "login_disabled":
        agent.user.is_active = False
        agent.user.save(update_fields=["is_active"])
    else:
        agent.activated_at = None
        agent.save(update_fields=["activated_at"])

    refused = _fetch(_path(url))

    # The same answer as for a token that never existed: no oracle.
    assert refused.status_code == unknown.status_code == 404
    assert refused.json() == unknown.json() == {"code": "not_found", "detail": "Not found."}


def test_the_token_is_not_stored_in_clear(agent):
    feed, token = calendar_feed_get_or_create(agent=agent)

    row = CalendarFeed.objects.filter(pk=feed.pk).values().get()
    assert all(token not in str(value) for value in row.values())
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert calendar_feed_for_token(token=token) == feed
    assert calendar_feed_for_token(token=token[:-1]) is None
    assert calendar_feed_for_token(token="") is None


def test_the_other_organisations_agent_gets_its_own_feed(agent, outsider, logged_in):
    shift(agent, dt.date(2026, 10, 21), ("PHONE", "09:00", "17:00"))
    mine = logged_in(agent).get(FEED_URL).json()["url"]

    theirs = logged_in(outsider).get(FEED_URL).json()["url"]

    assert theirs != mine
    assert Calendar.from_ical(_fetch(_path(theirs)).content).events == []
    assert logged_in(outsider).delete(FEED_URL).status_code == 204
    assert _fetch(_path(mine)).status_code == 200  # revoking one's own never touches another's


def test_dst_the_autumn_change_in_amsterdam_gives_the_right_utc_times(agent):
    shift(agent, dt.date(2026, 10, 24), ("NIGHT", "22:00", "06:00"))  # into the 25th: 9 hours
    shift(agent, dt.date(2026, 10, 25), ("PHONE", "09:00", "17:00"))
    night, day = _activity_ids(agent, dt.date(2026, 10, 24)) + _activity_ids(agent, dt.date(2026, 10, 25))
    feed, _token = calendar_feed_get_or_create(agent=agent)

    calendar = Calendar.from_ical(calendar_feed_ics(feed=feed, now=dt.datetime.now(tz=dt.UTC)))

    times = {str(event.uid): (event.start, event.end) for event in calendar.events}
    assert times[f"activity-{night}@em-agent"] == (
        dt.datetime(2026, 10, 24, 20, 0, tzinfo=dt.UTC),  # 22:00 CEST
        dt.datetime(2026, 10, 25, 5, 0, tzinfo=dt.UTC),  # 06:00 CET
    )
    assert times[f"activity-{day}@em-agent"] == (
        dt.datetime(2026, 10, 25, 8, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 25, 16, 0, tzinfo=dt.UTC),
    )


def test_today_is_the_agents_local_date(agent):
    shift(agent, dt.date(2026, 10, 20), ("PHONE", "09:00", "17:00"))
    shift(agent, dt.date(2026, 12, 1), ("PHONE", "09:00", "17:00"))
    feed, _token = calendar_feed_get_or_create(agent=agent)

    # 23:30 UTC on 30 November is already 1 December in Amsterdam: the window has moved a day.
    late = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)
    calendar = Calendar.from_ical(calendar_feed_ics(feed=feed, now=late))

    assert [event.start.date() for event in calendar.events] == [dt.date(2026, 12, 1)]


def test_the_feed_costs_the_same_queries_for_one_day_and_forty(agent, teammate, logged_in):
    shift(agent, dt.date(2026, 10, 20), ("PHONE", "09:00", "17:00"))
    for offset in range(40):
        shift(
            teammate,
            dt.date(2026, 10, 20) + dt.timedelta(days=offset),
            ("PHONE", "09:00", "12:00"),
            ("PHONE", "13:00", "17:00"),
        )
    paths = [_path(logged_in(person).get(FEED_URL).json()["url"]) for person in (agent, teammate)]
    for path in paths:
        assert _fetch(path).status_code == 200  # the first fetch records last_used_at

    counts, sizes = [], []
    for path in paths:
        with CaptureQueriesContext(connection) as queries:
            response = _fetch(path)
        counts.append(len(queries))
        sizes.append(len(Calendar.from_ical(response.content).events))

    assert sizes == [1, 80]
    assert counts[0] == counts[1] <= 2


def test_last_used_at_is_written_at_most_once_an_hour(agent, _frozen):
    feed, token = calendar_feed_get_or_create(agent=agent)
    path = f"/calendar/{token}.ics"

    _fetch(path)
    feed.refresh_from_db()
    first = feed.last_used_at
    assert first == dt.datetime(2026, 10, 20, 8, 0, tzinfo=dt.UTC)

    _frozen.shift(dt.timedelta(minutes=59))
    with CaptureQueriesContext(connection) as queries:
        _fetch(path)
    assert not any(query["sql"].startswith("UPDATE") for query in queries)
    feed.refresh_from_db()
    assert feed.last_used_at == first

    _frozen.shift(dt.timedelta(minutes=2))
    _fetch(path)
    feed.refresh_from_db()
    assert feed.last_used_at == dt.datetime(2026, 10, 20, 9, 1, tzinfo=dt.UTC)


def test_head_answers_like_get_without_a_body(agent):
    _feed, token = calendar_feed_get_or_create(agent=agent)

    response = Client().head(f"/calendar/{token}.ics")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.content == b""
    assert Client().post(f"/calendar/{token}.ics").status_code == 405


def test_too_many_fetches_from_one_address_answer_429(agent, _frozen):
    _feed, token = calendar_feed_get_or_create(agent=agent)
    _frozen.move_to("2026-10-20 08:00:15 +00:00")
    path = f"/calendar/{token}.ics"
    for _ in range(FEED_RATE_LIMIT):
        assert _fetch(path).status_code == 200

    refused = _fetch(path)
    guessing = _fetch("/calendar/" + "y" * 43 + ".ics")
    other_address = _fetch(path, REMOTE_ADDR="10.0.0.2")

    assert refused.status_code == guessing.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert refused["Retry-After"] == "45"
    assert other_address.status_code == 200
    _frozen.shift(dt.timedelta(seconds=45))
    assert _fetch(path).status_code == 200
