"""CXone time-off requests (issue 11): asked for whole days or part of a day, decided by the approval
engine (limits, balance, lead time, blackouts; a full limit may waitlist), applied to the schedule in
the decision's transaction as one change group, cancelled by undoing that group.

Locks, always in this order, so no two of these paths deadlock: the request's row (a decision), the
agent's row (its balance and its pending requests), the organisation's time-off days (advisory:
limits), the schedule's days (the schedule service)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from rest_framework import status

from em_agent.exceptions import ApplicationError
from em_agent.localtime import local_datetime
from em_agent.messages import day_text
from em_agent.models import Agent, User
from em_agent.policies import wfm_feature_require
from notifications.services import notify
from schedules.approval import (
    BalanceUse,
    DateRange,
    Reason,
    RequestFacts,
    Verdict,
    approval_evaluate,
)
from schedules.decisions import (
    Lifecycle,
    decision_approve,
    decision_claim_pending,
    decision_deny,
    decision_follow_verdict,
    decision_set_reason,
    decision_withdraw,
    decisions_lapse,
)
from schedules.diff import ActivitySpec, DayPlan, day_carve
from schedules.models import Activity, ActivityCode, ActivitySource, RequestType, RuleAction
from schedules.services import (
    MAX_ACTIVITY_LENGTH,
    NotRestored,
    activity_specs,
    schedule_change_group_undo,
    schedule_days_apply,
    schedule_days_lock,
)
from timeoff.balances import Balance, balance_for_code, hours
from timeoff.days import RequestedDay, full_days, partial_day
from timeoff.limits import limit_uses
from timeoff.models import (
    HOLDING,
    TimeOffDay,
    TimeOffKind,
    TimeOffRequest,
    TimeOffStatus,
    TimeOffSubstatus,
    timeoff_settings_for,
)
from timeoff.selectors import supervisors_to_tell, time_off_request_get_for_agent

MAX_PENDING_PER_AGENT = 20

logger = logging.getLogger(__name__)


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("validation_error", _("The input is not valid."), fields={field: [message]})


def _not_found() -> ApplicationError:
    return ApplicationError("not_found", _("Not found."), status_code=status.HTTP_404_NOT_FOUND)


@dataclass(frozen=True)
class Ask:
    """What the agent asks for, checked and counted: nothing written yet."""

    agent: Agent
    kind: str
    activity_code: ActivityCode
    days: list[RequestedDay]

    @property
    def minutes(self) -> int:
        return sum(day.minutes for day in self.days)

    @property
    def start(self) -> dt.datetime:
        return min(day.start for day in self.days)

    @property
    def end(self) -> dt.datetime:
        return max(day.end for day in self.days)


def _time_off_code(*, agent: Agent, code: str) -> ActivityCode:
    activity_code = ActivityCode.objects.filter(
        organization_id=agent.organization_id, code=code, active=True, open_for_time_off=True
    ).first()
    if activity_code is None:
        raise _invalid("activity_code", _("This is not an activity code you can request time off with."))
    return activity_code


def _ask(
    *,
    agent: Agent,
    kind: str,
    activity_code: str,
    start_date: dt.date | None,
    end_date: dt.date | None,
    date: dt.date | None,
    start_time: dt.time | None,
    end_time: dt.time | None,
    now: dt.datetime,
    interval_day: RequestedDay | None = None,
) -> Ask:
    wfm_feature_require(organization=agent.organization, feature="time_off")
    code = _time_off_code(agent=agent, code=activity_code)
    today = now.astimezone(agent.zone).date()
    if kind == TimeOffKind.FULL_DAY:
        if start_date is None or end_date is None:
            raise _invalid("start_date" if start_date is None else "end_date", _("This field is required."))
        # A whole day that has begun is past: part of it has been worked (or not) already.
        if start_date <= today:
            raise ApplicationError(
                "in_the_past",
                _(
                    "Whole days of time off start tomorrow at the earliest; for today, ask for part of the day."
                ),
                fields={"start_date": [_("This day has begun.")]},
            )
        days = full_days(
            agent=agent,
            start_date=start_date,
            end_date=end_date,
            default_minutes=lambda: timeoff_settings_for(agent.organization).default_minutes(),
        )
    elif interval_day is not None:
        # Consecutive offered intervals (timeoff.intervals, which checked them): instants, so the
        # repeated hour of a DST change is unambiguous, and as short as one interval.
        days = [interval_day]
    else:
        if date is None or start_time is None or end_time is None:
            missing = next(
                name
                for name, value in (("date", date), ("start_time", start_time), ("end_time", end_time))
                if value is None
            )
            raise _invalid(missing, _("This field is required."))
        if date < today:
            raise ApplicationError(
                "in_the_past", _("This day has passed."), fields={"date": [_("This day has passed.")]}
            )
        days = [partial_day(agent=agent, date=date, start_time=start_time, end_time=end_time)]
        if days[0].start <= now:
            raise ApplicationError(
                "in_the_past",
                _("The time off must start later than now."),
                fields={"start_time": [_("This time has passed.")]},
            )
    ask = Ask(agent=agent, kind=kind, activity_code=code, days=days)
    if ask.minutes == 0:
        raise _invalid(
            "end_date", _("These days count no hours (days off): there is nothing to take time off from.")
        )
    return ask


def _check_room_for_pending(agent: Agent) -> None:
    # One agent's pending requests are bounded: the queue is a supervisor's, not a free-for-all.
    pending = TimeOffRequest.objects.filter(agent=agent, status=TimeOffStatus.PENDING).count()
    if pending >= MAX_PENDING_PER_AGENT:
        raise ApplicationError(
            "too_many_pending_requests",
            _("You have %(count)d requests waiting for a decision; withdraw one first.") % {"count": pending},
            status_code=status.HTTP_409_CONFLICT,
        )


def _check_no_overlap(ask: Ask, *, exclude: int | None = None) -> None:
    holding = TimeOffDay.objects.filter(
        agent=ask.agent, request__status__in=HOLDING, start__lt=ask.end, end__gt=ask.start
    )
    if exclude is not None:
        holding = holding.exclude(request_id=exclude)
    spans = list(holding.values_list("start", "end", "date"))
    for day in ask.days:
        clash = next((date for start, end, date in spans if start < day.end and day.start < end), None)
        if clash is not None:
            raise ApplicationError(
                "overlaps_existing_request",
                _("You already have time off requested or approved on %(date)s.") % {"date": day_text(clash)},
            )


def _check_balance(balance: Balance, minutes: int, *, status_code: int = status.HTTP_400_BAD_REQUEST) -> None:
    if balance.remaining - minutes < balance.floor:
        raise ApplicationError(
            "insufficient_balance",
            _("Your balance of %(code)s is not enough: %(remaining)s hours left, %(wanted)s asked.")
            % {
                "code": balance.activity_code.name,
                "remaining": hours(balance.remaining),
                "wanted": hours(minutes),
            },
            status_code=status_code,
        )


def _balance_use(balance: Balance, minutes: int) -> BalanceUse:
    return BalanceUse(
        remaining=Decimal(balance.remaining) / 60,
        wanted=Decimal(minutes) / 60,
        floor=Decimal(balance.floor) / 60,
    )


def _facts(
    ask: Ask,
    *,
    balance: Balance,
    exclude_request: int | None = None,
    lock: bool = True,
    behind: tuple[dt.datetime, int] | None = None,
) -> RequestFacts:
    """`behind`: a waitlisted request's place in the queue (waitlisted_at, id); only those ahead of
    it hold places for it to wait behind. None for a new request: the whole queue is ahead."""
    days = [(day.date, day.minutes) for day in ask.days]
    return RequestFacts(
        organization=ask.agent.organization,
        request_type=RequestType.TIME_OFF,
        dates=DateRange(ask.days[0].date, ask.days[-1].date),
        starts_at=ask.start,
        activity_code_id=ask.activity_code.pk,
        limits=lambda: limit_uses(
            agent=ask.agent, days=days, exclude_request=exclude_request, lock=lock, behind=behind
        ),
        balance=lambda: _balance_use(balance, ask.minutes),
    )


def _waitlists(verdict: Verdict) -> bool:
    """Only a full limit stands in the way, and the rule lets such a request wait for a place."""
    return (
        verdict.action != RuleAction.AUTO_APPROVE
        and verdict.failed == ("limit_full",)
        and verdict.rule is not None
        and verdict.rule.waitlist_when_full
    )


def _waitlist_reason(verdict: Verdict) -> Reason:
    why = verdict.reason.params.get("why", [])
    return Reason(gettext_noop("On the waitlist: %(why)s."), {"why": why})


# --- the preview -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    days: list[RequestedDay]
    minutes: int
    balance_after: int
    outcome: str  # auto_approve, approval_required, waitlisted, auto_decline
    reasons: list[str]


_OUTCOME = {
    RuleAction.AUTO_APPROVE: "auto_approve",
    RuleAction.MANUAL: "approval_required",
    RuleAction.AUTO_DECLINE: "auto_decline",
}


def _reasons(reason: Reason) -> list[str]:
    why = reason.params.get("why")
    if isinstance(why, list) and why:
        return [part.render() for part in why]
    return [reason.render()]


def time_off_request_preview(
    *,
    agent: Agent,
    kind: str,
    activity_code: str,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    date: dt.date | None = None,
    start_time: dt.time | None = None,
    end_time: dt.time | None = None,
) -> Preview:
    """What a request with this body would take and what would happen to it, writing nothing: the
    same refusals a request would get (400), the days and hours, the balance after, the outcome."""
    now = timezone.now()
    ask = _ask(
        agent=agent,
        kind=kind,
        activity_code=activity_code,
        start_date=start_date,
        end_date=end_date,
        date=date,
        start_time=start_time,
        end_time=end_time,
        now=now,
    )
    _check_room_for_pending(agent)
    _check_no_overlap(ask)
    balance = balance_for_code(
        agent=agent, activity_code=ask.activity_code, today=now.astimezone(agent.zone).date()
    )
    _check_balance(balance, ask.minutes)
    # No lock: a preview takes no place; what it says can change before the request is sent.
    verdict = approval_evaluate(facts=_facts(ask, balance=balance, lock=False), now=now)
    if _waitlists(verdict):
        outcome, reasons = "waitlisted", _reasons(_waitlist_reason(verdict))
    else:
        outcome, reasons = _OUTCOME[RuleAction(verdict.action)], _reasons(verdict.reason)
    return Preview(
        days=ask.days,
        minutes=ask.minutes,
        balance_after=balance.remaining - ask.minutes,
        outcome=outcome,
        reasons=reasons,
    )


# --- requesting ------------------------------------------------------------------------------------


@transaction.atomic
def time_off_request_create(
    *,
    agent: Agent,
    kind: str,
    activity_code: str,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    date: dt.date | None = None,
    start_time: dt.time | None = None,
    end_time: dt.time | None = None,
    comment: str = "",
    from_intervals: bool = False,
    interval_day: RequestedDay | None = None,
    decide: Callable[[RequestFacts, Verdict], Verdict] | None = None,
) -> TimeOffRequest:
    """Records the request and its days, then lets the engine decide: approved at once (the schedule
    changed in this transaction), declined, left to a supervisor, or waitlisted when only a full
    limit stands in the way and the rule allows it. Interval self-service (timeoff.intervals) gives
    the partial day itself (`interval_day`) and `decide`, which turns the engine's verdict into the
    one the chosen intervals' type promised."""
    now = timezone.now()
    ask = _ask(
        agent=agent,
        kind=kind,
        activity_code=activity_code,
        start_date=start_date,
        end_date=end_date,
        date=date,
        start_time=start_time,
        end_time=end_time,
        now=now,
        interval_day=interval_day,
    )
    # The agent's row: its balance and its requests are decided one at a time (two requests for the
    # last hours never both get them). NO KEY: rows that only refer to the agent do not wait.
    Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk).first()
    _check_room_for_pending(agent)
    _check_no_overlap(ask)
    balance = balance_for_code(
        agent=agent, activity_code=ask.activity_code, today=now.astimezone(agent.zone).date()
    )
    _check_balance(balance, ask.minutes)

    request = TimeOffRequest.objects.create(
        agent=agent,
        kind=kind,
        activity_code=ask.activity_code,
        start_date=ask.days[0].date,
        end_date=ask.days[-1].date,
        start=ask.start,
        end=ask.end,
        minutes=ask.minutes,
        comment=comment,
        from_intervals=from_intervals,
        created_at=now,
    )
    request.keep_days(
        TimeOffDay.objects.bulk_create(
            [
                TimeOffDay(
                    request=request,
                    agent=agent,
                    organization_id=agent.organization_id,
                    date=day.date,
                    start=day.start,
                    end=day.end,
                    minutes=day.minutes,
                )
                for day in ask.days
            ]
        )
    )
    facts = _facts(ask, balance=balance, exclude_request=request.pk)
    verdict = approval_evaluate(facts=facts, now=now)
    if decide is not None:
        verdict = decide(facts, verdict)
    if _waitlists(verdict):
        _waitlist(request, verdict, now=now)
    else:
        decision_follow_verdict(lifecycle=TIME_OFF, decision=request, verdict=verdict)
    return request


def _waitlist(request: TimeOffRequest, verdict: Verdict, *, now: dt.datetime) -> None:
    request.substatus = TimeOffSubstatus.WAITLISTED
    request.waitlisted_at = now
    decision_set_reason(request, _waitlist_reason(verdict))
    request.save(update_fields=["substatus", "waitlisted_at", "status_reason", "status_reason_i18n"])


# --- the decision: the lifecycle every request type shares ----------------------------------------


def time_off_day_activities(
    *,
    kind: str,
    activity_code_id: int,
    date: dt.date,
    start: dt.datetime,
    end: dt.datetime,
    minutes: int,
    current: Sequence[ActivitySpec],
    zone: zoneinfo.ZoneInfo,
    day_start: Callable[[], dt.time],
) -> list[ActivitySpec] | None:
    """A day's activities (`current`, in order of start) with the time off in them; None: the day
    stays as it is. A whole day: its activities become one time-off activity over the span they
    took (a day is the agent's shift, not the 23 to 25 hours of the calendar: the neighbouring
    days' night shifts stay as they are); a day without activities (not published yet) gets it from
    the organisation's day start (`day_start`, asked only then) for the `minutes` it counts; a day
    off (0 minutes) stays as it is. Part of a day: [start, end) carved out of the day and filled
    with the time off. Shared by an approval and the sync, which lays approved time off over the
    days the WFM sends (issue 11, point 3)."""
    time_off = ActivitySpec(
        activity_code_id=activity_code_id, start=start, end=end, source=ActivitySource.TIME_OFF
    )
    if kind == TimeOffKind.PARTIAL_DAY:
        return sorted([*day_carve(current, start=start, end=end), time_off], key=lambda s: s.start)
    if current:
        first = min(spec.start for spec in current)
        last = min(max(spec.end for spec in current), first + MAX_ACTIVITY_LENGTH)
    elif minutes:
        first = local_datetime(date, day_start(), zone)
        last = first + dt.timedelta(minutes=minutes)
    else:
        return None
    return [time_off._replace(start=first, end=last)]


def _plan_for(request: TimeOffRequest, day: TimeOffDay, current: list[Activity]) -> DayPlan | None:
    """The day with the time off in it (see time_off_day_activities)."""
    activities = time_off_day_activities(
        kind=request.kind,
        activity_code_id=request.activity_code_id,
        date=day.date,
        start=day.start,
        end=day.end,
        minutes=day.minutes,
        current=activity_specs(sorted(current, key=lambda activity: activity.start)),
        zone=request.agent.zone,
        day_start=lambda: timeoff_settings_for(request.agent.organization).day_start,
    )
    if activities is None:
        return None
    return DayPlan(agent=request.agent, date=day.date, activities=activities)


def _apply(request: TimeOffRequest, actor: User | None) -> None:
    """Writes the time off into its days in the decision's transaction, as one change group (what
    a cancellation undoes). A day without a row yet gets one (not published): the time off is in it
    before the WFM publishes the day, and the sync lays it over what the WFM sends."""
    agent = request.agent
    days = list(request.days.all())  # in date order (TimeOffDay's); kept by the create, else read
    # The days first, then their activities read under that lock (as every schedule writer does; a
    # day without a row yet is created by the schedule service, which retries if one appears meanwhile).
    schedule_days_lock(keys=[(agent.pk, day.date) for day in days])
    current: dict[dt.date, list[Activity]] = defaultdict(list)
    for activity in (
        Activity.objects.of_agent(agent.pk)
        .filter(day__date__in=[day.date for day in days])
        .select_related("day")
    ):
        current[activity.day.date].append(activity)
    plans = [plan for day in days if (plan := _plan_for(request, day, current[day.date])) is not None]
    result = schedule_days_apply(
        plans=plans, source=ActivitySource.TIME_OFF, actor=actor, reason=f"time off request {request.pk}"
    )
    request.change_group = result.group


def _today(request: TimeOffRequest, now: dt.datetime) -> dt.date:
    return now.astimezone(request.agent.zone).date()


def _has_begun(request: TimeOffRequest, now: dt.datetime) -> bool:
    if request.kind == TimeOffKind.FULL_DAY:
        return request.start_date <= _today(request, now)
    return request.start <= now


def _check_approvable(request: TimeOffRequest, now: dt.datetime) -> None:
    """A supervisor's approval: the time off has not begun, and the balance (under the agent's
    lock, as at the request) still holds it. A full limit does not stop a supervisor: the admin
    shows what is left of it, and deciding past it is theirs to make."""
    if _has_begun(request, now):
        raise ApplicationError(
            "in_the_past",
            _("The time off has begun; the request can only be denied."),
            status_code=status.HTTP_409_CONFLICT,
        )
    Agent.objects.select_for_update(no_key=True).filter(pk=request.agent_id).first()
    _recount_whole_days(request)
    balance = balance_for_code(
        agent=request.agent, activity_code=request.activity_code, today=_today(request, now)
    )
    _check_balance(balance, request.minutes, status_code=status.HTTP_409_CONFLICT)


def _recount_whole_days(request: TimeOffRequest) -> list[TimeOffDay]:
    """The request's days, in order. A whole day counts what its schedule says when the request is
    approved, not when it was asked (the WFM may have published the day since, or changed it):
    the days' and the request's minutes follow, before the balance and the limits are asked. Part
    of a day counts its own span: nothing to recount. Under the agent's lock; the days are locked
    here (as _apply locks them again), so no sync rewrites them between this count and the write."""
    days = list(request.days.all())  # in date order (TimeOffDay's)
    if request.kind != TimeOffKind.FULL_DAY:
        return days
    schedule_days_lock(keys=[(request.agent_id, day.date) for day in days])
    counted = full_days(
        agent=request.agent,
        start_date=request.start_date,
        end_date=request.end_date,
        default_minutes=lambda: timeoff_settings_for(request.agent.organization).default_minutes(),
    )
    changed = []
    for day, now_counts in zip(days, counted, strict=True):
        if day.minutes != now_counts.minutes:
            day.minutes = now_counts.minutes
            changed.append(day)
    if changed:
        TimeOffDay.objects.bulk_update(changed, ["minutes"])
        request.minutes = sum(day.minutes for day in days)
        request.save(update_fields=["minutes"])
    return days


def _on_record(request: TimeOffRequest, status_value: str) -> None:
    if status_value != TimeOffStatus.PENDING:
        request.substatus = ""
        request.waitlisted_at = None


def _params(request: TimeOffRequest) -> dict:
    return {
        "request_id": request.pk,
        "start_date": request.start_date.isoformat(),
        "end_date": request.end_date.isoformat(),
    }


TIME_OFF: Lifecycle[TimeOffRequest] = Lifecycle(
    model=TimeOffRequest,
    approved_kind="time_off_approved",
    denied_kind="time_off_denied",
    apply=_apply,
    params=_params,
    applied_fields=("change_group", "substatus", "waitlisted_at"),
    check_approvable=_check_approvable,
    on_record=_on_record,
    related=("agent__organization", "activity_code"),
)


def time_off_request_approve(*, request_id: int, actor: User, reason: str = "") -> TimeOffRequest:
    return decision_approve(lifecycle=TIME_OFF, pk=request_id, actor=actor, reason=reason)


def time_off_request_deny(*, request_id: int, actor: User, reason: str = "") -> TimeOffRequest:
    return decision_deny(lifecycle=TIME_OFF, pk=request_id, actor=actor, reason=reason)


# --- cancelling ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotPutBack:
    """An activity the time off had replaced that its cancellation could not put back. `why`: as
    schedules.services.NotRestored's ("overlap": its time is taken now; "changed": changed or
    removed since; "wfm_copy": the WFM sent a newer copy of the day, which stands)."""

    date: dt.date
    activity_code: str
    start: dt.datetime
    end: dt.datetime
    why: str


@dataclass(frozen=True)
class Cancelled:
    request: TimeOffRequest
    not_restored: list[NotPutBack] = field(default_factory=list)


@transaction.atomic
def time_off_request_cancel(*, agent: Agent, request_id: int) -> Cancelled:
    """Pending: withdrawn. Approved and not begun (a whole day: from tomorrow on; part of a day: its
    start still ahead): cancelled, the schedule restored as it would be without the time off (the
    journal's before-state, or the WFM's newer copy of a day the sync rewrote meanwhile), its hours
    and its places in the limits free again (the waitlist moves up after commit), and the supervisor
    told (a notification, nothing to approve)."""
    now = timezone.now()
    request = time_off_request_get_for_agent(agent=agent, id=request_id, lock=True)
    if request is None:
        raise _not_found()
    if request.status == TimeOffStatus.PENDING:
        decision_withdraw(lifecycle=TIME_OFF, decision=request, by=agent.user)
        return Cancelled(request=request)
    if request.status != TimeOffStatus.APPROVED:
        raise ApplicationError(
            "not_cancellable",
            _("Only pending or approved time off can be cancelled (this is %(status)s).")
            % {"status": request.get_status_display()},
            status_code=status.HTTP_409_CONFLICT,
        )
    if _has_begun(request, now):
        raise ApplicationError(
            "cannot_cancel_past",
            _("Time off that has begun can no longer be cancelled."),
            status_code=status.HTTP_409_CONFLICT,
        )
    not_restored: list[NotPutBack] = []
    if request.change_group is not None:
        undo = schedule_change_group_undo(
            group=request.change_group,
            source=ActivitySource.TIME_OFF,
            actor=agent.user,
            reason=f"time off request {request.pk} cancelled",
            wfm_copy_wins=True,
        )
        not_restored = _not_put_back(undo.not_restored)
    request.status = TimeOffStatus.CANCELLED
    request.cancelled_at = now
    request.save(update_fields=["status", "cancelled_at"])
    supervisors = supervisors_to_tell(agent)
    if supervisors:
        notify(
            recipients=supervisors,
            kind="time_off_cancelled",
            params={**_params(request), "agent_name": agent.name},
        )
    dates = list(request.days.values_list("date", flat=True))
    organization_id = agent.organization_id
    transaction.on_commit(lambda: _advance_later(organization_id, dates), robust=True)
    return Cancelled(request=request, not_restored=not_restored)


def _not_put_back(lost: Sequence[NotRestored]) -> list[NotPutBack]:
    if not lost:
        return []
    codes = dict(
        ActivityCode.objects.filter(pk__in={item.activity["activity_code_id"] for item in lost}).values_list(
            "pk", "code"
        )
    )
    return [
        NotPutBack(
            date=item.date,
            activity_code=codes.get(item.activity["activity_code_id"], ""),  # a code deleted since
            start=dt.datetime.fromisoformat(item.activity["start"]),
            end=dt.datetime.fromisoformat(item.activity["end"]),
            why=item.why,
        )
        for item in sorted(lost, key=lambda item: item.activity["start"])
    ]


def _advance_later(organization_id: int, dates: Sequence[dt.date]) -> None:
    from timeoff.tasks import advance_waitlist  # the task module imports these services

    advance_waitlist.delay(organization_id, [date.isoformat() for date in dates])


# --- the waitlist and the lapse --------------------------------------------------------------------


def time_off_waitlist_advance(*, organization_id: int, dates: Iterable[dt.date] | None = None) -> int:
    """Decides the waitlisted requests of the organisation (on those dates, or all) again, first
    come first served: one whose limits have room now is approved (and the agent told); one that
    fails for another reason now leaves the waitlist as its rule says; one whose limit is still full
    keeps its place. Each in its own transaction. Safe to run twice. How many were approved."""
    waiting = TimeOffRequest.objects.filter(
        agent__organization_id=organization_id,
        status=TimeOffStatus.PENDING,
        substatus=TimeOffSubstatus.WAITLISTED,
    )
    if dates is not None:
        waiting = waiting.filter(days__date__in=list(dates))
    approved = 0
    # In the queue's order: each one waits only behind those ahead of it (see _facts' `behind`).
    queue = list(waiting.order_by("waitlisted_at", "id").values_list("pk", flat=True).distinct())
    # A day's limit found full for one in line stays full for everyone behind it whom it binds (the
    # organisation's: all; a team's: that team), since those ahead of them include that one. So it
    # is asked once per pass, not once per waiting request; and a place that frees while the pass
    # goes on is left to the pass its freeing queued, which starts at the head of the line, rather
    # than given to someone further back.
    limits_of: dict[int, set[tuple[dt.date, int | None]]] = defaultdict(set)
    for pk, date, team_id in TimeOffDay.objects.filter(request_id__in=queue, minutes__gt=0).values_list(
        "request_id", "date", "agent__team_id"
    ):
        limits_of[pk] |= {(date, None), (date, team_id)} if team_id is not None else {(date, None)}
    full: set[tuple[dt.date, int | None]] = set()
    for pk in queue:
        if limits_of[pk] & full:
            continue
        try:
            with transaction.atomic():
                request = decision_claim_pending(lifecycle=TIME_OFF, pk=pk)
                if request.substatus != TimeOffSubstatus.WAITLISTED or request.waitlisted_at is None:
                    continue
                now = timezone.now()
                if _has_begun(request, now):
                    continue  # the lapse denies it
                Agent.objects.select_for_update(no_key=True).filter(pk=request.agent_id).first()
                ask = Ask(
                    agent=request.agent,
                    kind=request.kind,
                    activity_code=request.activity_code,
                    days=[
                        RequestedDay(date=day.date, minutes=day.minutes, start=day.start, end=day.end)
                        for day in _recount_whole_days(request)
                    ],
                )
                balance = balance_for_code(
                    agent=request.agent, activity_code=request.activity_code, today=_today(request, now)
                )
                facts = _facts(
                    ask,
                    balance=balance,
                    exclude_request=request.pk,
                    behind=(request.waitlisted_at, request.pk),
                )
                uses = facts.limits() if facts.limits is not None else []
                verdict = approval_evaluate(
                    facts=replace(facts, limits=functools.partial(list, uses)), now=now
                )
                if _waitlists(verdict):
                    full |= {(use.date, use.team_id) for use in uses if use.full}
                    continue  # still full: it keeps its place
                request.substatus, request.waitlisted_at = "", None
                if verdict.action != RuleAction.AUTO_APPROVE:
                    request.save(update_fields=["substatus", "waitlisted_at"])
                decision_follow_verdict(lifecycle=TIME_OFF, decision=request, verdict=verdict)
                approved += verdict.action == RuleAction.AUTO_APPROVE
        except TimeOffRequest.DoesNotExist:
            continue  # gone meanwhile
        except ApplicationError as error:
            if error.code != "not_pending":  # not decided by someone else meanwhile: say why it stays
                logger.warning(
                    "waitlisted time-off request %s stays waitlisted: %s %s", pk, error.code, error
                )
            continue
    return approved


def time_off_requests_lapse(*, now: dt.datetime | None = None) -> int:
    """Pending requests (waitlisted ones too) whose time off began before anyone decided are
    denied with that reason, and the agent told."""
    now = now or timezone.now()
    # A whole day's start is its local midnight: it has begun once its day has.
    lapsed = TimeOffRequest.objects.filter(status=TimeOffStatus.PENDING, start__lte=now)
    return decisions_lapse(
        lifecycle=TIME_OFF,
        pending=list(lapsed.order_by("id").values_list("pk", flat=True)[:1000]),
        reason=Reason(gettext_noop("The time off began before a supervisor decided.")),
    )
