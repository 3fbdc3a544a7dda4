"""Time-off limits (issue 11, point 2): how much time off a day allows, for the organisation and for
the agent's team, each a date's own limit or the default; counted in agents off or hours off; taken
only by approved time off (a pending or waitlisted request reserves nothing). A day the request
counts 0 hours of (a day off) takes no place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db.models import Count, Q, Sum

from em_agent.models import Agent
from schedules.approval import LimitUse, approval_days_lock
from schedules.models import RequestType
from timeoff.models import LimitUnit, TimeOffDay, TimeOffLimit, TimeOffStatus, TimeOffSubstatus


def limits_for_days(
    *, organization_id: int, team_id: int | None, dates: Iterable[dt.date]
) -> dict[tuple[int | None, dt.date], TimeOffLimit]:
    """The limit of each (scope, date), scope None for the organisation's and the team's id for the
    team's: the date's own, else the default; absent where neither exists."""
    dates = sorted(set(dates))
    scopes = Q(team__isnull=True) | (Q(team_id=team_id) if team_id is not None else Q(pk__in=[]))
    rows = TimeOffLimit.objects.filter(scopes, organization_id=organization_id).filter(
        Q(date__isnull=True) | Q(date__in=dates)
    )
    own: dict[tuple[int | None, dt.date | None], TimeOffLimit] = {
        (row.team_id, row.date): row for row in rows
    }
    found = {}
    for scope in (None, team_id) if team_id is not None else (None,):
        for date in dates:
            limit = own.get((scope, date)) or own.get((scope, None))
            if limit is not None:
                found[(scope, date)] = limit
    return found


def taken_on(
    *, organization_id: int, team_id: int | None, dates: Sequence[dt.date], exclude_request: int | None = None
) -> dict[tuple[int | None, dt.date], tuple[int, int]]:
    """(agents, minutes) of approved time off per (scope, date): the organisation's (scope None),
    and the team's when given."""
    approved = TimeOffDay.objects.filter(
        organization_id=organization_id,
        date__in=list(dates),
        minutes__gt=0,
        request__status=TimeOffStatus.APPROVED,
    )
    if exclude_request is not None:
        approved = approved.exclude(request_id=exclude_request)
    return _per_scope(approved, team_id=team_id)


def _per_scope(days, *, team_id: int | None) -> dict[tuple[int | None, dt.date], tuple[int, int]]:
    """(agents, minutes) per (scope, date) of `days` (TimeOffDay rows): the organisation's (scope
    None) and the team's when given."""
    result: dict[tuple[int | None, dt.date], tuple[int, int]] = {}
    scopes: list[tuple[int | None, Q]] = [(None, Q())]
    if team_id is not None:
        scopes.append((team_id, Q(agent__team_id=team_id)))
    for scope, condition in scopes:
        for date, agents, minutes in (
            days.filter(condition)
            .values("date")
            .annotate(agents=Count("agent_id", distinct=True), minutes=Sum("minutes"))
            .values_list("date", "agents", "minutes")
        ):
            result[(scope, date)] = (agents, minutes)
    return result


def queued_ahead(
    *,
    organization_id: int,
    team_id: int | None,
    dates: Sequence[dt.date],
    exclude_request: int | None,
    behind: tuple[dt.datetime, int] | None,
) -> dict[tuple[int | None, dt.date], tuple[int, int]]:
    """(agents, minutes) per (scope, date) of the waitlisted requests ahead of a request: all of them
    for a new one (`behind` None), else those waitlisted before (waitlisted_at, id). A place that
    frees is theirs first: a newcomer does not take it while the queue moves up."""
    waiting = TimeOffDay.objects.filter(
        organization_id=organization_id,
        date__in=list(dates),
        minutes__gt=0,
        request__status=TimeOffStatus.PENDING,
        request__substatus=TimeOffSubstatus.WAITLISTED,
    )
    if exclude_request is not None:
        waiting = waiting.exclude(request_id=exclude_request)
    if behind is not None:
        at, pk = behind
        waiting = waiting.filter(
            Q(request__waitlisted_at__lt=at) | Q(request__waitlisted_at=at, request_id__lt=pk)
        )
    return _per_scope(waiting, team_id=team_id)


def limit_uses(
    *,
    agent: Agent,
    days: Sequence[tuple[dt.date, int]],
    exclude_request: int | None = None,
    lock: bool = True,
    behind: tuple[dt.datetime, int] | None = None,
) -> list[LimitUse]:
    """Every limit the agent's (date, minutes) days would take a place of, as they stand now: what
    approved time off takes, plus what the waitlisted requests ahead of this one wait for (see
    queued_ahead; `behind`: this request's place in the queue, None for a new request). An agent
    already off that day (approved time off in another part of it) takes no second place of an
    agents-off limit. With `lock`, under the time-off day lock of the organisation (to the end of
    the transaction): two requests at once cannot both take the last place."""
    counted = [(date, minutes) for date, minutes in days if minutes > 0]
    if not counted:
        return []
    dates = [date for date, _minutes in counted]
    if lock:
        approval_days_lock(
            request_type=RequestType.TIME_OFF, organization_id=agent.organization_id, dates=dates
        )
    limits = limits_for_days(organization_id=agent.organization_id, team_id=agent.team_id, dates=dates)
    if not limits:
        return []
    taken = taken_on(
        organization_id=agent.organization_id,
        team_id=agent.team_id,
        dates=dates,
        exclude_request=exclude_request,
    )
    queued = queued_ahead(
        organization_id=agent.organization_id,
        team_id=agent.team_id,
        dates=dates,
        exclude_request=exclude_request,
        behind=behind,
    )
    already_off = set(
        TimeOffDay.objects.filter(
            agent=agent, date__in=dates, minutes__gt=0, request__status=TimeOffStatus.APPROVED
        )
        .exclude(request_id=exclude_request)
        .values_list("date", flat=True)
    )
    wanted_minutes = dict(counted)
    uses = []
    for (limit_scope, date), limit in sorted(limits.items(), key=lambda item: (item[0][1], item[0][0] or 0)):
        agents, minutes = taken.get((limit_scope, date), (0, 0))
        ahead_agents, ahead_minutes = queued.get((limit_scope, date), (0, 0))
        if limit.unit == LimitUnit.AGENTS:
            used, wanted = Decimal(agents + ahead_agents), Decimal(0 if date in already_off else 1)
        else:
            used, wanted = Decimal(minutes + ahead_minutes) / 60, Decimal(wanted_minutes[date]) / 60
        uses.append(
            LimitUse(date=date, capacity=limit.capacity, used=used, wanted=wanted, team_id=limit_scope)
        )
    return uses
