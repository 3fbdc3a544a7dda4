"""Swaps end to end through the API and the services, on the real schedule service."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification
from schedules.models import Activity, ApprovalRule, RequestType, RuleAction, ScheduleChange
from swaps.models import Answer, Swap, SwapRecipient, SwapSettings, SwapStatus
from swaps.services import swap_approve, swap_deny, swaps_expire, swaps_recheck
from tests.conftest import run_together
from tests.factories import AgentFactory, AgentSkillFactory, SkillFactory, TeamFactory
from tests.schedules.factories import shift

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 12, 8)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def auto(org):
    return ApprovalRule.objects.create(
        organization=org, request_type=RequestType.SWAP, action=RuleAction.AUTO_APPROVE
    )


def codes_on(agent, date):
    return [
        a.activity_code.code for a in Activity.objects.filter(agent=agent, day__date=date).order_by("start")
    ]


def offer(client, **body):
    return client.post("/api/v1/swaps", {"date": DAY.isoformat(), **body})


def kinds_of(agent):
    return sorted(Notification.objects.filter(user=agent.user).values_list("kind", flat=True))


def test_a_direct_swap_on_one_date_exchanges_both_days(logged_in, agent, teammate, auto):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))

    response = offer(logged_in(agent), recipients=[teammate.pk], message="Dentist")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "open"
    assert body["offered_shift"]["start"] == "2026-12-08T07:00:00+01:00"
    assert body["asked_shift"]["activities"][0]["activity_code"]["code"] == "LATE"
    assert body["expires_at"] == "2026-12-08T05:00:00+01:00"  # 2 hours before the earlier shift
    assert kinds_of(teammate) == ["swap_offer"]

    accepted = logged_in(teammate).post(f"/api/v1/swaps/{body['id']}/accept")

    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "completed"
    assert codes_on(agent, DAY) == ["LATE"] and codes_on(teammate, DAY) == ["EARLY"]
    swap = Swap.objects.get()
    assert ScheduleChange.objects.filter(group=swap.change_group).count() == 2
    assert "swap_accepted" in kinds_of(agent) and "schedule_adjusted" in kinds_of(agent)
    assert "swap_approved" in kinds_of(teammate) and "schedule_adjusted" in kinds_of(teammate)
    offer_note = Notification.objects.get(kind="swap_offer")
    assert offer_note.expires_at <= NOW  # its actions are gone


def test_a_swap_across_two_dates(logged_in, agent, teammate, auto):
    later = DAY + dt.timedelta(days=2)
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, later, ("LATE", "13:00", "21:00"))

    swap_id = offer(logged_in(agent), their_date=later.isoformat(), recipients=[teammate.pk]).json()["id"]
    response = logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/accept")

    assert response.json()["status"] == "completed", response.content
    assert codes_on(agent, DAY) == [] and codes_on(agent, later) == ["LATE"]
    assert codes_on(teammate, DAY) == ["EARLY"] and codes_on(teammate, later) == []


def test_a_give_away(logged_in, agent, teammate, auto):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))

    response = offer(logged_in(agent), kind="give_away", recipients=[teammate.pk])
    assert response.status_code == 201, response.content
    assert response.json()["asked_shift"] is None
    accepted = logged_in(teammate).post(f"/api/v1/swaps/{response.json()['id']}/accept")

    assert accepted.json()["status"] == "completed"
    assert codes_on(agent, DAY) == [] and codes_on(teammate, DAY) == ["EARLY"]


def test_a_board_offer_is_taken_by_one_of_many(logged_in, org, agent, auto):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    others = AgentFactory.create_batch(4, organization=org)
    for other in others:
        shift(other, DAY, ("LATE", "13:00", "21:00"))

    swap_id = offer(logged_in(agent), open=True).json()["id"]
    assert Notification.objects.filter(kind="swap_offer").count() == 4
    board = logged_in(others[0]).get("/api/v1/swaps?box=board").json()["results"]
    assert [s["id"] for s in board] == [swap_id]

    assert logged_in(others[1]).post(f"/api/v1/swaps/{swap_id}/accept").json()["status"] == "completed"
    again = logged_in(others[2]).post(f"/api/v1/swaps/{swap_id}/accept")

    assert again.status_code == 409 and again.json()["code"] == "swap_not_open"
    assert codes_on(others[1], DAY) == ["EARLY"]
    assert Notification.objects.filter(kind="swap_taken").count() == 3
    assert logged_in(others[0]).get("/api/v1/swaps?box=board").json()["results"] == []


def test_all_declined(logged_in, agent, teammate, org):
    third = AgentFactory(organization=org)
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    for other in (teammate, third):
        shift(other, DAY, ("LATE", "13:00", "21:00"))
    swap_id = offer(logged_in(agent), recipients=[teammate.pk, third.pk]).json()["id"]

    assert logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/decline").json()["status"] == "open"
    assert logged_in(third).post(f"/api/v1/swaps/{swap_id}/decline").json()["status"] == "declined"
    assert "swap_declined" in kinds_of(agent)


def test_cancelled_by_the_requester_only(logged_in, agent, teammate):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    swap_id = offer(logged_in(agent), recipients=[teammate.pk]).json()["id"]

    refused = logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/cancel")
    own = logged_in(agent).post(f"/api/v1/swaps/{swap_id}/accept")
    cancelled = logged_in(agent).post(f"/api/v1/swaps/{swap_id}/cancel")

    assert refused.status_code == 409 and refused.json()["code"] == "not_requester"
    assert own.status_code == 409 and own.json()["code"] == "own_swap"
    assert cancelled.json()["status"] == "cancelled"
    assert "swap_cancelled" in kinds_of(teammate)
    late = logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/accept", headers={"Accept-Language": "en"})
    assert late.status_code == 409 and late.json()["code"] == "swap_not_open"
    assert late.json()["detail"] == "This swap offer is no longer open (cancelled)."
    late_nl = logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/accept", headers={"Accept-Language": "nl"})
    assert "(geannuleerd)" in late_nl.json()["detail"]  # the status named in the reader's language


def test_outsiders_get_404(logged_in, agent, teammate, outsider, org):
    third = AgentFactory(organization=org)
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(third, DAY, ("LATE", "13:00", "21:00"))
    swap_id = offer(logged_in(agent), recipients=[third.pk]).json()["id"]

    for other in (teammate, outsider):
        client = logged_in(other)
        assert client.get(f"/api/v1/swaps/{swap_id}").status_code == 404
        for action in ("accept", "decline", "cancel"):
            assert client.post(f"/api/v1/swaps/{swap_id}/{action}").status_code == 404


def test_expired_by_the_periodic_task(logged_in, agent, teammate):
    from swaps.tasks import expire_swaps

    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    swap_id = offer(logged_in(agent), recipients=[teammate.pk]).json()["id"]

    with time_machine.travel(dt.datetime(2026, 12, 8, 4, 0, tzinfo=dt.UTC), tick=False):
        assert expire_swaps() == 1
        assert expire_swaps() == 0
        late = logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/accept")

    assert late.status_code == 409 and late.json()["code"] == "swap_expired"
    assert Swap.objects.get().status == SwapStatus.EXPIRED
    assert "swap_expired" in kinds_of(agent) and "swap_expired" in kinds_of(teammate)


def test_approval_then_denial_by_a_supervisor(logged_in, agent, teammate, supervisor, org):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    first = offer(logged_in(agent), recipients=[teammate.pk]).json()["id"]
    assert logged_in(teammate).post(f"/api/v1/swaps/{first}/accept").json()["status"] == "awaiting_approval"
    assert codes_on(agent, DAY) == ["EARLY"]  # nothing changes before the approval

    swap_approve(swap_id=first, actor=supervisor)
    assert Swap.objects.get(pk=first).status == SwapStatus.COMPLETED
    assert codes_on(agent, DAY) == ["LATE"]

    later = DAY + dt.timedelta(days=1)
    shift(agent, later, ("EARLY", "07:00", "15:00"))
    shift(teammate, later, ("LATE", "13:00", "21:00"))
    second = (
        logged_in(agent)
        .post("/api/v1/swaps", {"date": later.isoformat(), "recipients": [teammate.pk]})
        .json()["id"]
    )
    logged_in(teammate).post(f"/api/v1/swaps/{second}/accept")
    swap_deny(swap_id=second, actor=supervisor, reason="Short on late staff")

    denied = logged_in(agent).get(f"/api/v1/swaps/{second}").json()
    assert denied["status"] == "denied" and denied["status_reason"] == "Short on late staff"
    assert codes_on(agent, later) == ["EARLY"]
    assert Notification.objects.filter(kind="swap_denied").count() == 2


def test_a_schedule_changed_after_the_offer_is_409(logged_in, agent, teammate, auto):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    swap_id = offer(logged_in(agent), recipients=[teammate.pk]).json()["id"]
    shift(agent, DAY, ("EARLY", "08:00", "16:00"))

    response = logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/accept")

    assert response.status_code == 409 and response.json()["code"] == "schedule_changed"
    assert Swap.objects.get().status == SwapStatus.OPEN
    assert codes_on(teammate, DAY) == ["LATE"]


def test_a_sync_under_an_awaiting_swap_denies_it_with_a_reason(logged_in, agent, teammate):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    swap_id = offer(logged_in(agent), recipients=[teammate.pk]).json()["id"]
    logged_in(teammate).post(f"/api/v1/swaps/{swap_id}/accept")

    with time_machine.travel(NOW + dt.timedelta(minutes=5), tick=False):
        shift(teammate, DAY, ("LATE", "14:00", "21:00"))  # the WFM's sync moves the taker's shift
        assert swaps_recheck() == {"checked": 1, "cancelled": 0, "denied": 1}
        assert swaps_recheck()["checked"] == 0

    swap = Swap.objects.get()
    assert swap.status == SwapStatus.DENIED
    assert swap.status_reason == "The swap no longer holds: a shift is no longer what it was when offered."
    assert Notification.objects.filter(kind="swap_denied").count() == 2


def test_an_open_offer_whose_shift_changed_is_cancelled(logged_in, agent, teammate):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    offer(logged_in(agent), recipients=[teammate.pk])

    with time_machine.travel(NOW + dt.timedelta(minutes=5), tick=False):
        shift(agent, DAY, ("EARLY", "09:00", "17:00"))
        assert swaps_recheck()["cancelled"] == 1

    assert Swap.objects.get().status == SwapStatus.CANCELLED
    assert Notification.objects.filter(kind="swap_invalidated").count() == 2
    # The reason in the language the reader asks for, whatever the profile's.
    for language, words in (
        ("en", "Reason: The swap no longer holds"),
        ("nl", "Reden: De ruil gaat niet meer door"),
    ):
        (body,) = [
            n["body"]
            for n in logged_in(teammate)
            .get("/api/v1/notifications", headers={"Accept-Language": language})
            .json()["results"]
            if n["kind"] == "swap_invalidated"
        ]
        assert words in body, body


# --- eligibility --------------------------------------------------------------------------------------


def violations(client, agent_id, **body):
    response = offer(client, recipients=[agent_id], **body)
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "not_eligible"
    return {v["code"] for v in response.json()["violations"]}


@pytest.mark.parametrize(
    "setup, code",
    [
        (lambda a, b: shift(b, DAY, ("LATE", "13:00", "21:00"), published=False), "shift_not_published"),
        (lambda a, b: None, "no_shift"),
        # Taking the 07:00-15:00 shift leaves Bob 10 hours before his 01:00 start the next night.
        (lambda a, b: shift(b, DAY + dt.timedelta(days=1), ("NIGHT", "01:00", "09:00")), "min_rest"),
        (lambda a, b: shift(b, DAY, ("LONG", "10:00", "23:59")), "length_difference"),
    ],
)
def test_each_rule_refuses_with_its_code(logged_in, agent, teammate, setup, code):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    if code == "min_rest":
        shift(teammate, DAY, ("LATE", "14:00", "22:00"))
    setup(agent, teammate)

    assert code in violations(logged_in(agent), teammate.pk)


def test_give_away_onto_a_working_day_is_has_shift(logged_in, agent, teammate):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "16:00", "21:00"))

    assert violations(logged_in(agent), teammate.pk, kind="give_away") >= {"has_shift"}


def test_overlap_and_daily_hours(logged_in, agent, teammate, org):
    SwapSettings.objects.create(organization=org, max_daily_hours=Decimal(9))
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY + dt.timedelta(days=2), ("LATE", "07:00", "15:00"))
    # A cross-date give-away onto a day the taker works part of: an overlap and too many hours.
    shift(teammate, DAY, ("MEET", "14:00", "16:00"))

    assert violations(logged_in(agent), teammate.pk, kind="give_away") >= {
        "has_shift",
        "overlap",
        "max_daily_hours",
    }


def test_skills_lead_time_team_tradable_and_offer_limit(logged_in, org, agent, teammate):
    rules = SwapSettings.objects.create(organization=org, same_team_only=True, max_open_offers_per_agent=1)
    skill = SkillFactory(organization=org)
    AgentSkillFactory(agent=agent, skill=skill, level=3)
    AgentSkillFactory(agent=teammate, skill=skill, level=1)
    agent.team = TeamFactory(organization=org)
    agent.save()
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    found = violations(logged_in(agent), teammate.pk)
    assert {"skill_level_lower", "different_team"} <= found

    soon = dt.date(2026, 12, 1)
    shift(agent, soon, ("EARLY", "17:00", "22:00"))
    shift(teammate, soon, ("LATE", "17:00", "22:00"))
    assert "lead_time" in violations(
        logged_in(agent), teammate.pk, date=soon.isoformat(), their_date=soon.isoformat()
    )

    from schedules.models import ActivityCode

    rules.not_tradable_codes.add(ActivityCode.objects.get(organization=org, code="EARLY"))
    assert "not_tradable_activity" in violations(logged_in(agent), teammate.pk)


def test_weekly_hours_count_the_takers_local_week(logged_in, agent, teammate, org):
    SwapSettings.objects.create(
        organization=org, max_weekly_hours=Decimal(40), max_length_difference_hours=None
    )
    monday = DAY - dt.timedelta(days=DAY.weekday())
    shift(agent, DAY, ("MID", "13:00", "21:00"))
    for offset in range(5):
        date = monday + dt.timedelta(days=offset)
        if date != DAY:
            shift(teammate, date, ("LATE", "13:00", "21:00"))
    shift(teammate, DAY, ("SHORT", "13:00", "15:00"))  # 34 hours; taking 8 instead of 2: 40
    assert offer(logged_in(agent), recipients=[teammate.pk]).status_code == 201
    Swap.objects.all().delete()
    shift(teammate, DAY + dt.timedelta(days=5), ("SAT", "13:00", "14:00"))  # 41
    assert "max_weekly_hours" in violations(logged_in(agent), teammate.pk)


def test_min_rest_across_the_spring_forward_night(logged_in, org, agent, teammate):
    """Amsterdam, the night of 27 to 28 March 2027 has 23 hours (02:00 is 03:00): from 22:00 to
    09:00 is 10 hours of rest, not 11."""
    spring = dt.date(2027, 3, 28)
    with time_machine.travel(dt.datetime(2027, 3, 20, 8, 0, tzinfo=dt.UTC), tick=False):
        shift(agent, spring, ("EARLY", "09:00", "17:00"))
        shift(teammate, spring, ("LATE", "13:00", "21:00"))
        shift(teammate, spring - dt.timedelta(days=1), ("NIGHT", "14:00", "22:00"))
        body = {"date": spring.isoformat(), "recipients": [teammate.pk]}
        response = logged_in(agent).post("/api/v1/swaps", body)
        assert response.status_code == 409
        detail = next(v["detail"] for v in response.json()["violations"] if v["code"] == "min_rest")
        assert "10 hours" in detail
        shift(teammate, spring - dt.timedelta(days=1), ("NIGHT", "13:00", "21:00"))  # 11, by the clock 12
        assert logged_in(agent).post("/api/v1/swaps", body).status_code == 201


# --- candidates -----------------------------------------------------------------------------------------


def test_candidates_and_the_ineligible_ones(logged_in, org, agent):
    team = TeamFactory(organization=org)
    agent.team = team
    agent.save()
    fits, busy, free = (AgentFactory(organization=org, team=team, name=n) for n in ("Fits", "Busy", "Free"))
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(fits, DAY, ("LATE", "13:00", "21:00"))
    shift(busy, DAY, ("LATE", "13:00", "21:00"), published=False)
    client = logged_in(agent)

    eligible = client.get(f"/api/v1/swaps/candidates?date={DAY}").json()
    everyone = client.get(f"/api/v1/swaps/candidates?date={DAY}&include=ineligible").json()

    assert [c["agent"]["name"] for c in eligible] == ["Fits"]
    # The colleague's day and times, in the caller's zone; its activities only in the swap, once offered.
    assert eligible[0]["shift"] == {
        "date": str(DAY),
        "start": "2026-12-08T13:00:00+01:00",
        "end": "2026-12-08T21:00:00+01:00",
    }
    by_name = {c["agent"]["name"]: c for c in everyone}
    assert by_name["Fits"]["eligible"] is True
    assert [v["code"] for v in by_name["Busy"]["violations"]] == ["shift_not_published"]
    assert [v["code"] for v in by_name["Free"]["violations"]] == ["no_shift"]
    assert by_name["Free"]["shift"] is None


def _queries_for(client, org, agent, count):
    others = AgentFactory.create_batch(count, organization=org)
    Activity.objects.none()
    for other in others[:3]:
        shift(other, DAY, ("LATE", "13:00", "21:00"))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/v1/swaps/candidates?date={DAY}")
    assert response.status_code == 200
    assert len(response.json()) == 3
    return len(queries)


def test_the_query_count_is_the_same_for_10_and_500_agents(logged_in, org, other_org, agent):
    from tests.factories import OrganizationFactory

    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    small = _queries_for(logged_in(agent), org, agent, 10)
    big_org = OrganizationFactory(default_timezone="Europe/Amsterdam")
    big_agent = AgentFactory(organization=big_org)
    shift(big_agent, DAY, ("EARLY", "07:00", "15:00"))
    big = _queries_for(logged_in(big_agent), big_org, big_agent, 500)

    assert small == big


# --- races --------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_accepting_one_offer(postgres, org, agent, auto, make_app_client, logged_in):
    from swaps.services import swap_accept

    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    takers = AgentFactory.create_batch(20, organization=org)
    for taker in takers:
        shift(taker, DAY, ("LATE", "13:00", "21:00"))
    swap_id = offer(logged_in(agent), open=True).json()["id"]

    def accept(taker):
        def call():
            try:
                return swap_accept(agent=taker, swap_id=swap_id).status
            except Exception as error:  # noqa: BLE001
                return getattr(error, "code", repr(error))

        return call

    results = run_together([accept(taker) for taker in takers])

    assert sorted(results) == ["approved"] + ["swap_not_open"] * 19
    winner = Swap.objects.get().taker
    assert codes_on(winner, DAY) == ["EARLY"] and codes_on(agent, DAY) == ["LATE"]
    assert Activity.objects.filter(activity_code__code="EARLY").count() == 1
    assert Notification.objects.filter(kind="swap_accepted").count() == 1
    assert ScheduleChange.objects.filter(reason=f"swap {swap_id}").count() == 2
    # Told once each: the requester and the winner of the outcome, the nineteen others that it was taken.
    assert Notification.objects.filter(kind="swap_approved").count() == 2
    assert Notification.objects.filter(kind="swap_taken").count() == 19
    assert SwapRecipient.objects.filter(answer=Answer.ACCEPTED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_acceptance_racing_expiry_ends_in_one_state(postgres, org, agent, teammate, auto, logged_in):
    from swaps.services import swap_accept

    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    swap_id = offer(logged_in(agent), recipients=[teammate.pk]).json()["id"]
    Swap.objects.filter(pk=swap_id).update(expires_at=NOW + dt.timedelta(seconds=1))

    def accept():
        try:
            return swap_accept(agent=teammate, swap_id=swap_id).status
        except Exception as error:  # noqa: BLE001
            return error.code

    with time_machine.travel(NOW + dt.timedelta(seconds=1), tick=False):
        results = run_together([accept, lambda: swaps_expire()])

    swap = Swap.objects.get()
    assert swap.status in (SwapStatus.EXPIRED, SwapStatus.COMPLETED)
    exchanged = codes_on(teammate, DAY) == ["EARLY"]
    assert exchanged == (swap.status == SwapStatus.COMPLETED)
    assert results[0] in ("approved", "swap_expired", "swap_not_open")


@pytest.mark.django_db(transaction=True)
def test_two_opposite_swaps_at_once(postgres, org, agent, teammate, auto, logged_in):
    from swaps.services import swap_accept

    later = DAY + dt.timedelta(days=1)
    # Shifts that leave 11 hours of rest whichever way they are exchanged.
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    shift(teammate, DAY, ("LATE", "10:00", "18:00"))
    shift(agent, later, ("EARLY", "09:00", "17:00"))
    shift(teammate, later, ("LATE", "10:00", "18:00"))
    one = offer(logged_in(agent), recipients=[teammate.pk]).json()["id"]
    two = (
        logged_in(teammate)
        .post("/api/v1/swaps", {"date": later.isoformat(), "recipients": [agent.pk]})
        .json()["id"]
    )

    def accept(taker, swap_id):
        def call():
            try:
                return swap_accept(agent=taker, swap_id=swap_id).status
            except Exception as error:  # noqa: BLE001
                return getattr(error, "code", repr(error))

        return call

    results = run_together([accept(teammate, one), accept(agent, two)])

    assert results == ["approved", "approved"]
    assert codes_on(agent, DAY) == ["LATE"] and codes_on(agent, later) == ["LATE"]
    assert codes_on(teammate, DAY) == ["EARLY"] and codes_on(teammate, later) == ["EARLY"]
