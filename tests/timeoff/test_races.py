"""Time off under real concurrency (issue 11, points 2, 4 and 8), on PostgreSQL with real threads and
real transactions: the last hours of a balance, the last place of a day's limit and its waitlist,
and a supervisor's approval racing the agent's cancellation."""

import datetime as dt

import pytest
import time_machine

from em_agent.exceptions import ApplicationError
from em_agent.models import Agent
from notifications.models import Notification
from schedules.models import Activity, ApprovalRule, RequestType, RuleAction
from tests.conftest import run_together
from tests.factories import AgentFactory, SupervisorFactory
from tests.schedules.factories import ActivityCodeFactory, shift
from timeoff.balances import balance_for_code
from timeoff.models import TimeOffBalance, TimeOffLimit, TimeOffRequest, TimeOffStatus
from timeoff.selectors import waitlist_position
from timeoff.services import time_off_request_approve, time_off_request_cancel, time_off_request_create

pytestmark = pytest.mark.django_db(transaction=True)

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)  # Thursday 10:00 in Amsterdam
MONDAY = dt.date(2026, 12, 7)
WEEK = [MONDAY + dt.timedelta(days=n) for n in range(5)]


@pytest.fixture(autouse=True)
def _now():
    # Ticking: each thread's request gets its own time, as it would (waitlisted_at orders the waitlist;
    # a tie goes by id).
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def vac(org):
    return ActivityCodeFactory(
        organization=org, code="VAC", name="Vacation", category="time_off", open_for_time_off=True
    )


def _rule(org, action=RuleAction.AUTO_APPROVE):
    return ApprovalRule.objects.create(
        organization=org,
        request_type=RequestType.TIME_OFF,
        action=action,
        when_conditions_fail=RuleAction.MANUAL,
        waitlist_when_full=True,
    )


def _agent_with_week(org, vac, *, hours, **fields):
    agent = AgentFactory(organization=org, timezone="Europe/Amsterdam", **fields)
    TimeOffBalance.objects.create(agent=agent, activity_code=vac, earned_minutes=hours * 60, as_of=NOW.date())
    for date in WEEK:
        shift(agent, date, ("PHONE", "09:00", "17:00"))  # 8 paid hours a day
    return agent


def _ask(agent_id, date):
    """A whole day of time off, as a thread asks for it: its own agent row, its outcome or refusal."""

    def call():
        try:
            request = time_off_request_create(
                agent=Agent.objects.select_related("organization").get(pk=agent_id),
                kind="full_day",
                activity_code="VAC",
                start_date=date,
                end_date=date,
            )
        except ApplicationError as exc:
            return exc.code
        return request.substatus or request.status

    return call


def _day(agent, date):
    return list(
        Activity.objects.filter(agent=agent, day__date=date)
        .order_by("start")
        .values_list("id", "activity_code__code", "start", "end")
    )


def _remaining(agent, vac):
    return balance_for_code(agent=agent, activity_code=vac, today=NOW.date()).remaining


def test_two_requests_for_the_last_hours_at_once_only_one_gets_them(postgres, org, vac):
    _rule(org)
    alice = _agent_with_week(org, vac, hours=8, supervisor=None)

    outcomes = run_together([_ask(alice.pk, WEEK[0]), _ask(alice.pk, WEEK[1])])

    # The agent's row serialises its requests: the second one reads the first one's approval and is
    # refused outright (a balance is checked when asked), so nothing of it is recorded.
    assert sorted(outcomes) == ["approved", "insufficient_balance"]
    assert TimeOffRequest.objects.filter(agent=alice).count() == 1
    assert _remaining(alice, vac) == 0


def test_two_supervisors_approving_the_last_hours_at_once_approve_one(postgres, org, vac, supervisor):
    _rule(org, RuleAction.MANUAL)
    alice = _agent_with_week(org, vac, hours=8, supervisor=supervisor)
    other = SupervisorFactory(organization=org, email="second.supervisor@contoso.test")
    # Pending requests take nothing from the balance: both may wait for a supervisor.
    assert run_together([_ask(alice.pk, WEEK[0]), _ask(alice.pk, WEEK[1])]) == ["pending", "pending"]
    first, second = TimeOffRequest.objects.filter(agent=alice).order_by("start_date")

    def approve(request, actor):
        def call():
            try:
                return time_off_request_approve(request_id=request.pk, actor=actor).status
            except ApplicationError as exc:
                return exc.code

        return call

    outcomes = run_together([approve(first, supervisor), approve(second, other)])

    assert sorted(outcomes) == ["approved", "insufficient_balance"]
    statuses = sorted(TimeOffRequest.objects.filter(agent=alice).values_list("status", flat=True))
    assert statuses == ["approved", "pending"]
    assert _remaining(alice, vac) == 0
    vac_days = Activity.objects.filter(agent=alice, activity_code=vac).values_list("day__date", flat=True)
    assert len(vac_days) == 1  # one day's schedule holds the time off, the other's is as it was


def test_ten_agents_for_the_last_place_one_is_approved_nine_wait_in_order_and_a_cancellation_moves_the_first_up(
    postgres, org, vac, supervisor
):
    _rule(org)
    TimeOffLimit.objects.create(organization=org, date=MONDAY, capacity=1)
    agents = [_agent_with_week(org, vac, hours=40, supervisor=supervisor) for _ in range(10)]

    outcomes = run_together([_ask(agent.pk, MONDAY) for agent in agents])

    assert sorted(outcomes) == ["approved"] + ["waitlisted"] * 9
    (approved,) = TimeOffRequest.objects.filter(status=TimeOffStatus.APPROVED)
    waiting = list(TimeOffRequest.objects.filter(substatus="waitlisted").order_by("waitlisted_at", "id"))
    assert [waitlist_position(request) for request in waiting] == list(range(1, 10))
    assert Activity.objects.filter(activity_code=vac, day__date=MONDAY).count() == 1

    # After the cancellation commits, the waitlist advances (a Celery task: eager here): the first
    # in line gets the place, the others move up one.
    time_off_request_cancel(agent=approved.agent, request_id=approved.pk)

    first = TimeOffRequest.objects.get(pk=waiting[0].pk)
    assert (first.status, first.substatus) == (TimeOffStatus.APPROVED, "")
    assert Notification.objects.filter(user=first.agent.user, kind="time_off_approved").count() == 1
    rest = [TimeOffRequest.objects.get(pk=request.pk) for request in waiting[1:]]
    assert {request.status for request in rest} == {TimeOffStatus.PENDING}
    assert [waitlist_position(request) for request in rest] == list(range(1, 9))
    assert list(
        Activity.objects.filter(activity_code=vac, day__date=MONDAY).values_list("agent_id", flat=True)
    ) == [first.agent_id]


def test_an_approval_racing_the_agents_cancellation_ends_in_one_state(postgres, org, vac, supervisor):
    _rule(org, RuleAction.MANUAL)
    alice = _agent_with_week(org, vac, hours=40, supervisor=supervisor)
    before = {date: _day(alice, date) for date in WEEK}
    outcomes = []
    for date in WEEK:  # five rounds: either may come first
        assert _ask(alice.pk, date)() == "pending"
        request = TimeOffRequest.objects.get(agent=alice, start_date=date)

        def approve(request=request):
            try:
                return time_off_request_approve(request_id=request.pk, actor=supervisor).status
            except ApplicationError as exc:
                return exc.code

        def cancel(request=request):
            agent = Agent.objects.get(pk=alice.pk)
            return time_off_request_cancel(agent=agent, request_id=request.pk).request.status

        approval, cancellation = run_together([approve, cancel])
        request.refresh_from_db()
        outcomes.append((approval, cancellation, request.status))
        # Cancel first: the pending request is withdrawn and the approval finds it decided. Approval
        # first: the cancellation finds it approved, cancels it and gives the day back.
        assert (approval, cancellation, request.status) in {
            ("not_pending", TimeOffStatus.WITHDRAWN, TimeOffStatus.WITHDRAWN),
            (TimeOffStatus.APPROVED, TimeOffStatus.CANCELLED, TimeOffStatus.CANCELLED),
        }
        assert _day(alice, date) == before[date]  # the shift exactly as it was, ids included
        assert _remaining(alice, vac) == 40 * 60
    told = Notification.objects.filter(user=supervisor, kind="time_off_cancelled").count()
    assert told == sum(1 for _a, _c, status in outcomes if status == TimeOffStatus.CANCELLED)
