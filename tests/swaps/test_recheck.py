"""Changes underneath a live swap (issue 12, point 7): the schedule service's schedule_days_changed
and a time-off request saved queue a re-check at once; the minute task is the net. An open offer
that no longer holds is cancelled, one awaiting approval denied, with the reason; a recipient who
could no longer take it drops out."""

import datetime as dt

import pytest
import time_machine

from em_agent.exceptions import ApplicationError
from notifications.kinds import kind_get, render
from notifications.models import Notification
from swaps.models import Answer, Swap, SwapRecipient, SwapStatus
from swaps.services import swap_accept, swap_approve, swap_offer_create, swaps_on_days, swaps_recheck
from tests.factories import AgentFactory
from tests.schedules.factories import shift
from tests.swaps.test_eligibility import time_off
from tests.swaps.test_swaps import DAY, NOW, codes_on

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def offered(agent, teammate):
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    shift(teammate, DAY, ("LATE", "10:00", "18:00"))
    return swap_offer_create(agent=agent, date=DAY, recipients=[teammate.pk])


def test_a_change_under_an_open_offer_cancels_it_at_once(
    agent, teammate, offered, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        shift(agent, DAY, ("EARLY", "08:00", "16:00"))  # the sync moves Alice's shift

    offered.refresh_from_db()
    assert offered.status == SwapStatus.CANCELLED
    assert offered.status_reason == "The swap no longer holds: a shift is no longer what it was when offered."
    invalidated = Notification.objects.filter(kind="swap_invalidated")
    assert sorted(n.user_id for n in invalidated) == sorted([agent.user_id, teammate.user_id])
    assert Notification.objects.get(kind="swap_offer").expires_at <= NOW  # its actions are gone


def test_a_change_elsewhere_leaves_the_offer(agent, teammate, offered, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        shift(agent, DAY + dt.timedelta(days=3), ("EARLY", "09:00", "17:00"))

    assert Swap.objects.get().status == SwapStatus.OPEN
    assert swaps_on_days(keys=[(agent.pk, DAY + dt.timedelta(days=3))]) == []
    assert swaps_on_days(keys=[(teammate.pk, DAY)]) == [offered.pk]


def test_time_off_asked_for_under_an_awaiting_swap_denies_it(
    agent, teammate, offered, django_capture_on_commit_callbacks
):
    swap_accept(agent=teammate, swap_id=offered.pk)
    assert Swap.objects.get().status == SwapStatus.AWAITING_APPROVAL

    with django_capture_on_commit_callbacks(execute=True):
        time_off(teammate, DAY)  # pending: no day changes, yet the swap no longer holds

    swap = Swap.objects.get()
    assert swap.status == SwapStatus.DENIED
    assert swap.status_reason == "The swap no longer holds: time off was requested for one of the days."
    denied = Notification.objects.filter(kind="swap_denied")
    assert denied.count() == 2
    _title, body = render(kind_get("swap_denied"), denied.first().params, language="en", zone=agent.zone)
    assert body.endswith("Reason: The swap no longer holds: time off was requested for one of the days.")
    assert codes_on(agent, DAY) == ["EARLY"]


def test_a_supervisor_cannot_approve_what_no_longer_holds(agent, teammate, supervisor, offered):
    swap_accept(agent=teammate, swap_id=offered.pk)
    time_off(agent, DAY)  # not re-checked yet (no commit in this test): the approval itself refuses

    with pytest.raises(ApplicationError) as refused:
        swap_approve(swap_id=offered.pk, actor=supervisor)

    assert refused.value.code == "not_eligible"
    assert Swap.objects.get().status == SwapStatus.AWAITING_APPROVAL
    assert codes_on(agent, DAY) == ["EARLY"]


def test_a_recipient_whose_shift_changed_drops_out_and_another_takes_it(
    org, agent, teammate, django_capture_on_commit_callbacks
):
    third = AgentFactory(organization=org, name="Cleo")
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    for other in (teammate, third):
        shift(other, DAY, ("LATE", "10:00", "18:00"))
    swap = swap_offer_create(agent=agent, date=DAY, recipients=[teammate.pk, third.pk])

    with django_capture_on_commit_callbacks(execute=True):
        shift(teammate, DAY, ("LATE", "11:00", "19:00"))

    assert Swap.objects.get().status == SwapStatus.OPEN
    answers = dict(SwapRecipient.objects.values_list("agent_id", "answer"))
    assert answers == {teammate.pk: Answer.UNAVAILABLE, third.pk: Answer.PENDING}
    offers = {n.user_id: n.expires_at for n in Notification.objects.filter(kind="swap_offer")}
    assert offers[teammate.user_id] <= NOW < offers[third.user_id]
    assert swap_accept(agent=third, swap_id=swap.pk).status == SwapStatus.AWAITING_APPROVAL


def test_the_periodic_net_catches_a_change_stamped_before_the_last_check(agent, teammate, offered):
    """A sync's long transaction stamped the day before a re-check ran, and committed after it."""
    shift(agent, DAY, ("EARLY", "08:00", "16:00"))  # updated_at: NOW
    Swap.objects.update(checked_at=NOW + dt.timedelta(minutes=3))

    with time_machine.travel(NOW + dt.timedelta(minutes=4), tick=False):
        assert swaps_recheck() == {"checked": 1, "cancelled": 1, "denied": 0}
        assert swaps_recheck()["checked"] == 0

    assert Swap.objects.get().status == SwapStatus.CANCELLED


def test_the_periodic_net_leaves_a_swap_that_still_holds(agent, teammate, offered):
    shift(teammate, DAY + dt.timedelta(days=1), ("LATE", "10:00", "18:00"))  # another day of Bob's
    shift(agent, DAY, ("EARLY", "09:00", "17:00"), note="Bring the headset")  # the same shift

    assert swaps_recheck()["cancelled"] == 0
    assert Swap.objects.get().status == SwapStatus.OPEN
