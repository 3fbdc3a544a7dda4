"""Races on PostgreSQL with real threads and transactions: whatever runs at the same moment as an
accept (a cancel, a write to the same day), one end state, consistent in the database."""

import pytest
import time_machine

from notifications.models import Notification
from schedules.models import ApprovalRule, RequestType, RuleAction, ScheduleChange
from swaps.models import Swap, SwapStatus
from swaps.services import swap_accept, swap_cancel, swap_offer_create, swaps_recheck
from tests.conftest import run_together
from tests.schedules.factories import shift
from tests.swaps.test_swaps import DAY, NOW, codes_on

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def offered(postgres, org, agent, teammate):
    ApprovalRule.objects.create(
        organization=org, request_type=RequestType.SWAP, action=RuleAction.AUTO_APPROVE
    )
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    shift(teammate, DAY, ("LATE", "10:00", "18:00"))
    return swap_offer_create(agent=agent, date=DAY, recipients=[teammate.pk])


def _outcome(call):
    def run():
        try:
            return call().status
        except Exception as error:  # noqa: BLE001  (the refusal is the result)
            return getattr(error, "code", repr(error))

    return run


@pytest.mark.parametrize("repeat", range(3))
def test_accept_racing_cancel_ends_in_one_state(agent, teammate, offered, repeat):
    results = run_together(
        [
            _outcome(lambda: swap_accept(agent=teammate, swap_id=offered.pk)),
            _outcome(lambda: swap_cancel(agent=agent, swap_id=offered.pk)),
        ]
    )

    swap = Swap.objects.get()
    if swap.status == SwapStatus.COMPLETED:
        assert results == [SwapStatus.COMPLETED, "swap_not_open"]
        assert codes_on(agent, DAY) == ["LATE"] and codes_on(teammate, DAY) == ["EARLY"]
        assert not Notification.objects.filter(kind="swap_cancelled").exists()
    else:
        assert swap.status == SwapStatus.CANCELLED
        assert results == ["swap_not_open", SwapStatus.CANCELLED]
        assert codes_on(agent, DAY) == ["EARLY"] and codes_on(teammate, DAY) == ["LATE"]
        assert not ScheduleChange.objects.filter(reason=f"swap {swap.pk}").exists()
        assert not Notification.objects.filter(kind="swap_accepted").exists()


@pytest.mark.parametrize("repeat", range(3))
def test_accept_racing_a_write_to_the_same_day(agent, teammate, offered, repeat):
    """The WFM's sync (or an approved time off) rewrites Alice's day while Bob accepts: either the
    exchange went first and the write then replaced Alice's new day, or the write went first and
    the accept found the shift changed (409) and the re-check after it cancelled the offer. No
    deadlock, no half exchange."""
    results = run_together(
        [
            _outcome(lambda: swap_accept(agent=teammate, swap_id=offered.pk)),
            lambda: shift(agent, DAY, ("MEETING", "13:00", "14:00")).days_written,
        ]
    )

    swap = Swap.objects.get()
    assert results[1] == 1  # the write always lands
    assert codes_on(agent, DAY) == ["MEETING"]
    if swap.status == SwapStatus.COMPLETED:
        assert results[0] == SwapStatus.COMPLETED
        assert codes_on(teammate, DAY) == ["EARLY"]
        assert ScheduleChange.objects.filter(group=swap.change_group).count() == 2
    else:
        assert results[0] == "schedule_changed"
        if swap.status == SwapStatus.OPEN:
            # The re-check queued by the write's commit found the swap claimed by the accept that
            # was failing right then, and left it to the periodic net.
            assert swaps_recheck()["cancelled"] == 1
            swap.refresh_from_db()
        assert swap.status == SwapStatus.CANCELLED
        assert codes_on(teammate, DAY) == ["LATE"]


@pytest.mark.parametrize("repeat", range(3))
def test_accept_racing_a_time_off_approval_of_the_same_day(agent, teammate, supervisor, offered, repeat):
    """Bob asked for the day off after the offer (the re-check that would cancel the offer is held
    back here), and accepts Alice's shift while a supervisor approves his time off. The pending
    time off already stops the swap, and the approval's rewrite of his day would too: whatever
    the order, his time off is approved, the swap is not exchanged, and nobody deadlocks."""
    from django.db.models.signals import post_save

    from tests.swaps.test_eligibility import time_off
    from timeoff.models import TimeOffBalance, TimeOffRequest, TimeOffStatus
    from timeoff.services import time_off_request_approve

    post_save.disconnect(sender=TimeOffRequest, dispatch_uid="swaps-time-off")
    try:
        request = time_off(teammate, DAY)
    finally:
        from swaps import receivers

        post_save.connect(receivers.on_time_off_saved, sender=TimeOffRequest, dispatch_uid="swaps-time-off")
    TimeOffBalance.objects.create(
        agent=teammate, activity_code=request.activity_code, earned_minutes=100 * 60, as_of=NOW.date()
    )

    results = run_together(
        [
            _outcome(lambda: swap_accept(agent=teammate, swap_id=offered.pk)),
            _outcome(lambda: time_off_request_approve(request_id=request.pk, actor=supervisor)),
        ]
    )

    assert results[1] == TimeOffStatus.APPROVED
    assert results[0] in ("not_eligible", "schedule_changed")
    assert codes_on(teammate, DAY) == ["VAC"] and codes_on(agent, DAY) == ["EARLY"]
    swap = Swap.objects.get()
    assert swap.status in (SwapStatus.OPEN, SwapStatus.CANCELLED)
    swaps_recheck()  # the net, for a re-check that found the swap claimed by the failing accept
    swap.refresh_from_db()
    assert swap.status == SwapStatus.CANCELLED
    assert not ScheduleChange.objects.filter(reason=f"swap {swap.pk}").exists()
