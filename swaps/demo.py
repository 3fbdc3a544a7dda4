"""The demo's swaps for CXone organisations (what `seed_demo` adds after time off): rules that
approve a swap at once when both shifts start three days ahead or later and leave a nearer one to a
supervisor, and, for two colleagues the demo WFM gives the same skills (Anna and Bram of customer
care), one offer of Bram's on the swap board and one swap of Anna's with Bram awaiting a supervisor.
Both are made through the swap services, as the app would. Idempotent: a second run adds nothing;
a run after the one on the board or the awaiting one was decided makes a new one to look at."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from em_agent.models import Agent, Organization, WfmSystem
from schedules.models import ActivityCategory, ActivityCode, ApprovalRule, RequestType, RuleAction
from swaps.eligibility import shift_of
from swaps.models import LIVE, Swap, SwapStatus
from swaps.selectors import swap_candidates_for_agent
from swaps.services import swap_accept, swap_offer_create

# Under this a swap goes to a supervisor (the demo organisation's own choice, not a product rule).
AUTO_APPROVE_LEAD_HOURS = 72
# What a working day is made of. A swap is judged by the rules of every code of both shifts (the
# strictest wins), so each gets the rule; a day with time off or an absence cannot be swapped at all.
SHIFT_CATEGORIES = (
    ActivityCategory.WORK,
    ActivityCategory.BREAK,
    ActivityCategory.MEAL,
    ActivityCategory.MEETING,
    ActivityCategory.TRAINING,
)
# The awaiting swap's day (a shift 24 to 72 hours ahead: the organisation's lead time to offer, and
# under the rule's) and the board offer's (far enough ahead to be taken at once).
AWAITING_DAYS = range(1, 4)
BOARD_DAYS = range(4, 10)


def demo_swaps_upsert(
    *, organization: Organization, now: dt.datetime, between: tuple[str, str] | None = None
) -> None:
    """`between`: the emails of the two colleagues, the first offering the awaiting swap, the
    second the one on the board."""
    if organization.wfm_system != WfmSystem.CXONE:
        return
    codes = ActivityCode.objects.filter(organization=organization, category__in=SHIFT_CATEGORIES)
    with transaction.atomic():
        for code in codes:
            ApprovalRule.objects.update_or_create(
                organization=organization,
                request_type=RequestType.SWAP,
                activity_code=code,
                defaults={
                    "action": RuleAction.AUTO_APPROVE,
                    "min_lead_hours": AUTO_APPROVE_LEAD_HOURS,
                    "max_per_day": None,
                    "when_conditions_fail": RuleAction.MANUAL,
                    "waitlist_when_full": False,
                    "priority": 10,
                    "active": True,
                },
            )
    if between is None:
        return
    agents = {
        agent.user.email: agent
        for agent in Agent.objects.filter(organization=organization, user__email__in=between).select_related(
            "user", "organization"
        )
    }
    if len(agents) == 2:
        first, second = agents[between[0]], agents[between[1]]
        _one_awaiting_approval(requester=first, taker=second, now=now)
        _one_on_the_board(requester=second, colleague=first, now=now)


def _one_awaiting_approval(*, requester: Agent, taker: Agent, now: dt.datetime) -> None:
    """The requester's shift of a day in the coming three offered to the colleague, who takes it:
    it starts within the rule's 72 hours, so it waits for a supervisor. None when no day has both
    shifts 24 to 72 hours ahead (for weekday shifts: seeded between Thursday and Friday morning)."""
    if Swap.objects.filter(requester=requester, taker=taker, status=SwapStatus.AWAITING_APPROVAL).exists():
        return
    today = now.astimezone(requester.zone).date()
    for offset in AWAITING_DAYS:
        date = today + dt.timedelta(days=offset)
        theirs = _fits(requester=requester, colleague=taker, date=date)
        if theirs is None:
            continue
        earliest = min(shift_of(agent=requester, date=date).start, theirs)
        if earliest - now >= dt.timedelta(hours=AUTO_APPROVE_LEAD_HOURS):
            continue
        with transaction.atomic():
            swap = swap_offer_create(
                agent=requester,
                date=date,
                recipients=[taker.pk],
                message="Demo: could you take my shift? I have a family visit.",
            )
            swap_accept(agent=taker, swap_id=swap.pk)
        return


def _one_on_the_board(*, requester: Agent, colleague: Agent, now: dt.datetime) -> None:
    """The requester's shift of a day four to nine days ahead on the board, for a day the colleague
    may take it (so it shows on the colleague's board and in its notifications)."""
    if Swap.objects.filter(requester=requester, open=True, status=SwapStatus.OPEN).exists():
        return
    today = now.astimezone(requester.zone).date()
    for offset in BOARD_DAYS:
        date = today + dt.timedelta(days=offset)
        if _fits(requester=requester, colleague=colleague, date=date) is not None:
            swap_offer_create(
                agent=requester,
                date=date,
                open=True,
                message="Demo: anyone for my shift? Same day, yours back.",
            )
            return


def _fits(*, requester: Agent, colleague: Agent, date: dt.date) -> dt.datetime | None:
    """When the colleague's shift starts, if every swap rule lets the two swap that day's shifts
    (the services' own candidates) and neither shift is offered already; else None."""
    if not shift_of(agent=requester, date=date).activities:
        return None
    if Swap.objects.filter(requester__in=[requester, colleague], date=date, status__in=LIVE).exists():
        return None
    for candidate in swap_candidates_for_agent(agent=requester, date=date, their_date=date):
        if candidate.agent.pk == colleague.pk and candidate.shift is not None:
            return candidate.shift.start
    return None
