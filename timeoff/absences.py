"""Absence requests of IEX WFM Integrated organisations (the product's help text, "Afwezigheid aanvragen
in IEX WFM Integrated"): one day, whole or part of it, up to the organisation's horizon; no approval
here, the agent's supervisor is emailed at once and the WFM's next export carries the result."""

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from em_agent.exceptions import ApplicationError
from em_agent.localtime import NonexistentLocalTime, local_datetime
from em_agent.messages import day_text
from em_agent.models import Agent
from em_agent.policies import wfm_feature_require
from notifications.services import notify
from schedules.models import ActivityCode
from timeoff.models import AbsenceRequest
from timeoff.selectors import supervisors_to_tell

logger = logging.getLogger(__name__)


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("validation_error", _("The input is not valid."), fields={field: [message]})


def _exception_code(*, agent: Agent, code: str) -> ActivityCode:
    exception_code = ActivityCode.objects.filter(
        organization_id=agent.organization_id, code=code, active=True, open_for_absence=True
    ).first()
    if exception_code is None:
        raise _invalid("exception_code", _("This is not an exception code you can request."))
    return exception_code


def _instant(*, agent: Agent, date: dt.date, time: dt.time, field: str) -> dt.datetime:
    try:
        # In the hour the clocks repeat, the first occurrence: what a person reading a clock means.
        return local_datetime(date, time, agent.zone)
    except NonexistentLocalTime:
        raise _invalid(field, _("This time does not exist on that day: the clocks go forward.")) from None


def _span(
    *, agent: Agent, date: dt.date, full_day: bool, start_time: dt.time | None, end_time: dt.time | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The partial absence's instants, or (None, None) for a whole day."""
    if full_day:
        return None, None
    if start_time is None or end_time is None:
        field = "start_time" if start_time is None else "end_time"
        raise _invalid(field, _("A partial-day absence needs a start and an end time."))
    if end_time <= start_time:
        raise _invalid("end_time", _("The end must be after the start, on the same day."))
    return (
        _instant(agent=agent, date=date, time=start_time, field="start_time"),
        _instant(agent=agent, date=date, time=end_time, field="end_time"),
    )


def _check_window(*, agent: Agent, date: dt.date, start: dt.datetime | None, now: dt.datetime) -> None:
    today = now.astimezone(agent.zone).date()
    # A whole day may be today (an agent who falls ill in the morning); a part of a day only from now on.
    if date < today or (start is not None and start <= now):
        raise ApplicationError(
            "in_the_past",
            _("An absence can only be requested from now on."),
            fields={"start_time" if start is not None and date == today else "date": [_("This has passed.")]},
        )
    horizon = agent.organization.absence_horizon_days
    if date > today + dt.timedelta(days=horizon):
        raise ApplicationError(
            "beyond_horizon",
            _("An absence can be requested at most %(days)d days ahead.") % {"days": horizon},
            fields={
                "date": [
                    _("The last day you can request is %(date)s.")
                    % {"date": day_text(today + dt.timedelta(days=horizon))}
                ]
            },
        )


def _check_overlap(
    *, agent: Agent, date: dt.date, start: dt.datetime | None, end: dt.datetime | None
) -> None:
    same_day = AbsenceRequest.objects.filter(agent=agent, date=date)
    if start is not None and end is not None:
        # Another partial absence overlaps when it begins before this one ends and ends after it begins.
        same_day = same_day.filter(Q(full_day=True) | Q(start__lt=end, end__gt=start))
    if same_day.exists():
        raise ApplicationError(
            "overlaps_existing_request",
            _("You already requested an absence for this time."),
            fields={"date": [_("This overlaps an absence you requested earlier.")]},
        )


def _notify_supervisors(request: AbsenceRequest) -> None:
    agent = request.agent
    supervisors = supervisors_to_tell(agent)
    if not supervisors:
        logger.warning(
            "absence %s of agent %s: the organisation has no supervisor to tell", request.pk, agent.pk
        )
        return
    params: dict = {
        "absence_id": request.pk,
        "agent_name": agent.name,
        "date": request.date,
        "exception": f"{request.exception_code.name} ({request.exception_code.code})",
    }
    if request.comment:
        params["comment"] = request.comment
    if request.full_day:
        notify(recipients=supervisors, kind="absence_requested_full_day", params=params)
        return
    start, end = request.start, request.end
    if start is None or end is None:  # the model's constraint: a partial absence has both
        raise ValueError(f"absence {request.pk} has no times")
    notify(
        recipients=supervisors,
        kind="absence_requested",
        params={
            **params,
            "start_time": f"{start.astimezone(agent.zone):%H:%M}",
            "end_time": f"{end.astimezone(agent.zone):%H:%M}",
            "timezone": agent.timezone,
        },
    )


@transaction.atomic
def absence_request_create(
    *,
    agent: Agent,
    date: dt.date,
    exception_code: str,
    full_day: bool = False,
    start_time: dt.time | None = None,
    end_time: dt.time | None = None,
    comment: str = "",
) -> AbsenceRequest:
    now = timezone.now()
    wfm_feature_require(organization=agent.organization, feature="absence_requests")
    code = _exception_code(agent=agent, code=exception_code)
    start, end = _span(agent=agent, date=date, full_day=full_day, start_time=start_time, end_time=end_time)
    _check_window(agent=agent, date=date, start=start, now=now)
    # One agent's requests are checked for overlap one at a time: two taps at once must not both pass.
    # NO KEY: a lock that rows referring to the agent (notifications, activities) do not wait for.
    Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk).first()
    _check_overlap(agent=agent, date=date, start=start, end=end)
    request = AbsenceRequest.objects.create(
        agent=agent,
        date=date,
        exception_code=code,
        full_day=full_day,
        start=start,
        end=end,
        comment=comment,
        created_at=now,
    )
    _notify_supervisors(request)
    return request
