"""The demo's WFM data (`seed_demo`): each organisation's activity codes and approval rules, and six
weeks of days for every agent, as the rows of the WFM export (docs/wfm-export.md) that the sync loads.

Deterministic: a day's content depends only on the agent's external id, its place in the organisation
and the date, never on a random generator or on when the seed runs; today only decides the window
and which days are published. Seeding again is therefore a no-op, and seeding a day later adds one
day at the end and publishes another."""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NotRequired, TypedDict

from django.utils import timezone

from em_agent.models import Agent, Organization, WfmSystem
from schedules.models import (
    ActivityCategory,
    ActivityCode,
    ActivitySource,
    ApprovalRule,
    BlackoutPeriod,
    RequestType,
    RuleAction,
)
from schedules.services import ActivitySpec, DayPlan


class ExportActivity(TypedDict):
    code: str
    start: str  # HH:MM, local
    end: str
    note: NotRequired[str]


class ExportDay(TypedDict):
    agent: str
    date: str  # YYYY-MM-DD, the agent's calendar day
    published: bool
    note: str
    activities: list[ExportActivity]


# The window, in days from the agent's today: a week back and six ahead.
WINDOW_FIRST_DAY = -7
WINDOW_DAYS = 49  # six published weeks and a seventh not yet published
# WFMs publish a few weeks ahead: the window's last week is planned but not yet published.
UNPUBLISHED_LAST_DAYS = 7


@dataclass(frozen=True)
class CodeSpec:
    code: str
    name: str
    category: str
    color: str
    paid: bool = True
    open_for_requests: bool = False
    open_for_time_off: bool = False
    open_for_absence: bool = False


def activity_code_specs(*, wfm_system: str) -> list[CodeSpec]:
    """The codes of a contact centre. Time off is requested with CXone's time-off codes; an IEX
    organisation files absence requests with exception codes instead."""
    iex = wfm_system == WfmSystem.IEX
    return [
        CodeSpec("PHONE", "Phone", ActivityCategory.WORK, "#2E7D32"),
        CodeSpec("EMAIL", "Email", ActivityCategory.WORK, "#1565C0"),
        CodeSpec("CHAT", "Chat", ActivityCategory.WORK, "#00838F"),
        CodeSpec("BREAK", "Break", ActivityCategory.BREAK, "#F9A825"),
        CodeSpec("LUNCH", "Lunch", ActivityCategory.MEAL, "#EF6C00", paid=False),
        CodeSpec("MEETING", "Team meeting", ActivityCategory.MEETING, "#6A1B9A"),
        CodeSpec("TRAINING", "Training", ActivityCategory.TRAINING, "#AD1457", open_for_requests=True),
        CodeSpec("COACHING", "Coaching", ActivityCategory.TRAINING, "#4527A0", open_for_requests=True),
        CodeSpec(
            "VAC",
            "Vacation",
            ActivityCategory.TIME_OFF,
            "#5D4037",
            open_for_time_off=not iex,
            open_for_absence=iex,
        ),
        CodeSpec("SICK", "Sick", ActivityCategory.ABSENCE, "#C62828", open_for_absence=iex),
        # Earned by the organisation's accrual rule (timeoff/demo.py): the WFM exports no balance of it.
        CodeSpec("COMP", "Time in lieu", ActivityCategory.TIME_OFF, "#8D6E63", open_for_time_off=not iex),
        CodeSpec(
            "PERSONAL",
            "Personal",
            ActivityCategory.TIME_OFF,
            "#757575",
            paid=False,
            open_for_time_off=not iex,
            open_for_absence=iex,
        ),
    ]


WORK_CODES = frozenset({"PHONE", "EMAIL", "CHAT"})


@dataclass(frozen=True)
class Flavour:
    """What makes an organisation's days its own: its country's public holidays (month, day, name)
    and the queues its agents are assigned to."""

    holidays: tuple[tuple[int, int, str], ...]
    queues: tuple[str, ...]


DEFAULT_FLAVOUR = Flavour(
    holidays=((1, 1, "New Year's Day"), (12, 25, "Christmas")),
    queues=("Queue: General",),
)
FLAVOURS = {
    "contoso-cxone": Flavour(
        holidays=(
            (1, 1, "New Year's Day"),
            (4, 27, "King's Day"),
            (12, 25, "Christmas"),
            (12, 26, "Second Christmas Day"),
        ),
        queues=("Queue: Billing NL", "Queue: Customer care NL", "Queue: Sales EN"),
    ),
    "fabrikam-iex": Flavour(
        holidays=((1, 1, "New Year's Day"), (7, 4, "Independence Day"), (12, 25, "Christmas")),
        queues=("Queue: Tech support", "Queue: Spanish line", "Queue: Orders"),
    ),
    "northwind-mfa": Flavour(
        holidays=((1, 1, "New Year's Day"), (12, 25, "Christmas"), (12, 26, "Boxing Day")),
        queues=("Queue: Card services", "Queue: Fraud alerts"),
    ),
}

TRAININGS = (
    "Product training: new billing portal",
    "Training: handling complaints",
    "Training: GDPR refresher",
)
RARE_DAY_NOTES = (
    "Fire drill at 11:00",
    "System maintenance after 19:00: use the backup phone list",
    "The site manager visits the floor today",
)


@dataclass(frozen=True)
class ShiftPattern:
    """An agent's usual shift: local start, length including the unpaid lunch, and days off (the
    weekend, or two consecutive days that move on by one each week)."""

    start: dt.time
    minutes: int
    rotating_days_off: bool


# By the agent's place in its organisation (ordered by external id), so colleagues start at
# different times and some cover the weekend.
PATTERNS = (
    ShiftPattern(dt.time(9, 0), 8 * 60 + 30, rotating_days_off=False),
    ShiftPattern(dt.time(8, 0), 9 * 60, rotating_days_off=False),
    ShiftPattern(dt.time(10, 0), 8 * 60 + 30, rotating_days_off=True),
    ShiftPattern(dt.time(12, 0), 8 * 60, rotating_days_off=True),
)


@dataclass(frozen=True)
class Block:
    code: str
    start: int  # minutes after the shift starts
    end: int
    note: str = ""


def _digest(external_id: str, date: dt.date) -> bytes:
    # hashlib, not hash(): Python salts str hashes per process, and the demo must be the same every run.
    return hashlib.sha256(f"{external_id}:{date.isoformat()}".encode()).digest()


def _is_day_off(pattern: ShiftPattern, index: int, date: dt.date) -> bool:
    if not pattern.rotating_days_off:
        return date.weekday() >= 5
    week = (date.toordinal() - 1) // 7  # ordinal 1 is a Monday: the count goes up every Monday
    first = (week + index) % 7
    return date.weekday() in {first, (first + 1) % 7}


def _last_weekday_of_month(date: dt.date, weekday: int) -> bool:
    return date.weekday() == weekday and (date + dt.timedelta(days=7)).month != date.month


def _insert(blocks: list[Block], new: Block) -> list[Block]:
    """Carves `new` out of the work block it falls in."""
    result: list[Block] = []
    for block in blocks:
        if block.code in WORK_CODES and block.start <= new.start and new.end <= block.end:
            if block.start < new.start:
                result.append(replace(block, end=new.start))
            result.append(new)
            if new.end < block.end:
                result.append(replace(block, start=new.end))
        else:
            result.append(block)
    return result


def _shift_blocks(
    *, pattern: ShiftPattern, index: int, flavour: Flavour, date: dt.date, digest: bytes
) -> list[Block]:
    length = pattern.minutes
    # On about a third of the days the agent is held on its own queue, which the note names.
    queue = flavour.queues[index % len(flavour.queues)] if digest[4] % 3 == 0 else ""
    afternoon = ("EMAIL", "CHAT", "PHONE", "PHONE")[digest[3] % 4]
    blocks = [
        Block("PHONE", 0, 120, queue),
        Block("BREAK", 120, 135),
        Block("PHONE", 135, 240, queue),
        Block("LUNCH", 240, 270),
        Block(afternoon, 270, length - 120, queue if afternoon == "PHONE" else ""),
        Block("BREAK", length - 120, length - 105),
        Block("PHONE", length - 105, length, queue),
    ]
    if date.weekday() == 1 and date.day <= 7:
        blocks = _insert(blocks, Block("MEETING", 135, 195, "Monthly team meeting"))
    elif digest[2] < 16:
        blocks = _insert(blocks, Block("TRAINING", 270, 330, TRAININGS[digest[5] % len(TRAININGS)]))
    elif digest[2] < 32:
        blocks = _insert(blocks, Block("COACHING", 270, 300, "1:1 coaching with your supervisor"))
    return blocks


@dataclass(frozen=True)
class DemoDay:
    """A generated day: its note and its blocks in minutes after the local midnight."""

    note: str
    blocks: tuple[Block, ...]


def demo_day(*, external_id: str, index: int, date: dt.date, flavour: Flavour) -> DemoDay:
    """One day of an agent as the WFM plans it: `index` is the agent's place in its organisation."""
    pattern = PATTERNS[index % len(PATTERNS)]
    digest = _digest(external_id, date)
    holiday = next(
        (name for month, day, name in flavour.holidays if (date.month, date.day) == (month, day)), None
    )
    if holiday is not None:
        return DemoDay(note=f"Public holiday: {holiday}", blocks=())
    if _is_day_off(pattern, index, date):
        return DemoDay(note="", blocks=())
    if _last_weekday_of_month(date, 3):
        note = "Team lunch at 12:30"
    elif digest[6] < 8:
        note = RARE_DAY_NOTES[digest[7] % len(RARE_DAY_NOTES)]
    else:
        note = ""
    start = pattern.start.hour * 60 + pattern.start.minute
    return DemoDay(
        note=note,
        blocks=tuple(
            replace(block, start=start + block.start, end=start + block.end)
            for block in _shift_blocks(
                pattern=pattern, index=index, flavour=flavour, date=date, digest=digest
            )
        ),
    )


def _hhmm(minutes: int) -> str:
    # No demo shift runs past midnight: a block's end is on its own day.
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def demo_day_row(
    *, external_id: str, index: int, date: dt.date, published: bool, flavour: Flavour
) -> ExportDay:
    """The day as a row of the export's `schedules.json` (docs/wfm-export.md): local wall-clock
    times, which the sync turns into instants in the agent's zone (09:00 stays 09:00 on a 23- or
    25-hour day; no demo shift touches the small hours a DST change skips)."""
    day = demo_day(external_id=external_id, index=index, date=date, flavour=flavour)
    activities: list[ExportActivity] = []
    for block in day.blocks:
        activity: ExportActivity = {"code": block.code, "start": _hhmm(block.start), "end": _hhmm(block.end)}
        if block.note:
            activity["note"] = block.note
        activities.append(activity)
    return {
        "agent": external_id,
        "date": date.isoformat(),
        "published": published,
        "note": day.note,
        "activities": activities,
    }


def demo_schedule_rows(*, slug: str, agents: Sequence[tuple[str, str]], now: dt.datetime) -> list[ExportDay]:
    """The window of every agent of the organisation `slug`, given as (external id, zone) pairs: a
    week back and six ahead of the agent's today, the last week not yet published. The WFM plans
    agents who have not activated the app too; the sync feeds only the activated ones."""
    flavour = FLAVOURS.get(slug, DEFAULT_FLAVOUR)
    rows: list[ExportDay] = []
    for index, (external_id, zone) in enumerate(sorted(agents)):
        today = timezone.localdate(now, zoneinfo.ZoneInfo(zone))
        for offset in range(WINDOW_FIRST_DAY, WINDOW_FIRST_DAY + WINDOW_DAYS):
            rows.append(
                demo_day_row(
                    external_id=external_id,
                    index=index,
                    date=today + dt.timedelta(days=offset),
                    published=offset < WINDOW_FIRST_DAY + WINDOW_DAYS - UNPUBLISHED_LAST_DAYS,
                    flavour=flavour,
                )
            )
    return rows


def demo_day_plan(
    *,
    agent: Agent,
    index: int,
    date: dt.date,
    published: bool,
    codes: dict[str, int],
    flavour: Flavour,
) -> DayPlan:
    """The same day as a plan for `schedule_days_apply` (the schedule benchmark writes it directly):
    `codes` are the organisation's activity code ids by code."""
    day = demo_day(external_id=agent.external_id, index=index, date=date, flavour=flavour)
    midnight = dt.datetime.combine(date, dt.time(0), tzinfo=agent.zone)
    return DayPlan(
        agent=agent,
        date=date,
        activities=[
            ActivitySpec(
                activity_code_id=codes[block.code],
                start=midnight + dt.timedelta(minutes=block.start),
                end=midnight + dt.timedelta(minutes=block.end),
                note=block.note,
                source=ActivitySource.WFM,
            )
            for block in day.blocks
        ],
        note=day.note,
        published=published,
    )


def demo_activity_codes_upsert(*, organization: Organization) -> dict[str, int]:
    """The codes written directly, for the schedule benchmark; the demo's come through the sync."""
    ids = {}
    for spec in activity_code_specs(wfm_system=organization.wfm_system):
        code, _ = ActivityCode.objects.update_or_create(
            organization=organization,
            code=spec.code,
            defaults={
                "name": spec.name,
                "category": spec.category,
                "color": spec.color,
                "paid": spec.paid,
                "open_for_requests": spec.open_for_requests,
                "open_for_time_off": spec.open_for_time_off,
                "open_for_absence": spec.open_for_absence,
                "active": True,
            },
        )
        ids[spec.code] = code.pk
    return ids


def demo_approval_rules_upsert(*, organization: Organization, codes: dict[str, int], today: dt.date) -> None:
    """Training and coaching asked a day ahead, at most three a day, approve themselves; a supervisor
    decides everything else. Time off is blacked out over Christmas and New Year."""
    for code in ("TRAINING", "COACHING"):
        ApprovalRule.objects.update_or_create(
            organization=organization,
            request_type=RequestType.SCHEDULE,
            activity_code_id=codes[code],
            defaults={
                "action": RuleAction.AUTO_APPROVE,
                "min_lead_hours": 24,
                "max_per_day": 3,
                "when_conditions_fail": RuleAction.MANUAL,
                "priority": 10,
                "active": True,
            },
        )
    for request_type in RequestType.values:
        ApprovalRule.objects.update_or_create(
            organization=organization,
            request_type=request_type,
            activity_code=None,
            defaults={
                "action": RuleAction.MANUAL,
                "min_lead_hours": None,
                "max_per_day": None,
                "when_conditions_fail": RuleAction.MANUAL,
                "priority": 100,
                "active": True,
            },
        )
    # The coming holidays, or the current ones on New Year's Day itself.
    year = today.year - 1 if (today.month, today.day) == (1, 1) else today.year
    BlackoutPeriod.objects.update_or_create(
        organization=organization,
        start_date=dt.date(year, 12, 24),
        end_date=dt.date(year + 1, 1, 1),
        defaults={
            "reason": "Christmas and New Year",
            "applies_to_schedule": False,
            "applies_to_time_off": True,
            "applies_to_swap": False,
        },
    )
