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


def _scoped(name: str, condition: Q, team_id: int | None) -> dict:
    """Agents and minutes of the rows matching `condition`, for the organisation and (when given)
    for the team: conditional aggregates, so every count of a day comes from one query."""
    scopes: list[tuple[str, Q]] = [("org", condition)]
    if team_id is not None:
        scopes.append(("team", condition & Q(agent__team_id=team_id)))
    return {
        aggregate: function
        for scope, scoped in scopes
        for aggregate, function in (
            (f"{name}_{scope}_agents", Count("agent_id", distinct=True, filter=scoped)),
            (f"{name}_{scope}_minutes", Sum("minutes", filter=scoped)),
        )
    }


def _counts_per_scope(
    rows: Iterable[dict], name: str, team_id: int | None
) -> dict[tuple[int | None, dt.date], tuple[int, int]]:
    result: dict[tuple[int | None, dt.date], tuple[int, int]] = {}
    scopes: list[tuple[str, int | None]] = [("org", None)] + (
        [("team", team_id)] if team_id is not None else []
    )
    for row in rows:
        for scope, key in scopes:
            agents = row[f"{name}_{scope}_agents"]
            if agents:
                result[(key, row["date"])] = (agents, row[f"{name}_{scope}_minutes"] or 0)
    return result


def _day_counts(
    *,
    organization_id: int,
    team_id: int | None,
    dates: Sequence[dt.date],
    exclude_request: int | None,
    waitlisted_ahead: Q | None = None,
    agent_id: int | None = None,
) -> list[dict]:
    """Per date: the approved time off (`taken_*`), with `waitlisted_ahead` the waitlisted requests
    it selects (`queued_*`), and with `agent_id` whether that agent is off already (`own`)."""
    days = TimeOffDay.objects.filter(organization_id=organization_id, date__in=list(dates), minutes__gt=0)
    if exclude_request is not None:
        days = days.exclude(request_id=exclude_request)
    approved = Q(request__status=TimeOffStatus.APPROVED)
    aggregates = _scoped("taken", approved, team_id)
    wanted = approved
    if waitlisted_ahead is not None:
        aggregates |= _scoped("queued", waitlisted_ahead, team_id)
        wanted |= waitlisted_ahead
    if agent_id is not None:
        aggregates["own"] = Count("pk", filter=approved & Q(agent_id=agent_id))
    return [dict(row) for row in days.filter(wanted).values("date").annotate(**aggregates).order_by()]


def taken_on(
    *, organization_id: int, team_id: int | None, dates: Sequence[dt.date], exclude_request: int | None = None
) -> dict[tuple[int | None, dt.date], tuple[int, int]]:
    """(agents, minutes) of approved time off per (scope, date): the organisation's (scope None),
    and the team's when given."""
    rows = _day_counts(
        organization_id=organization_id, team_id=team_id, dates=dates, exclude_request=exclude_request
    )
    return _counts_per_scope(rows, "taken", team_id)


def _waitlisted_ahead(behind: tuple[dt.datetime, int] | None) -> Q:
    """The waitlisted requests ahead of a request: all of them for a new one (`behind` None), else
    those waitlisted before (waitlisted_at, id). A place that frees is theirs first: a newcomer does
    not take it while the queue moves up."""
    waiting = Q(request__status=TimeOffStatus.PENDING, request__substatus=TimeOffSubstatus.WAITLISTED)
    if behind is None:
        return waiting
    at, pk = behind
    return waiting & (Q(request__waitlisted_at__lt=at) | Q(request__waitlisted_at=at, request_id__lt=pk))


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
    _waitlisted_ahead; `behind`: this request's place in the queue, None for a new request). An agent
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
    rows = _day_counts(
        organization_id=agent.organization_id,
        team_id=agent.team_id,
        dates=dates,
        exclude_request=exclude_request,
        waitlisted_ahead=_waitlisted_ahead(behind),
        agent_id=agent.pk,
    )
    taken = _counts_per_scope(rows, "taken", agent.team_id)
    queued = _counts_per_scope(rows, "queued", agent.team_id)
    already_off = {row["date"] for row in rows if row["own"]}
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
