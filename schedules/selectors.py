"""Reads of schedules, always for one agent, with a fixed number of queries whatever the range.

An agent sees published days only, as in the reference app: a day the WFM has not published shows
as not published, without its activities or note."""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

from django.db.models import Exists, OuterRef, QuerySet

from em_agent.models import Agent
from schedules.models import Activity, ActivityCode, ScheduleDay, ScheduleRequest


class ActivityCodeView(TypedDict):
    code: str
    name: str
    category: str
    color: str


class ActivityView(TypedDict):
    id: int
    activity_code: ActivityCodeView
    start: str
    end: str
    note: str


class DayView(TypedDict):
    date: str
    published: bool
    note: str
    activities: list[ActivityView]


class CalendarDayView(TypedDict):
    date: str
    published: bool
    has_activities: bool


def _dates(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]


def schedule_days_for_agent(*, agent: Agent, start: dt.date, end: dt.date) -> list[DayView]:
    """Every date from start to end (inclusive), in two queries: the published days, and their
    activities with their codes. Times in the agent's zone, with its offset on that date."""
    zone = agent.zone
    days = {
        date: (published, note)
        for date, published, note in ScheduleDay.objects.filter(
            agent=agent, date__gte=start, date__lte=end, published=True
        )
        .order_by()
        .values_list("date", "published", "note")
    }
    activities: dict[dt.date, list[ActivityView]] = {}
    # An activity belongs to the local day it starts on: bounding `start` as well lets the
    # (agent, start) index find the range instead of reading every activity of the agent. A day's
    # margin either side, so a midnight that a DST change skips cannot cut a day short (the dates
    # decide which activities belong).
    first_instant = dt.datetime.combine(start - dt.timedelta(days=1), dt.time(), tzinfo=zone)
    after_last_instant = dt.datetime.combine(end + dt.timedelta(days=2), dt.time(), tzinfo=zone)
    rows = (
        Activity.objects.of_agent(agent.pk)
        .filter(
            start__gte=first_instant,
            start__lt=after_last_instant,
            day__date__gte=start,
            day__date__lte=end,
            day__published=True,
        )
        .order_by("start")
        .values_list(
            "id",
            "day__date",
            "start",
            "end",
            "note",
            "activity_code__code",
            "activity_code__name",
            "activity_code__category",
            "activity_code__color",
        )
    )
    for pk, date, begins, ends, note, code, name, category, color in rows:
        activities.setdefault(date, []).append(
            {
                "id": pk,
                "activity_code": {"code": code, "name": name, "category": category, "color": color},
                "start": begins.astimezone(zone).isoformat(timespec="seconds"),
                "end": ends.astimezone(zone).isoformat(timespec="seconds"),
                "note": note,
            }
        )
    result: list[DayView] = []
    for date in _dates(start, end):
        published, note = days.get(date, (False, ""))
        result.append(
            {
                "date": date.isoformat(),
                "published": published,
                "note": note,
                "activities": activities.get(date, []),
            }
        )
    return result


def schedule_calendar_for_agent(*, agent: Agent, month: dt.date) -> list[CalendarDayView]:
    """The month's days with the green dot (published) and whether anything is scheduled: one query."""
    first = month.replace(day=1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    rows = {
        date: has_activities
        for date, has_activities in ScheduleDay.objects.filter(
            agent=agent, date__gte=first, date__lte=last, published=True
        )
        .annotate(has_activities=Exists(Activity.objects.filter(day=OuterRef("pk"))))
        .values_list("date", "has_activities")
    }
    return [
        {"date": date.isoformat(), "published": date in rows, "has_activities": rows.get(date, False)}
        for date in _dates(first, last)
    ]


def activity_codes_for_agent(*, agent: Agent, usage: str | None) -> QuerySet[ActivityCode]:
    codes = ActivityCode.objects.filter(organization_id=agent.organization_id, active=True)
    if usage == "schedule":
        codes = codes.filter(open_for_requests=True)
    elif usage == "time_off":
        codes = codes.filter(open_for_time_off=True)
    elif usage == "absence":
        codes = codes.filter(open_for_absence=True)
    return codes.order_by("code")


def activity_get_for_agent(*, agent: Agent, id: int, lock: bool = False) -> Activity | None:
    """The agent's own activity on a published day, or None: another agent's, or one the agent
    cannot see yet, is as good as missing."""
    activities = Activity.objects.select_related("day", "activity_code").filter(day__published=True)
    if lock:
        activities = activities.select_for_update(of=("self",))
    return activities.filter(agent=agent, pk=id).first()


def schedule_request_list_for_agent(
    *, agent: Agent, statuses: list[str] | None = None
) -> QuerySet[ScheduleRequest]:
    requests = ScheduleRequest.objects.filter(agent=agent).select_related("activity_code")
    if statuses:
        requests = requests.filter(status__in=statuses)
    return requests


def schedule_request_get_for_agent(*, agent: Agent, id: int, lock: bool = False) -> ScheduleRequest | None:
    requests = ScheduleRequest.objects.filter(agent=agent, pk=id).select_related("activity_code")
    if lock:
        requests = requests.select_for_update(of=("self",))
    return requests.first()
