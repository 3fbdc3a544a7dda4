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
from typing import NamedTuple

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from em_agent.localtime import local_day_bounds
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

    @property
    def end(self) -> dt.datetime:
        return max(activity.end for activity in self.activities)

    @property
    def paid_hours(self) -> Decimal:
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
    seconds = sum((activity.end - activity.start).total_seconds() for activity in activities)
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
    "start",
    "end",
    "note",
    "day__date",
)


def _activity(row) -> tuple[int, ShiftActivity]:
    pk, agent_id, code_id, code, name, category, color, paid, start, end, note, day = row
    return agent_id, ShiftActivity(pk, code_id, code, name, category, color, paid, start, end, note, day)


def shift_of(*, agent: Agent, date: dt.date, lock: bool = False) -> Shift:
    """The agent's shift on its local day `date` (no activities: a day off), in two queries."""
    activities = Activity.objects.filter(agent=agent, day__date=date).order_by("start")
    if lock:
        activities = activities.select_for_update(of=("self",))
    rows = [_activity(row)[1] for row in activities.values_list(*_ACTIVITY_FIELDS)]
    published = ScheduleDay.objects.filter(agent=agent, date=date, published=True).exists()
    return Shift(agent.pk, date, tuple(rows), published)


@dataclass
class Timeline:
    """What the rules need of one agent around the swap's days: its activities in a window, the paid
    hours of the weeks concerned, its skills, its published days."""

    activities: list[ShiftActivity] = field(default_factory=list)
    skills: dict[int, int] = field(default_factory=dict)  # skill id -> level
    published: set[dt.date] = field(default_factory=set)
    time_off: set[dt.date] = field(default_factory=set)  # days under pending or approved time off

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

    def evaluate(self, candidates: Sequence[Agent]) -> list[Candidate]:
        """Every rule for each candidate, in a fixed number of queries however many there are."""
        base = self.requester_violations()
        timelines = self._timelines([self.requester, *candidates])
        mine = timelines[self.requester.pk]
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

    def _timelines(self, agents: Sequence[Agent]) -> dict[int, Timeline]:
        timelines: dict[int, Timeline] = {agent.pk: Timeline() for agent in agents}
        ids = list(timelines)
        begin, end = self._window()
        for row in (
            Activity.objects.filter(agent_id__in=ids, start__gte=begin, start__lt=end)
            .order_by("start")
            .values_list(*_ACTIVITY_FIELDS)
        ):
            agent_id, activity = _activity(row)
            timelines[agent_id].activities.append(activity)
        for agent_id, skill_id, level in AgentSkill.objects.filter(agent_id__in=ids).values_list(
            "agent_id", "skill_id", "level"
        ):
            timelines[agent_id].skills[skill_id] = level
        dates = {self.offered.date, *([self.their_date] if self.their_date else [])}
        # The taker's day of the offered shift may be another local date in another zone.
        dates |= (
            {self.offered.start.astimezone(agent.zone).date() for agent in agents}
            if self.offered.activities
            else set()
        )
        for agent_id, date in ScheduleDay.objects.filter(
            agent_id__in=ids, date__in=sorted(dates), published=True
        ).values_list("agent_id", "date"):
            timelines[agent_id].published.add(date)
        # The days either side too: a shift lands on another local date in another zone.
        around = {date + dt.timedelta(days=offset) for date in dates for offset in (-1, 0, 1)}
        for agent_id, date in _time_off_days(agent_ids=ids, dates=around):
            timelines[agent_id].time_off.add(date)
        return timelines

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
        else:
            working = theirs.day(taker, taken_day)
            if working.activities:
                found.append(
                    Violation("has_shift", _("%(name)s already works that day.") % {"name": taker.name})
                )
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
            taker, theirs, gets=offered, gives=asked, skills_of=mine.skills, whose=taker.name
        )
        if asked is not None:
            found += self._takes(
                self.requester,
                mine,
                gets=asked,
                gives=offered,
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

    def _takes(
        self,
        agent: Agent,
        timeline: Timeline,
        *,
        gets: Shift,
        gives: Shift | None,
        skills_of: dict[int, int],
        whose: str,
    ) -> list[Violation]:
        """The rules for `agent` ending up with `gets` instead of `gives`."""
        rules = self.rules
        found: list[Violation] = []
        zone = agent.zone
        given = {a.id for a in gives.activities} if gives is not None else set()
        given |= {a.id for a in gets.activities}  # the shift moves: never compared with itself
        after = [a for a in timeline.activities if a.id not in given]
        if any(a.start < gets.end and gets.start < a.end for a in after):
            found.append(
                Violation("overlap", _("The shift overlaps other activities of %(name)s.") % {"name": whose})
            )
        missing = [skill for skill in skills_of if skill not in timeline.skills]
        lower = [
            skill
            for skill, level in skills_of.items()
            if skill in timeline.skills and timeline.skills[skill] < level
        ]
        if missing or (rules.skill_matching == SkillMatching.SAME and set(timeline.skills) != set(skills_of)):
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
        day = gets.start.astimezone(zone).date()
        same_day = [a for a in after if a.day == day]
        daily = _hours(a for a in [*same_day, *gets.activities] if a.paid)
        if daily > rules.max_daily_hours:
            found.append(
                Violation(
                    "max_daily_hours",
                    _("%(name)s would work %(hours)s hours that day, more than the %(max)s allowed.")
                    % {"name": whose, "hours": _fmt(daily), "max": _fmt(rules.max_daily_hours)},
                )
            )
        monday, sunday = _week(day)
        week = [a for a in after if monday <= a.day <= sunday]
        weekly = _hours(a for a in [*week, *gets.activities] if a.paid)
        if weekly > rules.max_weekly_hours:
            found.append(
                Violation(
                    "max_weekly_hours",
                    _("%(name)s would work %(hours)s hours that week, more than the %(max)s allowed.")
                    % {"name": whose, "hours": _fmt(weekly), "max": _fmt(rules.max_weekly_hours)},
                )
            )
        rest = dt.timedelta(hours=float(rules.min_rest_hours))
        others = [a for a in after if a.day != day]
        before = [a.end for a in others if a.end <= gets.start]
        later = [a.start for a in others if a.start >= gets.end]
        gaps = ([gets.start - max(before)] if before else []) + ([min(later) - gets.end] if later else [])
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


def _time_off_days(*, agent_ids: Iterable[int], dates: Iterable[dt.date]) -> set[tuple[int, dt.date]]:
    """(agent id, date) of the given agents' days under pending or approved time off."""
    return set(
        TimeOffDay.objects.filter(
            agent_id__in=list(agent_ids), date__in=sorted(set(dates)), request__status__in=HOLDING
        ).values_list("agent_id", "date")
    )


def _time_off_violation(name: str, date: dt.date) -> Violation:
    return Violation(
        "time_off",
        _("%(name)s has time off on %(date)s (pending or approved).")
        % {"name": name, "date": date.isoformat()},
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
