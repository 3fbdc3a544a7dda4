"""Reads of swaps, always for one agent: the swaps it takes part in, the board's open offers, and
the colleagues who may take its shift."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from em_agent.models import Agent
from schedules.models import ScheduleDay
from swaps.eligibility import Candidate, SwapCheck, candidate_pool, no_shift_offered, shift_of
from swaps.models import Answer, Swap, SwapKind, SwapRecipient, SwapSettings, SwapStatus


def _board_reach(agent: Agent) -> Q:
    """Board offers of the agent's organisation, in any state, that were put where it could see
    them: not its own, within its team when the organisation keeps swaps within teams."""
    rules = SwapSettings.for_organization(agent.organization)
    condition = Q(organization_id=agent.organization_id, open=True) & ~Q(requester_id=agent.pk)
    if rules.same_team_only:
        condition &= Q(requester__team_id=agent.team_id) if agent.team_id else Q(pk__in=[])
    return condition


def _board_for(agent: Agent) -> Q:
    """Board offers the agent may take: open, within its reach, not declined by it."""
    return (
        _board_reach(agent)
        & Q(status=SwapStatus.OPEN)
        & ~Q(Exists(SwapRecipient.objects.filter(swap=OuterRef("pk"), agent=agent, answer=Answer.DECLINED)))
    )


def _visible(agent: Agent, *, acting: bool) -> Q:
    """The swaps the agent takes part in (requester, taker, recipient), and board offers within its
    reach: open ones to read and act on; closed ones only to act on. A colleague who saw an offer
    on the board and accepts after a cancel or another's accept learns it is no longer open (409),
    not that it never existed; what became of it (the taker, the answers) stays with those who
    took part. Outsiders get 404 either way."""
    board = _board_reach(agent) if acting else _board_reach(agent) & Q(status=SwapStatus.OPEN)
    return (
        Q(requester_id=agent.pk)
        | Q(taker_id=agent.pk)
        | Q(Exists(SwapRecipient.objects.filter(swap=OuterRef("pk"), agent=agent)))
        | board
    )


def swap_get_for_agent(*, agent: Agent, id: int, lock: bool = False, acting: bool = False) -> Swap | None:
    """A swap the agent takes part in, or a board offer it may take (`acting`: also one of its
    reach that has closed, so the action answers why it cannot); None for anything else, so the
    caller answers 404."""
    swaps = Swap.objects.filter(_visible(agent, acting=acting), pk=id, organization_id=agent.organization_id)
    if lock:
        swaps = swaps.select_for_update(of=("self",))
    return swaps.select_related("requester", "taker").prefetch_related("recipients__agent").first()


def swap_list_for_agent(*, agent: Agent, box: str, statuses: list[str] | None = None) -> QuerySet[Swap]:
    """`board`: open board offers the agent may take; `incoming`: offers made to it (or taken by
    it); `outgoing`: its own offers. Newest first."""
    if box == "board":
        # Only offers the agent could fit at all: a swap of a day it works (it gives that shift
        # back), a give-away of a day it is free. The other rules are checked when it accepts.
        works = ScheduleDay.objects.filter(agent=agent, first_start__isnull=False)
        swaps = Swap.objects.filter(_board_for(agent)).filter(
            Q(kind=SwapKind.SWAP, their_date__in=works.values("date"))
            | (Q(kind=SwapKind.GIVE_AWAY) & ~Q(date__in=works.values("date")))
        )
    elif box == "incoming":
        swaps = Swap.objects.filter(
            Q(taker_id=agent.pk) | Q(Exists(SwapRecipient.objects.filter(swap=OuterRef("pk"), agent=agent)))
        ).exclude(requester_id=agent.pk)
    else:
        swaps = Swap.objects.filter(requester_id=agent.pk)
    if statuses:
        swaps = swaps.filter(status__in=statuses)
    return swaps.select_related("requester", "taker").prefetch_related("recipients__agent").order_by("-id")


def swap_candidates_for_agent(
    *,
    agent: Agent,
    date: dt.date,
    their_date: dt.date | None,
    kind: str = SwapKind.SWAP,
    include_ineligible: bool = False,
) -> list[Candidate]:
    """The colleagues who may take the agent's shift on `date` (theirs on `their_date` back), and
    with `include_ineligible` also the others of its team (of the organisation, for an agent in no
    team) with what stops them. Within the team when the organisation keeps swaps there: another
    team's colleagues are no candidates at all (different_team is for a direct offer to one).

    SQL first leaves out whoever it can tell breaks a rule (SwapCheck.narrow), so that in a large
    organisation only the few who might fit are evaluated, rule by rule, with the ineligible
    asked for."""
    if kind == SwapKind.GIVE_AWAY:
        their_date = None
    elif their_date is None:
        their_date = date
    rules = SwapSettings.for_organization(agent.organization)
    check = SwapCheck(
        rules=rules,
        requester=agent,
        offered=shift_of(agent=agent, date=date),
        kind=kind,
        their_date=their_date,
        now=timezone.now(),
        count_offers=False,
    )
    no_shift_offered(check)
    pool = candidate_pool(requester=agent, rules=rules, include_other_teams=False)
    likely = check.narrow(pool)
    if not include_ineligible:
        return [c for c in check.evaluate(list(likely)) if c.eligible]
    if not agent.team_id:
        return check.evaluate(list(pool))
    team = Q(team_id=agent.team_id)
    results = check.evaluate(list(pool.filter(team | Q(pk__in=likely.values("pk")))))
    return [c for c in results if c.eligible or c.agent.team_id == agent.team_id]
