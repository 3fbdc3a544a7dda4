"""CXone time-off requests through the API: asking, the engine's decision, the schedule, the waitlist,
cancelling, the balance and the preview (issue 11, points 1-6 and 8)."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from notifications.models import Notification
from schedules.models import Activity, ApprovalRule, RequestType, RuleAction, ScheduleDay
from tests.factories import AgentFactory, OrganizationFactory, TeamFactory
from tests.schedules.factories import ActivityCodeFactory, local, shift
from timeoff.models import (
    TimeOffBalance,
    TimeOffLimit,
    TimeOffPolicy,
    TimeOffRequest,
    TimeOffStatus,
)
from timeoff.services import time_off_request_approve, time_off_waitlist_advance

pytestmark = pytest.mark.django_db

URL = "/api/v1/time-off/requests"
NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)  # Thursday 10:00 in Amsterdam
MONDAY = dt.date(2026, 12, 7)
TUESDAY = dt.date(2026, 12, 8)


@pytest.fixture
def vac(org):
    return ActivityCodeFactory(
        organization=org, code="VAC", name="Vacation", category="time_off", open_for_time_off=True
    )


@pytest.fixture
def auto_rule(org):
    return ApprovalRule.objects.create(
        organization=org,
        request_type=RequestType.TIME_OFF,
        action=RuleAction.AUTO_APPROVE,
        when_conditions_fail=RuleAction.MANUAL,
        waitlist_when_full=True,
    )


@pytest.fixture
def alice(agent, vac):
    agent.timezone = "Europe/Amsterdam"
    agent.save()
    TimeOffBalance.objects.create(agent=agent, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date())
    ActivityCodeFactory(organization=agent.organization, code="LUNCH", paid=False)
    with time_machine.travel(NOW, tick=False):
        for date in (MONDAY, TUESDAY):
            shift(
                agent,
                date,
                ("PHONE", "09:00", "12:00"),
                ("LUNCH", "12:00", "12:30"),
                ("PHONE", "12:30", "17:30"),
            )
    return agent


@pytest.fixture
def client(logged_in, alice):
    return logged_in(alice)


def _full(start=MONDAY, end=None, **extra):
    end = end or start
    return {
        "kind": "full_day",
        "activity_code": "VAC",
        "start_date": str(start),
        "end_date": str(end),
        **extra,
    }


def _partial(date=MONDAY, start="13:00", end="17:00", **extra):
    return {
        "kind": "partial_day",
        "activity_code": "VAC",
        "date": str(date),
        "start_time": start,
        "end_time": end,
        **extra,
    }


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


@time_machine.travel(NOW, tick=False)
def test_a_whole_day_approved_at_once_replaces_the_shift_and_tells_the_agent_once(client, alice, auto_rule):
    response = client.post(URL, _full(comment="Dentist abroad"))

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["substatus"], body["waitlist_position"]) == ("approved", None, None)
    assert body["hours"] == 8.0  # 8.5 hours less the unpaid half-hour lunch
    assert body["days"][0]["date"] == "2026-12-07" and body["days"][0]["hours"] == 8.0
    assert body["decided_by"] == {"type": "rule", "name": None}
    assert _day(alice, MONDAY) == [("VAC", "09:00", "17:30")]
    kinds = list(Notification.objects.filter(user=alice.user).values_list("kind", flat=True))
    assert sorted(kinds) == ["schedule_adjusted", "time_off_approved"]


@time_machine.travel(NOW, tick=False)
def test_part_of_a_day_is_carved_out_of_the_shift(client, alice, auto_rule):
    response = client.post(URL, _partial(start="14:00", end="17:30"))

    assert response.status_code == 201, response.content
    assert response.json()["hours"] == 3.5
    assert (response.json()["start_time"], response.json()["end_time"]) == ("14:00", "17:30")
    assert _day(alice, MONDAY) == [
        ("PHONE", "09:00", "12:00"),
        ("LUNCH", "12:00", "12:30"),
        ("PHONE", "12:30", "14:00"),
        ("VAC", "14:00", "17:30"),
    ]


@time_machine.travel(NOW, tick=False)
def test_without_a_rule_a_supervisor_decides_and_the_approval_applies_then(client, alice, supervisor):
    response = client.post(URL, _full())

    assert response.json()["status"] == "pending"
    assert _day(alice, MONDAY)[0][0] == "PHONE"

    time_off_request_approve(request_id=response.json()["id"], actor=supervisor)

    assert _day(alice, MONDAY) == [("VAC", "09:00", "17:30")]
    assert client.get(f"{URL}/{response.json()['id']}").json()["decided_by"] == {
        "type": "supervisor",
        "name": "Sam Jansen",
    }


@time_machine.travel(NOW, tick=False)
def test_an_unpublished_day_counts_the_default_hours_and_gets_the_time_off_at_the_day_start(
    client, alice, auto_rule
):
    friday = dt.date(2026, 12, 11)

    response = client.post(URL, _full(friday, dt.date(2026, 12, 13)))

    assert response.status_code == 201, response.content
    assert [(d["date"], d["hours"]) for d in response.json()["days"]] == [
        ("2026-12-11", 8.0),
        ("2026-12-12", 0.0),
        ("2026-12-13", 0.0),
    ]
    assert _day(alice, friday) == [("VAC", "09:00", "17:00")]
    assert ScheduleDay.objects.get(agent=alice, date=friday).published is False
    assert _day(alice, dt.date(2026, 12, 12)) == []


@time_machine.travel(NOW, tick=False)
def test_a_day_published_while_its_request_waits_counts_its_schedule_when_approved(client, alice, supervisor):
    """Asked for while unpublished (the default 8 hours), published by the WFM with a shorter shift
    before the supervisor decides: the approval counts what the day now holds, and so does the
    balance."""
    friday = dt.date(2026, 12, 11)
    response = client.post(URL, _full(friday))
    assert response.json()["status"] == "pending" and response.json()["hours"] == 8.0

    shift(
        alice, friday, ("PHONE", "10:00", "13:00"), ("LUNCH", "13:00", "13:30"), ("PHONE", "13:30", "16:30")
    )
    time_off_request_approve(request_id=response.json()["id"], actor=supervisor)

    approved = client.get(f"{URL}/{response.json()['id']}").json()
    assert (approved["status"], approved["hours"], approved["days"][0]["hours"]) == ("approved", 6.0, 6.0)
    (balance,) = client.get("/api/v1/time-off/balances").json()["balances"]
    assert (Decimal(str(balance["planned"])), Decimal(str(balance["remaining"]))) == (Decimal(6), Decimal(34))
    assert _day(alice, friday) == [("VAC", "10:00", "16:30")]


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "body, code, field",
    [
        (_full(dt.date(2026, 12, 3), dt.date(2026, 12, 3)), "in_the_past", "start_date"),
        (_full(dt.date(2026, 12, 2), dt.date(2026, 12, 4)), "in_the_past", "start_date"),
        (_partial(dt.date(2026, 12, 3), "09:00", "11:00"), "partial_day_needs_published_schedule", "date"),
        (_partial(start="13:00", end="13:30"), "duration_out_of_range", "end_time"),
        (_partial(start="08:00", end="17:00"), "duration_out_of_range", "end_time"),
        (_partial(dt.date(2026, 12, 9)), "partial_day_needs_published_schedule", "date"),
        (_full(MONDAY, dt.date(2027, 1, 7)), "validation_error", "end_date"),
        (_full(TUESDAY, MONDAY), "validation_error", "end_date"),
        (_full(dt.date(2026, 12, 12), dt.date(2026, 12, 13)), "validation_error", "end_date"),
        ({**_full(), "activity_code": "PHONE"}, "validation_error", "activity_code"),
        ({**_full(), "kind": "half_day"}, "validation_error", "kind"),
        ({**_full(), "start_date": None}, "validation_error", "start_date"),
    ],
)
def test_refusals_carry_the_contracts_codes(client, body, code, field):
    response = client.post(URL, body)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert field in response.json()["fields"]
    assert not TimeOffRequest.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_request_over_pending_or_approved_time_off_is_refused(client, auto_rule):
    assert client.post(URL, _partial(start="13:00", end="15:00")).json()["status"] == "approved"

    response = client.post(URL, _full(MONDAY, TUESDAY))

    assert response.status_code == 400
    assert response.json()["code"] == "overlaps_existing_request"
    assert client.post(URL, _partial(start="15:00", end="17:00")).status_code == 201  # touching is fine


@time_machine.travel(NOW, tick=False)
def test_more_than_the_balance_is_refused_and_a_negative_floor_lets_it_go_below_zero(
    client, alice, vac, auto_rule
):
    TimeOffBalance.objects.filter(agent=alice).update(earned_minutes=10 * 60)

    refused = client.post(URL, _full(MONDAY, TUESDAY))  # 16 hours of 10
    TimeOffPolicy.objects.create(organization=alice.organization, activity_code=vac, floor_hours=Decimal(-8))
    allowed = client.post(URL, _full(MONDAY, TUESDAY))

    assert (refused.status_code, refused.json()["code"]) == (400, "insufficient_balance")
    assert allowed.json()["status"] == "approved"
    balance = client.get("/api/v1/time-off/balances").json()["balances"][0]
    assert (balance["earned"], balance["planned"], balance["remaining"]) == (10.0, 16.0, -6.0)


@time_machine.travel(NOW, tick=False)
def test_the_balance_counts_used_planned_and_pending(client, alice, vac, supervisor, auto_rule, logged_in):
    auto_rule.action = RuleAction.MANUAL
    auto_rule.save()
    first = client.post(URL, _full(MONDAY)).json()
    second = client.post(URL, _full(TUESDAY))
    assert second.status_code == 201, second.content
    time_off_request_approve(request_id=first["id"], actor=supervisor)

    before = client.get("/api/v1/time-off/balances").json()
    with time_machine.travel(dt.datetime(2026, 12, 8, 12, 0, tzinfo=dt.UTC), tick=False):
        after = logged_in(alice).get("/api/v1/time-off/balances").json()

    assert before["unit"] == "hours"
    assert {
        k: before["balances"][0][k]
        for k in ("activity_code", "earned", "used", "planned", "remaining", "pending")
    } == {
        "activity_code": "VAC",
        "earned": 40.0,
        "used": 0.0,
        "planned": 8.0,
        "remaining": 32.0,
        "pending": 8.0,
    }
    assert (after["balances"][0]["used"], after["balances"][0]["planned"]) == (8.0, 0.0)


@time_machine.travel(NOW, tick=False)
def test_an_accrual_rule_earns_where_the_wfm_sends_no_balance(client, alice, vac):
    TimeOffBalance.objects.all().delete()
    TimeOffPolicy.objects.create(
        organization=alice.organization,
        activity_code=vac,
        accrual_hours_per_month=Decimal(10),
        accrual_start=dt.date(2026, 1, 1),
        starting_hours=Decimal(5),
    )

    balance = client.get("/api/v1/time-off/balances").json()["balances"][0]

    assert balance["earned"] == 125.0  # 5 + 12 months (January to December) x 10


@time_machine.travel(NOW, tick=False)
def test_the_answer_to_a_request_is_the_request_as_read_back(client, alice, org, vac, auto_rule, logged_in):
    """The 201 is rendered from what the service wrote, not read back: it must say all that a
    read says, for each outcome (approved at once, waitlisted, part of a day)."""
    TimeOffLimit.objects.create(organization=org, capacity=1)
    other = AgentFactory(organization=org, timezone="Europe/Amsterdam")
    TimeOffBalance.objects.create(agent=other, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date())
    shift(other, MONDAY, ("PHONE", "09:00", "17:00"))
    other_client = logged_in(other)

    answers = [
        (client, client.post(URL, _full(comment="Family")).json()),
        (other_client, other_client.post(URL, _full()).json()),
        (client, client.post(URL, _partial(date=TUESDAY)).json()),
    ]

    assert [(a["status"], a["substatus"]) for _c, a in answers] == [
        ("approved", None),
        ("pending", "waitlisted"),
        ("approved", None),
    ]
    for reader, answer in answers:
        assert answer == reader.get(f"{URL}/{answer['id']}").json()


@time_machine.travel(NOW, tick=False)
def test_an_approval_at_once_does_not_read_back_the_days_it_wrote(client, auto_rule):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        answer = client.post(URL, _full(TUESDAY)).json()

    assert answer["status"] == "approved" and [d["date"] for d in answer["days"]] == [str(TUESDAY)]
    own_days = f'"timeoff_timeoffday"."request_id" = {answer["id"]}'
    assert not [q["sql"] for q in queries if q["sql"].startswith("SELECT") and own_days in q["sql"]]


@time_machine.travel(NOW, tick=False)
def test_a_full_limit_waitlists_in_order_and_a_cancellation_approves_the_first(
    client, alice, org, vac, auto_rule, logged_in, django_capture_on_commit_callbacks
):
    TimeOffLimit.objects.create(organization=org, capacity=1)
    others = [AgentFactory(organization=org, timezone="Europe/Amsterdam") for _ in range(2)]
    for other in others:
        TimeOffBalance.objects.create(
            agent=other, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date()
        )
        with time_machine.travel(NOW, tick=False):
            shift(other, MONDAY, ("PHONE", "09:00", "17:00"))

    mine = client.post(URL, _full()).json()
    second, third = (logged_in(other).post(URL, _full()).json() for other in others)

    assert mine["status"] == "approved"
    assert [(r["status"], r["substatus"], r["waitlist_position"]) for r in (second, third)] == [
        ("pending", "waitlisted", 1),
        ("pending", "waitlisted", 2),
    ]
    assert "limit of Monday 7 December" in second["status_reason"]
    in_dutch = logged_in(others[0]).get(f"{URL}/{second['id']}", HTTP_ACCEPT_LANGUAGE="nl").json()
    assert in_dutch["status_reason"] == "Op de wachtlijst: de limiet van maandag 7 december is bereikt."

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = client.post(f"{URL}/{mine['id']}/cancel")

    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
    statuses = dict(TimeOffRequest.objects.values_list("pk", "status"))
    assert (statuses[second["id"]], statuses[third["id"]]) == ("approved", "pending")
    assert TimeOffRequest.objects.get(pk=third["id"]).substatus == "waitlisted"
    assert Notification.objects.filter(user=others[0].user, kind="time_off_approved").count() == 1
    assert _day(others[0], MONDAY) == [("VAC", "09:00", "17:00")]


@time_machine.travel(NOW, tick=False)
def test_a_waitlisted_day_published_meanwhile_counts_its_schedule_when_its_place_comes(
    client, alice, org, vac, auto_rule, logged_in
):
    """Waitlisted for a day not yet published (the default 8 hours); the WFM publishes it with a
    6-hour shift; when a place frees, the approval from the waitlist counts 6."""
    friday = dt.date(2026, 12, 11)
    TimeOffLimit.objects.create(organization=org, capacity=1)
    other = AgentFactory(organization=org, timezone="Europe/Amsterdam")
    TimeOffBalance.objects.create(agent=other, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date())
    mine = client.post(URL, _full(friday)).json()
    waiting = logged_in(other).post(URL, _full(friday)).json()
    assert (mine["status"], waiting["substatus"], waiting["hours"]) == ("approved", "waitlisted", 8.0)

    shift(other, friday, ("PHONE", "10:00", "16:00"))
    client.post(f"{URL}/{mine['id']}/cancel")
    time_off_waitlist_advance(organization_id=org.pk)

    approved = TimeOffRequest.objects.get(pk=waiting["id"])
    assert (approved.status, approved.minutes) == ("approved", 360)
    assert list(approved.days.values_list("minutes", flat=True)) == [360]
    assert _day(other, friday) == [("VAC", "10:00", "16:00")]


@time_machine.travel(NOW, tick=False)
def test_a_team_limit_counts_only_the_team_and_hours_limits_count_hours(
    client, alice, org, vac, auto_rule, logged_in
):
    team, other_team = TeamFactory(organization=org), TeamFactory(organization=org)
    alice.team = team
    alice.save()
    elsewhere = AgentFactory(organization=org, team=other_team, timezone="Europe/Amsterdam")
    TimeOffBalance.objects.create(
        agent=elsewhere, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date()
    )
    shift(elsewhere, MONDAY, ("PHONE", "08:00", "17:00"))
    TimeOffLimit.objects.create(organization=org, team=team, unit="hours", capacity=Decimal(10))
    TimeOffLimit.objects.create(organization=org, team=other_team, unit="hours", capacity=Decimal(10))
    assert (
        logged_in(elsewhere).post(URL, _full(MONDAY)).json()["status"] == "approved"
    )  # 9 of the other team's 10
    TimeOffLimit.objects.create(organization=org, team=team, date=TUESDAY, unit="hours", capacity=Decimal(5))

    monday = client.post(URL, _full(MONDAY)).json()  # 8.0 of 10 hours
    tuesday = client.post(URL, _full(TUESDAY))  # 8 of 5: the date's own limit
    assert tuesday.status_code == 201, tuesday.content
    tuesday = tuesday.json()

    assert monday["status"] == "approved"
    assert (tuesday["status"], tuesday["substatus"]) == ("pending", "waitlisted")


@time_machine.travel(NOW, tick=False)
def test_raising_a_limit_lets_the_waitlist_advance(client, org, auto_rule):
    limit = TimeOffLimit.objects.create(organization=org, capacity=0)
    waiting = client.post(URL, _full()).json()
    assert waiting["substatus"] == "waitlisted"

    limit.capacity = 1
    limit.save()
    approved = time_off_waitlist_advance(organization_id=org.pk)

    assert approved == 1
    assert TimeOffRequest.objects.get(pk=waiting["id"]).status == "approved"


@time_machine.travel(NOW, tick=False)
def test_cancelling_approved_time_off_restores_the_day_exactly_ids_included_and_tells_the_supervisor(
    client, alice, supervisor, auto_rule
):
    before = list(
        Activity.objects.filter(agent=alice, day__date=MONDAY).values_list(
            "id", "activity_code", "start", "end"
        )
    )
    approved = client.post(URL, _full()).json()

    response = client.post(f"{URL}/{approved['id']}/cancel")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert response.json()["not_restored"] == []
    after = list(
        Activity.objects.filter(agent=alice, day__date=MONDAY).values_list(
            "id", "activity_code", "start", "end"
        )
    )
    assert after == before
    told = Notification.objects.get(user=supervisor, kind="time_off_cancelled")
    assert told.params["agent_name"] == "Alice"
    balance = client.get("/api/v1/time-off/balances").json()["balances"][0]
    assert balance["remaining"] == 40.0


@time_machine.travel(NOW, tick=False)
def test_a_day_the_wfm_rewrote_since_is_restored_to_the_wfms_copy(client, alice, auto_rule):
    approved = client.post(URL, _full(MONDAY, TUESDAY)).json()
    shift(alice, MONDAY, ("PHONE", "10:00", "18:00"))  # the sync brings a new copy of Monday

    response = client.post(f"{URL}/{approved['id']}/cancel")

    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    assert _day(alice, MONDAY) == [("PHONE", "10:00", "18:00")]  # the WFM's copy stands
    # and the answer says what of Monday's former day did not come back, and why
    assert [
        (item["date"], item["activity_code"], item["start"], item["end"], item["why"])
        for item in response.json()["not_restored"]
    ] == [
        (MONDAY.isoformat(), "PHONE", f"{MONDAY}T09:00:00+01:00", f"{MONDAY}T12:00:00+01:00", "wfm_copy"),
        (MONDAY.isoformat(), "LUNCH", f"{MONDAY}T12:00:00+01:00", f"{MONDAY}T12:30:00+01:00", "wfm_copy"),
        (MONDAY.isoformat(), "PHONE", f"{MONDAY}T12:30:00+01:00", f"{MONDAY}T17:30:00+01:00", "wfm_copy"),
    ]
    assert response.json()["not_restored"][0]["detail"].startswith("The WFM has sent a newer schedule")
    assert _day(alice, TUESDAY) == [  # the day the sync left alone: the journal's before-state
        ("PHONE", "09:00", "12:00"),
        ("LUNCH", "12:00", "12:30"),
        ("PHONE", "12:30", "17:30"),
    ]


def test_begun_time_off_cannot_be_cancelled_but_a_part_of_today_still_ahead_can(
    client, alice, auto_rule, logged_in
):
    with time_machine.travel(NOW, tick=False):
        whole = client.post(URL, _full()).json()
        part = client.post(URL, _partial(TUESDAY, "15:00", "17:30")).json()

    with time_machine.travel(local(alice, MONDAY, "07:00"), tick=False):
        refused = logged_in(alice).post(f"{URL}/{whole['id']}/cancel")
    with time_machine.travel(local(alice, TUESDAY, "14:00"), tick=False):
        allowed = logged_in(alice).post(f"{URL}/{part['id']}/cancel")

    assert (refused.status_code, refused.json()["code"]) == (409, "cannot_cancel_past")
    assert allowed.status_code == 200, allowed.content
    assert _day(alice, TUESDAY)[-1] == ("PHONE", "12:30", "17:30")


@time_machine.travel(NOW, tick=False)
def test_a_pending_request_is_withdrawn_and_a_withdrawn_one_cannot_be_cancelled(client):
    pending = client.post(URL, _full()).json()

    first = client.post(f"{URL}/{pending['id']}/cancel")
    second = client.post(f"{URL}/{pending['id']}/cancel")

    assert first.json()["status"] == "withdrawn"
    assert (second.status_code, second.json()["code"]) == (409, "not_cancellable")


@time_machine.travel(NOW, tick=False)
def test_the_preview_says_what_would_happen_and_writes_nothing(client, org, auto_rule):
    TimeOffLimit.objects.create(organization=org, date=TUESDAY, capacity=0)

    approve = client.post(f"{URL}/preview", _full())
    waitlist = client.post(f"{URL}/preview", _full(TUESDAY, TUESDAY))
    refused = client.post(f"{URL}/preview", _partial(start="13:00", end="13:15"))

    assert approve.status_code == 200, approve.content
    assert approve.json() == {
        "days": [{"date": "2026-12-07", "hours": 8.0}],
        "hours": 8.0,
        "balance_after": 32.0,
        "outcome": "auto_approve",
        "reasons": ["Approved automatically."],
    }
    assert waitlist.json()["outcome"] == "waitlisted"
    assert waitlist.json()["reasons"] == ["the limit of Tuesday 8 December is reached"]
    assert refused.json()["code"] == "duration_out_of_range"
    assert not TimeOffRequest.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_the_overview_is_a_months_requests_newest_first_with_filters(client, auto_rule):
    first = client.post(URL, _full()).json()
    second = client.post(URL, _partial(TUESDAY)).json()
    january = client.post(URL, _full(dt.date(2027, 1, 4), dt.date(2027, 1, 4))).json()

    december = client.get(URL, {"month": "2026-12"}).json()["results"]
    partial_only = client.get(URL, {"month": "2026-12", "kind": "partial_day"}).json()["results"]
    by_default = client.get(URL).json()["results"]
    approved_january = client.get(URL, {"month": "2027-01", "status": "approved,pending"}).json()["results"]

    assert [r["id"] for r in december] == [second["id"], first["id"]]
    assert [r["id"] for r in partial_only] == [second["id"]]
    assert [r["id"] for r in by_default] == [second["id"], first["id"]]
    assert [r["id"] for r in approved_january] == [january["id"]]
    assert client.get(URL, {"status": "nope"}).status_code == 400


@time_machine.travel(NOW, tick=False)
def test_requests_are_the_agents_own(client, alice, teammate, outsider, logged_in, auto_rule):
    mine = client.post(URL, _full()).json()

    outsider.organization.wfm_system = "cxone"
    outsider.organization.save()
    for other in (teammate, outsider):
        other_client = logged_in(other)
        for answer in (
            other_client.get(f"{URL}/{mine['id']}"),
            other_client.post(f"{URL}/{mine['id']}/cancel"),
        ):
            assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    assert TimeOffRequest.objects.get(pk=mine["id"]).status == TimeOffStatus.APPROVED


@time_machine.travel(NOW, tick=False)
def test_iex_organisations_get_409_on_every_time_off_endpoint(logged_in):
    iex = OrganizationFactory(wfm_system="iex", slug="iex-test")
    ivo = AgentFactory(organization=iex)
    client = logged_in(ivo)

    answers = [
        client.get(URL),
        client.post(URL, _full()),
        client.post(f"{URL}/preview", _full()),
        client.get(f"{URL}/1"),
        client.post(f"{URL}/1/cancel"),
        client.get("/api/v1/time-off/balances"),
    ]

    assert {(a.status_code, a.json()["code"]) for a in answers} == {(409, "not_available_for_wfm_system")}


@time_machine.travel(NOW, tick=False)
def test_the_lapse_denies_what_began_undecided(client, alice):
    pending = client.post(URL, _partial(MONDAY, "13:00", "15:00")).json()
    from timeoff.services import time_off_requests_lapse

    assert time_off_requests_lapse(now=local(alice, MONDAY, "13:01")) == 1
    assert TimeOffRequest.objects.get(pk=pending["id"]).status == "denied"
    assert Notification.objects.filter(user=alice.user, kind="time_off_denied").exists()
    # The reason as each reader asks for it, not in the language of the agent's profile.
    bodies = {
        language: next(
            n["body"]
            for n in client.get("/api/v1/notifications", headers={"Accept-Language": language}).json()[
                "results"
            ]
            if n["kind"] == "time_off_denied"
        )
        for language in ("en", "nl")
    }
    assert bodies["en"].endswith("Reason: The time off began before a supervisor decided.")
    assert "Reden:" in bodies["nl"] and "began" not in bodies["nl"]


def test_the_demo_has_time_off_rules_limits_an_accrual_rule_and_one_waitlisted_request(settings, tmp_path):
    from django.core.management import call_command

    settings.WFM_DEMO_EXPORT_DIR = str(tmp_path)
    with time_machine.travel(dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC), tick=False):
        call_command("seed_demo", "--password", "demo-pass-2026", stdout=open("/dev/null", "w"))  # noqa: SIM115
        call_command("seed_demo", "--password", "demo-pass-2026", stdout=open("/dev/null", "w"))  # noqa: SIM115

    waitlisted = TimeOffRequest.objects.get(substatus="waitlisted")
    assert waitlisted.agent.user.email == "anna@contoso.demo"
    assert TimeOffRequest.objects.filter(status="approved", start_date=waitlisted.start_date).count() == 1
    assert TimeOffRequest.objects.count() == 2  # the second seed added nothing
    comp = TimeOffPolicy.objects.get(organization=waitlisted.agent.organization, activity_code__code="COMP")
    assert comp.accrual_hours_per_month == Decimal(4)
    assert TimeOffLimit.objects.filter(organization=waitlisted.agent.organization, date__isnull=True).exists()


@time_machine.travel(NOW, tick=False)
def test_a_newcomer_does_not_take_a_freed_place_before_the_waitlist(
    client, alice, org, vac, auto_rule, logged_in
):
    TimeOffLimit.objects.create(organization=org, capacity=1)
    waiting, newcomer = (AgentFactory(organization=org, timezone="Europe/Amsterdam") for _ in range(2))
    for other in (waiting, newcomer):
        TimeOffBalance.objects.create(
            agent=other, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date()
        )
        shift(other, MONDAY, ("PHONE", "09:00", "17:00"))
    mine = client.post(URL, _full()).json()
    queued = logged_in(waiting).post(URL, _full()).json()
    assert queued["substatus"] == "waitlisted"

    client.post(f"{URL}/{mine['id']}/cancel")  # the advance runs after commit: not yet here
    late = logged_in(newcomer).post(URL, _full()).json()

    assert (late["status"], late["substatus"], late["waitlist_position"]) == ("pending", "waitlisted", 2)
    assert time_off_waitlist_advance(organization_id=org.pk) == 1
    assert TimeOffRequest.objects.get(pk=queued["id"]).status == "approved"
    assert TimeOffRequest.objects.get(pk=late["id"]).substatus == "waitlisted"


@time_machine.travel(NOW, tick=False)
def test_an_agent_already_off_that_day_takes_no_second_place(client, org, auto_rule):
    TimeOffLimit.objects.create(organization=org, capacity=1)

    morning = client.post(URL, _partial(start="09:00", end="11:00")).json()
    afternoon = client.post(URL, _partial(start="14:00", end="16:00")).json()

    assert (morning["status"], afternoon["status"]) == ("approved", "approved")


@time_machine.travel(NOW, tick=False)
def test_a_withdrawn_request_was_decided_by_the_agent(client):
    pending = client.post(URL, _full()).json()

    withdrawn = client.post(f"{URL}/{pending['id']}/cancel").json()

    assert withdrawn["decided_by"] == {"type": "agent", "name": None}


@pytest.mark.parametrize(
    "zone, spring, autumn",
    [
        ("Europe/Amsterdam", dt.date(2027, 3, 28), dt.date(2026, 10, 25)),
        ("America/New_York", dt.date(2027, 3, 14), dt.date(2026, 11, 1)),
    ],
)
def test_hours_are_what_the_clock_ran_on_dst_days(logged_in, org, vac, auto_rule, zone, spring, autumn):
    agent = AgentFactory(organization=org, timezone=zone)
    TimeOffBalance.objects.create(agent=agent, activity_code=vac, earned_minutes=80 * 60, as_of=NOW.date())
    answers = {}
    for date, label in ((autumn, "autumn"), (spring, "spring")):
        with time_machine.travel(
            dt.datetime.combine(date - dt.timedelta(days=3), dt.time(12), tzinfo=dt.UTC)
        ):
            shift(agent, date, ("PHONE", "00:30", "08:30"))  # 8 hours on the wall
            client = logged_in(agent)
            answers[label, "whole"] = client.post(f"{URL}/preview", _full(date)).json()
            answers[label, "part"] = client.post(URL, _partial(date, "01:00", "04:00")).json()

    # The clocks go back: the shift runs 9 hours and 01:00-04:00 four; forward: 7 and two.
    assert answers["autumn", "whole"]["hours"] == 9.0
    assert (answers["autumn", "part"]["hours"], answers["autumn", "part"]["status"]) == (4.0, "approved")
    assert answers["spring", "whole"]["hours"] == 7.0
    assert (answers["spring", "part"]["hours"], answers["spring", "part"]["status"]) == (2.0, "approved")


@pytest.fixture
def smtp(settings):
    from tests.notifications.smtp_server import start_smtp_server

    controller, inbox = start_smtp_server()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


@time_machine.travel(NOW, tick=False)
def test_the_supervisor_is_emailed_of_a_cancellation_over_smtp_in_their_language(
    smtp, client, supervisor, auto_rule
):
    from notifications.delivery import deliveries_send
    from notifications.models import Delivery

    supervisor.language = "nl"
    supervisor.save()
    approved = client.post(URL, _full(MONDAY, TUESDAY)).json()
    Delivery.objects.all().delete()  # the agent's own approval and adjustments: not this test's

    client.post(f"{URL}/{approved['id']}/cancel")
    deliveries_send(ids=list(Delivery.objects.filter(channel="email").values_list("pk", flat=True)))

    [message] = [m for m in smtp.messages if m["To"] == supervisor.email]
    assert message["Subject"] == "[EM Agent] Verlof geannuleerd"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Alice" in text and "7 december" in text and "8 december" in text


@time_machine.travel(NOW, tick=False)
def test_the_advance_asks_a_full_day_once_not_once_per_request_in_line(
    client, org, vac, auto_rule, logged_in
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    TimeOffLimit.objects.create(organization=org, capacity=0)

    def queries_with_waiting(count: int) -> int:
        for _ in range(count):
            other = AgentFactory(organization=org, timezone="Europe/Amsterdam")
            TimeOffBalance.objects.create(
                agent=other, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date()
            )
            shift(other, MONDAY, ("PHONE", "09:00", "17:00"))
            assert logged_in(other).post(URL, _full()).json()["substatus"] == "waitlisted"
        with CaptureQueriesContext(connection) as captured:
            assert time_off_waitlist_advance(organization_id=org.pk) == 0
        return len(captured)

    assert queries_with_waiting(2) == queries_with_waiting(6)


@time_machine.travel(NOW, tick=False)
def test_a_full_team_limit_does_not_hold_up_another_teams_line(client, org, vac, auto_rule, logged_in):
    teams = [TeamFactory(organization=org), TeamFactory(organization=org)]
    people = {}
    for team in teams:
        TimeOffLimit.objects.create(organization=org, team=team, capacity=1)
        for role in ("off", "waiting"):
            agent = AgentFactory(organization=org, team=team, timezone="Europe/Amsterdam")
            TimeOffBalance.objects.create(
                agent=agent, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date()
            )
            shift(agent, MONDAY, ("PHONE", "09:00", "17:00"))
            people[team.pk, role] = (agent, logged_in(agent).post(URL, _full()).json())
    first_team, second_team = (team.pk for team in teams)
    assert people[first_team, "waiting"][1]["substatus"] == "waitlisted"  # ahead in line
    assert people[second_team, "waiting"][1]["substatus"] == "waitlisted"

    agent, approved = people[second_team, "off"]
    logged_in(agent).post(f"{URL}/{approved['id']}/cancel")
    assert time_off_waitlist_advance(organization_id=org.pk) == 1

    statuses = {key: TimeOffRequest.objects.get(pk=body["id"]).status for key, (_a, body) in people.items()}
    assert statuses[first_team, "waiting"] == "pending" and statuses[second_team, "waiting"] == "approved"
