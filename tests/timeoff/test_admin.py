"""Supervisors' time off in the admin (issue 11, point 10): the queue beside the schedule requests'
with staffing, limit left and balance; decisions one by one and in bulk; balances and their
adjustments; limits (a raised one moves the waitlist), policies and settings; who is off; and
nothing of another organisation."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client

from em_agent.exceptions import ApplicationError
from notifications.models import Notification
from schedules.models import Activity, ApprovalRule, RequestType, RuleAction
from schedules.requests import schedule_request_create
from tests.conftest import run_together
from tests.factories import AgentFactory, SupervisorFactory, TeamFactory, UserFactory
from tests.schedules.factories import ActivityCodeFactory, local, shift
from timeoff.admin_services import balance_adjust
from timeoff.balances import balance_for_code
from timeoff.models import (
    BalanceAdjustment,
    StaffingInterval,
    TimeOffBalance,
    TimeOffLimit,
    TimeOffPolicy,
    TimeOffRequest,
    TimeOffSettings,
    TimeOffStatus,
)
from timeoff.services import time_off_request_approve, time_off_request_create, time_off_request_deny

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)  # Thursday 10:00 in Amsterdam
MONDAY = dt.date(2026, 12, 7)
TUESDAY = dt.date(2026, 12, 8)
QUEUE = "/admin/timeoff/timeoffrequest/"
ADJUST = "/admin/timeoff/balanceadjustment/add/"
BALANCES = "/admin/timeoff/balanceadjustment/balances/"
LIMITS = "/admin/timeoff/timeofflimit/"
WHO = "/admin/timeoff/timeoffday/"


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def team(org):
    return TeamFactory(organization=org, name="Customer care")


@pytest.fixture
def vac(org):
    return ActivityCodeFactory(
        organization=org, code="VAC", name="Vacation", category="time_off", open_for_time_off=True
    )


def _cxone_agent(agent, vac, team=None, earned_hours=40):
    agent.timezone = "Europe/Amsterdam"
    agent.team = team
    agent.save()
    TimeOffBalance.objects.create(
        agent=agent, activity_code=vac, earned_minutes=earned_hours * 60, as_of=NOW.date()
    )
    for date in (MONDAY, TUESDAY):
        shift(agent, date, ("PHONE", "09:00", "17:00"))
    return agent


@pytest.fixture
def alice(agent, vac, team):
    return _cxone_agent(agent, vac, team)


@pytest.fixture
def bob(teammate, vac, team):
    return _cxone_agent(teammate, vac, team)


@pytest.fixture
def outsider_vac(other_org):
    return ActivityCodeFactory(organization=other_org, code="VAC", name="Vacation", open_for_time_off=True)


@pytest.fixture
def charlie(outsider, outsider_vac):
    return _cxone_agent(outsider, outsider_vac)


def _ask(agent, date=MONDAY, end=None, comment="Family visit") -> TimeOffRequest:
    """Pending: no approval rule, so a supervisor decides."""
    return time_off_request_create(
        agent=agent,
        kind="full_day",
        activity_code="VAC",
        start_date=date,
        end_date=end or date,
        comment=comment,
    )


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _decide(client: Client, action: str, requests, reason: str | None):
    data: dict = {"action": action, "_selected_action": [r.pk for r in requests]}
    if reason is not None:
        data |= {"apply": "1", "reason": reason}
    return client.post(QUEUE, data)


def _codes(agent, date) -> list[str]:
    return list(
        Activity.objects.filter(agent=agent, day__date=date)
        .order_by("start")
        .values_list("activity_code__code", flat=True)
    )


def _kinds(agent) -> list[str]:
    return sorted(Notification.objects.filter(user=agent.user).values_list("kind", flat=True))


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_shows_pending_time_off_with_staffing_limit_left_and_balance(
    supervisor, alice, bob, charlie, org, team
):
    TimeOffLimit.objects.create(organization=org, team=team, capacity=2)
    # 02:00 (none of Alice's shift: not what her absence weighs on), 09:00, 14:00, 16:00 in Amsterdam
    for hour, scheduled in ((1, 0), (8, 5), (13, 4), (15, 6)):
        StaffingInterval.objects.create(
            organization=org,
            team=team,
            start=dt.datetime(2026, 12, 7, hour, 0, tzinfo=dt.UTC),
            required=4,
            scheduled=scheduled,
        )
    approved = _ask(bob)
    time_off_request_approve(request_id=approved.pk, actor=supervisor)
    pending = _ask(alice, MONDAY, TUESDAY)
    _ask(charlie)

    queue = _admin(supervisor).get(QUEUE)
    everything = _admin(supervisor).get(QUEUE, {"status": "all"})

    assert queue.status_code == 200
    assert [r.pk for r in queue.context["cl"].result_list] == [pending.pk]
    page = queue.content.decode()
    assert "16.00 h" in page  # two days of 8 hours
    assert "4 scheduled, 4 required at 14:00" in page  # the tightest of her shift, in her zone
    assert "Customer care: 1 of 2 agents left" in page  # Bob takes one place on Monday
    assert "40.00 h left, 24.00 h after" in page
    assert {r.pk for r in everything.context["cl"].result_list} == {pending.pk, approved.pk}
    assert "Charlie" not in everything.content.decode()


def test_each_queue_names_what_waits_in_the_other(supervisor, alice, bob, charlie, org):
    ActivityCodeFactory(organization=org, code="TRAIN", name="Training", open_for_requests=True)
    schedule_request_create(
        agent=alice,
        action="add",
        activity_code="TRAIN",
        start=local(alice, MONDAY, "17:00"),
        end=local(alice, MONDAY, "18:00"),
    )
    _ask(alice), _ask(bob, TUESDAY), _ask(charlie)
    client = _admin(supervisor)

    schedule_queue = client.get("/admin/schedules/schedulerequest/").content.decode()
    time_off_queue = client.get(QUEUE).content.decode()

    assert f'Also pending: <a href="{QUEUE}">2 time-off requests</a>' in schedule_queue
    assert (
        'Also pending: <a href="/admin/schedules/schedulerequest/">1 schedule request</a>' in time_off_queue
    )


def test_a_waitlisted_request_shows_its_place_and_the_full_limit(supervisor, alice, bob, org):
    ApprovalRule.objects.create(
        organization=org,
        request_type=RequestType.TIME_OFF,
        action=RuleAction.AUTO_APPROVE,
        when_conditions_fail=RuleAction.MANUAL,
        waitlist_when_full=True,
    )
    TimeOffLimit.objects.create(organization=org, capacity=1)
    assert _ask(bob).status == TimeOffStatus.APPROVED
    waiting = _ask(alice)
    assert waiting.substatus == "waitlisted"

    page = _admin(supervisor).get(QUEUE).content.decode()

    assert "place 1" in page
    assert "<strong>organisation: 0 of 1 agents left (full)</strong>" in page


def test_the_approve_action_asks_for_a_reason_on_its_own_page(supervisor, alice):
    request = _ask(alice)

    page = _decide(_admin(supervisor), "approve_selected", [request], reason=None)

    assert page.status_code == 200
    assert b'name="reason"' in page.content and b"Family visit" in page.content
    assert b"Approve time-off requests" in page.content
    assert f'name="_selected_action" value="{request.pk}"'.encode() in page.content
    request.refresh_from_db()
    assert request.status == TimeOffStatus.PENDING


def test_bulk_approve_writes_the_time_off_and_tells_each_agent(supervisor, alice, bob):
    requests = [_ask(alice), _ask(bob)]

    response = _decide(_admin(supervisor), "approve_selected", requests, reason="Enjoy")

    assert response.status_code == 302
    assert _messages(response) == ["2 requests approved."]
    for request, someone in zip(requests, (alice, bob), strict=True):
        request.refresh_from_db()
        assert (request.status, request.decided_by) == (TimeOffStatus.APPROVED, supervisor)
        assert _codes(someone, MONDAY) == ["VAC"]
        assert _kinds(someone) == ["schedule_adjusted", "time_off_approved"]


def test_bulk_deny_needs_a_reason_and_tells_the_agent_it(supervisor, alice, bob):
    requests = [_ask(alice), _ask(bob)]
    client = _admin(supervisor)

    without = _decide(client, "deny_selected", requests, reason="")
    response = _decide(client, "deny_selected", requests, reason="Too many off that week")

    assert without.status_code == 200 and b"This field is required" in without.content
    assert _messages(response) == ["2 requests denied."]
    denial = Notification.objects.get(user=alice.user, kind="time_off_denied")
    assert "Too many off that week" in str(denial.params)
    assert _codes(alice, MONDAY) == ["PHONE"]


def test_what_the_service_refuses_is_a_message_and_the_rest_is_decided(supervisor, alice, vac):
    balance = TimeOffBalance.objects.get(agent=alice)
    balance.earned_minutes = 8 * 60
    balance.save()
    monday, tuesday = _ask(alice, MONDAY), _ask(alice, TUESDAY)  # pending takes nothing yet: both fit

    response = _decide(_admin(supervisor), "approve_selected", [monday, tuesday], reason="")

    assert _messages(response)[0].startswith(
        "The request of Alice for Dec. 8, 2026 could not be decided: Your balance of Vacation is not enough"
    )
    assert _messages(response)[1] == "1 request approved."
    monday.refresh_from_db(), tuesday.refresh_from_db()
    assert (monday.status, tuesday.status) == (TimeOffStatus.APPROVED, TimeOffStatus.PENDING)


def test_an_already_decided_request_is_reported_not_decided_twice(supervisor, alice):
    request = _ask(alice)
    time_off_request_deny(request_id=request.pk, actor=supervisor, reason="No")

    response = _decide(_admin(supervisor), "approve_selected", [request], reason="")

    assert "1 request was not pending any more" in _messages(response)[0]
    request.refresh_from_db()
    assert request.status == TimeOffStatus.DENIED
    assert _codes(alice, MONDAY) == ["PHONE"]


def test_the_request_page_shows_each_day_and_the_balance_read_only(supervisor, alice):
    request = _ask(alice, MONDAY, TUESDAY)
    client = _admin(supervisor)

    page = client.get(f"{QUEUE}{request.pk}/change/")
    edit = client.post(f"{QUEUE}{request.pk}/change/", {"comment": "changed"})

    assert page.status_code == 200
    text = page.content.decode()
    assert "Dec. 8, 2026" in text and "whole day" in text
    assert "After this request" in text and "24.00 h" in text
    assert 'value="approve_selected"' in text  # the decision buttons of the schedule queue
    assert edit.status_code == 403
    request.refresh_from_db()
    assert request.comment == "Family visit"


# --- another organisation --------------------------------------------------------------------------


def test_a_supervisor_of_another_organisation_sees_and_decides_nothing(alice, charlie, other_org):
    request = _ask(alice)
    theirs = SupervisorFactory(organization=other_org)
    client = _admin(theirs)

    queue = client.get(QUEUE, {"status": "all"})
    page = client.get(f"{QUEUE}{request.pk}/change/")
    decided = _decide(client, "approve_selected", [request], reason="")

    assert queue.context["cl"].result_count == 0
    assert page.status_code in (302, 404)
    assert _messages(decided)[-1] == "No request was selected."
    request.refresh_from_db()
    assert request.status == TimeOffStatus.PENDING


@pytest.mark.parametrize(
    "page",
    [
        QUEUE + "?status=all",
        "/admin/timeoff/balanceadjustment/",
        BALANCES,
        LIMITS,
        "/admin/timeoff/timeoffpolicy/",
        "/admin/timeoff/timeoffsettings/",
        WHO + "?on=all",
    ],
)
def test_no_time_off_page_names_another_organisation(
    supervisor, alice, charlie, other_org, outsider_vac, page
):
    theirs = SupervisorFactory(organization=other_org)
    time_off_request_approve(request_id=_ask(charlie).pk, actor=theirs)
    balance_adjust(
        agent=charlie, activity_code=outsider_vac, hours=Decimal(2), reason="Fabrikam bonus", by=theirs
    )
    TimeOffLimit.objects.create(organization=other_org, capacity=Decimal(77))
    TimeOffPolicy.objects.create(organization=other_org, activity_code=outsider_vac, floor_hours=Decimal(-13))
    TimeOffSettings.objects.create(organization=other_org, monday_hours=Decimal("7.25"))

    response = _admin(supervisor).get(page)

    assert response.status_code == 200
    text = response.content.decode()
    for theirs_text in ("Charlie", "Fabrikam", "4321", "13.75", "7.35"):
        assert theirs_text not in text


def test_another_organisations_config_is_out_of_reach(supervisor, other_org, outsider_vac, charlie):
    limit = TimeOffLimit.objects.create(organization=other_org, capacity=1)
    policy = TimeOffPolicy.objects.create(organization=other_org, activity_code=outsider_vac)
    settings_row = TimeOffSettings.objects.create(organization=other_org)
    client = _admin(supervisor)

    for url in (
        f"{LIMITS}{limit.pk}/change/",
        f"/admin/timeoff/timeoffpolicy/{policy.pk}/change/",
        f"/admin/timeoff/timeoffsettings/{settings_row.pk}/change/",
    ):
        assert client.get(url).status_code in (302, 404)
        client.post(url, {"capacity": "99", "floor_hours": "-99", "monday_hours": "1"})
    client.post(f"{LIMITS}{limit.pk}/delete/", {"post": "yes"})
    limit.refresh_from_db(), policy.refresh_from_db(), settings_row.refresh_from_db()
    assert (limit.capacity, policy.floor_hours, settings_row.monday_hours) == (1, 0, 8)


# --- balances and adjustments --------------------------------------------------------------------


def test_a_supervisor_adjusts_a_balance_with_a_reason_and_it_is_audited(supervisor, alice, vac):
    client = _admin(supervisor)

    form = client.get(ADJUST, {"agent": alice.pk, "activity_code": vac.pk})
    response = client.post(
        ADJUST, {"agent": alice.pk, "activity_code": vac.pk, "hours": "-2.5", "reason": "Counted twice"}
    )

    assert form.status_code == 200 and "Alice's balances now" in form.content.decode()
    assert "40.00 h" in form.content.decode()
    assert response.status_code == 302 and response["Location"].startswith(BALANCES)
    adjustment = BalanceAdjustment.objects.get()
    assert (adjustment.agent, adjustment.minutes, adjustment.reason, adjustment.made_by) == (
        alice,
        -150,
        "Counted twice",
        supervisor,
    )
    assert adjustment.made_at == NOW
    assert balance_for_code(agent=alice, activity_code=vac, today=NOW.date()).remaining == 40 * 60 - 150
    listed = client.get("/admin/timeoff/balanceadjustment/").content.decode()
    assert "-2.50" in listed and "Counted twice" in listed
    history = client.get(
        "/admin/timeoff/balanceadjustment/",
        {"agent__id__exact": alice.pk, "activity_code__id__exact": vac.pk},
    )
    assert [a.pk for a in history.context["cl"].result_list] == [adjustment.pk]
    assert "/admin/timeoff/balanceadjustment/?agent__id__exact=" in client.get(BALANCES).content.decode()
    assert client.get(f"/admin/timeoff/balanceadjustment/{adjustment.pk}/change/").status_code == 200
    assert (
        client.post(f"/admin/timeoff/balanceadjustment/{adjustment.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert BalanceAdjustment.objects.count() == 1


def test_an_adjustment_below_the_floor_or_without_a_reason_is_refused_on_the_form(
    supervisor, alice, vac, org
):
    TimeOffPolicy.objects.create(organization=org, activity_code=vac, floor_hours=Decimal(-4))
    _ask(alice)  # pending: takes nothing from what remains
    client = _admin(supervisor)

    below = client.post(
        ADJUST, {"agent": alice.pk, "activity_code": vac.pk, "hours": "-44.5", "reason": "Reset"}
    )
    blank = client.post(ADJUST, {"agent": alice.pk, "activity_code": vac.pk, "hours": "1", "reason": " "})
    at_floor = client.post(
        ADJUST, {"agent": alice.pk, "activity_code": vac.pk, "hours": "-44", "reason": "Reset"}
    )

    assert below.status_code == 200
    assert "below the floor of -4.00 hours" in below.content.decode()
    assert blank.status_code == 200 and "This field is required" in blank.content.decode()
    assert at_floor.status_code == 302
    assert list(BalanceAdjustment.objects.values_list("minutes", flat=True)) == [-44 * 60]


def test_an_agent_or_code_of_another_organisation_cannot_be_adjusted(
    supervisor, alice, charlie, outsider_vac, vac
):
    client = _admin(supervisor)

    their_agent = client.post(
        ADJUST, {"agent": charlie.pk, "activity_code": vac.pk, "hours": "5", "reason": "x"}
    )
    their_code = client.post(
        ADJUST, {"agent": alice.pk, "activity_code": outsider_vac.pk, "hours": "5", "reason": "x"}
    )

    assert their_agent.status_code == 200 and their_code.status_code == 200
    assert "Select a valid choice" in their_agent.content.decode()
    assert "Select a valid choice" in their_code.content.decode()
    assert not BalanceAdjustment.objects.exists()
    their_page = client.get(ADJUST, {"agent": charlie.pk})
    their_balances = client.get(BALANCES, {"agent": charlie.pk})
    assert their_page.status_code == 200 and "Charlie" not in their_page.content.decode()
    assert "Charlie" not in their_balances.content.decode()
    assert [row["agent"] for row in their_balances.context["rows"]] == [alice]
    with pytest.raises(ApplicationError) as refused:
        balance_adjust(agent=charlie, activity_code=outsider_vac, hours=Decimal(5), reason="x", by=supervisor)
    assert refused.value.code == "permission_denied"


def test_the_balances_page_lists_each_agents_balance_by_team(supervisor, alice, bob, org, vac):
    other_team = TeamFactory(organization=org, name="Sales")
    bob.team = other_team
    bob.save()
    time_off_request_approve(request_id=_ask(bob).pk, actor=supervisor)
    _ask(alice, TUESDAY)
    client = _admin(supervisor)

    everyone = client.get(BALANCES)
    sales = client.get(BALANCES, {"team": other_team.pk})

    assert everyone.status_code == 200
    rows = {
        (row["agent"].name, row["balance"].activity_code.code): row["cells"]
        for row in everyone.context["rows"]
    }
    # earned, used, planned, pending, remaining, floor
    assert rows[("Alice", "VAC")] == ["40.00 h", "0.00 h", "0.00 h", "8.00 h", "40.00 h", "0.00 h"]
    assert rows[("Bob", "VAC")] == ["40.00 h", "0.00 h", "8.00 h", "0.00 h", "32.00 h", "0.00 h"]
    assert [row["agent"].name for row in sales.context["rows"]] == ["Bob"]
    assert f"{ADJUST}?agent={alice.pk}&amp;activity_code={vac.pk}" in everyone.content.decode()


# --- limits, policies, settings --------------------------------------------------------------------


@pytest.fixture
def waitlisted(alice, bob, org, supervisor):
    """Bob holds the organisation's only place on Monday; Alice waits for it."""
    ApprovalRule.objects.create(
        organization=org,
        request_type=RequestType.TIME_OFF,
        action=RuleAction.AUTO_APPROVE,
        when_conditions_fail=RuleAction.MANUAL,
        waitlist_when_full=True,
    )
    limit = TimeOffLimit.objects.create(organization=org, capacity=1)
    assert _ask(bob).status == TimeOffStatus.APPROVED
    request = _ask(alice)
    assert request.substatus == "waitlisted"
    return limit, request


def _limit_form(limit, **changes) -> dict:
    data = {
        "organization": limit.organization_id,
        "team": limit.team_id or "",
        "date": limit.date.isoformat() if limit.date else "",
        "unit": limit.unit,
        "capacity": str(limit.capacity),
    }
    return {**data, **changes}


def test_raising_a_limit_in_the_admin_approves_the_first_waitlisted_after_commit(
    supervisor, waitlisted, alice, django_capture_on_commit_callbacks
):
    limit, request = waitlisted

    with django_capture_on_commit_callbacks(execute=True):
        response = _admin(supervisor).post(f"{LIMITS}{limit.pk}/change/", _limit_form(limit, capacity="2"))
        request.refresh_from_db()
        assert request.substatus == "waitlisted"  # not before the limit is committed

    assert response.status_code == 302, response.content
    request.refresh_from_db()
    assert (request.status, request.substatus) == (TimeOffStatus.APPROVED, "")
    assert _codes(alice, MONDAY) == ["VAC"]
    assert "time_off_approved" in _kinds(alice)


def test_lowering_a_limit_queues_nothing_and_removing_one_does(
    supervisor, waitlisted, django_capture_on_commit_callbacks
):
    limit, request = waitlisted
    client = _admin(supervisor)

    with mock.patch("timeoff.tasks.advance_waitlist.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            lowered = client.post(f"{LIMITS}{limit.pk}/change/", _limit_form(limit, capacity="0"))
        assert lowered.status_code == 302 and not delay.called
        with django_capture_on_commit_callbacks(execute=True):
            dated = client.post(f"{LIMITS}add/", _limit_form(limit, date="2026-12-07", capacity="3"))
        assert dated.status_code == 302
        delay.assert_called_once_with(limit.organization_id, ["2026-12-07"])
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"{LIMITS}{limit.pk}/delete/", {"post": "yes"})
        assert delay.call_args == mock.call(limit.organization_id, None)  # the default: every date

    assert not TimeOffLimit.objects.filter(pk=limit.pk).exists()


def test_a_second_limit_for_the_same_day_is_refused_in_words(supervisor, org, team):
    TimeOffLimit.objects.create(organization=org, team=team, date=MONDAY, capacity=1)
    client = _admin(supervisor)

    response = client.post(
        f"{LIMITS}add/",
        {"organization": org.pk, "team": team.pk, "date": "2026-12-07", "unit": "agents", "capacity": "4"},
    )

    other_day = TimeOffLimit.objects.create(organization=org, team=team, date=TUESDAY, capacity=1)
    moved = client.post(
        f"{LIMITS}{other_day.pk}/change/",
        {"team": team.pk, "date": "2026-12-07", "unit": "agents", "capacity": "1"},
    )

    for refused in (response, moved):
        assert refused.status_code == 200
        assert "There is such a limit already" in refused.content.decode()
        assert "Constraint" not in refused.content.decode()
    assert TimeOffLimit.objects.filter(date=MONDAY).count() == 1


def test_a_supervisor_sets_a_policy_and_the_default_hours(supervisor, org, vac, other_org, outsider_vac):
    client = _admin(supervisor)

    policy = client.post(
        "/admin/timeoff/timeoffpolicy/add/",
        {
            "organization": org.pk,
            "activity_code": vac.pk,
            "floor_hours": "-8",
            "accrual_hours_per_month": "12",
            "accrual_start": "2026-01-01",
            "starting_hours": "0",
            "carry_over_cap_hours": "",
        },
    )
    foreign = client.post(
        "/admin/timeoff/timeoffpolicy/add/",
        {"organization": org.pk, "activity_code": outsider_vac.pk, "floor_hours": "0", "starting_hours": "0"},
    )
    initial = client.get("/admin/timeoff/timeoffsettings/add/")
    hours = {f"{day}_hours": "8" for day in ("monday", "tuesday", "wednesday", "thursday", "friday")}
    settings_row = client.post(
        "/admin/timeoff/timeoffsettings/add/",
        {
            "organization": org.pk,
            **hours,
            "friday_hours": "6",
            "saturday_hours": "0",
            "sunday_hours": "0",
            "day_start": "08:30",
            "interval_auto_margin": "1",
            "interval_approval_margin": "2",
        },
    )

    assert policy.status_code == 302, policy.content
    assert TimeOffPolicy.objects.get(organization=org).accrual_hours_per_month == 12
    assert foreign.status_code == 200 and "Select a valid choice" in foreign.content.decode()
    assert initial.context["adminform"].form.initial["organization"] == str(org.pk)
    assert settings_row.status_code == 302, settings_row.content
    saved = TimeOffSettings.objects.get(organization=org)
    assert (saved.friday_hours, saved.day_start) == (6, dt.time(8, 30))


# --- who is off ------------------------------------------------------------------------------------


def test_who_is_off_lists_the_approved_time_off_of_a_date_per_team(supervisor, alice, bob, charlie, org, vac):
    sales = TeamFactory(organization=org, name="Sales")
    carol = _cxone_agent(AgentFactory(organization=org, name="Carol"), vac, sales)
    for someone in (alice, carol):
        time_off_request_approve(request_id=_ask(someone).pk, actor=supervisor)
    _ask(bob)  # pending: not off (yet)
    time_off_request_approve(request_id=_ask(alice, TUESDAY).pk, actor=supervisor)
    part = time_off_request_create(
        agent=bob,
        kind="partial_day",
        activity_code="VAC",
        date=TUESDAY,
        start_time=dt.time(13),
        end_time=dt.time(17),
    )
    time_off_request_approve(request_id=part.pk, actor=supervisor)
    theirs = SupervisorFactory(organization=charlie.organization)
    time_off_request_approve(request_id=_ask(charlie).pk, actor=theirs)
    client = _admin(supervisor)

    monday = client.get(WHO, {"on": "2026-12-07"})
    monday_sales = client.get(WHO, {"on": "2026-12-07", "agent__team__id__exact": sales.pk})
    today = client.get(WHO)

    assert monday.status_code == 200
    assert [(d.agent.name, d.date) for d in monday.context["cl"].result_list] == [
        ("Alice", MONDAY),
        ("Carol", MONDAY),
    ]
    assert "whole day" in monday.content.decode() and "Who is off" in monday.content.decode()
    assert [d.agent.name for d in monday_sales.context["cl"].result_list] == ["Carol"]
    assert today.context["cl"].result_count == 0  # nobody is off today, 3 December
    tuesday = client.get(WHO, {"on": "2026-12-08"})
    assert [d.agent.name for d in tuesday.context["cl"].result_list] == ["Alice", "Bob"]
    assert "13:00–17:00" in tuesday.content.decode()


def test_every_time_off_page_opens_for_a_superuser_and_the_index_lists_them(supervisor, alice, charlie):
    request = _ask(alice)
    superuser = UserFactory(is_staff=True, is_superuser=True, email="root@em-agent.test")
    pages = [
        QUEUE,
        f"{QUEUE}{request.pk}/change/",
        "/admin/timeoff/balanceadjustment/",
        ADJUST + f"?agent={charlie.pk}",
        BALANCES,
        LIMITS,
        f"{LIMITS}add/",
        "/admin/timeoff/timeoffpolicy/add/",
        "/admin/timeoff/timeoffsettings/add/",
        WHO,
    ]

    for page in pages:
        assert _admin(superuser).get(page).status_code == 200, page
    index = _admin(supervisor).get("/admin/").content.decode()
    for listed in (
        QUEUE,
        LIMITS,
        WHO,
        "/admin/timeoff/balanceadjustment/",
        "/admin/timeoff/timeoffsettings/",
    ):
        assert f'href="{listed}"' in index


# --- a race ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_adjustment_and_an_approval_racing_for_the_last_hours_never_both_pass(
    postgres, supervisor, alice, vac
):
    TimeOffBalance.objects.filter(agent=alice).update(earned_minutes=8 * 60)
    request = _ask(alice)  # pending, 8 hours: takes nothing until approved

    def approve():
        try:
            time_off_request_approve(request_id=request.pk, actor=supervisor)
        except ApplicationError as error:
            return error.code
        return "approved"

    def adjust():
        try:
            balance_adjust(
                agent=alice, activity_code=vac, hours=Decimal(-8), reason="Paid out", by=supervisor
            )
        except ApplicationError as error:
            return error.code
        return "adjusted"

    for _round in range(3):  # either may come first
        results = run_together([approve, adjust])
        assert sorted(results) in (["approved", "validation_error"], ["adjusted", "insufficient_balance"])
        balance = balance_for_code(agent=alice, activity_code=vac, today=NOW.date())
        assert balance.remaining == 0
        # Back to the start for the next round.
        BalanceAdjustment.objects.all().delete()
        TimeOffRequest.objects.filter(pk=request.pk).update(status=TimeOffStatus.PENDING, change_group=None)
        Activity.objects.filter(agent=alice, day__date=MONDAY).delete()
        shift(alice, MONDAY, ("PHONE", "09:00", "17:00"))
