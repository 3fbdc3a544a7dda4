"""Schedule change requests: an agent asks to add, edit or cancel one activity of a published future
day; the approval engine decides at once or leaves it to a supervisor; an approved request changes
the schedule through `schedule_days_apply` in the same transaction."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from rest_framework import status

from em_agent.exceptions import ApplicationError
from em_agent.models import Agent, User
from em_agent.policies import wfm_policy
from schedules.approval import (
    DateRange,
    Reason,
    RequestFacts,
    Verdict,
    approval_evaluate_strictest,
    same_day_counter,
)
from schedules.decisions import (
    Lifecycle,
    decision_approve,
    decision_deny,
    decision_follow_verdict,
    decision_withdraw,
    decisions_lapse,
)
from schedules.models import (
    Activity,
    ActivityCode,
    ActivitySource,
    ApprovalRule,
    RequestAction,
    RequestStatus,
    RequestType,
    RuleAction,
    ScheduleDay,
    ScheduleRequest,
)
from schedules.selectors import activity_get_for_agent, schedule_request_get_for_agent
from schedules.services import (
    MAX_ACTIVITY_LENGTH,
    ActivitySpec,
    DayPlan,
    activity_specs,
    schedule_day_lock,
    schedule_days_apply,
    validate_day_plan,
)

MAX_PENDING_PER_AGENT = 20


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("validation_error", _("The input is not valid."), fields={field: [message]})


def _not_found() -> ApplicationError:
    return ApplicationError("not_found", _("Not found."), status_code=status.HTTP_404_NOT_FOUND)


def _requestable_code(*, agent: Agent, code: str) -> ActivityCode:
    activity_code = ActivityCode.objects.filter(
        organization_id=agent.organization_id, code=code, active=True, open_for_requests=True
    ).first()
    if activity_code is None:
        raise _invalid("activity_code", _("This activity code cannot be requested."))
    return activity_code


def _check_times(*, agent: Agent, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> dt.date:
    if end <= start:
        raise _invalid("end", _("The end must be after the start."))
    if end - start > MAX_ACTIVITY_LENGTH:
        raise _invalid("end", _("An activity cannot last longer than 24 hours."))
    if start <= now:
        raise ApplicationError(
            "in_the_past",
            _("Only future times can be requested."),
            fields={"start": [_("This time has passed.")]},
        )
    return start.astimezone(agent.zone).date()


def _published_day(*, agent: Agent, date: dt.date) -> ScheduleDay:
    day = ScheduleDay.objects.filter(agent=agent, date=date, published=True).first()
    if day is None:
        raise ApplicationError(
            "day_not_published",
            _("Changes can only be requested for a day whose schedule is published."),
            status_code=status.HTTP_409_CONFLICT,
        )
    return day


def _plan_for(request: ScheduleRequest) -> DayPlan:
    """The request's day as it would become, from the day as it is now."""
    specs = activity_specs(
        Activity.objects.of_agent(request.agent_id).filter(day__date=request.date).order_by("start")
    )
    if request.action in (RequestAction.EDIT, RequestAction.CANCEL):
        if request.activity_id is None or request.activity_id not in {spec.id for spec in specs}:
            raise ApplicationError(
                "schedule_changed",
                _("The activity this request changes is no longer on the schedule."),
                status_code=status.HTTP_409_CONFLICT,
            )
        replaced = next(spec for spec in specs if spec.id == request.activity_id)
        specs = [spec for spec in specs if spec.id != request.activity_id]
    if request.action in (RequestAction.ADD, RequestAction.EDIT):
        if request.activity_code_id is None or request.start is None or request.end is None:
            raise ValueError(f"{request.action} request {request.pk} without code or times")
        specs.append(
            ActivitySpec(
                activity_code_id=request.activity_code_id,
                start=request.start,
                end=request.end,
                # The comment is the agent's word to the supervisor, not the activity's note: an edit
                # keeps the note the WFM gave the activity.
                note=replaced.note if request.action == RequestAction.EDIT else "",
                source=ActivitySource.REQUEST,
                # An edited activity keeps its identity (a swap or a time-off request may point at it).
                id=request.activity_id if request.action == RequestAction.EDIT else None,
            )
        )
    return DayPlan(agent=request.agent, date=request.date, activities=specs)


def _same_day_requests(request: ScheduleRequest):
    def requests(rule: ApprovalRule) -> QuerySet[ScheduleRequest]:
        """Requests within the rule's reach that day: of its activity code, when it has one."""
        same_day = ScheduleRequest.objects.filter(
            agent__organization_id=request.agent.organization_id,
            date=request.date,
            status__in=[RequestStatus.PENDING, RequestStatus.APPROVED],
        ).exclude(pk=request.pk)
        if rule.activity_code_id is not None:
            same_day = same_day.filter(
                Q(activity_code_id=rule.activity_code_id)
                | Q(activity__activity_code_id=rule.activity_code_id)
            )
        return same_day

    return requests


@transaction.atomic
def schedule_request_create(
    *,
    agent: Agent,
    action: str,
    activity_code: str | None = None,
    activity_id: int | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    comment: str = "",
) -> ScheduleRequest:
    now = timezone.now()
    if not wfm_policy(agent.organization).schedule_requests:
        raise ApplicationError(
            "not_available_for_wfm_system",
            _("Your organisation's workforce management system does not take schedule change requests."),
            status_code=status.HTTP_409_CONFLICT,
        )
    # One agent's pending requests are bounded: the queue is a supervisor's, not a free-for-all.
    # NO KEY: a lock that rows referring to the agent (new activities, notifications) do not wait for.
    Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk).first()
    pending = ScheduleRequest.objects.filter(agent=agent, status=RequestStatus.PENDING).count()
    if pending >= MAX_PENDING_PER_AGENT:
        raise ApplicationError(
            "too_many_pending_requests",
            _("You have %(count)d requests waiting for a decision; withdraw one first.") % {"count": pending},
            status_code=status.HTTP_409_CONFLICT,
        )

    request = ScheduleRequest(agent=agent, action=action, comment=comment, created_at=now)
    if action in (RequestAction.EDIT, RequestAction.CANCEL):
        if activity_id is None:
            raise _invalid("activity_id", _("This field is required."))
        activity = activity_get_for_agent(agent=agent, id=activity_id)
        if activity is None:
            raise _not_found()
        if activity.start <= now:
            raise ApplicationError(
                "in_the_past",
                _("An activity that has started can no longer be changed."),
                fields={"activity_id": [_("This activity has started.")]},
            )
        if ScheduleRequest.objects.filter(
            agent=agent, activity=activity, status=RequestStatus.PENDING
        ).exists():
            raise ApplicationError(
                "request_pending",
                _("A request to change this activity is already waiting for a decision."),
                status_code=status.HTTP_409_CONFLICT,
            )
        request.activity, request.activity_ref = activity, activity.pk
        request.date = activity.day.date
    if action in (RequestAction.ADD, RequestAction.EDIT):
        if activity_code is None:
            raise _invalid("activity_code", _("This field is required."))
        if start is None or end is None:
            raise _invalid("start" if start is None else "end", _("This field is required."))
        request.activity_code = _requestable_code(agent=agent, code=activity_code)
        date = _check_times(agent=agent, start=start, end=end, now=now)
        if action == RequestAction.EDIT and date != request.date:
            raise _invalid("start", _("An activity cannot be moved to another day."))
        request.date = date
        request.start, request.end = start, end
    _published_day(agent=agent, date=request.date)
    # Refuse now what could never be approved (an overlap), rather than after a supervisor's look.
    validate_day_plan(_plan_for(request))
    request.save()

    decision_follow_verdict(
        lifecycle=SCHEDULE_REQUESTS, decision=request, verdict=_verdict_for(request, now=now)
    )
    return request


def _verdict_for(request: ScheduleRequest, *, now: dt.datetime) -> Verdict:
    """The rules of every activity code the request touches: the requested one (add, edit) and the
    one it replaces (edit, cancel), the strictest winning."""
    activity = request.activity
    # The lead time counts to the first moment the schedule would differ.
    starts = [t for t in (request.start, activity.start if activity else None) if t is not None]
    code_ids = {c for c in (request.activity_code_id, activity.activity_code_id if activity else None) if c}
    verdict = approval_evaluate_strictest(
        facts=RequestFacts(
            organization=request.agent.organization,
            request_type=RequestType.SCHEDULE,
            dates=DateRange.one(request.date),
            starts_at=min(starts),
            same_day_count=same_day_counter(
                request_type=RequestType.SCHEDULE,
                organization_id=request.agent.organization_id,
                date=request.date,
                requests=_same_day_requests(request),
            ),
        ),
        activity_code_ids=sorted(code_ids),
        now=now,
    )
    if (
        verdict.action == RuleAction.AUTO_APPROVE
        and activity is not None
        and activity.source != ActivitySource.REQUEST
    ):
        # What the WFM (or a supervisor) planned is changed only by a supervisor; an agent may
        # freely undo what its own approved requests added.
        return Verdict(
            RuleAction.MANUAL,
            verdict.rule,
            Reason(gettext_noop("Changes to activities planned for you need a supervisor.")),
        )
    return verdict


def _apply(request: ScheduleRequest, actor: User | None) -> None:
    # The day first, then its activities read under that lock: every schedule writer takes the day's
    # lock before anything else, so what another writer adds meanwhile is in the plan, not lost.
    schedule_day_lock(agent=request.agent, date=request.date)
    result = schedule_days_apply(
        plans=[_plan_for(request)],
        source=ActivitySource.REQUEST,
        actor=actor,
        reason=f"schedule request {request.pk}",
    )
    request.change = result.changes[0] if result.changes else None


def _still_approvable(request: ScheduleRequest, now: dt.datetime) -> None:
    """What was true when the agent asked must still be: a future time, a published day."""
    starts = [t for t in (request.start, request.activity.start if request.activity else None) if t]
    if starts and min(starts) <= now:
        raise ApplicationError(
            "in_the_past",
            _("The requested time has passed; the request can only be denied."),
            status_code=status.HTTP_409_CONFLICT,
        )
    _published_day(agent=request.agent, date=request.date)


def _params(request: ScheduleRequest) -> dict:
    return {"request_id": request.pk, "date": request.date.isoformat()}


SCHEDULE_REQUESTS: Lifecycle[ScheduleRequest] = Lifecycle(
    model=ScheduleRequest,
    approved_kind="schedule_request_approved",
    denied_kind="schedule_request_denied",
    apply=_apply,
    params=_params,
    applied_fields=("change",),
    check_approvable=_still_approvable,
)


def schedule_request_approve(*, request_id: int, actor: User, reason: str = "") -> ScheduleRequest:
    """A supervisor's approval: the change is applied in this transaction, or nothing is. What was
    true when the agent asked must still be: a future time, a published day."""
    return decision_approve(lifecycle=SCHEDULE_REQUESTS, pk=request_id, actor=actor, reason=reason)


def schedule_request_deny(*, request_id: int, actor: User, reason: str = "") -> ScheduleRequest:
    return decision_deny(lifecycle=SCHEDULE_REQUESTS, pk=request_id, actor=actor, reason=reason)


@transaction.atomic
def schedule_request_withdraw(*, agent: Agent, request_id: int) -> None:
    request = schedule_request_get_for_agent(agent=agent, id=request_id, lock=True)
    if request is None:
        raise _not_found()
    decision_withdraw(lifecycle=SCHEDULE_REQUESTS, decision=request, by=agent.user)


def schedule_requests_lapse(*, now: dt.datetime | None = None) -> int:
    """Pending requests whose time came before anyone decided are denied, with that reason, and the
    agent is told: a request cannot wait in the queue for ever."""
    now = now or timezone.now()
    lapsed = ScheduleRequest.objects.filter(status=RequestStatus.PENDING).filter(
        Q(start__lte=now) | Q(activity__start__lte=now) | Q(start__isnull=True, activity__isnull=True)
    )
    return decisions_lapse(
        lifecycle=SCHEDULE_REQUESTS,
        pending=list(lapsed.values_list("pk", flat=True)[:1000]),
        reason=Reason(gettext_noop("The requested time passed before a supervisor decided.")),
    )
