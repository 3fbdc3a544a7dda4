"""Every change to a schedule goes through `schedule_days_apply`: the sync, approved requests, time
off, swaps, supervisors' edits and reverts. It validates, writes, journals what it replaced, and tells
each agent once per changed day."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import psycopg
from django.db import IntegrityError, OperationalError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status

from em_agent.exceptions import ApplicationError
from em_agent.messages import day_text
from em_agent.models import Agent, User
from notifications.services import notify_each
from schedules import bulk
from schedules.diff import (
    ActivitySnapshot,
    ActivitySpec,
    CurrentActivity,
    CurrentDay,
    DayDiff,
    DayPlan,
    DaySnapshot,
    day_content,
    day_diff,
    snapshot_activity,
    spec_from_snapshot,
)
from schedules.models import (
    Activity,
    ActivityCode,
    ActivitySource,
    ScheduleChange,
    ScheduleDay,
)

# The longest single activity (a shift is split into activities; one over a day is a data error).
MAX_ACTIVITY_LENGTH = dt.timedelta(hours=24)

logger = logging.getLogger(__name__)

# Sent once the transaction that changed days has committed (never for one that rolled back), with
# `keys`: the (agent id, date) of every day whose content changed. For apps that hold a promise
# about a day (a swap offer) and must look again; schedules cannot know them (dependencies point
# one way). A receiver runs after the commit, outside the writer's transaction: its failure is
# logged, never the writer's.
schedule_days_changed = Signal()


def _send_days_changed(keys: list[tuple[int, dt.date]]) -> None:
    for receiver, error in schedule_days_changed.send_robust(sender=ScheduleDay, keys=keys):
        if isinstance(error, Exception):
            logger.error("schedule_days_changed receiver %r failed", receiver, exc_info=error)


@dataclass
class ApplyResult:
    changes: list[ScheduleChange] = field(default_factory=list)  # the journal rows written
    group: uuid.UUID | None = None  # theirs (None: nothing journalled)
    days_written: int = 0  # days whose content changed, new days included
    notified_days: int = 0


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
    # The local day's bounds (23 or 25 hours on a DST day), compared with each start.
    day_begins = dt.datetime.combine(plan.date, dt.time(0), tzinfo=zone)
    day_ends = dt.datetime.combine(plan.date + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    for spec in ordered:
        if spec.end <= spec.start:
            raise _validation_error(_("An activity must end after it starts."))
        if spec.end - spec.start > MAX_ACTIVITY_LENGTH:
            raise _validation_error(_("An activity cannot last longer than 24 hours."))
        if not day_begins <= spec.start < day_ends:
            raise _validation_error(
                _("An activity must start on the day it belongs to (%(date)s).")
                % {"date": day_text(plan.date)}
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


class _DaysCreatedMeanwhile(Exception):
    """Another writer created one of the days this call meant to create: start over with it."""


def schedule_days_apply(
    *,
    plans: Sequence[DayPlan],
    source: str,
    actor: User | None = None,
    reason: str = "",
    notify: bool = True,
    reverts: dict[tuple[int, dt.date], ScheduleChange] | None = None,
    group: uuid.UUID | None = None,
) -> ApplyResult:
    """Makes each planned day hold exactly its activities (and note and published flag, when given).

    Set-based whatever the number of days: the days are locked in one statement (agent, date order,
    so two writers never deadlock), the current activities read in one, the writes are a few
    statements (schedules.bulk). A day whose content does not change is not touched, journalled or
    notified. Each changed day that is published and not in the agent's past gets one
    `schedule_adjusted` notification. A day the WFM creates is not journalled: it replaced nothing,
    and the sync's run records it. The journal rows of one call share a change group (a new one, or
    `group`: a later change that belongs to the same decision, undone with it)."""
    if not plans:
        return ApplyResult()
    keys = [(plan.agent.pk, plan.date) for plan in plans]
    if len(set(keys)) != len(keys):
        raise ValueError("one plan per agent and day")
    codes = {
        code.pk: code
        for code in ActivityCode.objects.filter(
            pk__in={spec.activity_code_id for plan in plans for spec in plan.activities}
        )
    }
    for plan in plans:
        _validate_plan(plan, codes)
    # A transaction if the caller has none; within the caller's, only the attempt's savepoint below
    # (a failed call rolls back to it, and the caller's transaction goes on).
    with transaction.atomic() if not connection.in_atomic_block else contextlib.nullcontext():
        for attempt in range(3):
            try:
                # A savepoint: a lost race starts over from it. Lost races: a day this call meant to
                # create was created meanwhile; or two writers' neighbouring days were checked for
                # overlap against each other's uncommitted rows and PostgreSQL broke the deadlock
                # (the retry waits for the other one and sees its days as they are).
                with transaction.atomic():
                    return _apply(
                        plans,
                        source=source,
                        actor=actor,
                        reason=reason,
                        notify=notify,
                        reverts=reverts,
                        group=group,
                    )
            except _DaysCreatedMeanwhile:
                if attempt == 2:
                    raise ApplicationError(
                        "schedule_changed",
                        _(
                            "This day's schedule was changed by someone else meanwhile. Reload it and try again."
                        ),
                        status_code=status.HTTP_409_CONFLICT,
                    ) from None
            except OperationalError as exc:
                if attempt == 2 or not isinstance(exc.__cause__, psycopg.errors.DeadlockDetected):
                    raise
    raise AssertionError("unreachable")  # pragma: no cover


def _apply(
    plans: Sequence[DayPlan],
    *,
    source: str,
    actor: User | None,
    reason: str,
    notify: bool,
    reverts: dict[tuple[int, dt.date], ScheduleChange] | None,
    group: uuid.UUID | None,
) -> ApplyResult:
    result = ApplyResult()
    now = timezone.now()
    # The planned days, locked in (agent, date) order in one statement however many (a sync writes
    # thousands). Missing days are created at the end, with their final content.
    days = {
        (agent_id, date): CurrentDay(pk, published, note, updated_at, wfm_hash)
        for agent_id, date, pk, published, note, updated_at, wfm_hash in bulk.days_lock(
            [(plan.agent.pk, plan.date) for plan in plans]
        )
    }
    current: dict[int, list[CurrentActivity]] = defaultdict(list)
    existing_ids = [days[key].id for key in ((plan.agent.pk, plan.date) for plan in plans) if key in days]
    for day_id, pk, code_id, start, end, note, activity_source in (
        Activity.objects.filter(day_id__in=existing_ids)
        .order_by("start")
        .values_list("day_id", "id", "activity_code_id", "start", "end", "note", "source")
    ):
        current[day_id].append(CurrentActivity(pk, code_id, start, end, note, activity_source))

    changes: list[_Change] = []
    hash_only: list[tuple[int, str]] = []  # (day id, hash) of days whose content stays
    updates: list[tuple[int, DayPlan, ActivitySpec]] = []
    removed: list[int] = []
    news: list[_Change] = []  # visible changes the agent hears of, unless all in the past
    for plan in plans:
        day = days.get((plan.agent.pk, plan.date))
        if plan.expected_updated_at is not None and (
            day is None or day.updated_at != plan.expected_updated_at
        ):
            raise ApplicationError(
                "schedule_changed",
                _("This day's schedule was changed by someone else meanwhile. Reload it and try again."),
                status_code=status.HTTP_409_CONFLICT,
            )
        diff = day_diff(plan, day, current[day.id] if day is not None else (), reverts=bool(reverts))
        wfm_hash = plan.wfm_hash if plan.wfm_hash is not None else (day.wfm_hash if day else "")
        if diff.same:
            if day is None:
                # An empty day is still created (a supervisor's new day, to fill in; a day off the
                # WFM lists, with its hash, so the next run sees it unchanged), with nothing to tell.
                values = _day_values(plan, diff.published, diff.note, [], now, wfm_hash)
                changes.append(_Change(diff, values, journalled=False))
            elif wfm_hash != day.wfm_hash:
                hash_only.append((day.id, wfm_hash))
            continue
        result.days_written += 1
        change = _Change(
            diff,
            _day_values(plan, diff.published, diff.note, diff.final(), now, wfm_hash),
            # A day the WFM creates replaced nothing: the sync's run records it.
            journalled=day is not None or source != ActivitySource.WFM,
        )
        changes.append(change)
        if day is not None:
            updates.extend((day.id, plan, spec) for spec in diff.updated)
            removed.extend(diff.removed)
        # A day the WFM publishes for the first time is news in the calendar (the green dot), not an
        # adjustment: a first sync must not send an agent thirty-five notifications. Anyone else's
        # change to a published day (a supervisor adding a shift) is one.
        was_published = day.published if day else False
        if diff.visible and (was_published or (diff.published and source != ActivitySource.WFM)):
            news.append(change)
    if not changes and not hash_only:
        return result

    to_journal = [change for change in changes if change.journalled]
    if to_journal:
        result.group = group or uuid.uuid4()
    _write(changes, to_journal, days=days, hash_only=hash_only, updates=updates, removed=removed)
    result.changes = ScheduleChange.objects.bulk_create(
        [
            ScheduleChange(
                agent_id=change.diff.plan.agent.pk,
                date=change.diff.plan.date,
                source=source,
                actor=actor,
                reason=reason[:500],
                before=change.diff.before,
                after={
                    "published": change.values.published,
                    "note": change.values.note,
                    "activities": [snapshot_activity(spec, id=spec.id or 0) for spec in change.diff.final()],
                },
                reverts=(reverts or {}).get((change.diff.plan.agent.pk, change.diff.plan.date)),
                group=result.group,
                created_at=now,
            )
            for change in to_journal
        ],
        batch_size=2000,
    )
    if notify:
        result.notified_days = _notify_adjusted(news, now=now)
    changed = [
        (change.diff.plan.agent.pk, change.diff.plan.date) for change in changes if not change.diff.same
    ]
    if changed:
        # In the savepoint of this attempt: a retried or rolled-back attempt sends nothing.
        transaction.on_commit(functools.partial(_send_days_changed, changed))
    return result


@dataclass(slots=True)
class _Change:
    """A day to write: the plan's diff against it, the day row's values, and whether the journal
    records it."""

    diff: DayDiff
    values: bulk.DayValues
    journalled: bool


def _write(
    changes: list[_Change],
    to_journal: list[_Change],
    *,
    days: dict[tuple[int, dt.date], CurrentDay],
    hash_only: list[tuple[int, str]],
    updates: list[tuple[int, DayPlan, ActivitySpec]],
    removed: list[int],
) -> None:
    """The diffs' writes, a few statements whatever the number of days; the journalled diffs'
    new activities get their ids."""
    # Ids for the new activities the journal names (on PostgreSQL; SQLite's insert returns them).
    allocated = iter(bulk.activity_ids_allocate(sum(_unnamed(change.diff.created) for change in to_journal)))
    for change in to_journal:
        if _unnamed(change.diff.created):
            change.diff.created = [
                spec if spec.id is not None else spec._replace(id=next(allocated, None))
                for spec in change.diff.created
            ]
    # In the attempt's savepoint (schedule_days_apply): an overlap found below rolls back to it, and
    # the caller's transaction goes on.
    try:
        deferred = connection.vendor == "postgresql"
        if deferred:
            # Activities moved between days may overlap until every day is written.
            connection.cursor().execute("SET CONSTRAINTS schedule_day_no_overlap DEFERRED")
        # In (agent, date) order, as the locks are taken: two writers creating the same days wait
        # for each other instead of deadlocking.
        created_ids = bulk.days_insert(
            sorted((change.values for change in changes if change.diff.day is None), key=_day_order)
        )
        if created_ids is None:
            raise _DaysCreatedMeanwhile
        day_ids = {key: day.id for key, day in days.items()} | created_ids
        bulk.days_update(
            [(change.diff.day.id, change.values) for change in changes if change.diff.day is not None]
        )
        bulk.days_set_hash(hash_only)
        bulk.activities_delete(removed)
        bulk.activities_update([_activity_values(plan, day_id, spec) for day_id, plan, spec in updates])
        new_ids = iter(
            bulk.activities_insert(
                [
                    _activity_values(change.diff.plan, day_id, spec)
                    for change in changes
                    for day_id in (day_ids[(change.diff.plan.agent.pk, change.diff.plan.date)],)
                    for spec in change.diff.created
                ]
            )
        )
        for change in changes:
            ids = [next(new_ids) for _spec in change.diff.created]
            if change.journalled and _unnamed(change.diff.created):  # SQLite: ids known now
                change.diff.created = [
                    spec._replace(id=new_id) if spec.id is None else spec
                    for spec, new_id in zip(change.diff.created, ids, strict=True)
                ]
        if deferred:
            connection.cursor().execute("SET CONSTRAINTS schedule_day_no_overlap IMMEDIATE")
        else:
            _check_no_overlap_across_days(
                [
                    (
                        change.diff.plan,
                        day_ids[(change.diff.plan.agent.pk, change.diff.plan.date)],
                        change.diff,
                    )
                    for change in changes
                ]
            )
    except IntegrityError as exc:
        # The exclusion constraint (PostgreSQL): an overlap with an activity of a neighbouring day.
        diag = getattr(exc.__cause__, "diag", None)
        if getattr(diag, "constraint_name", None) == "schedule_day_no_overlap":
            raise _overlap_error() from exc
        raise


def _notify_adjusted(news: list[_Change], *, now: dt.datetime) -> int:
    """One `schedule_adjusted` per changed day not all in the agent's past; how many."""
    today = {}
    items = []
    for change in news:
        agent, date = change.diff.plan.agent, change.diff.plan.date
        if agent.pk not in today:
            today[agent.pk] = now.astimezone(agent.zone).date()
        # Not all in the past: today or later, or yesterday's night shift still running.
        if date >= today[agent.pk] or (change.values.last_end is not None and change.values.last_end > now):
            items.append((agent, {"date": date.isoformat()}))
    if items:
        notify_each(kind="schedule_adjusted", items=items)
    return len(items)


def _unnamed(specs: list[ActivitySpec]) -> int:
    return sum(1 for spec in specs if spec.id is None)


def _day_order(values: bulk.DayValues) -> tuple[int, dt.date]:
    return values.agent_id, values.date


def _day_values(
    plan: DayPlan, published: bool, note: str, final: list[ActivitySpec], now: dt.datetime, wfm_hash: str
) -> bulk.DayValues:
    """`final`: the day's activities in order of start (so, not overlapping, the last ends last)."""
    return bulk.DayValues(
        agent_id=plan.agent.pk,
        date=plan.date,
        published=published,
        note=note,
        # The day's span: on PostgreSQL no two days of an agent may overlap (migration 0008).
        first_start=final[0].start if final else None,
        last_end=final[-1].end if final else None,
        updated_at=now,
        wfm_hash=wfm_hash,
    )


def _activity_values(plan: DayPlan, day_id: int, spec: ActivitySpec) -> bulk.ActivityValues:
    return bulk.ActivityValues(
        spec.id, plan.agent.pk, day_id, spec.activity_code_id, spec.start, spec.end, spec.note, spec.source
    )


def _check_no_overlap_across_days(days: list[tuple[DayPlan, int, DayDiff]]) -> None:
    """Overlap between days (a night shift running into the next morning), where no exclusion
    constraint checks it (SQLite, the demo's database): each agent's changed days as written, with
    the untouched activities around them, sorted and compared pairwise."""
    by_agent: dict[int, list[tuple[int, DayDiff]]] = defaultdict(list)
    for plan, day_id, change in days:
        by_agent[plan.agent.pk].append((day_id, change))
    for agent_id, agent_days in by_agent.items():
        written = [(spec.start, spec.end) for _day_id, change in agent_days for spec in change.final()]
        if not written:
            continue
        earliest = min(start for start, _end in written) - MAX_ACTIVITY_LENGTH
        latest = max(end for _start, end in written) + MAX_ACTIVITY_LENGTH
        untouched = (
            Activity.objects.filter(agent_id=agent_id, start__lt=latest, end__gt=earliest)
            .exclude(day_id__in=[day_id for day_id, _change in agent_days])
            .values_list("start", "end")
        )
        ordered = sorted([*written, *untouched])
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            if later[0] < earlier[1]:
                raise _overlap_error()


def schedule_days_lock(*, keys: Sequence[tuple[int, dt.date]]) -> None:
    """Locks the existing days among (agent id, date) until the transaction ends, in the order every
    writer takes them: read what changed them under this lock, then write with schedule_days_apply
    (which takes the same locks again)."""
    bulk.days_lock(sorted(keys))


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
            "activities": [
                snapshot_activity(
                    CurrentActivity(a.pk, a.activity_code_id, a.start, a.end, a.note, a.source), id=a.pk
                )
                for a in activities
            ],
        }
        if day_content(now_snapshot) != day_content(change.after):
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
            activities=[spec_from_snapshot(a) for a in before["activities"]],
        )
        return schedule_days_apply(
            plans=[plan],
            source=change.source,
            actor=actor,
            reason=reason or f"revert of change {change.pk}",
            reverts={(change.agent_id, change.date): change},
        )


class NotRestored(NamedTuple):
    """An activity a change group removed or changed that its undo could not put back."""

    agent_id: int
    date: dt.date
    activity: ActivitySnapshot  # as it was before the group changed it
    # "overlap": its time is taken now; "changed": someone else changed or removed it since;
    # "wfm_copy": the WFM sent a newer copy of the day since, and that copy stands (wfm_copy_wins).
    why: str


@dataclass
class UndoResult:
    applied: ApplyResult  # the undo's own journal rows (each `reverts` the group's last row of its day)
    removed: list[int] = field(default_factory=list)  # the group's additions taken out now
    restored: list[int] = field(default_factory=list)  # what it removed or changed, put back (same ids)
    not_restored: list[NotRestored] = field(default_factory=list)


@dataclass
class _GroupEffect:
    """What a change group did to one day, over all its rows for the day in order: the activities it
    added (by id), and the ones it found there (`original`, as it found them) with what it left of
    them (`left`; absent: it removed them)."""

    added: set[int] = field(default_factory=set)
    original: dict[int, ActivitySnapshot] = field(default_factory=dict)
    left: dict[int, ActivitySnapshot] = field(default_factory=dict)

    def take(self, change: ScheduleChange) -> None:
        before = {a["id"]: a for a in change.before["activities"]}
        after = {a["id"]: a for a in change.after["activities"]}
        for pk, snapshot in before.items():
            if pk not in self.added:
                self.original.setdefault(pk, snapshot)
        self.added |= {pk for pk in after if pk not in before and pk not in self.original}
        for pk in before.keys() - after.keys():
            self.left.pop(pk, None)
        self.left.update(after)


def _same_activity(a: ActivitySnapshot, b: ActivitySnapshot) -> bool:
    fields = ("activity_code_id", "start", "end", "note", "source")
    return all(a[name] == b[name] for name in fields)  # type: ignore[literal-required]


def schedule_change_group_undo(
    *,
    group: uuid.UUID,
    source: str,
    actor: User | None = None,
    reason: str = "",
    wfm_copy_wins: bool = False,
) -> UndoResult:
    """Undoes one change group (every day one decision changed) as far as the days allow today,
    even when something else changed them since (a sync, another request): what the group added is
    removed, by id, wherever it still is; what it removed or changed is put back, with its id, where
    its time is still free (an activity someone else changed since stays as they left it). The rest
    of each day stays as it is now. Every day of the group is locked in one statement before
    anything is read. What could not be put back is reported, not refused: the caller tells whom it
    concerns. With `wfm_copy_wins`, a day the WFM rewrote since the group keeps the WFM's copy (only
    the group's additions go). Undoing a group twice changes nothing the second time."""
    with transaction.atomic():
        changes = list(ScheduleChange.objects.filter(group=group).select_related("agent").order_by("id"))
        if not changes:
            raise ValueError(f"no journal rows in change group {group}")
        by_day: dict[tuple[int, dt.date], list[ScheduleChange]] = defaultdict(list)
        for change in changes:
            by_day[(change.agent_id, change.date)].append(change)
        keys = sorted(by_day)
        locked = {(agent_id, date): pk for agent_id, date, pk, *_rest in bulk.days_lock(keys)}
        current: dict[tuple[int, dt.date], dict[int, CurrentActivity]] = {key: {} for key in keys}
        key_of = {pk: key for key, pk in locked.items()}
        for day_id, pk, code_id, start, end, note, activity_source in Activity.objects.filter(
            day_id__in=list(locked.values())
        ).values_list("day_id", "id", "activity_code_id", "start", "end", "note", "source"):
            current[key_of[day_id]][pk] = CurrentActivity(pk, code_id, start, end, note, activity_source)
        rewritten = _rewritten_by_wfm(keys, after_id=changes[-1].pk) if wfm_copy_wins else set()

        result = UndoResult(applied=ApplyResult())
        effects: dict[tuple[int, dt.date], _GroupEffect] = {}
        # First what the group added goes, everywhere: the time it held is free for what comes back.
        keep: dict[tuple[int, dt.date], dict[int, ActivitySnapshot]] = {}
        for key in keys:
            effect = effects[key] = _GroupEffect()
            for change in by_day[key]:
                effect.take(change)
            keep[key] = {}
            for pk, activity in current[key].items():
                # An addition the WFM's newer copy took over (the same code and times: the day's
                # diff kept its row, now the WFM's) is part of that copy, which stands.
                taken_over = key in rewritten and activity.source == ActivitySource.WFM
                if pk in effect.added and not taken_over:
                    result.removed.append(pk)
                else:
                    keep[key][pk] = snapshot_activity(activity, id=pk)
        # Then what it removed or changed comes back where its time is free, against every day's
        # activities as they will be and the agents' other days around them.
        candidates: list[tuple[tuple[int, dt.date], ActivitySnapshot]] = []
        for key in keys:
            effect = effects[key]
            for pk, was in effect.original.items():
                left = effect.left.get(pk)
                if left is not None and _same_activity(left, was):
                    continue  # the group did not touch it
                now = keep[key].get(pk)
                if now is not None and (left is None or _same_activity(now, was)):
                    continue  # back already, as it was (undone before)
                if key in rewritten:
                    result.not_restored.append(NotRestored(*key, was, "wfm_copy"))
                elif left is not None and (now is None or not _same_activity(now, left)):
                    result.not_restored.append(NotRestored(*key, was, "changed"))
                else:
                    candidates.append((key, was))
        elsewhere = set(
            Activity.objects.filter(pk__in=[was["id"] for key, was in candidates])
            .exclude(day_id__in=list(locked.values()))
            .values_list("pk", flat=True)
        )
        occupied = _occupied_around(keys, keep, exclude_days=list(locked.values()))
        for key, was in sorted(candidates, key=lambda item: item[1]["start"]):
            start, end = dt.datetime.fromisoformat(was["start"]), dt.datetime.fromisoformat(was["end"])
            taken = occupied[key[0]]
            mine = keep[key].get(was["id"])  # a changed activity makes way for its old self
            if was["id"] in elsewhere or any(
                other_start < end and start < other_end and other_id != was["id"]
                for other_id, other_start, other_end in taken
            ):
                result.not_restored.append(
                    NotRestored(*key, was, "changed" if was["id"] in elsewhere else "overlap")
                )
                continue
            if mine is not None:
                taken[:] = [entry for entry in taken if entry[0] != was["id"]]
            taken.append((was["id"], start, end))
            keep[key][was["id"]] = was
            result.restored.append(was["id"])

        plans = [
            DayPlan(
                agent=by_day[key][0].agent,
                date=key[1],
                activities=sorted((spec_from_snapshot(a) for a in keep[key].values()), key=lambda s: s.start),
            )
            for key in keys
            if key in locked  # a day the group wrote is there (days are not deleted)
        ]
        result.applied = schedule_days_apply(
            plans=plans,
            source=source,
            actor=actor,
            reason=reason or f"undo of change group {group}",
            # A day whose content stays is not written (nor journalled, nor notified) by the service.
            reverts={key: by_day[key][-1] for key in keys},
        )
        return result


def _rewritten_by_wfm(keys: list[tuple[int, dt.date]], *, after_id: int) -> set[tuple[int, dt.date]]:
    """The days among `keys` the sync changed after journal row `after_id`."""
    rows = ScheduleChange.objects.filter(
        source=ActivitySource.WFM,
        pk__gt=after_id,
        agent_id__in={agent_id for agent_id, _date in keys},
        date__in={date for _agent_id, date in keys},
    ).values_list("agent_id", "date")
    return set(rows) & set(keys)


def _occupied_around(
    keys: list[tuple[int, dt.date]],
    keep: dict[tuple[int, dt.date], dict[int, ActivitySnapshot]],
    *,
    exclude_days: list[int],
) -> dict[int, list[tuple[int, dt.datetime, dt.datetime]]]:
    """Per agent, the (id, start, end) of every activity that will stay on the undone days, and of
    the agent's other days next to them (a night shift runs into the next morning)."""
    occupied: dict[int, list[tuple[int, dt.datetime, dt.datetime]]] = defaultdict(list)
    for (agent_id, _date), activities in keep.items():
        occupied[agent_id].extend(
            (pk, dt.datetime.fromisoformat(a["start"]), dt.datetime.fromisoformat(a["end"]))
            for pk, a in activities.items()
        )
    for agent_id in {agent_id for agent_id, _date in keys}:
        dates = [date for key_agent, date in keys if key_agent == agent_id]
        earliest = dt.datetime.combine(min(dates) - dt.timedelta(days=2), dt.time(0), tzinfo=dt.UTC)
        latest = dt.datetime.combine(max(dates) + dt.timedelta(days=3), dt.time(0), tzinfo=dt.UTC)
        occupied[agent_id].extend(
            Activity.objects.filter(agent_id=agent_id, start__lt=latest, end__gt=earliest)
            .exclude(day_id__in=exclude_days)
            .values_list("id", "start", "end")
        )
    return occupied
