"""Who may take a shift: every rule of the organisation's swap settings, for one pair (an offer to a
colleague, an accept re-checked in its transaction) or for a whole organisation's candidates at once
(`GET /swaps/candidates`), in the same fixed number of queries whatever the number of candidates.

A shift is the agent's activities of one local day (the whole day). Both sides are checked: the
taker takes the offered shift, and in a swap the requester takes the taker's shift back, so the
skills, hours, rest and overlap rules apply to each agent with the day it would get.

The shift's required skills are those of the agent the WFM scheduled on it (the WFM plans a shift
for its agent's skills; activity codes carry none). A day under pending or approved time off of
either agent (timeoff's TimeOffDay) is `time_off`: the shift given away there is the one time off
frees, and a shift taken onto it would be worked during time off."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateField,
    DurationField,
    Exists,
    F,
    FloatField,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils.translation import gettext as _
from rest_framework import status

from em_agent.exceptions import ApplicationError
from em_agent.localtime import local_day_bounds
from em_agent.messages import day_text
from em_agent.models import Agent, AgentSkill
from schedules.models import Activity, ScheduleDay
from swaps.models import LIVE, SkillMatching, Swap, SwapKind, SwapSettings, UnequalPaidTime
from timeoff.models import HOLDING, TimeOffDay

# The stable codes, in the order a list of violations shows them.
CODES = (
    "shift_not_published",
    "shift_in_past",
    "lead_time",
    "no_shift",
    "has_shift",
    "overlap",
    "skill_missing",
    "skill_level_lower",
    "max_daily_hours",
    "max_weekly_hours",
    "min_rest",
    "length_difference",
    "not_tradable_activity",
    "time_off",
    "different_team",
    "open_offer_limit",
)
_ORDER = {code: index for index, code in enumerate(CODES)}


class Violation(NamedTuple):
    code: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


class ShiftActivity(NamedTuple):
    id: int
    activity_code_id: int
    code: str
    name: str
    category: str
    color: str
    paid: bool
    start: dt.datetime
    end: dt.datetime
    note: str
    # The local day it belongs to (the day it starts on, in its agent's zone): read with it, so the
    # rules never convert instants to local dates per candidate.
    day: dt.date


@dataclass(frozen=True)
class Shift:
    """An agent's activities of one local day, in start order."""

    agent_id: int
    date: dt.date
    activities: tuple[ShiftActivity, ...]
    published: bool = True

    @property
    def start(self) -> dt.datetime:
        return self.activities[0].start

    @cached_property
    def end(self) -> dt.datetime:
        return max(activity.end for activity in self.activities)

    @cached_property
    def paid_hours(self) -> Decimal:  # the offered shift's, asked once per candidate
        return _hours(activity for activity in self.activities if activity.paid)

    def snapshot(self) -> dict:
        """As a swap keeps it (JSON, instants in UTC)."""
        return {
            "date": self.date.isoformat(),
            "published": self.published,
            "activities": [
                {
                    "id": activity.id,
                    "activity_code_id": activity.activity_code_id,
                    "code": activity.code,
                    "name": activity.name,
                    "category": activity.category,
                    "color": activity.color,
                    "paid": activity.paid,
                    "start": activity.start.astimezone(dt.UTC).isoformat(),
                    "end": activity.end.astimezone(dt.UTC).isoformat(),
                    "note": activity.note,
                }
                for activity in self.activities
            ],
        }

    def same_as(self, snapshot: dict | None) -> bool:
        """Still what the snapshot recorded: the same activities, codes and times."""
        if snapshot is None:
            return not self.activities
        kept = [(a["id"], a["activity_code_id"], a["start"], a["end"]) for a in snapshot["activities"]]
        now = [
            (
                a.id,
                a.activity_code_id,
                a.start.astimezone(dt.UTC).isoformat(),
                a.end.astimezone(dt.UTC).isoformat(),
            )
            for a in self.activities
        ]
        return kept == now


def _hours(activities: Iterable[ShiftActivity]) -> Decimal:
    return _hours_of(sum((activity.end - activity.start).total_seconds() for activity in activities))


def _hours_of(seconds: float) -> Decimal:
    return (Decimal(seconds) / 3600).quantize(Decimal("0.01"))


def _fmt(hours: Decimal) -> str:
    return format(hours.normalize(), "f")


_ACTIVITY_FIELDS = (
    "id",
    "agent_id",
    "activity_code_id",
    "activity_code__code",
    "activity_code__name",
    "activity_code__category",
    "activity_code__color",
    "activity_code__paid",
    "start_seconds",
    "end_seconds",
    "note",
    "day__date",
)


def _rows(queryset: QuerySet) -> list[tuple]:
    """The rows of a values_list queryset as the driver reads them, without Django's converters
    (a Python call per value of a float annotation: a fifth of a large organisation's candidates
    call). Only for columns whose driver type is already the field's: ints, floats, text, bools
    and dates (on PostgreSQL: the demo's SQLite returns dates as text, so there Django converts)."""
    if connection.vendor != "postgresql":
        return list(queryset)
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _activity_rows(activities: QuerySet[Activity]) -> list[tuple]:
    # The instants as seconds: see _Epoch.
    return _rows(
        activities.annotate(start_seconds=_Epoch("start"), end_seconds=_Epoch("end")).values_list(
            *_ACTIVITY_FIELDS
        )
    )


def _activity(row) -> tuple[int, ShiftActivity]:
    pk, agent_id, code_id, code, name, category, color, paid, start, end, note, day = row
    start, end = dt.datetime.fromtimestamp(start, dt.UTC), dt.datetime.fromtimestamp(end, dt.UTC)
    return agent_id, ShiftActivity(pk, code_id, code, name, category, color, paid, start, end, note, day)


def shift_of(*, agent: Agent, date: dt.date, lock: bool = False) -> Shift:
    """The agent's shift on its local day `date` (no activities: a day off), in two queries."""
    activities = Activity.objects.of_agent(agent.pk).filter(day__date=date).order_by("start")
    if lock:
        activities = activities.select_for_update(of=("self",))
    rows = [_activity(row)[1] for row in _activity_rows(activities)]
    published = ScheduleDay.objects.filter(agent=agent, date=date, published=True).exists()
    return Shift(agent.pk, date, tuple(rows), published)


@dataclass
class Timeline:
    """What the rules need of one agent around the swap's days: its skills, its published days and
    days under time off, and its activities. The requester's are every activity in the window; a
    taker's are only its shift on their_date, with `around`: its other activities of the window
    measured against the offered shift, summed up in SQL (`_takers_around`)."""

    activities: list[ShiftActivity] = field(default_factory=list)
    skills: dict[int, int] = field(default_factory=dict)  # skill id -> level
    published: set[dt.date] = field(default_factory=set)
    time_off: set[dt.date] = field(default_factory=set)  # days under pending or approved time off
    around: _Around | None = None

    def day(self, agent: Agent, date: dt.date, published: bool | None = None) -> Shift:
        mine = tuple(a for a in self.activities if a.day == date)
        return Shift(agent.pk, date, mine, date in self.published if published is None else published)


@dataclass
class Candidate:
    agent: Agent
    shift: Shift | None  # its shift on their_date (a swap), or None (a give-away)
    violations: list[Violation]

    @property
    def eligible(self) -> bool:
        return not self.violations


def _week(date: dt.date) -> tuple[dt.date, dt.date]:
    monday = date - dt.timedelta(days=date.weekday())
    return monday, monday + dt.timedelta(days=6)


class SwapCheck:
    """The rules of one offer, for any number of takers: `evaluate` in a fixed number of queries."""

    def __init__(
        self,
        *,
        rules: SwapSettings,
        requester: Agent,
        offered: Shift,
        kind: str,
        their_date: dt.date | None,
        now: dt.datetime,
        count_offers: bool,
        not_tradable: set[int] | None = None,
    ) -> None:
        self.rules = rules
        self.requester = requester
        self.offered = offered
        self.kind = kind
        self.their_date = their_date
        self.now = now
        self.count_offers = count_offers
        self.not_tradable = (
            not_tradable
            if not_tradable is not None
            else set(rules.not_tradable_codes.values_list("pk", flat=True))
            if rules.pk
            else set()
        )

    # --- what depends on the offered shift only -------------------------------------------------

    def _shift_rules(self, shift: Shift | None, *, whose: str) -> list[Violation]:
        found: list[Violation] = []
        if shift is None or not shift.activities:
            return found
        if not shift.published:
            found.append(
                Violation(
                    "shift_not_published",
                    _("The shift of %(whose)s is not published yet.") % {"whose": whose},
                )
            )
        if shift.start <= self.now:
            found.append(
                Violation("shift_in_past", _("The shift of %(whose)s has started.") % {"whose": whose})
            )
        elif shift.start - self.now < dt.timedelta(hours=self.rules.min_lead_hours):
            found.append(
                Violation(
                    "lead_time",
                    _("The shift of %(whose)s starts in less than %(hours)d hours.")
                    % {"whose": whose, "hours": self.rules.min_lead_hours},
                )
            )
        codes = sorted({a.code for a in shift.activities if a.activity_code_id in self.not_tradable})
        if codes:
            found.append(
                Violation(
                    "not_tradable_activity",
                    _("The shift of %(whose)s has activities that cannot be swapped: %(codes)s.")
                    % {"whose": whose, "codes": ", ".join(codes)},
                )
            )
        return found

    def requester_violations(self) -> list[Violation]:
        found = self._shift_rules(self.offered, whose=self.requester.name)
        if self.offered.activities and _time_off_days(
            agent_ids=[self.requester.pk], dates=[self.offered.date]
        ):
            found.append(_time_off_violation(self.requester.name, self.offered.date))
        if self.count_offers:
            live = Swap.objects.filter(requester=self.requester, status__in=LIVE).count()
            if live >= self.rules.max_open_offers_per_agent:
                found.append(
                    Violation(
                        "open_offer_limit",
                        _("%(name)s already has %(count)d open swap offers, the most allowed.")
                        % {"name": self.requester.name, "count": live},
                    )
                )
        return found

    # --- per taker -------------------------------------------------------------------------------

    def narrow(self, pool: QuerySet[Agent]) -> QuerySet[Agent]:
        """`pool` without the colleagues SQL can tell are not eligible (a rule they certainly
        break: no published shift that day far enough ahead, or one with a code that cannot be
        swapped, a shift where a give-away goes, the skills, time off on the day), so that only
        the others are evaluated. Never drops an eligible one: `evaluate` decides for the rest."""
        if not self.offered.activities:
            return pool.none()
        rules, their_date = self.rules, self.their_date
        mine = dict(AgentSkill.objects.filter(agent=self.requester).values_list("skill_id", "level"))
        skill_rows = AgentSkill.objects.filter(agent=OuterRef("pk"))
        # The taker needs the requester's skills (the shift is planned for them)...
        for skill_id, level in mine.items():
            enough = {} if rules.skill_matching == SkillMatching.SAME else {"level__gte": level}
            pool = pool.filter(Exists(skill_rows.filter(skill_id=skill_id, **enough)))
        if rules.skill_matching == SkillMatching.SAME:
            pool = pool.exclude(Exists(skill_rows.exclude(skill_id__in=list(mine))))
        if self.kind == SwapKind.SWAP and their_date is not None:
            # ... and in a swap the requester the taker's, at the taker's level or higher.
            if rules.skill_matching == SkillMatching.AT_LEAST:
                higher = Q()
                for skill_id, level in mine.items():
                    higher |= Q(skill_id=skill_id, level__gt=level)
                pool = pool.exclude(Exists(skill_rows.filter(~Q(skill_id__in=list(mine)) | higher)))
            # A day's first_start is its first activity's start (the schedule service keeps it).
            lead = self.now + dt.timedelta(hours=rules.min_lead_hours)
            pool = pool.filter(
                Exists(
                    ScheduleDay.objects.filter(
                        agent=OuterRef("pk"), date=their_date, published=True, first_start__gte=lead
                    )
                )
            ).exclude(
                Exists(
                    TimeOffDay.objects.filter(
                        agent=OuterRef("pk"), date=their_date, request__status__in=HOLDING
                    )
                )
            )
            if self.not_tradable:
                pool = pool.exclude(
                    Exists(
                        Activity.objects.filter(
                            agent=OuterRef("pk"),
                            day__agent=OuterRef("pk"),  # see ActivityQuerySet.of_agent
                            day__date=their_date,
                            activity_code_id__in=sorted(self.not_tradable),
                        )
                    )
                )
        else:
            # A give-away goes to a colleague free on its local day of the shift, in its zone.
            free = Q()
            for zone_name in pool.order_by().values_list("timezone", flat=True).distinct():
                day = self.offered.start.astimezone(ZoneInfo(zone_name)).date()
                free |= (
                    Q(timezone=zone_name)
                    & ~Exists(
                        ScheduleDay.objects.filter(agent=OuterRef("pk"), date=day, first_start__isnull=False)
                    )
                    & ~Exists(
                        TimeOffDay.objects.filter(agent=OuterRef("pk"), date=day, request__status__in=HOLDING)
                    )
                )
            pool = pool.filter(free) if free else pool.none()
        return pool

    def evaluate(self, candidates: Sequence[Agent]) -> list[Candidate]:
        """Every rule for each candidate, in a fixed number of queries however many there are."""
        base = self.requester_violations()
        mine, timelines = self._timelines(candidates)
        self._requester_around: dict[tuple[dt.datetime, dt.datetime], _Around] = {}
        results = []
        for candidate in candidates:
            theirs = timelines[candidate.pk]
            violations = list(base) + self._pair(candidate, theirs, mine)
            violations.sort(key=lambda violation: _ORDER[violation.code])
            shift = (
                theirs.day(candidate, self.their_date)
                if self.kind == SwapKind.SWAP and self.their_date
                else None
            )
            results.append(Candidate(candidate, shift, violations))
        return results

    def _window(self) -> tuple[dt.datetime, dt.datetime]:
        dates = [self.offered.date] + ([self.their_date] if self.their_date else [])
        weeks = [_week(date) for date in dates]
        first = min(monday for monday, _sunday in weeks)
        last = max(sunday for _monday, sunday in weeks)
        zone = self.requester.zone
        # A day around the weeks: the rest before Monday's shift and after Sunday's, in any zone.
        return (
            local_day_bounds(first, zone)[0] - dt.timedelta(days=1),
            local_day_bounds(last, zone)[1] + dt.timedelta(days=1),
        )

    def _timelines(self, candidates: Sequence[Agent]) -> tuple[Timeline, dict[int, Timeline]]:
        """The requester's timeline and each candidate's. A candidate's other activities come as
        the few sums the rules need (`_takers_around`): a large organisation's window holds a
        hundred rows per colleague."""
        mine = Timeline()
        timelines: dict[int, Timeline] = {agent.pk: Timeline() for agent in candidates}
        ids = list(timelines)
        begin, end = self._window()
        window = Activity.objects.filter(start__gte=begin, start__lt=end)
        for row in _activity_rows(window.filter(agent_id=self.requester.pk).order_by("start")):
            mine.activities.append(_activity(row)[1])
        if ids and self.offered.activities:
            # The days' agents too (the same ones) and dates (any zone's local dates of the window's
            # instants): the planner then reads those days by index instead of hashing every day of
            # the organisation to join them.
            begin_day, end_day = begin.date() - dt.timedelta(days=1), end.date() + dt.timedelta(days=1)
            theirs = window.filter(
                _OneOf("agent_id", ids), _OneOf("day__agent_id", ids), day__date__range=(begin_day, end_day)
            )
            if self.kind == SwapKind.SWAP and self.their_date:
                for row in _activity_rows(theirs.filter(day__date=self.their_date).order_by("start")):
                    agent_id, activity = _activity(row)
                    timelines[agent_id].activities.append(activity)
                # The shift given back is never compared with the one taken for it.
                theirs = theirs.exclude(day__date=self.their_date)
            zones = {agent.timezone: agent.zone for agent in candidates}
            for agent_id, summed in _takers_around(theirs, gets=self.offered, zones=zones):
                timelines[agent_id].around = summed
        everyone = {**timelines, self.requester.pk: mine}
        for agent_id, skill_id, level in _rows(
            AgentSkill.objects.filter(_OneOf("agent_id", everyone)).values_list(
                "agent_id", "skill_id", "level"
            )
        ):
            everyone[agent_id].skills[skill_id] = level
        dates = {self.offered.date, *([self.their_date] if self.their_date else [])}
        # The taker's day of the offered shift may be another local date in another zone.
        if self.offered.activities:
            zones = {agent.timezone: agent.zone for agent in [self.requester, *candidates]}
            dates |= {self.offered.start.astimezone(zone).date() for zone in zones.values()}
        for agent_id, date in _rows(
            ScheduleDay.objects.filter(
                _OneOf("agent_id", everyone), date__in=sorted(dates), published=True
            ).values_list("agent_id", "date")
        ):
            everyone[agent_id].published.add(date)
        # The days either side too: a shift lands on another local date in another zone.
        either_side = {date + dt.timedelta(days=offset) for date in dates for offset in (-1, 0, 1)}
        for agent_id, date in _time_off_days(agent_ids=list(everyone), dates=either_side):
            everyone[agent_id].time_off.add(date)
        return mine, timelines

    def _pair(self, taker: Agent, theirs: Timeline, mine: Timeline) -> list[Violation]:
        rules = self.rules
        found: list[Violation] = []
        if rules.same_team_only and (taker.team_id is None or taker.team_id != self.requester.team_id):
            found.append(
                Violation("different_team", _("%(name)s is in another team.") % {"name": taker.name})
            )
        offered = self.offered
        if not offered.activities:
            return found
        taken_day = offered.start.astimezone(taker.zone).date()
        asked: Shift | None = None
        if self.kind == SwapKind.SWAP:
            if self.their_date is None:
                raise ValueError("a swap takes a shift back on their_date")
            asked = theirs.day(taker, self.their_date)
            if not asked.activities:
                found.append(
                    Violation(
                        "no_shift", _("%(name)s has no shift on that day to swap.") % {"name": taker.name}
                    )
                )
                asked = None
            else:
                found += self._shift_rules(asked, whose=taker.name)
        elif theirs.around is not None and theirs.around.on_day:
            found.append(Violation("has_shift", _("%(name)s already works that day.") % {"name": taker.name}))
        if taken_day in theirs.time_off:
            found.append(_time_off_violation(taker.name, taken_day))
        if asked is not None:
            received = asked.start.astimezone(self.requester.zone).date()
            if asked.date in theirs.time_off and asked.date != taken_day:
                found.append(_time_off_violation(taker.name, asked.date))
            if received in mine.time_off and received != offered.date:
                found.append(_time_off_violation(self.requester.name, received))
        # The taker gets the offered shift in place of its own; the requester the asked one.
        found += self._takes(
            gets=offered,
            around=theirs.around or _NOTHING_AROUND,
            skills=theirs.skills,
            skills_of=mine.skills,
            whose=taker.name,
        )
        if asked is not None:
            found += self._takes(
                gets=asked,
                around=self._around_requester(mine, gets=asked),
                skills=mine.skills,
                skills_of=theirs.skills,
                whose=self.requester.name,
            )
            difference = abs(offered.paid_hours - asked.paid_hours)
            if rules.unequal_paid_time == UnequalPaidTime.REFUSE and difference:
                found.append(
                    Violation(
                        "length_difference",
                        _("The shifts' paid hours differ (%(a)s and %(b)s hours); they must be equal.")
                        % {"a": _fmt(offered.paid_hours), "b": _fmt(asked.paid_hours)},
                    )
                )
            elif (
                rules.max_length_difference_hours is not None
                and difference > rules.max_length_difference_hours
            ):
                found.append(
                    Violation(
                        "length_difference",
                        _("The shifts' paid hours differ by %(hours)s hours, more than the %(max)s allowed.")
                        % {"hours": _fmt(difference), "max": _fmt(rules.max_length_difference_hours)},
                    )
                )
        return _unique(found)

    def _around_requester(self, mine: Timeline, *, gets: Shift) -> _Around:
        """The requester's other activities around a taker's shift (it gives the offered one away);
        the same for every taker whose shift has the same times, so counted once for them."""
        key = (gets.start, gets.end)
        if key not in self._requester_around:
            given = {a.id for a in self.offered.activities}
            after = [a for a in mine.activities if a.id not in given]
            self._requester_around[key] = around_of(after, gets=gets, zone=self.requester.zone)
        return self._requester_around[key]

    def _takes(
        self,
        *,
        gets: Shift,
        around: _Around,
        skills: dict[int, int],
        skills_of: dict[int, int],
        whose: str,
    ) -> list[Violation]:
        """The rules for an agent (with `skills`, and `around` its other activities) ending up with
        `gets`, a shift of the agent with `skills_of`."""
        rules = self.rules
        found: list[Violation] = []
        if around.overlap:
            found.append(
                Violation("overlap", _("The shift overlaps other activities of %(name)s.") % {"name": whose})
            )
        missing = [skill for skill in skills_of if skill not in skills]
        lower = [skill for skill, level in skills_of.items() if skill in skills and skills[skill] < level]
        if missing or (rules.skill_matching == SkillMatching.SAME and set(skills) != set(skills_of)):
            found.append(
                Violation("skill_missing", _("%(name)s lacks skills the shift needs.") % {"name": whose})
            )
        if lower and rules.skill_matching == SkillMatching.AT_LEAST:
            found.append(
                Violation(
                    "skill_level_lower",
                    _("%(name)s has a lower level in skills the shift needs.") % {"name": whose},
                )
            )
        paid = sum((a.end - a.start).total_seconds() for a in gets.activities if a.paid)
        # Hours are compared as the rule states them (rounded to 0.01 h) only when the seconds
        # exceed the limit: at or under it they cannot round over it.
        daily_seconds = around.day_seconds + paid
        daily = _hours_of(daily_seconds) if daily_seconds > float(rules.max_daily_hours) * 3600 else None
        if daily is not None and daily > rules.max_daily_hours:
            found.append(
                Violation(
                    "max_daily_hours",
                    _("%(name)s would work %(hours)s hours that day, more than the %(max)s allowed.")
                    % {"name": whose, "hours": _fmt(daily), "max": _fmt(rules.max_daily_hours)},
                )
            )
        weekly_seconds = around.week_seconds + paid
        weekly = _hours_of(weekly_seconds) if weekly_seconds > float(rules.max_weekly_hours) * 3600 else None
        if weekly is not None and weekly > rules.max_weekly_hours:
            found.append(
                Violation(
                    "max_weekly_hours",
                    _("%(name)s would work %(hours)s hours that week, more than the %(max)s allowed.")
                    % {"name": whose, "hours": _fmt(weekly), "max": _fmt(rules.max_weekly_hours)},
                )
            )
        rest = dt.timedelta(hours=float(rules.min_rest_hours))
        gaps = ([gets.start - around.rest_from] if around.rest_from is not None else []) + (
            [around.rest_until - gets.end] if around.rest_until is not None else []
        )
        shortest = min(gaps, default=None)
        if shortest is not None and shortest < rest:
            found.append(
                Violation(
                    "min_rest",
                    _(
                        "%(name)s would rest only %(hours)s hours between shifts, less than the %(min)s required."
                    )
                    % {
                        "name": whose,
                        "hours": _fmt((Decimal(shortest.total_seconds()) / 3600).quantize(Decimal("0.01"))),
                        "min": _fmt(rules.min_rest_hours),
                    },
                )
            )
        return found


class _Around(NamedTuple):
    """An agent's other activities around a shift it would get, as the rules need them."""

    overlap: bool
    day_seconds: float  # paid, on the shift's local day (the agent's zone)
    week_seconds: float  # paid, in the shift's week (Monday to Sunday, the agent's zone)
    rest_from: dt.datetime | None  # the last end before the shift, of another day's activity
    rest_until: dt.datetime | None  # the first start after it, of another day's activity
    on_day: bool  # it has activities on the shift's local day


_NOTHING_AROUND = _Around(False, 0.0, 0.0, None, None, False)


def around_of(activities: Sequence[ShiftActivity], *, gets: Shift, zone: ZoneInfo) -> _Around:
    """_Around counted in Python from the agent's other activities (the requester's; SwapCheck
    counts the takers' in SQL, `_takers_around`, and a test holds the two to the same answers)."""
    day = gets.start.astimezone(zone).date()
    monday, sunday = _week(day)
    start, end = gets.start, gets.end
    others = [a for a in activities if a.day != day]
    return _Around(
        any(a.start < end and start < a.end for a in activities),
        sum((a.end - a.start).total_seconds() for a in activities if a.paid and a.day == day),
        sum((a.end - a.start).total_seconds() for a in activities if a.paid and monday <= a.day <= sunday),
        max((a.end for a in others if a.end <= start), default=None),
        min((a.start for a in others if a.start >= end), default=None),
        any(a.day == day for a in activities),
    )


class _Epoch(Func):
    """An instant or a duration as seconds (a float, which psycopg reads in C; an aware datetime
    goes through Django's loader in Python, ~10 us each, which dominated a large organisation's
    candidates)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra):
        # The demo's database: a duration is its microseconds there, an instant UTC text; julianday's
        # double is exact to well under a millisecond, so rounding to one gives the seconds exactly.
        (source,) = self.get_source_expressions()
        if isinstance(source.output_field, DurationField):
            return self.as_sql(compiler, connection, template="(%(expressions)s / 1000000.0)", **extra)
        return self.as_sql(
            compiler,
            connection,
            template="ROUND((julianday(%(expressions)s) - 2440587.5) * 86400.0, 3)",
            **extra,
        )


class _OneOf(Func):
    """`field = ANY(%s)`, the ids one array parameter: a few hundred ids as as many parameters
    cost more to build, bind and parse than the query itself takes to run (and the list is passed
    as it is: an ArrayField value would prepare each id in Python)."""

    output_field = BooleanField()

    def __init__(self, field: str, ids: Iterable[int]) -> None:
        super().__init__(F(field))
        self.ids = [int(pk) for pk in ids]

    def as_sql(self, compiler, connection, **extra):
        field, params = compiler.compile(self.get_source_expressions()[0])
        return f"{field} = ANY(%s::bigint[])", [*params, self.ids]

    def as_sqlite(self, compiler, connection, **extra):
        # The demo's database has no arrays: a plain list (SQLite takes an empty one too).
        field, params = compiler.compile(self.get_source_expressions()[0])
        return f"{field} IN ({', '.join(['%s'] * len(self.ids))})", [*params, *self.ids]


def _instant(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def _takers_around(
    activities: QuerySet[Activity], *, gets: Shift, zones: dict[str, ZoneInfo]
) -> Iterable[tuple[int, _Around]]:
    """around_of in SQL for many agents at once, one row each: (agent id, _Around). `zones`: the
    agents' zones by name (the shift's local day is each zone's own)."""

    def by_zone(values: dict[str, dt.date]):
        if len(set(values.values())) == 1:
            return Value(next(iter(values.values())), output_field=DateField())
        return Case(
            *[When(agent__timezone=name, then=Value(value)) for name, value in values.items()],
            output_field=DateField(),
        )

    days = {name: gets.start.astimezone(zone).date() for name, zone in zones.items()}
    day = by_zone(days)
    monday = by_zone({name: _week(date)[0] for name, date in days.items()})
    sunday = by_zone({name: _week(date)[1] for name, date in days.items()})
    seconds = _Epoch(F("end") - F("start"))
    paid = Q(activity_code__paid=True)
    rows = (
        activities.order_by()
        .values("agent_id")
        .annotate(
            overlap=Count("id", filter=Q(start__lt=gets.end, end__gt=gets.start)),
            day_seconds=Sum(seconds, filter=paid & Q(day__date=day)),
            week_seconds=Sum(seconds, filter=paid & Q(day__date__gte=monday, day__date__lte=sunday)),
            rest_from=Max(_Epoch("end"), filter=Q(end__lte=gets.start) & ~Q(day__date=day)),
            rest_until=Min(_Epoch("start"), filter=Q(start__gte=gets.end) & ~Q(day__date=day)),
            on_day=Count("id", filter=Q(day__date=day)),
        )
        .values_list(
            "agent_id", "overlap", "day_seconds", "week_seconds", "rest_from", "rest_until", "on_day"
        )
    )
    for agent_id, overlap, day_seconds, week_seconds, rest_from, rest_until, on_day in _rows(rows):
        yield (
            agent_id,
            _Around(
                overlap > 0,
                day_seconds or 0.0,
                week_seconds or 0.0,
                _instant(rest_from),
                _instant(rest_until),
                on_day > 0,
            ),
        )


def _time_off_days(*, agent_ids: Iterable[int], dates: Iterable[dt.date]) -> set[tuple[int, dt.date]]:
    """(agent id, date) of the given agents' days under pending or approved time off."""
    return set(
        _rows(
            TimeOffDay.objects.filter(
                _OneOf("agent_id", agent_ids), date__in=sorted(set(dates)), request__status__in=HOLDING
            ).values_list("agent_id", "date")
        )
    )


def _time_off_violation(name: str, date: dt.date) -> Violation:
    return Violation(
        "time_off",
        _("%(name)s has time off on %(date)s (pending or approved).")
        % {"name": name, "date": day_text(date)},
    )


def _unique(violations: list[Violation]) -> list[Violation]:
    return list(dict.fromkeys(violations))


def candidate_pool(*, requester: Agent, rules: SwapSettings, include_other_teams: bool) -> QuerySet[Agent]:
    """The colleagues an offer may go to: activated agents of the organisation (of the team, when the
    organisation keeps swaps within teams and `include_other_teams` is off)."""
    pool = (
        Agent.objects.filter(
            organization_id=requester.organization_id, activated_at__isnull=False, user__is_active=True
        )
        .exclude(pk=requester.pk)
        .only("id", "name", "timezone", "team_id", "organization_id", "user_id", "language")
        .order_by("name", "id")
    )
    if rules.same_team_only and not include_other_teams:
        pool = pool.filter(Q(team_id=requester.team_id) if requester.team_id else Q(pk__in=[]))
    return pool


class NotEligible(ApplicationError):
    """409 `not_eligible` with the violations that stop the swap (the API adds them to the body)."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        super().__init__(
            "not_eligible",
            _("This swap is not allowed: %(reasons)s") % {"reasons": " ".join(v.detail for v in violations)},
            status_code=status.HTTP_409_CONFLICT,
        )
        self.violations = [violation.as_dict() for violation in violations]


def no_shift_offered(check: SwapCheck) -> None:
    """Nothing to offer: the requester has no shift that day (409 not_eligible, `no_shift`)."""
    if not check.offered.activities:
        raise NotEligible([Violation("no_shift", _("You have no shift on that day to offer."))])
