"""Interval self-service (issue 11, point 7): the intervals staffing offers an agent, and a request
over consecutive ones of one type; staffing lowered by an approval at once; the race for the last
automatic place; DST days in Amsterdam and New York."""

import datetime as dt
import zoneinfo

import pytest
import time_machine

from em_agent.exceptions import ApplicationError
from em_agent.localtime import local_day_bounds
from em_agent.models import WfmSystem
from schedules.models import Activity, ApprovalRule, BlackoutPeriod, RequestType, RuleAction
from tests.conftest import run_together
from tests.factories import AgentFactory, TeamFactory
from tests.schedules.factories import ActivityCodeFactory, shift
from timeoff.intervals import interval_request_create, intervals_for_agent
from timeoff.models import (
    StaffingInterval,
    TimeOffBalance,
    TimeOffLimit,
    TimeOffRequest,
    TimeOffSettings,
    TimeOffStatus,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/time-off/intervals"
REQUEST_URL = "/api/v1/time-off/interval-requests"
NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)  # Thursday 10:00 in Amsterdam
MONDAY = dt.date(2026, 12, 7)
REQUIRED = 5
# Staffing of Monday by local start: 6 scheduled leaves room for one at once (auto), 5 needs approval
# (within the default margin of 1), 4 is not offered; every other interval has plenty.
TIGHT = {"14:00": 6, "14:30": 5, "15:00": 5, "15:30": 4}


def _staffing(organization, team, date, zone, scheduled=None, *, minutes=30, required=REQUIRED):
    """A staffing row per interval of the local day; `scheduled`: by local HH:MM (with its offset
    for the repeated hour: "02:00+01:00"), default 10."""
    scheduled = scheduled or {}
    begin, end = local_day_bounds(date, zone)
    rows, start = [], begin
    while start < end:
        local = start.astimezone(zone)
        wall = f"{local:%H:%M}"
        count = scheduled.get(wall + local.isoformat()[-6:], scheduled.get(wall, 10))
        rows.append(
            StaffingInterval(
                organization=organization,
                team=team,
                start=start,
                minutes=minutes,
                required=required,
                scheduled=count,
            )
        )
        start += dt.timedelta(minutes=minutes)
    StaffingInterval.objects.bulk_create(rows)


@pytest.fixture
def vac(org):
    return ActivityCodeFactory(
        organization=org, code="VAC", name="Vacation", category="time_off", open_for_time_off=True
    )


@pytest.fixture
def team(org):
    return TeamFactory(organization=org, name="Phones")


def _an_agent(agent, team, vac):
    agent.timezone = "Europe/Amsterdam"
    agent.team = team
    agent.save()
    TimeOffBalance.objects.create(agent=agent, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date())
    ActivityCodeFactory(organization=agent.organization, code="LUNCH", category="meal", paid=False)
    with time_machine.travel(NOW, tick=False):
        shift(
            agent,
            MONDAY,
            ("PHONE", "09:00", "12:00"),
            ("LUNCH", "12:00", "12:30"),
            ("PHONE", "12:30", "17:30"),
        )
    return agent


@pytest.fixture
def alice(agent, team, vac):
    return _an_agent(agent, team, vac)


@pytest.fixture
def bob(teammate, team, vac):
    return _an_agent(teammate, team, vac)


@pytest.fixture
def staffed(org, team):
    _staffing(org, team, MONDAY, zoneinfo.ZoneInfo("Europe/Amsterdam"), TIGHT)


@pytest.fixture
def client(logged_in, alice):
    return logged_in(alice)


def _offered(response):
    assert response.status_code == 200, response.content
    return {interval["start"][11:16]: interval["type"] for interval in response.json()["intervals"]}


def _ask(client, *times, date=MONDAY, offset="+01:00", **extra):
    starts = [f"{date}T{time}:00{offset}" for time in times]
    return client.post(REQUEST_URL, {"date": str(date), "activity_code": "VAC", "starts": starts, **extra})


def _day(agent, date):
    return [
        (
            a.activity_code.code,
            f"{a.start.astimezone(agent.zone):%H:%M}",
            f"{a.end.astimezone(agent.zone):%H:%M}",
        )
        for a in Activity.objects.filter(agent=agent, day__date=date)
        .select_related("activity_code")
        .order_by("start")
    ]


# --- what is offered ---------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_future_working_time_of_a_published_day_by_staffing(client, alice, staffed):
    offered = _offered(client.get(URL, {"date": str(MONDAY)}))

    # Working time: 09:00-12:00 and 12:30-17:30 (the unpaid lunch is not), typed by staffing.
    expected = {}
    for hour in range(9, 18):
        for minute in (0, 30):
            wall = f"{hour:02d}:{minute:02d}"
            if wall in ("12:00", "15:30", "17:30"):
                continue
            expected[wall] = "approval_required" if wall in ("14:30", "15:00") else "auto_approve"
    assert offered == expected
    body = client.get(URL, {"date": str(MONDAY)}).json()
    assert body["date"] == "2026-12-07" and body["interval_minutes"] == 30
    assert body["intervals"][0] == {
        "start": "2026-12-07T09:00:00+01:00",
        "end": "2026-12-07T09:30:00+01:00",
        "type": "auto_approve",
    }


@time_machine.travel(dt.datetime(2026, 12, 7, 10, 15, tzinfo=dt.UTC), tick=False)  # Monday 11:15
def test_only_intervals_that_start_later_than_now(logged_in, alice, staffed):
    client = logged_in(alice)
    offered = _offered(client.get(URL, {"date": str(MONDAY)}))

    assert min(offered) == "11:30"
    assert _offered(client.get(URL)) == offered  # today by default


@time_machine.travel(NOW, tick=False)
def test_an_unpublished_day_a_past_day_and_a_day_without_staffing_offer_nothing(client, alice, org, team):
    tuesday = MONDAY + dt.timedelta(days=1)
    shift(alice, tuesday, ("PHONE", "09:00", "17:00"), published=False)
    _staffing(org, team, tuesday, alice.zone)

    assert _offered(client.get(URL, {"date": str(tuesday)})) == {}
    assert _offered(client.get(URL, {"date": str(MONDAY)})) == {}  # published, no staffing
    assert _offered(client.get(URL, {"date": "2026-12-01"})) == {}
    assert _offered(client.get(URL, {"date": "9999-12-31"})) == {}


@time_machine.travel(NOW, tick=False)
def test_the_organisations_staffing_where_the_team_has_none(client, alice, org):
    _staffing(org, None, MONDAY, alice.zone, {"10:00": 5})

    offered = _offered(client.get(URL, {"date": str(MONDAY)}))

    assert offered["10:00"] == "approval_required" and offered["10:30"] == "auto_approve"


@time_machine.travel(NOW, tick=False)
def test_the_organisations_margins(client, alice, org, staffed):
    TimeOffSettings.objects.create(organization=org, interval_auto_margin=1, interval_approval_margin=0)

    offered = _offered(client.get(URL, {"date": str(MONDAY)}))

    # 6 scheduled, 5 required: 5 without her is not required + 1, but within a margin of 0.
    assert (offered["14:00"], offered.get("14:30"), offered["16:00"]) == (
        "approval_required",
        None,
        "auto_approve",
    )


@time_machine.travel(NOW, tick=False)
def test_the_agents_own_pending_time_off_is_not_offered_again(client, alice, staffed):
    assert _ask(client, "14:30").status_code == 201  # needs approval: pending

    offered = _offered(client.get(URL, {"date": str(MONDAY)}))

    assert "14:30" not in offered and offered["14:00"] == "auto_approve"


# --- requesting -----------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_consecutive_automatic_intervals_are_approved_at_once_and_carved_out(client, alice, staffed):
    response = _ask(client, "16:30", "16:00", comment="School run")  # in any order

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["kind"], body["from_intervals"]) == ("approved", "partial_day", True)
    assert (body["start_time"], body["end_time"], body["hours"]) == ("16:00", "17:00", 1.0)
    assert body["status_reason"] == "Approved automatically: the staffing of these intervals allows it."
    assert _day(alice, MONDAY)[-3:] == [
        ("PHONE", "12:30", "16:00"),
        ("VAC", "16:00", "17:00"),
        ("PHONE", "17:00", "17:30"),
    ]
    assert client.get("/api/v1/time-off/balances").json()["balances"][0]["remaining"] == 39.0


@time_machine.travel(NOW, tick=False)
def test_one_half_hour_interval_is_a_request_of_its_own(client, alice, staffed):
    """Shorter than the hour a typed-in part of a day needs: the interval is the unit here."""
    response = _ask(client, "09:30")

    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["hours"]) == ("approved", 0.5)


@time_machine.travel(NOW, tick=False)
def test_intervals_needing_approval_wait_for_a_supervisor(client, alice, staffed, supervisor):
    response = _ask(client, "14:30", "15:00")

    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["hours"]) == ("pending", 1.0)
    assert (
        response.json()["status_reason"] == "A supervisor decides: the staffing of these intervals is tight."
    )
    assert ("VAC", "14:30", "15:30") not in _day(alice, MONDAY)


@time_machine.travel(NOW, tick=False)
def test_an_automatic_interval_follows_the_rule_in_naming_it_and_a_blackout_declines(
    client, alice, org, staffed
):
    rule = ApprovalRule.objects.create(
        organization=org, request_type=RequestType.TIME_OFF, action=RuleAction.MANUAL
    )
    approved = _ask(client, "16:00")
    assert approved.json()["status"] == "approved"  # the staffing's promise, whatever the rule's action
    assert TimeOffRequest.objects.get(pk=approved.json()["id"]).decided_by_rule == rule

    BlackoutPeriod.objects.create(organization=org, start_date=MONDAY, end_date=MONDAY, reason="Peak")
    declined = _ask(client, "10:00")

    assert declined.status_code == 201
    assert declined.json()["status"] == "denied"
    assert "Peak" in declined.json()["status_reason"]


@time_machine.travel(NOW, tick=False)
def test_a_full_day_limit_sends_an_automatic_interval_to_a_supervisor_not_the_waitlist(
    client, alice, org, staffed
):
    ApprovalRule.objects.create(
        organization=org,
        request_type=RequestType.TIME_OFF,
        action=RuleAction.AUTO_APPROVE,
        when_conditions_fail=RuleAction.MANUAL,
        waitlist_when_full=True,
    )
    TimeOffLimit.objects.create(organization=org, unit="agents", capacity=0)

    response = _ask(client, "16:00")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["substatus"]) == ("pending", None)
    assert body["status_reason"] == "Sent to a supervisor: the limit of Monday 7 December is reached."


@pytest.mark.parametrize(
    "times, code, message",
    [
        (("14:00", "14:30"), "mixed_interval_types", "14:30 needs approval; 14:00 is approved at once."),
        (("10:00", "11:00"), "intervals_not_consecutive", "11:00 does not follow 10:00."),
        (("15:30",), "interval_unavailable", "15:30 is not offered."),
        (("12:00",), "interval_unavailable", "12:00 is not offered."),  # the unpaid lunch
        (("09:00", "09:30"), "interval_unavailable", "09:00 is not offered."),  # it starts now: begun
        (("10:10",), "interval_unavailable", "10:10 is not the start of an interval of that day."),
    ],
)
@time_machine.travel(dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC), tick=False)  # Monday 09:00 exactly
def test_refusals(logged_in, alice, staffed, times, code, message):
    response = _ask(logged_in(alice), *times)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert response.json()["fields"] == {"starts": [message]}
    assert not TimeOffRequest.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_start_twice_and_a_wrong_date_are_refused(client, alice, staffed):
    twice = client.post(
        REQUEST_URL,
        {
            "date": str(MONDAY),
            "activity_code": "VAC",
            "starts": ["2026-12-07T10:00:00+01:00", "2026-12-07T09:00:00Z"],
        },
    )
    assert (twice.status_code, twice.json()["code"]) == (400, "validation_error")
    assert twice.json()["fields"] == {"starts": ["Each interval once."]}

    elsewhere = _ask(client, "10:00", date=MONDAY + dt.timedelta(days=1))
    assert elsewhere.json()["code"] == "interval_unavailable"
    naive = client.post(
        REQUEST_URL, {"date": str(MONDAY), "activity_code": "VAC", "starts": ["2026-12-07T10:00:00"]}
    )
    assert (naive.status_code, list(naive.json()["fields"])) == (400, ["starts"])
    precise = client.post(
        REQUEST_URL,
        {"date": str(MONDAY), "activity_code": "VAC", "starts": ["2026-12-07T10:00:00.1234567+01:00"]},
    )
    assert (precise.status_code, list(precise.json()["fields"])) == (400, ["starts"])


@time_machine.travel(NOW, tick=False)
def test_the_balance_rules_of_a_partial_day_hold(client, alice, vac, staffed):
    TimeOffBalance.objects.filter(agent=alice).update(earned_minutes=30)

    response = _ask(client, "10:00", "10:30")

    assert (response.status_code, response.json()["code"]) == (400, "insufficient_balance")


@time_machine.travel(NOW, tick=False)
def test_an_approval_lowers_the_staffing_the_next_agent_sees(logged_in, alice, bob, staffed, org, vac):
    as_bob = logged_in(bob)
    assert _offered(as_bob.get(URL, {"date": str(MONDAY)}))["14:00"] == "auto_approve"

    assert _ask(logged_in(alice), "14:00").json()["status"] == "approved"

    # 6 scheduled, Alice off: 5; without Bob 4, within the approval margin of required (5).
    assert _offered(as_bob.get(URL, {"date": str(MONDAY)}))["14:00"] == "approval_required"
    refused = _ask(as_bob, "14:00", auto_approve_only=True)
    assert (refused.status_code, refused.json()["code"]) == (400, "interval_unavailable")
    assert refused.json()["fields"] == {"starts": ["14:00 is no longer approved at once."]}
    assert (
        StaffingInterval.objects.filter(start=dt.datetime(2026, 12, 7, 13, tzinfo=dt.UTC)).get().scheduled
        == 6
    )

    # An agent of another team takes nothing from this team's staffing.
    other = AgentFactory(organization=org, team=TeamFactory(organization=org), timezone="Europe/Amsterdam")
    TimeOffBalance.objects.create(agent=other, activity_code=vac, earned_minutes=600, as_of=NOW.date())
    shift(other, MONDAY, ("PHONE", "09:00", "17:00"))
    _staffing(org, other.team, MONDAY, other.zone)
    assert _ask(logged_in(other), "15:00").json()["status"] == "approved"
    assert _offered(as_bob.get(URL, {"date": str(MONDAY)}))["15:00"] == "approval_required"


@time_machine.travel(NOW, tick=False)
def test_cancelled_interval_time_off_gives_the_place_back(logged_in, alice, bob, staffed):
    as_alice, as_bob = logged_in(alice), logged_in(bob)
    request_id = _ask(as_alice, "14:00").json()["id"]

    assert as_alice.post(f"/api/v1/time-off/requests/{request_id}/cancel").json()["status"] == "cancelled"

    assert _offered(as_bob.get(URL, {"date": str(MONDAY)}))["14:00"] == "auto_approve"
    assert ("PHONE", "12:30", "17:30") in _day(alice, MONDAY)


@time_machine.travel(NOW, tick=False)
def test_not_in_an_iex_organisation(client, alice, org, staffed):
    org.wfm_system = WfmSystem.IEX
    org.save()

    for response in (client.get(URL), _ask(client, "10:00")):
        assert (response.status_code, response.json()["code"]) == (409, "not_available_for_wfm_system")


# --- DST days ---------------------------------------------------------------------------------------------


@time_machine.travel(dt.datetime(2026, 10, 20, 12, tzinfo=dt.UTC), tick=False)
def test_amsterdam_falling_back_the_repeated_hour_is_two_intervals_each(client, alice, org, team):
    day = dt.date(2026, 10, 25)  # 03:00 CEST becomes 02:00 CET
    shift(alice, day, ("PHONE", "01:00", "05:00"))  # five hours of real time
    _staffing(org, team, day, alice.zone, {"02:30+01:00": 5})

    body = client.get(URL, {"date": str(day)}).json()
    starts = [(interval["start"], interval["type"]) for interval in body["intervals"]]

    assert len(starts) == 10  # 01:00 to 05:00 on the wall, ten half hours of real time
    assert starts[2:6] == [
        ("2026-10-25T02:00:00+02:00", "auto_approve"),
        ("2026-10-25T02:30:00+02:00", "auto_approve"),
        ("2026-10-25T02:00:00+01:00", "auto_approve"),
        ("2026-10-25T02:30:00+01:00", "approval_required"),
    ]
    # The first 02:30 (summer time) is followed by the second 02:00 (winter time): one hour of real time.
    response = client.post(
        REQUEST_URL,
        {
            "date": str(day),
            "activity_code": "VAC",
            "starts": ["2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00"],
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["hours"] == 1.0
    assert response.json()["days"][0]["start"] == "2026-10-25T02:30:00+02:00"
    assert response.json()["days"][0]["end"] == "2026-10-25T02:30:00+01:00"


@time_machine.travel(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), tick=False)
def test_new_york_springing_forward_01_30_is_followed_by_03_00(logged_in, alice, org, team):
    alice.timezone = "America/New_York"
    alice.save()
    day = dt.date(2026, 3, 8)  # 02:00 EST becomes 03:00 EDT
    shift(alice, day, ("PHONE", "00:00", "06:00"))  # five hours of real time
    _staffing(org, team, day, alice.zone)
    client = logged_in(alice)

    offered = [interval["start"] for interval in client.get(URL, {"date": str(day)}).json()["intervals"]]

    assert len(offered) == 10
    assert offered[3:5] == ["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00"]
    response = client.post(
        REQUEST_URL,
        {
            "date": str(day),
            "activity_code": "VAC",
            "starts": ["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00"],
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["start_time"], body["end_time"], body["hours"], body["status"]) == (
        "01:30",
        "03:30",
        1.0,
        "approved",
    )


# --- the race ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("auto_only", [True, False])
def test_two_agents_racing_for_the_last_automatic_interval(postgres, org, alice, bob, staffed, auto_only):
    if not auto_only:  # without auto_approve_only, the interval must not be offered at all after the first
        TimeOffSettings.objects.create(organization=org, interval_approval_margin=0)

    def take(agent):
        def call():
            try:
                return interval_request_create(
                    agent=agent,
                    date=MONDAY,
                    activity_code="VAC",
                    starts=[dt.datetime(2026, 12, 7, 13, tzinfo=dt.UTC)],  # 14:00, 6 scheduled
                    auto_approve_only=auto_only,
                ).status
            except ApplicationError as error:
                return error.code

        return call

    with time_machine.travel(NOW, tick=False):
        results = run_together([take(alice), take(bob)])

    assert sorted(results) == [TimeOffStatus.APPROVED, "interval_unavailable"]
    assert TimeOffRequest.objects.filter(status=TimeOffStatus.APPROVED).count() == 1
    assert TimeOffRequest.objects.count() == 1
    with time_machine.travel(NOW, tick=False):
        loser = bob if results[0] == TimeOffStatus.APPROVED else alice
        remaining = {i.start: i.type for i in intervals_for_agent(agent=loser, date=MONDAY).intervals}
    assert remaining[dt.datetime(2026, 12, 7, 13, tzinfo=dt.UTC)] == (
        "approval_required" if auto_only else None
    )
