"""The eligibility rules the first tests do not reach, each refusing with its stable code."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from schedules.models import ActivityCode
from swaps.models import Swap, SwapSettings, SwapStatus, UnequalPaidTime
from tests.factories import AgentSkillFactory, SkillFactory
from tests.schedules.factories import ActivityCodeFactory, local, shift
from tests.swaps.test_swaps import DAY, NOW, offer, violations
from timeoff.models import TimeOffDay, TimeOffKind, TimeOffRequest, TimeOffStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def time_off(agent, date: dt.date, status: str = TimeOffStatus.PENDING) -> TimeOffRequest:
    code = ActivityCodeFactory(organization=agent.organization, code="VAC", open_for_time_off=True)
    start, end = local(agent, date, "00:00"), local(agent, date + dt.timedelta(days=1), "00:00")
    request = TimeOffRequest.objects.create(
        agent=agent,
        kind=TimeOffKind.FULL_DAY,
        activity_code=code,
        start_date=date,
        end_date=date,
        start=start,
        end=end,
        minutes=480,
        status=status,
    )
    TimeOffDay.objects.create(
        request=request,
        agent=agent,
        organization=agent.organization,
        date=date,
        start=start,
        end=end,
        minutes=480,
    )
    return request


@pytest.fixture
def two_shifts(agent, teammate):
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    shift(teammate, DAY, ("LATE", "10:00", "18:00"))


@pytest.mark.parametrize("status", [TimeOffStatus.PENDING, TimeOffStatus.APPROVED])
def test_time_off_of_the_taker_on_its_day(logged_in, agent, teammate, two_shifts, status):
    time_off(teammate, DAY, status)

    response = offer(logged_in(agent), recipients=[teammate.pk])

    assert response.status_code == 409
    assert [v["code"] for v in response.json()["violations"]] == ["time_off"]
    assert "Bob has time off" in response.json()["violations"][0]["detail"]


def test_time_off_of_the_requester_refuses_even_a_board_offer(logged_in, agent, teammate, two_shifts):
    time_off(agent, DAY)

    response = offer(logged_in(agent), open=True)

    assert response.status_code == 409
    assert [v["code"] for v in response.json()["violations"]] == ["time_off"]


@pytest.mark.parametrize("status", [TimeOffStatus.DENIED, TimeOffStatus.WITHDRAWN, TimeOffStatus.CANCELLED])
def test_time_off_no_longer_held_does_not_count(logged_in, agent, teammate, two_shifts, status):
    time_off(teammate, DAY, status)

    assert offer(logged_in(agent), recipients=[teammate.pk]).status_code == 201


def test_time_off_on_the_day_a_give_away_lands(logged_in, agent, teammate):
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    time_off(teammate, DAY)

    assert violations(logged_in(agent), teammate.pk, kind="give_away") == {"time_off"}


def test_time_off_on_the_day_the_requester_gets_back(logged_in, agent, teammate):
    later = DAY + dt.timedelta(days=2)
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    shift(teammate, later, ("LATE", "10:00", "18:00"))
    time_off(agent, later)

    found = violations(logged_in(agent), teammate.pk, their_date=later.isoformat())

    assert found == {"time_off"}


def test_skill_missing(logged_in, org, agent, teammate, two_shifts):
    AgentSkillFactory(agent=agent, skill=SkillFactory(organization=org, name="Spanish"))

    assert violations(logged_in(agent), teammate.pk) == {"skill_missing"}


def test_same_skills_only_by_setting(logged_in, org, agent, teammate, two_shifts):
    SwapSettings.objects.create(organization=org, skill_matching="same")
    english = SkillFactory(organization=org, name="English")
    AgentSkillFactory(agent=agent, skill=english)
    AgentSkillFactory(agent=teammate, skill=english)
    AgentSkillFactory(agent=teammate, skill=SkillFactory(organization=org, name="Spanish"))

    # Bob has more skills than Alice's shift needs; Alice lacks his Spanish for his shift.
    assert violations(logged_in(agent), teammate.pk) == {"skill_missing"}


def test_shift_in_past(logged_in, agent, teammate):
    today = dt.date(2026, 12, 1)  # 09:00 in Amsterdam now: the 07:00 shift has started
    shift(agent, today, ("EARLY", "07:00", "15:00"))
    shift(teammate, today, ("LATE", "13:00", "21:00"))

    found = violations(logged_in(agent), teammate.pk, date=today.isoformat())

    assert found == {"shift_in_past"}  # the requester's own refusal comes before any colleague's


def test_open_offer_limit(logged_in, org, agent, teammate):
    SwapSettings.objects.create(organization=org, max_open_offers_per_agent=1)
    for date in (DAY, DAY + dt.timedelta(days=1)):
        shift(agent, date, ("EARLY", "09:00", "17:00"))
        shift(teammate, date, ("LATE", "10:00", "18:00"))
    client = logged_in(agent)
    assert offer(client, recipients=[teammate.pk]).status_code == 201

    found = violations(client, teammate.pk, date=(DAY + dt.timedelta(days=1)).isoformat())

    assert found == {"open_offer_limit"}


def test_a_second_live_offer_of_one_shift_is_409(logged_in, org, agent, teammate, two_shifts):
    client = logged_in(agent)
    assert offer(client, recipients=[teammate.pk]).status_code == 201

    again = offer(client, recipients=[teammate.pk])

    assert again.status_code == 409 and again.json()["code"] == "swap_pending"
    assert Swap.objects.filter(status=SwapStatus.OPEN).count() == 1


def test_unequal_paid_time_refused_by_setting(logged_in, org, agent, teammate):
    SwapSettings.objects.create(organization=org, unequal_paid_time=UnequalPaidTime.REFUSE)
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    shift(teammate, DAY, ("LATE", "10:00", "17:30"))

    found = violations(logged_in(agent), teammate.pk)

    assert found == {"length_difference"}


def test_max_weekly_hours_across_a_week_boundary_in_the_takers_zone(logged_in, org, agent, teammate):
    """Bob works in New York: Alice's Monday 09:00 in Amsterdam is his Monday 03:00, in his new week;
    Sunday's hours of the week before do not count, Monday's to Saturday's of his week do."""
    SwapSettings.objects.create(
        organization=org, max_weekly_hours=Decimal(40), max_length_difference_hours=None, min_rest_hours=0
    )
    teammate.timezone = "America/New_York"
    teammate.save()
    monday = DAY + dt.timedelta(days=7 - DAY.weekday())  # 14 December
    shift(agent, monday, ("EARLY", "09:00", "17:00"))
    shift(teammate, monday, ("LATE", "10:00", "11:00"))
    for offset in range(1, 5):  # Tuesday to Friday: 32 hours
        shift(teammate, monday + dt.timedelta(days=offset), ("LATE", "09:00", "17:00"))
    shift(teammate, monday - dt.timedelta(days=1), ("SUN", "09:00", "17:00"))  # the week before
    body = {"date": monday.isoformat(), "recipients": [teammate.pk]}
    client = logged_in(agent)

    assert client.post("/api/v1/swaps", body).status_code == 201  # 32 + 8 = 40
    Swap.objects.all().delete()
    shift(teammate, monday + dt.timedelta(days=5), ("SAT", "09:00", "10:00"))  # 41
    response = client.post("/api/v1/swaps", body)

    assert response.status_code == 409
    detail = next(v["detail"] for v in response.json()["violations"] if v["code"] == "max_weekly_hours")
    assert "41 hours" in detail


def test_not_tradable_activity_on_the_takers_side(logged_in, org, agent, teammate, two_shifts):
    rules = SwapSettings.objects.create(organization=org)
    rules.not_tradable_codes.add(ActivityCode.objects.get(organization=org, code="LATE"))

    assert violations(logged_in(agent), teammate.pk) == {"not_tradable_activity"}


def test_several_offers_of_one_shift_by_setting_and_the_first_exchange_ends_the_others(
    logged_in, org, agent, teammate, django_capture_on_commit_callbacks
):
    from schedules.models import ApprovalRule, RequestType, RuleAction
    from tests.factories import AgentFactory

    ApprovalRule.objects.create(
        organization=org, request_type=RequestType.SWAP, action=RuleAction.AUTO_APPROVE
    )
    SwapSettings.objects.create(organization=org, max_open_offers_per_shift=2)
    third = AgentFactory(organization=org, name="Cleo")
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    for other in (teammate, third):
        shift(other, DAY, ("LATE", "10:00", "18:00"))
    client = logged_in(agent)
    first = offer(client, recipients=[teammate.pk]).json()["id"]
    second = offer(client, recipients=[third.pk]).json()["id"]
    third_offer = offer(client, open=True)
    assert third_offer.status_code == 409 and third_offer.json()["code"] == "swap_pending"
    assert "2 open swaps" in third_offer.json()["detail"]

    with django_capture_on_commit_callbacks(execute=True):
        assert logged_in(teammate).post(f"/api/v1/swaps/{first}/accept").json()["status"] == "completed"

    assert Swap.objects.get(pk=second).status == SwapStatus.CANCELLED  # Alice's shift is Bob's now
    late = logged_in(third).post(f"/api/v1/swaps/{second}/accept")
    assert late.status_code == 409 and late.json()["code"] == "swap_not_open"


def test_candidates_of_an_agent_in_no_team_include_the_organisations_ineligible(logged_in, org, agent):
    from tests.factories import AgentFactory

    works = AgentFactory(organization=org, name="Works")
    AgentFactory(organization=org, name="Free")
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    shift(works, DAY, ("LATE", "10:00", "18:00"))
    client = logged_in(agent)

    eligible = client.get(f"/api/v1/swaps/candidates?date={DAY}").json()
    everyone = client.get(f"/api/v1/swaps/candidates?date={DAY}&include=ineligible").json()

    assert [c["agent"]["name"] for c in eligible] == ["Works"]
    assert {c["agent"]["name"]: [v["code"] for v in c["violations"]] for c in everyone} == {
        "Works": [],
        "Free": ["no_shift"],
    }


def test_unequal_paid_time_goes_to_a_supervisor_by_setting(logged_in, org, agent, teammate):
    from schedules.models import ApprovalRule, RequestType, RuleAction

    ApprovalRule.objects.create(
        organization=org, request_type=RequestType.SWAP, action=RuleAction.AUTO_APPROVE
    )
    SwapSettings.objects.create(organization=org, unequal_paid_time=UnequalPaidTime.SUPERVISOR)
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    shift(teammate, DAY, ("LATE", "10:00", "17:30"))
    swap_id = offer(logged_in(agent), recipients=[teammate.pk]).json()["id"]

    taken = logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/accept").json()

    assert taken["status"] == "awaiting_approval"
    assert taken["status_reason"] == "Shifts of unequal paid time need a supervisor."


def test_a_blackout_declines_the_swap_when_taken(logged_in, org, agent, teammate, two_shifts):
    from notifications.models import Notification
    from schedules.models import BlackoutPeriod

    BlackoutPeriod.objects.create(organization=org, start_date=DAY, end_date=DAY, reason="Black Friday")
    swap_id = offer(logged_in(agent), recipients=[teammate.pk]).json()["id"]

    taken = logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/accept").json()

    assert taken["status"] == "denied"
    assert "Black Friday" in taken["status_reason"]
    assert Notification.objects.filter(kind="swap_denied").count() == 2
