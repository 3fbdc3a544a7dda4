"""Approved time off laid over the days the sync writes (issue 11, point 3): approved time off is part
of the schedule whatever the WFM sends later. A day the WFM sends that approved time off covers gets
the time off laid over it as an approval would (timeoff.services.time_off_day_activities: a whole
day's activities become the time-off activity over their span, part of a day is carved out), and a
whole day counts what the new day counts (its paid time when published, the organisation's default
for its weekday when not), so the balance follows. A day whose WFM copy already carries that time-off
activity at those times stays as the WFM sent it, counted as before.

The WFM's copy and the overlay are separate journal rows: the day as the WFM sent it (the sync's),
then each request's time off over it (time off's), each in its request's change group, which no
longer holds the group's older rows of that day. So cancelling the time off later gives the day back
as the WFM sent it, not as it was before the approval. The agent hears of the day once, when what it
sees changed.

Set based: a few statements per batch of days whatever its size, none at all for a batch without
approved time off beyond the one that looks for it."""

from __future__ import annotations

import datetime as dt
import operator
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import NamedTuple

from django.db.models import OuterRef, Q, Subquery, Sum

from em_agent.models import Organization
from schedules.diff import ActivitySpec, DayPlan
from schedules.models import Activity, ActivityCode, ActivitySource, ScheduleChange, ScheduleDay
from schedules.services import ApplyResult, schedule_days_apply
from timeoff.models import TimeOffDay, TimeOffKind, TimeOffRequest, TimeOffStatus, timeoff_settings_for
from timeoff.services import time_off_day_activities

Key = tuple[int, dt.date]  # (agent id, date)


def time_off_requests_lock(*, keys: Sequence[Key]) -> list[int]:
    """The approved time-off requests with a day among `keys`, locked (in id order) until the
    transaction ends. Before the days' locks, in the order timeoff.services takes them: a
    cancellation at the same moment either goes first (and the sync sees the request cancelled) or
    waits for the sync and undoes the time off as laid over the new day."""
    if not keys:
        return []
    days = TimeOffDay.objects.filter(
        agent_id__in={agent_id for agent_id, _date in keys}, date__in={date for _agent_id, date in keys}
    ).values("request_id")
    return list(
        TimeOffRequest.objects.select_for_update()
        .filter(pk__in=days, status=TimeOffStatus.APPROVED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


class _Held(NamedTuple):
    """An approved request's day among the days written."""

    id: int  # the TimeOffDay's
    request_id: int
    kind: str
    activity_code_id: int
    start: dt.datetime
    end: dt.datetime
    minutes: int
    group: uuid.UUID | None


@dataclass
class Overlaid:
    result: ApplyResult  # days_written and notified_days over all the writes
    laid: int  # days the time off was laid over
    recounted: int  # time-off days whose minutes changed


def _paid_minutes(activities: Sequence[ActivitySpec], paid: set[int]) -> int:
    seconds = sum(
        (spec.end - spec.start).total_seconds() for spec in activities if spec.activity_code_id in paid
    )
    return int(seconds // 60)


def _carries(activities: Sequence[ActivitySpec], activity_code_id: int, span: ActivitySpec) -> bool:
    """The WFM's day has activities of the time-off code that cover the span without a gap."""
    covered = span.start
    for spec in sorted(activities, key=lambda spec: spec.start):
        if spec.activity_code_id != activity_code_id or spec.end <= covered:
            continue
        if spec.start > covered:
            return False
        covered = spec.end
        if covered >= span.end:
            return True
    return covered >= span.end


def _content(published: bool, note: str, activities, *, with_source: bool) -> tuple:
    return (
        published,
        note,
        sorted(
            (a[0].astimezone(dt.UTC), a[1].astimezone(dt.UTC), a[2], a[3], a[4] if with_source else "")
            for a in activities
        ),
    )


def schedule_days_apply_over_time_off(
    *, plans: Sequence[DayPlan], request_ids: Sequence[int], reason: str
) -> Overlaid:
    """The WFM's `plans` written through the schedule service with the approved time off of
    `request_ids` (locked by time_off_requests_lock, as are the days) laid over them."""
    keys = {(plan.agent.pk, plan.date) for plan in plans}
    held: dict[Key, list[_Held]] = defaultdict(list)
    for (
        day_id,
        agent_id,
        date,
        request_id,
        kind,
        code_id,
        start,
        end,
        minutes,
        group,
    ) in TimeOffDay.objects.filter(request_id__in=list(request_ids)).values_list(
        "id",
        "agent_id",
        "date",
        "request_id",
        "request__kind",
        "request__activity_code_id",
        "start",
        "end",
        "minutes",
        "request__change_group",
    ):
        if (agent_id, date) in keys:
            held[(agent_id, date)].append(
                _Held(day_id, request_id, kind, code_id, start, end, minutes, group)
            )
    if not held:
        result = schedule_days_apply(plans=plans, source=ActivitySource.WFM, reason=reason)
        return Overlaid(result=result, laid=0, recounted=0)

    organization = Organization.objects.get(pk=plans[0].agent.organization_id)
    settings = timeoff_settings_for(organization)
    default_minutes = settings.default_minutes()
    paid = set(ActivityCode.objects.filter(organization=organization, paid=True).values_list("pk", flat=True))

    plain: list[DayPlan] = []  # as the WFM sent them, nothing laid over them
    copies: list[DayPlan] = []  # the WFM's copies of the days the time off is laid over
    overlays: list[DayPlan] = []  # the days as they end up, in the order of `copies`
    # Each request's part of a day is laid in a write of its own, the day's first request's in the
    # first, its second's (another part of the day) in the second: each journal row then belongs
    # to one request's change group, and cancelling one request takes out only its own part.
    stages: list[list[tuple[DayPlan, _Held]]] = []
    last_stage: dict[Key, int] = {}
    recount: dict[int, int] = {}  # TimeOffDay id: the minutes it counts now
    recounted_requests: set[int] = set()
    for plan in plans:
        key = (plan.agent.pk, plan.date)
        if key not in held:
            plain.append(plan)
            continue
        sent = sorted(plan.activities, key=lambda spec: spec.start)
        activities = sent
        laid: list[tuple[DayPlan, _Held]] = []
        for day in sorted(held[key], key=lambda day: day.start):
            minutes = day.minutes
            if day.kind == TimeOffKind.FULL_DAY:
                minutes = (
                    _paid_minutes(sent, paid) if plan.published else default_minutes[plan.date.weekday()]
                )
            with_time_off = time_off_day_activities(
                kind=day.kind,
                activity_code_id=day.activity_code_id,
                date=plan.date,
                start=day.start,
                end=day.end,
                minutes=minutes,
                current=activities,
                zone=plan.agent.zone,
                day_start=lambda: settings.day_start,
            )
            if with_time_off is not None:
                span = next(
                    spec
                    for spec in with_time_off
                    if spec.source == ActivitySource.TIME_OFF
                    and spec.activity_code_id == day.activity_code_id
                )
                if _carries(sent, day.activity_code_id, span):
                    minutes = day.minutes  # the WFM counted it in: left as it was
                else:
                    activities = with_time_off
                    laid.append((DayPlan(agent=plan.agent, date=plan.date, activities=activities), day))
            if minutes != day.minutes:
                recount[day.id] = minutes
                recounted_requests.add(day.request_id)
        if not laid:
            plain.append(plan)
            continue
        copies.append(plan)
        overlays.append(laid[-1][0])
        for index, step in enumerate(laid):
            if index == len(stages):
                stages.append([])
            stages[index].append(step)
        last_stage[key] = len(laid) - 1

    result = schedule_days_apply(plans=plain, source=ActivitySource.WFM, reason=reason)
    told, changed = _told(copies, overlays)
    # The day as the WFM sent it, journalled (what a cancellation gives back), told of below if at all.
    schedule_days_apply(plans=copies, source=ActivitySource.WFM, reason=reason, notify=False)
    for number, stage in enumerate(stages):
        groups = {(plan.agent.pk, plan.date): (day.request_id, day.group) for plan, day in stage}
        for notify in (True, False):
            # Told with the day's last write, the one that gives it its final look.
            subset = [
                plan
                for plan, _day in stage
                if ((plan.agent.pk, plan.date) in told and last_stage[(plan.agent.pk, plan.date)] == number)
                is notify
            ]
            applied = schedule_days_apply(
                plans=subset,
                source=ActivitySource.TIME_OFF,
                reason=f"{reason}: approved time off laid over the WFM's copy",
                notify=notify,
            )
            result.notified_days += applied.notified_days
            _regroup(applied.changes, groups)
    result.days_written += len(changed)
    if recount:
        TimeOffDay.objects.bulk_update(
            [TimeOffDay(pk=pk, minutes=minutes) for pk, minutes in recount.items()], ["minutes"]
        )
        TimeOffRequest.objects.filter(pk__in=recounted_requests).update(
            minutes=Subquery(
                TimeOffDay.objects.filter(request_id=OuterRef("pk"))
                .values("request_id")
                .annotate(total=Sum("minutes"))
                .values("total")
            )
        )
    return Overlaid(result=result, laid=len(overlays), recounted=len(recount))


def _told(copies: Sequence[DayPlan], overlays: Sequence[DayPlan]) -> tuple[set[Key], set[Key]]:
    """Against the days as they are before the sync writes them (read under their locks): the
    overlaid days the agent is told of (it sees them change, and they were published: a day the WFM
    publishes for the first time is news in the calendar, not an adjustment), and those that change
    at all."""
    keys = {(plan.agent.pk, plan.date) for plan in overlays}
    agent_ids, dates = {agent_id for agent_id, _date in keys}, {date for _agent_id, date in keys}
    days = {
        (agent_id, date): (published, note)
        for agent_id, date, published, note in ScheduleDay.objects.filter(
            agent_id__in=agent_ids, date__in=dates
        ).values_list("agent_id", "date", "published", "note")
        if (agent_id, date) in keys
    }
    before: dict[Key, list[tuple]] = defaultdict(list)
    for agent_id, date, start, end, code_id, note, source in (
        Activity.objects.of_agents(agent_ids)
        .filter(day__date__in=dates)
        .values_list("agent_id", "day__date", "start", "end", "activity_code_id", "note", "source")
    ):
        if (agent_id, date) in keys:
            before[(agent_id, date)].append((start, end, code_id, note, source))
    told: set[Key] = set()
    changed: set[Key] = set()
    for copy, overlay in zip(copies, overlays, strict=True):
        key = (overlay.agent.pk, overlay.date)
        after = [(s.start, s.end, s.activity_code_id, s.note, s.source) for s in overlay.activities]
        published, note = bool(copy.published), copy.note or ""
        if key not in days:
            changed.add(key)
            continue
        was_published, was_note = days[key]
        if _content(was_published, was_note, before[key], with_source=True) != _content(
            published, note, after, with_source=True
        ):
            changed.add(key)
        if was_published and _content(was_published, was_note, before[key], with_source=False) != _content(
            published, note, after, with_source=False
        ):
            told.add(key)
    return told, changed


def _regroup(changes: Sequence[ScheduleChange], groups: dict[Key, tuple[int, uuid.UUID | None]]) -> None:
    """The overlays' journal rows join their requests' change groups, in place of the groups' older
    rows of those days (the approval's, an earlier overlay's): undoing the group then starts from
    the WFM's copy. A request without a group yet (its approval changed no day) takes the row's."""
    moved: list[tuple[ScheduleChange, uuid.UUID]] = []
    adopted: dict[int, uuid.UUID | None] = {}
    for change in changes:
        request_id, group = groups[(change.agent_id, change.date)]
        if group is None:
            adopted.setdefault(request_id, change.group)
        else:
            moved.append((change, group))
    for request_id, group in adopted.items():
        TimeOffRequest.objects.filter(pk=request_id, change_group__isnull=True).update(change_group=group)
    if not moved:
        return
    older = reduce(
        operator.or_,
        (Q(group=group, agent_id=change.agent_id, date=change.date) for change, group in moved),
    )
    ScheduleChange.objects.filter(older).exclude(pk__in=[change.pk for change, _group in moved]).update(
        group=None
    )
    for change, group in moved:
        change.group = group
    ScheduleChange.objects.bulk_update([change for change, _group in moved], ["group"])
