"""The days a time-off request covers and the hours each one counts (issue 11, point 1).

- A whole day counts the scheduled paid hours of that day from the published schedule (activities
  belong to the day they start on, as in the WFM's export); a published day off counts 0; a day the
  WFM has not published counts the organisation's default for that weekday. Its span is the whole
  local day (23, 24 or 25 hours): approved, it replaces everything scheduled that day.
- A part of a day is a span of wall-clock times on a published day, counted as the time the clock
  really runs (a span across a DST change counts one hour less or more than its wall times say).
Reads one query whatever the number of days; writes nothing (the preview uses it as is)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db.models import DurationField, ExpressionWrapper, F, Q, Sum
from django.utils.translation import gettext as _

from em_agent.exceptions import ApplicationError
from em_agent.localtime import NonexistentLocalTime, local_datetime, local_day_bounds
from em_agent.models import Agent
from schedules.models import ScheduleDay

MAX_DAYS = 31
PARTIAL_MIN = dt.timedelta(hours=1)
PARTIAL_MAX = dt.timedelta(hours=8)


@dataclass(frozen=True)
class RequestedDay:
    date: dt.date
    minutes: int  # what the day counts against the balance
    start: dt.datetime  # the span the time off takes (UTC instants)
    end: dt.datetime


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("validation_error", _("The input is not valid."), fields={field: [message]})


def _dates(start_date: dt.date, end_date: dt.date) -> list[dt.date]:
    return [start_date + dt.timedelta(days=offset) for offset in range((end_date - start_date).days + 1)]


def full_days(
    *, agent: Agent, start_date: dt.date, end_date: dt.date, default_minutes: Callable[[], Sequence[int]]
) -> list[RequestedDay]:
    """The consecutive local days from start_date to end_date (inclusive, at most 31).
    `default_minutes`: the organisation's minutes for a day not published, Monday first (asked only
    when a day is not published)."""
    if end_date < start_date:
        raise _invalid("end_date", _("The end date is before the start date."))
    dates = _dates(start_date, end_date)
    if len(dates) > MAX_DAYS:
        raise _invalid("end_date", _("A request spans at most %(days)d days.") % {"days": MAX_DAYS})
    # Each day's published flag and paid time in one aggregate, not a query per day.
    paid_time = ExpressionWrapper(F("activities__end") - F("activities__start"), output_field=DurationField())
    published: dict[dt.date, dt.timedelta | None] = {
        date: paid
        for date, paid in ScheduleDay.objects.filter(agent=agent, date__in=dates, published=True)
        .annotate(paid=Sum(paid_time, filter=Q(activities__activity_code__paid=True)))
        .values_list("date", "paid")
    }
    defaults: Sequence[int] | None = None
    days = []
    for date in dates:
        begin, end = local_day_bounds(date, agent.zone)
        if date in published:
            paid = published[date]
            minutes = int(paid.total_seconds() // 60) if paid is not None else 0
        else:
            defaults = defaults if defaults is not None else default_minutes()
            minutes = defaults[date.weekday()]
        days.append(RequestedDay(date=date, minutes=minutes, start=begin, end=end))
    return days


def partial_day(*, agent: Agent, date: dt.date, start_time: dt.time, end_time: dt.time) -> RequestedDay:
    """Wall-clock times on one published local day, 1 to 8 hours of real time."""
    if not ScheduleDay.objects.filter(agent=agent, date=date, published=True).exists():
        raise ApplicationError(
            "partial_day_needs_published_schedule",
            _("Part of a day can only be requested on a day whose schedule is published."),
            fields={"date": [_("This day's schedule is not published yet.")]},
        )
    if end_time <= start_time:
        raise _invalid("end_time", _("The end must be after the start, on the same day."))
    instants = []
    for field, time in (("start_time", start_time), ("end_time", end_time)):
        try:
            # In the hour the clocks repeat, the first occurrence: what a person reading a clock means.
            # In UTC: Python subtracts two times of one zone by their wall clocks, DST or not.
            instants.append(local_datetime(date, time, agent.zone).astimezone(dt.UTC))
        except NonexistentLocalTime:
            raise _invalid(field, _("This time does not exist on that day: the clocks go forward.")) from None
    start, end = instants
    if not PARTIAL_MIN <= end - start <= PARTIAL_MAX:
        raise ApplicationError(
            "duration_out_of_range",
            _("Part of a day is 1 to 8 hours; this is %(minutes)d minutes.")
            % {"minutes": (end - start).total_seconds() // 60},
            fields={"end_time": [_("Between 1 and 8 hours after the start.")]},
        )
    return RequestedDay(date=date, minutes=int((end - start).total_seconds() // 60), start=start, end=end)
