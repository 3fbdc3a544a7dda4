"""Every change to a schedule goes through `schedule_days_apply`: the sync, approved requests, time
off, swaps, supervisors' edits and reverts. It validates, writes, journals what it replaced, and tells
each agent once per changed day."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status

from em_agent.exceptions import ApplicationError
from em_agent.models import Agent, User
from notifications.services import notify_each
from schedules.models import (
    Activity,
    ActivityCode,
    ActivitySource,
    ScheduleChange,
    ScheduleDay,
    ScheduleRequest,
)

# The longest single activity (a shift is split into activities; one over a day is a data error).
MAX_ACTIVITY_LENGTH = dt.timedelta(hours=24)


@dataclass(frozen=True)
class ActivitySpec:
    """One activity as a day should hold it. `id` keeps an existing activity's identity (what a swap or
    a time-off request points at) across a change."""

    activity_code_id: int
    start: dt.datetime
    end: dt.datetime
    note: str = ""
    source: str = "wfm"
    id: int | None = None


@dataclass
class DayPlan:
    """A day as it should become. `note` / `published` None: leave as they are."""

    agent: Agent
    date: dt.date
    activities: list[ActivitySpec]
    note: str | None = None
    published: bool | None = None
    # The day's `updated_at` when the writer read it (a form a supervisor kept open): refused with
    # 409 `schedule_changed` if the day changed since, instead of silently undoing that change.
    expected_updated_at: dt.datetime | None = None


class ActivitySnapshot(TypedDict):
    id: int
    activity_code_id: int
    start: str
    end: str
    note: str
    source: str


class DaySnapshot(TypedDict):
    published: bool
    note: str
    activities: list[ActivitySnapshot]


@dataclass
class ApplyResult:
    changes: list[ScheduleChange] = field(default_factory=list)
    notified_days: int = 0


def _snapshot_activity(activity: Activity | ActivitySpec, *, id: int) -> ActivitySnapshot:
    return {
        "id": id,
        "activity_code_id": activity.activity_code_id,
        "start": activity.start.astimezone(dt.UTC).isoformat(),
        "end": activity.end.astimezone(dt.UTC).isoformat(),
        "note": activity.note,
        "source": activity.source,
    }


def _content(snapshot: DaySnapshot, *, with_source: bool = True) -> tuple:
    """A day's content, identity aside: two snapshots with equal content are the same day. Without
    the source it is what the agent sees."""
    return (
        snapshot["published"],
        snapshot["note"],
        sorted(
            (a["start"], a["end"], a["activity_code_id"], a["note"], a["source"] if with_source else "")
            for a in snapshot["activities"]
        ),
    )


def activity_specs(activities: Iterable[Activity]) -> list[ActivitySpec]:
    """A day's current activities as specs that keep their ids: the starting point of an edit."""
    return [
        ActivitySpec(
            activity_code_id=a.activity_code_id,
            start=a.start,
            end=a.end,
            note=a.note,
            source=a.source,
            id=a.pk,
        )
        for a in activities
    ]


def _validation_error(message: str, *, field_name: str = "activities") -> ApplicationError:
    return ApplicationError("validation_error", _("The input is not valid."), fields={field_name: [message]})


def _validate_plan(plan: DayPlan, codes: dict[int, ActivityCode]) -> None:
    zone = plan.agent.zone
    if any(spec.start.tzinfo is None or spec.end.tzinfo is None for spec in plan.activities):
        raise _validation_error(_("Times need a UTC offset."))
    ids = [spec.id for spec in plan.activities if spec.id is not None]
    if len(ids) != len(set(ids)):
        raise ValueError(f"the plan for {plan.date} names one activity twice")
    ordered = sorted(plan.activities, key=lambda a: a.start)
    for spec in ordered:
        if spec.end <= spec.start:
            raise _validation_error(_("An activity must end after it starts."))
        if spec.end - spec.start > MAX_ACTIVITY_LENGTH:
            raise _validation_error(_("An activity cannot last longer than 24 hours."))
        if spec.start.astimezone(zone).date() != plan.date:
            raise _validation_error(
                _("An activity must start on the day it belongs to (%(date)s).") % {"date": plan.date}
            )
        code = codes.get(spec.activity_code_id)
        if code is None or code.organization_id != plan.agent.organization_id:
            raise _validation_error(_("Unknown activity code."), field_name="activity_code")
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if later.start < earlier.end:
            raise ApplicationError(
                "overlap",
                _("Activities cannot overlap: %(start)s falls inside another activity.")
                % {"start": later.start.astimezone(zone).strftime("%H:%M")},
                status_code=status.HTTP_409_CONFLICT,
            )


def _agent_should_hear(
    day: ScheduleDay,
    was_published: bool,
    activities: list[Activity],
    agent: Agent,
    now: dt.datetime,
    *,
    source: str,
) -> bool:
    """A change the agent can see, not all in the past (today or later, or yesterday's night shift
    still running). A day the WFM publishes for the first time is news in the calendar (the green
    dot), not an adjustment: a first sync must not send an agent thirty-five notifications. Anyone
    else's change to a published day (a supervisor adding a shift) is one."""
    if not (was_published or (day.published and source != ActivitySource.WFM)):
        return False
    return day.date >= now.astimezone(agent.zone).date() or any(a.end > now for a in activities)


def validate_day_plan(plan: DayPlan) -> None:
    """Everything schedule_days_apply would refuse about this day, without writing: for a request,
    refused when made rather than when a supervisor approves it."""
    codes = {
        code.pk: code
        for code in ActivityCode.objects.filter(pk__in={s.activity_code_id for s in plan.activities})
    }
    _validate_plan(plan, codes)
    if not plan.activities:
        return
    earliest = min(spec.start for spec in plan.activities)
    latest = max(spec.end for spec in plan.activities)
    neighbours = Activity.objects.filter(agent=plan.agent, start__lt=latest, end__gt=earliest).exclude(
        day__date=plan.date
    )
    for other in neighbours:
        if any(spec.start < other.end and other.start < spec.end for spec in plan.activities):
            raise _overlap_error()


def _overlap_error() -> ApplicationError:
    return ApplicationError(
        "overlap",
        _("The schedule would have overlapping activities."),
        status_code=status.HTTP_409_CONFLICT,
    )


@transaction.atomic
def schedule_days_apply(
    *,
    plans: Sequence[DayPlan],
    source: str,
    actor: User | None = None,
    reason: str = "",
    notify: bool = True,
    reverts: dict[tuple[int, dt.date], ScheduleChange] | None = None,
) -> ApplyResult:
    """Makes each planned day hold exactly its activities (and note and published flag, when given).

    Set-based whatever the number of days: the days are locked in one statement (agent, date order,
    so two writers never deadlock), the current activities read in one, the writes are bulk. A day
    whose content does not change is not touched, journalled or notified. Each changed day that is
    published and not in the agent's past gets one `schedule_adjusted` notification."""
    result = ApplyResult()
    if not plans:
        return result
    keys = [(plan.agent.pk, plan.date) for plan in plans]
    if len(set(keys)) != len(keys):
        raise ValueError("one plan per agent and day")
    agent_ids = sorted({plan.agent.pk for plan in plans})
    dates = sorted({plan.date for plan in plans})
    codes = {
        code.pk: code
        for code in ActivityCode.objects.filter(
            pk__in={spec.activity_code_id for plan in plans for spec in plan.activities}
        )
    }
    for plan in plans:
        _validate_plan(plan, codes)

    now = timezone.now()
    # The agents' days over the whole date range, locked in (agent, date) order: one statement
    # however many days (a sync writes thousands); the few extra rows locked between a swap's two
    # dates cost nothing. Missing days are created (in the same order: two writers creating the same
    # days never deadlock) and locked in a second statement.
    in_range = ScheduleDay.objects.filter(agent_id__in=agent_ids, date__gte=dates[0], date__lte=dates[-1])
    days = {
        (day.agent_id, day.date): day for day in in_range.select_for_update().order_by("agent_id", "date")
    }
    missing = sorted(set(keys) - set(days))
    if missing:
        ScheduleDay.objects.bulk_create(
            [ScheduleDay(agent_id=agent_id, date=date, updated_at=now) for agent_id, date in missing],
            ignore_conflicts=True,
            batch_size=2000,
        )
        days = {
            (day.agent_id, day.date): day for day in in_range.select_for_update().order_by("agent_id", "date")
        }
    current: dict[int, list[Activity]] = defaultdict(list)
    planned_day_ids = [days[key].pk for key in keys]
    for activity in Activity.objects.filter(day__in=planned_day_ids).order_by("start"):
        current[activity.day_id].append(activity)

    to_delete: list[int] = []
    to_update: list[Activity] = []
    to_create: list[Activity] = []
    changed_days: list[ScheduleDay] = []
    final: dict[int, list[Activity]] = {}
    visibly_changed: set[int] = set()
    was_published: dict[int, bool] = {}
    for plan in plans:
        day = days[(plan.agent.pk, plan.date)]
        if plan.expected_updated_at is not None and day.updated_at != plan.expected_updated_at:
            raise ApplicationError(
                "schedule_changed",
                _("This day's schedule was changed by someone else meanwhile. Reload it and try again."),
                status_code=status.HTTP_409_CONFLICT,
            )
        before: DaySnapshot = {
            "published": day.published,
            "note": day.note,
            "activities": [_snapshot_activity(a, id=a.pk) for a in current[day.pk]],
        }
        kept, created, updated, removed = _match_activities(plan, day, current[day.pk], reverts=bool(reverts))
        rows = sorted(kept + created, key=lambda a: a.start)
        after: DaySnapshot = {
            "published": day.published if plan.published is None else plan.published,
            "note": day.note if plan.note is None else plan.note,
            "activities": [_snapshot_activity(a, id=a.pk or 0) for a in rows],
        }
        if _content(before) == _content(after):
            continue
        was_published[day.pk] = day.published
        day.published, day.note, day.updated_at = after["published"], after["note"], now
        changed_days.append(day)
        final[day.pk] = rows
        if _content(before, with_source=False) != _content(after, with_source=False):
            visibly_changed.add(day.pk)
        to_delete.extend(removed)
        to_update.extend(updated)
        to_create.extend(created)
        result.changes.append(
            ScheduleChange(
                agent_id=plan.agent.pk,
                date=plan.date,
                source=source,
                actor=actor,
                reason=reason[:500],
                before=before,
                after=after,
                reverts=(reverts or {}).get((plan.agent.pk, plan.date)),
                created_at=now,
            )
        )
    if not changed_days:
        return result

    try:
        with transaction.atomic():  # a savepoint: the overlap below must not poison the caller's transaction
            deferred = connection.vendor == "postgresql"
            if deferred:
                # Activities moved within a day may overlap one another until the last row is written.
                connection.cursor().execute("SET CONSTRAINTS activity_no_overlap DEFERRED")
            # Requests that named a removed activity keep its id (activity_ref) and lose the link;
            # then one DELETE, not Django's collector (a SELECT and per-batch deletes per relation).
            ScheduleRequest.objects.filter(activity_id__in=to_delete).update(activity=None)
            Activity.objects.filter(pk__in=to_delete)._raw_delete(Activity.objects.db)
            Activity.objects.bulk_update(
                to_update, ["activity_code", "start", "end", "note", "source"], batch_size=500
            )
            Activity.objects.bulk_create(to_create, batch_size=2000)
            if deferred:
                connection.cursor().execute("SET CONSTRAINTS activity_no_overlap IMMEDIATE")
            else:
                _check_no_overlap_across_days(final, changed_days)
    except IntegrityError as exc:
        # The exclusion constraint (PostgreSQL): an overlap with an activity of a neighbouring day.
        diag = getattr(exc.__cause__, "diag", None)
        if getattr(diag, "constraint_name", None) == "activity_no_overlap":
            raise _overlap_error() from exc
        raise
    ScheduleDay.objects.bulk_update(changed_days, ["published", "note", "updated_at"], batch_size=2000)
    for change, day in zip(result.changes, changed_days, strict=True):
        change.after["activities"] = [_snapshot_activity(a, id=a.pk) for a in final[day.pk]]
    ScheduleChange.objects.bulk_create(result.changes, batch_size=2000)

    if notify:
        agents = {plan.agent.pk: plan.agent for plan in plans}
        items = []
        for day in changed_days:
            agent = agents[day.agent_id]
            if day.pk in visibly_changed and _agent_should_hear(
                day, was_published[day.pk], final[day.pk], agent, now, source=source
            ):
                items.append((agent, {"date": day.date.isoformat()}))
        if items:
            notify_each(kind="schedule_adjusted", items=items)
        result.notified_days = len(items)
    return result


def _match_activities(
    plan: DayPlan, day: ScheduleDay, current: list[Activity], *, reverts: bool
) -> tuple[list[Activity], list[Activity], list[Activity], list[int]]:
    """Which of the day's rows stay (kept, some of them updated), which are new, which go.

    An activity keeps its row, and so its id, when the plan names that id, or when the plan has an
    activity of the same code and times: what points at it (a pending request to edit or cancel it,
    a swap offer) keeps pointing at it through a change of some other part of the day. A revert puts
    back the very rows it replaced, ids included."""
    by_id = {activity.pk: activity for activity in current}
    by_content: dict[tuple, list[Activity]] = defaultdict(list)
    for activity in current:
        by_content[(activity.activity_code_id, activity.start, activity.end)].append(activity)
    kept: list[Activity] = []
    updated: list[Activity] = []
    created: list[Activity] = []
    taken: set[int] = set()
    unnamed: list[ActivitySpec] = []
    for spec in plan.activities:
        if spec.id is not None and spec.id in by_id and spec.id not in taken:
            taken.add(spec.id)
            kept.append(_apply_spec(by_id[spec.id], spec, updated))
        elif spec.id is not None and reverts:
            created.append(_new_activity(plan, day, spec, id=spec.id))
        else:
            unnamed.append(spec)
    for spec in unnamed:
        same = [a for a in by_content[(spec.activity_code_id, spec.start, spec.end)] if a.pk not in taken]
        if same:
            taken.add(same[0].pk)
            kept.append(_apply_spec(same[0], spec, updated))
        else:
            created.append(_new_activity(plan, day, spec, id=None))
    removed = [activity.pk for activity in current if activity.pk not in taken]
    return kept, created, updated, removed


def _apply_spec(activity: Activity, spec: ActivitySpec, updated: list[Activity]) -> Activity:
    fields = {
        "activity_code_id": spec.activity_code_id,
        "start": spec.start,
        "end": spec.end,
        "note": spec.note,
        "source": spec.source,
    }
    if any(getattr(activity, name) != value for name, value in fields.items()):
        for name, value in fields.items():
            setattr(activity, name, value)
        updated.append(activity)
    return activity


def _new_activity(plan: DayPlan, day: ScheduleDay, spec: ActivitySpec, *, id: int | None) -> Activity:
    return Activity(
        id=id,
        agent_id=plan.agent.pk,
        day_id=day.pk,
        activity_code_id=spec.activity_code_id,
        start=spec.start,
        end=spec.end,
        note=spec.note,
        source=spec.source,
    )


def _check_no_overlap_across_days(final: dict[int, list[Activity]], days: list[ScheduleDay]) -> None:
    """Overlap between days (a night shift running into the next morning), where no exclusion
    constraint checks it (SQLite, the demo's database): each agent's changed days as written, with
    the untouched activities around them, sorted and compared pairwise."""
    by_agent: dict[int, list[ScheduleDay]] = defaultdict(list)
    for day in days:
        by_agent[day.agent_id].append(day)
    for agent_id, agent_days in by_agent.items():
        written = [activity for day in agent_days for activity in final[day.pk]]
        if not written:
            continue
        earliest = min(a.start for a in written) - MAX_ACTIVITY_LENGTH
        latest = max(a.end for a in written) + MAX_ACTIVITY_LENGTH
        untouched = Activity.objects.filter(agent_id=agent_id, start__lt=latest, end__gt=earliest).exclude(
            day_id__in=[day.pk for day in agent_days]
        )
        ordered = sorted([*written, *untouched], key=lambda a: a.start)
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            if later.start < earlier.end:
                raise _overlap_error()


def schedule_day_lock(*, agent: Agent, date: dt.date) -> ScheduleDay:
    """The agent's day, created if need be and locked until the transaction ends: read a day under
    this lock before building a plan from it, so nothing written meanwhile is lost."""
    ScheduleDay.objects.bulk_create([ScheduleDay(agent=agent, date=date)], ignore_conflicts=True)
    return ScheduleDay.objects.select_for_update().get(agent=agent, date=date)


def schedule_change_revert(
    *, change: ScheduleChange, actor: User | None = None, reason: str = ""
) -> ApplyResult:
    """Gives the day back exactly as `change` found it (activity ids included), provided nothing else
    changed it since: otherwise 409 `schedule_changed`."""
    with transaction.atomic():
        day = ScheduleDay.objects.select_for_update().get(agent_id=change.agent_id, date=change.date)
        activities = list(Activity.objects.filter(day=day).order_by("start"))
        now_snapshot: DaySnapshot = {
            "published": day.published,
            "note": day.note,
            "activities": [_snapshot_activity(a, id=a.pk) for a in activities],
        }
        if _content(now_snapshot) != _content(change.after):
            raise ApplicationError(
                "schedule_changed",
                _("The schedule of that day has changed since; it cannot be restored automatically."),
                status_code=status.HTTP_409_CONFLICT,
            )
        before = change.before
        plan = DayPlan(
            agent=change.agent,
            date=change.date,
            note=before["note"],
            published=before["published"],
            activities=[
                ActivitySpec(
                    activity_code_id=a["activity_code_id"],
                    start=dt.datetime.fromisoformat(a["start"]),
                    end=dt.datetime.fromisoformat(a["end"]),
                    note=a["note"],
                    source=a["source"],
                    id=a["id"],
                )
                for a in before["activities"]
            ],
        )
        return schedule_days_apply(
            plans=[plan],
            source=change.source,
            actor=actor,
            reason=reason or f"revert of change {change.pk}",
            reverts={(change.agent_id, change.date): change},
        )
