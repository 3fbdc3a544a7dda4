"""Interval self-service (issue 11, point 7): the intervals of an agent's future working time on a
published day that staffing lets it take off, and a request over consecutive ones of one type.

- The intervals are the WFM's staffing rows (`StaffingInterval`) of the agent's team for that local
  day, or the organisation's where the team has none that day (the *scope*).
- An interval is offered when it lies wholly in the agent's working time that day (its paid
  activities that are not time off or absence: an unpaid meal is not time the balance pays for),
  starts later than now, and no time off of the agent's is pending or approved over it.
- Staffing without the agent: the WFM's `scheduled`, less the agents of the scope whose approved
  time off overlaps the interval (so an approval lowers it at once, before the WFM's next export;
  `scheduled` itself is the sync's to write), less one. At or above required + the organisation's
  `interval_auto_margin`: `auto_approve`; at or above required - `interval_approval_margin`:
  `approval_required`; below: not offered.
- A request is a partial day through `time_off_request_create` (the same balance, overlap and
  pending checks) of any length from one interval: the intervals are the unit here, not the 1 to
  8 hours a typed-in part of a day needs. The type is the verdict: `auto_approve` is approved at
  once (a blackout still declines, and a full day limit sends it to a supervisor instead);
  `approval_required` waits for a supervisor.

The race for the last place of an interval: offering and deciding run under the time-off day lock
of the organisation and date (the one the limits take, after the agent's row as the services'
lock order says), so of two agents only one sees the interval still offered; the other is told
`interval_unavailable`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from em_agent.exceptions import ApplicationError
from em_agent.localtime import local_day_bounds
from em_agent.messages import Reason
from em_agent.models import Agent
from em_agent.policies import wfm_feature_require
from schedules.approval import RequestFacts, Verdict, approval_days_lock
from schedules.models import Activity, ActivityCategory, ActivitySource, RequestType, RuleAction, ScheduleDay
from timeoff.days import RequestedDay
from timeoff.models import (
    HOLDING,
    StaffingInterval,
    TimeOffDay,
    TimeOffKind,
    TimeOffRequest,
    TimeOffStatus,
    timeoff_settings_for,
)
from timeoff.services import time_off_request_create

IntervalType = Literal["auto_approve", "approval_required"]
AUTO_APPROVE: IntervalType = "auto_approve"
APPROVAL_REQUIRED: IntervalType = "approval_required"
DEFAULT_INTERVAL_MINUTES = 30
# How far ahead intervals are looked for: the WFM exports staffing for its published weeks only.
MAX_DAYS_AHEAD = 366
# A 25-hour day of 15-minute intervals.
MAX_INTERVALS = 100
_NOT_WORK = (ActivityCategory.TIME_OFF, ActivityCategory.ABSENCE)


@dataclass(frozen=True)
class Interval:
    start: dt.datetime  # UTC
    end: dt.datetime
    type: IntervalType | None  # None: not offered
    scheduled: int  # the WFM's, less the scope's approved time off over it
    required: int


@dataclass(frozen=True)
class Offer:
    date: dt.date
    interval_minutes: int
    team_id: int | None  # the scope: the agent's team's staffing, or (None) the organisation's
    intervals: list[Interval]  # every interval of the day, offered or not, in order

    @property
    def offered(self) -> list[Interval]:
        return [interval for interval in self.intervals if interval.type is not None]


def _covered(start: dt.datetime, end: dt.datetime, spans: Sequence[tuple[dt.datetime, dt.datetime]]) -> bool:
    """[start, end) lies within the union of the spans (sorted by start)."""
    reached = start
    for span_start, span_end in spans:
        if span_start > reached:
            break
        reached = max(reached, span_end)
        if reached >= end:
            return True
    return reached >= end


def _overlaps(start: dt.datetime, end: dt.datetime, spans: Sequence[tuple[dt.datetime, dt.datetime]]) -> bool:
    return any(span_start < end and start < span_end for span_start, span_end in spans)


def _type(*, scheduled: int, required: int, auto_margin: int, approval_margin: int) -> IntervalType | None:
    without_agent = scheduled - 1
    if without_agent >= required + auto_margin:
        return AUTO_APPROVE
    if without_agent >= required - approval_margin:
        return APPROVAL_REQUIRED
    return None


def _empty(agent: Agent, date: dt.date) -> Offer:
    return Offer(date=date, interval_minutes=DEFAULT_INTERVAL_MINUTES, team_id=agent.team_id, intervals=[])


def intervals_for_agent(*, agent: Agent, date: dt.date, now: dt.datetime | None = None) -> Offer:
    """Every staffing interval of the agent's local day with its type for this agent (None where
    it is not offered). A day that is past, far ahead, unpublished or without staffing has none."""
    wfm_feature_require(organization=agent.organization, feature="time_off")
    now = now or timezone.now()
    today = now.astimezone(agent.zone).date()
    if not today <= date <= today + dt.timedelta(days=MAX_DAYS_AHEAD):
        return _empty(agent, date)
    if not ScheduleDay.objects.filter(agent=agent, date=date, published=True).exists():
        return _empty(agent, date)
    begin, end = local_day_bounds(date, agent.zone)
    in_day = StaffingInterval.objects.filter(
        organization_id=agent.organization_id, start__gte=begin, start__lt=end
    ).order_by("start")
    rows = list(in_day.filter(team_id=agent.team_id)) if agent.team_id is not None else []
    team_id = agent.team_id if rows else None
    if not rows:
        rows = list(in_day.filter(team__isnull=True))
    if not rows:
        return _empty(agent, date)

    work = list(
        Activity.objects.of_agent(agent.pk)
        .filter(day__date=date, activity_code__paid=True)
        .exclude(activity_code__category__in=_NOT_WORK)
        .exclude(source=ActivitySource.TIME_OFF)
        .order_by("start")
        .values_list("start", "end")
    )
    span_end = max(row.start + dt.timedelta(minutes=row.minutes) for row in rows)
    own = list(
        TimeOffDay.objects.filter(
            agent=agent, request__status__in=HOLDING, start__lt=span_end, end__gt=rows[0].start
        ).values_list("start", "end")
    )
    # The scope's approved time off around the day: the index's dates (a colleague's day may sit in
    # another zone), then the exact overlap per interval below.
    approved = TimeOffDay.objects.filter(
        organization_id=agent.organization_id,
        date__range=(date - dt.timedelta(days=1), date + dt.timedelta(days=1)),
        request__status=TimeOffStatus.APPROVED,
        start__lt=span_end,
        end__gt=rows[0].start,
    )
    if team_id is not None:
        approved = approved.filter(agent__team_id=team_id)
    off = list(approved.values_list("agent_id", "start", "end"))

    settings = timeoff_settings_for(agent.organization)
    intervals = []
    for row in rows:
        start, finish = row.start, row.start + dt.timedelta(minutes=row.minutes)
        scheduled = row.scheduled - len(
            {who for who, off_start, off_end in off if off_start < finish and start < off_end}
        )
        offered = start > now and _covered(start, finish, work) and not _overlaps(start, finish, own)
        kind = (
            _type(
                scheduled=scheduled,
                required=row.required,
                auto_margin=settings.interval_auto_margin,
                approval_margin=settings.interval_approval_margin,
            )
            if offered
            else None
        )
        intervals.append(
            Interval(start=start, end=finish, type=kind, scheduled=scheduled, required=row.required)
        )
    return Offer(date=date, interval_minutes=rows[0].minutes, team_id=team_id, intervals=intervals)


def _refused(code: str, detail: str, message: str) -> ApplicationError:
    return ApplicationError(code, detail, fields={"starts": [message]})


def _wall(instant: dt.datetime, agent: Agent) -> str:
    return f"{instant.astimezone(agent.zone):%H:%M}"


def _chosen(offer: Offer, starts: Sequence[dt.datetime], agent: Agent) -> list[Interval]:
    """The intervals the starts name, in order: each one of the day's, following each other, all
    offered, all of one type."""
    if len(set(starts)) != len(starts):
        raise ApplicationError(
            "validation_error",
            _("The input is not valid."),
            fields={"starts": [_("Each interval once.")]},
        )
    by_start = {interval.start: interval for interval in offer.intervals}
    chosen = []
    for start in sorted(starts):
        interval = by_start.get(start)
        if interval is None:
            raise _refused(
                "interval_unavailable",
                _("This interval is not offered (any more)."),
                _("%(time)s is not the start of an interval of that day.") % {"time": _wall(start, agent)},
            )
        chosen.append(interval)
    for before, after in zip(chosen, chosen[1:], strict=False):
        if after.start != before.end:
            raise _refused(
                "intervals_not_consecutive",
                _("The intervals must follow each other without a gap."),
                _("%(after)s does not follow %(before)s.")
                % {"after": _wall(after.start, agent), "before": _wall(before.start, agent)},
            )
    for interval in chosen:
        if interval.type is None:
            raise _refused(
                "interval_unavailable",
                _("This interval is not offered (any more)."),
                _("%(time)s is not offered.") % {"time": _wall(interval.start, agent)},
            )
    first = chosen[0]
    for interval in chosen[1:]:
        if interval.type != first.type:
            message = (
                _("%(time)s needs approval; %(first)s is approved at once.")
                if interval.type == APPROVAL_REQUIRED
                else _("%(time)s is approved at once; %(first)s needs approval.")
            )
            raise _refused(
                "mixed_interval_types",
                _("One request takes intervals of one type: all approved at once, or all needing approval."),
                message % {"time": _wall(interval.start, agent), "first": _wall(first.start, agent)},
            )
    return chosen


def _decide(kind: IntervalType):
    """The verdict the intervals' type promised, within the engine's: a blackout declines whatever
    staffing says; a full day limit (time-off limits count every approved time off) sends an
    `auto_approve` request to a supervisor; otherwise the type decides."""

    def decide(facts: RequestFacts, verdict: Verdict) -> Verdict:
        if "blackout" in verdict.failed:
            return verdict
        if kind == APPROVAL_REQUIRED:
            return Verdict(
                RuleAction.MANUAL,
                verdict.rule,
                Reason(gettext_noop("A supervisor decides: the staffing of these intervals is tight.")),
            )
        full = [limit for limit in (facts.limits() if facts.limits is not None else []) if limit.full]
        if full:
            first = min(full, key=lambda limit: limit.date)
            # No rule named: a rule's waitlist would approve it later by the day's limit alone, with
            # no look at the interval's staffing then.
            return Verdict(
                RuleAction.MANUAL,
                None,
                Reason(
                    gettext_noop("Sent to a supervisor: %(why)s."),
                    {
                        "why": [
                            Reason(
                                gettext_noop("the limit of %(date)s is reached"),
                                {"date": first.date},
                            )
                        ]
                    },
                ),
                failed=("limit_full",),
            )
        # The rule that applies is named as the decider, when there is one: staffing decided within it.
        return Verdict(
            RuleAction.AUTO_APPROVE,
            verdict.rule,
            Reason(gettext_noop("Approved automatically: the staffing of these intervals allows it.")),
        )

    return decide


@transaction.atomic
def interval_request_create(
    *,
    agent: Agent,
    date: dt.date,
    activity_code: str,
    starts: Sequence[dt.datetime],
    comment: str = "",
    auto_approve_only: bool = False,
) -> TimeOffRequest:
    """One partial-day request over consecutive offered intervals of one type (400
    `intervals_not_consecutive`, `mixed_interval_types`, `interval_unavailable`), decided by their
    type: `auto_approve` approved at once, `approval_required` left to a supervisor.
    `auto_approve_only`: the agent chose intervals shown as `auto_approve`; ones that now need
    approval are `interval_unavailable` (the last automatic place taken meanwhile does not turn
    into a wait for a supervisor unasked)."""
    wfm_feature_require(organization=agent.organization, feature="time_off")
    if not starts:
        raise ApplicationError(
            "validation_error", _("The input is not valid."), fields={"starts": [_("Choose an interval.")]}
        )
    # The services' lock order: the agent's row, then the organisation's time-off day (the lock the
    # limits take, held to the end of this transaction): every other time off decided in the
    # organisation that day waits, so the staffing read below stays true until this one is decided.
    Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk).first()
    approval_days_lock(request_type=RequestType.TIME_OFF, organization_id=agent.organization_id, dates=[date])
    now = timezone.now()
    offer = intervals_for_agent(agent=agent, date=date, now=now)
    chosen = _chosen(offer, [start.astimezone(dt.UTC) for start in starts], agent)
    kind = chosen[0].type or APPROVAL_REQUIRED  # always set: _chosen refuses what is not offered
    if auto_approve_only and kind != AUTO_APPROVE:
        raise _refused(
            "interval_unavailable",
            _("This interval is not offered (any more)."),
            _("%(time)s is no longer approved at once.") % {"time": _wall(chosen[0].start, agent)},
        )
    start, end = chosen[0].start, chosen[-1].end
    return time_off_request_create(
        agent=agent,
        kind=TimeOffKind.PARTIAL_DAY,
        activity_code=activity_code,
        date=date,
        comment=comment,
        from_intervals=True,
        interval_day=RequestedDay(
            date=date, minutes=int((end - start).total_seconds() // 60), start=start, end=end
        ),
        decide=_decide(kind),
    )
