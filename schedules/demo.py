"""The demo's schedules (`seed_demo`): each organisation's activity codes and approval rules, and six
weeks of days for every activated agent, as a WFM would publish them.

Deterministic: a day's content depends only on the agent's external id, its place in the organisation
and the date, never on a random generator or on when the seed runs; today only decides the window
and which days are published. Seeding again is therefore a no-op, and seeding a day later adds one
day at the end and publishes another."""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from dataclasses import dataclass, replace

from django.db import transaction
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
    ScheduleChange,
)
from schedules.services import ActivitySpec, DayPlan, schedule_days_apply

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


@dataclass(frozen=True)
class DemoScheduleResult:
    agents: int
    days: int
    working_days: int
    activities: int
    changed_days: int
    kept_days: int  # days a request, time off or swap changed since: left as they are


def _digest(agent: Agent, date: dt.date) -> bytes:
    # hashlib, not hash(): Python salts str hashes per process, and the demo must be the same every run.
    return hashlib.sha256(f"{agent.external_id}:{date.isoformat()}".encode()).digest()


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


def demo_day_plan(
    *,
    agent: Agent,
    index: int,
    date: dt.date,
    published: bool,
    codes: dict[str, int],
    flavour: Flavour,
) -> DayPlan:
    """One day of an agent as the WFM would publish it: `index` is the agent's place in its
    organisation, `codes` the organisation's activity code ids by code."""
    pattern = PATTERNS[index % len(PATTERNS)]
    digest = _digest(agent, date)
    holiday = next(
        (name for month, day, name in flavour.holidays if (date.month, date.day) == (month, day)), None
    )
    if holiday is not None:
        return DayPlan(
            agent=agent, date=date, activities=[], note=f"Public holiday: {holiday}", published=published
        )
    if _is_day_off(pattern, index, date):
        return DayPlan(agent=agent, date=date, activities=[], note="", published=published)
    if _last_weekday_of_month(date, 3):
        note = "Team lunch at 12:30"
    elif digest[6] < 8:
        note = RARE_DAY_NOTES[digest[7] % len(RARE_DAY_NOTES)]
    else:
        note = ""
    # Wall-clock arithmetic on the local midnight: 09:00 stays 09:00 on a 23- or 25-hour day, and the
    # service stores the UTC instants. No demo shift touches the small hours a DST change skips.
    midnight = dt.datetime.combine(date, dt.time(0), tzinfo=agent.zone)
    start = pattern.start.hour * 60 + pattern.start.minute
    return DayPlan(
        agent=agent,
        date=date,
        activities=[
            ActivitySpec(
                activity_code_id=codes[block.code],
                start=midnight + dt.timedelta(minutes=start + block.start),
                end=midnight + dt.timedelta(minutes=start + block.end),
                note=block.note,
                source=ActivitySource.WFM,
            )
            for block in _shift_blocks(
                pattern=pattern, index=index, flavour=flavour, date=date, digest=digest
            )
        ],
        note=note,
        published=published,
    )


def demo_activity_codes_upsert(*, organization: Organization) -> dict[str, int]:
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


@transaction.atomic
def demo_schedules_seed(*, organization: Organization, now: dt.datetime) -> DemoScheduleResult:
    """Creates or refreshes the organisation's activity codes and approval rules, and the six-week
    window of every activated agent (the WFM sync feeds activated agents only) in one set-based
    write, without notifications. A day that an approved request, time off or a swap changed since is
    kept as it is, as the sync keeps local changes."""
    codes = demo_activity_codes_upsert(organization=organization)
    org_today = timezone.localdate(now, zoneinfo.ZoneInfo(organization.default_timezone))
    demo_approval_rules_upsert(organization=organization, codes=codes, today=org_today)
    flavour = FLAVOURS.get(organization.slug, DEFAULT_FLAVOUR)

    plans: list[DayPlan] = []
    agents = list(organization.agents.order_by("external_id"))
    for index, agent in enumerate(agents):
        if agent.activated_at is None:
            continue
        today = timezone.localdate(now, agent.zone)
        for offset in range(WINDOW_FIRST_DAY, WINDOW_FIRST_DAY + WINDOW_DAYS):
            plans.append(
                demo_day_plan(
                    agent=agent,
                    index=index,
                    date=today + dt.timedelta(days=offset),
                    published=offset < WINDOW_FIRST_DAY + WINDOW_DAYS - UNPUBLISHED_LAST_DAYS,
                    codes=codes,
                    flavour=flavour,
                )
            )
    if not plans:
        return DemoScheduleResult(agents=0, days=0, working_days=0, activities=0, changed_days=0, kept_days=0)

    last_source = {
        (agent_id, date): source
        for agent_id, date, source in ScheduleChange.objects.filter(
            agent__in={plan.agent.pk for plan in plans},
            date__gte=min(plan.date for plan in plans),
            date__lte=max(plan.date for plan in plans),
        )
        .order_by("id")
        .values_list("agent_id", "date", "source")
    }
    wfm_plans = [
        plan
        for plan in plans
        if last_source.get((plan.agent.pk, plan.date), ActivitySource.WFM) == ActivitySource.WFM
    ]
    result = schedule_days_apply(plans=wfm_plans, source=ActivitySource.WFM, reason="demo data", notify=False)
    return DemoScheduleResult(
        agents=len({plan.agent.pk for plan in plans}),
        days=len(wfm_plans),
        working_days=sum(1 for plan in wfm_plans if plan.activities),
        activities=sum(len(plan.activities) for plan in wfm_plans),
        changed_days=len(result.changes),
        kept_days=len(plans) - len(wfm_plans),
    )
