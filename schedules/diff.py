"""A day's plan against the day as it is, without a database: what stays, what is new, what changes
and what goes, and whether the agent would see a difference. `schedules.services` writes what this
finds; a preview (time off: "this takes 16 hours") asks the same question without writing.

Also the one way to carve a span of time out of a day's activities (partial-day time off, an
interval), so that every request type cuts a day the same way."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypedDict

from em_agent.models import Agent


class ActivitySpec(NamedTuple):
    """One activity as a day should hold it. `id` keeps an existing activity's identity (what a swap or
    a time-off request points at) across a change. (A tuple: a sync builds millions of them.)"""

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
    # The sync's hash of the WFM's copy of the day, kept with it (None: leave the stored one).
    wfm_hash: str | None = None


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


class CurrentActivity(NamedTuple):
    """An activity as the day holds it now."""

    id: int
    activity_code_id: int
    start: dt.datetime
    end: dt.datetime
    note: str
    source: str


class CurrentDay(NamedTuple):
    id: int
    published: bool
    note: str
    updated_at: dt.datetime
    wfm_hash: str


@dataclass(slots=True)
class DayDiff:
    """A plan against a day. `kept` and `created` are specs carrying the ids they will have (a new
    one's id is None until it is known); `updated` are the kept ones whose content changes; `removed`
    the ids that go. `same`: nothing of the day's content changes; `visible`: the agent would see it
    (the activities' origins aside)."""

    plan: DayPlan
    day: CurrentDay | None  # None: a new day
    published: bool
    note: str
    kept: list[ActivitySpec]
    created: list[ActivitySpec]
    updated: list[ActivitySpec]
    removed: list[int]
    before: DaySnapshot
    same: bool
    visible: bool

    def final(self) -> list[ActivitySpec]:
        return sorted(self.kept + self.created, key=_start)


def _start(spec: ActivitySpec) -> dt.datetime:
    return spec.start


def snapshot_activity(activity: CurrentActivity | ActivitySpec, *, id: int) -> ActivitySnapshot:
    return {
        "id": id,
        "activity_code_id": activity.activity_code_id,
        "start": activity.start.astimezone(dt.UTC).isoformat(),
        "end": activity.end.astimezone(dt.UTC).isoformat(),
        "note": activity.note,
        "source": activity.source,
    }


def spec_from_snapshot(snapshot: ActivitySnapshot) -> ActivitySpec:
    return ActivitySpec(
        activity_code_id=snapshot["activity_code_id"],
        start=dt.datetime.fromisoformat(snapshot["start"]),
        end=dt.datetime.fromisoformat(snapshot["end"]),
        note=snapshot["note"],
        source=snapshot["source"],
        id=snapshot["id"],
    )


def day_content(snapshot: DaySnapshot, *, with_source: bool = True) -> tuple:
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


def _spec_content(spec: ActivitySpec, *, with_source: bool = True) -> tuple:
    """One activity's part of `day_content`, from a plan."""
    return (
        spec.start.astimezone(dt.UTC).isoformat(),
        spec.end.astimezone(dt.UTC).isoformat(),
        spec.activity_code_id,
        spec.note,
        spec.source if with_source else "",
    )


def day_diff(
    plan: DayPlan, day: CurrentDay | None, current: Sequence[CurrentActivity], *, reverts: bool = False
) -> DayDiff:
    """The plan against the day as it is (`current`: its activities; none for a new day). A revert
    (`reverts`) puts back rows by the ids the plan names, even ids the day no longer holds."""
    if day is None:
        published = bool(plan.published)
        note = plan.note or ""
        created = (
            list(plan.activities)
            if reverts or all(spec.id is None for spec in plan.activities)
            else [spec._replace(id=None) for spec in plan.activities]
        )
        # Against nothing, any content is a change, and one the agent can see.
        same = not (published or note or created)
        empty: DaySnapshot = {"published": False, "note": "", "activities": []}
        return DayDiff(plan, None, published, note, [], created, [], [], empty, same, not same)
    before: DaySnapshot = {
        "published": day.published,
        "note": day.note,
        "activities": [snapshot_activity(a, id=a.id) for a in current],
    }
    published = day.published if plan.published is None else plan.published
    note = day.note if plan.note is None else plan.note
    kept, created, updated, removed = _match_activities(plan, current, reverts=reverts)
    after = [*kept, *created]
    same = day_content(before) == (published, note, sorted(_spec_content(spec) for spec in after))
    visible = day_content(before, with_source=False) != (
        published,
        note,
        sorted(_spec_content(spec, with_source=False) for spec in after),
    )
    return DayDiff(plan, day, published, note, kept, created, updated, removed, before, same, visible)


def _match_activities(
    plan: DayPlan, current: Sequence[CurrentActivity], *, reverts: bool
) -> tuple[list[ActivitySpec], list[ActivitySpec], list[ActivitySpec], list[int]]:
    """Which of the day's rows stay (kept, some of them updated), which are new, which go; each as a
    spec carrying the id it will have (None: a new row).

    An activity keeps its row, and so its id, when the plan names that id, or when the plan has an
    activity of the same code and times: what points at it (a pending request to edit or cancel it,
    a swap offer) keeps pointing at it through a change of some other part of the day. A revert puts
    back the very rows it replaced, ids included."""
    by_id = {activity.id: activity for activity in current}
    by_content: dict[tuple, list[CurrentActivity]] = defaultdict(list)
    for activity in current:
        by_content[(activity.activity_code_id, activity.start, activity.end)].append(activity)
    kept: list[ActivitySpec] = []
    updated: list[ActivitySpec] = []
    created: list[ActivitySpec] = []
    taken: set[int] = set()
    unnamed: list[ActivitySpec] = []
    for spec in plan.activities:
        if spec.id is not None and spec.id in by_id and spec.id not in taken:
            taken.add(spec.id)
            kept.append(_keep(by_id[spec.id], spec, updated))
        elif spec.id is not None and reverts:
            created.append(spec)
        else:
            unnamed.append(spec)
    for spec in unnamed:
        same = [a for a in by_content[(spec.activity_code_id, spec.start, spec.end)] if a.id not in taken]
        if same:
            taken.add(same[0].id)
            kept.append(_keep(same[0], spec, updated))
        else:
            created.append(spec._replace(id=None))
    removed = [activity.id for activity in current if activity.id not in taken]
    return kept, created, updated, removed


def _keep(activity: CurrentActivity, spec: ActivitySpec, updated: list[ActivitySpec]) -> ActivitySpec:
    spec = spec._replace(id=activity.id)
    if (activity.activity_code_id, activity.start, activity.end, activity.note, activity.source) != (
        spec.activity_code_id,
        spec.start,
        spec.end,
        spec.note,
        spec.source,
    ):
        updated.append(spec)
    return spec


def day_carve(
    activities: Sequence[ActivitySpec], *, start: dt.datetime, end: dt.datetime
) -> list[ActivitySpec]:
    """The activities with the span [start, end) cut out, in order of start: one inside it goes, one
    overlapping an edge is shortened, one around it is split in two. A shortened activity, and the
    first part of a split one, keep their id (what points at the activity keeps pointing at what is
    left of it); the second part of a split is a new activity (id None). Put what fills the span
    (time off, an interval's activity) in it afterwards: the result has room for exactly that."""
    if end <= start:
        raise ValueError("a span to carve ends after it starts")
    carved: list[ActivitySpec] = []
    for spec in activities:
        if spec.end <= start or spec.start >= end:
            carved.append(spec)
            continue
        if spec.start < start:
            carved.append(spec._replace(end=start))
        if spec.end > end:
            rest = spec._replace(start=end)
            # The part before the span kept the id; the part after is another activity.
            carved.append(rest._replace(id=None) if spec.start < start else rest)
    return sorted(carved, key=_start)
