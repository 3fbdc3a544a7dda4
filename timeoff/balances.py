"""An agent's time-off balance per code, in minutes (issue 11, point 4):

- earned: what the WFM exported (`TimeOffBalance`), or where it sent none for the code, what the
  organisation's accrual rule gives up to today; plus a supervisor's adjustments;
- used: approved time off on days before today (the agent's zone); planned: approved from today on;
- remaining = earned - used - planned; pending: requests not yet decided (they take nothing yet);
- floor: how low remaining may go (0, or the negative limit the organisation allows).

Nothing but `earned` is stored: used, planned and pending follow from the requests, so a sync can
never contradict them. Read in a few queries whatever the number of codes."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Case, Q, Sum, Value, When

from em_agent.models import Agent
from schedules.models import ActivityCode
from timeoff.models import (
    BalanceAdjustment,
    TimeOffBalance,
    TimeOffDay,
    TimeOffPolicy,
    TimeOffStatus,
)


@dataclass(frozen=True)
class Balance:
    activity_code: ActivityCode
    earned: int
    used: int
    planned: int
    pending: int
    floor: int

    @property
    def remaining(self) -> int:
        return self.earned - self.used - self.planned


def hours(minutes: int) -> Decimal:
    """Minutes as hours with two decimals (7 h 20 min: 7.33)."""
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"))


def _minutes(hours_value: Decimal | None) -> int:
    return int(Decimal(hours_value or 0) * 60)


def _month_firsts(start: dt.date, today: dt.date) -> list[dt.date]:
    firsts = []
    month = (
        start.replace(day=1)
        if start.day == 1
        else (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    )
    while month <= today:
        firsts.append(month)
        month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return firsts


def accrued_minutes(*, policy: TimeOffPolicy, today: dt.date, approved_by_year: dict[int, int]) -> int:
    """What the accrual rule has given by `today`: the starting hours on the start date, each
    month's hours on its first day, and on each 1 January after the start what was left unused
    (earned less approved time off of the years before) capped at the carry-over cap.
    `approved_by_year`: approved minutes per calendar year of the days."""
    start = policy.accrual_start
    if start is None or today < start:
        return 0
    per_month = _minutes(policy.accrual_hours_per_month)
    cap = None if policy.carry_over_cap_hours is None else _minutes(policy.carry_over_cap_hours)
    earned = _minutes(policy.starting_hours)
    for first in _month_firsts(start, today):
        if cap is not None and first.month == 1 and first > start:
            taken = sum(minutes for year, minutes in approved_by_year.items() if year < first.year)
            unused = earned - taken
            if unused > cap:
                earned -= unused - cap  # forfeited at the turn of the year
        earned += per_month
    return earned


def balances_for_agent(
    *, agent: Agent, today: dt.date, activity_codes: list[ActivityCode] | None = None
) -> list[Balance]:
    """Every time-off code of the agent's organisation open to time off or with a balance, or only
    those given, in code order."""
    if activity_codes is None:
        activity_codes = list(
            ActivityCode.objects.filter(organization_id=agent.organization_id)
            .filter(Q(open_for_time_off=True, active=True) | Q(time_off_balances__agent=agent))
            .distinct()
            .order_by("code")
        )
    codes_by_id = {code.pk: code for code in sorted(activity_codes, key=lambda code: code.code)}
    if not codes_by_id:
        return []
    exported = dict(
        TimeOffBalance.objects.filter(agent=agent, activity_code_id__in=codes_by_id).values_list(
            "activity_code_id", "earned_minutes"
        )
    )
    adjusted = dict(
        BalanceAdjustment.objects.filter(agent=agent, activity_code_id__in=codes_by_id)
        .values("activity_code_id")
        .annotate(total=Sum("minutes"))
        .values_list("activity_code_id", "total")
    )
    policies = {
        policy.activity_code_id: policy
        for policy in TimeOffPolicy.objects.filter(
            organization_id=agent.organization_id, activity_code_id__in=codes_by_id
        )
    }
    taken: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for code_id, bucket, total in (
        TimeOffDay.objects.filter(
            agent=agent,
            request__activity_code_id__in=codes_by_id,
            request__status__in=[TimeOffStatus.APPROVED, TimeOffStatus.PENDING],
        )
        .annotate(
            bucket=Case(
                When(request__status=TimeOffStatus.PENDING, then=Value("pending")),
                When(date__lt=today, then=Value("used")),
                default=Value("planned"),
            )
        )
        .values("request__activity_code_id", "bucket")
        .annotate(total=Sum("minutes"))
        .values_list("request__activity_code_id", "bucket", "total")
    ):
        taken[code_id][bucket] = total
    by_year = _approved_by_year(agent, [pk for pk, policy in policies.items() if pk not in exported])

    balances = []
    for code_id, code in codes_by_id.items():
        policy = policies.get(code_id)
        if code_id in exported:
            earned = exported[code_id]
        elif policy is not None and policy.accrual_hours_per_month is not None:
            earned = accrued_minutes(policy=policy, today=today, approved_by_year=by_year.get(code_id, {}))
        else:
            earned = 0
        balances.append(
            Balance(
                activity_code=code,
                earned=earned + (adjusted.get(code_id) or 0),
                used=taken[code_id]["used"],
                planned=taken[code_id]["planned"],
                pending=taken[code_id]["pending"],
                floor=_minutes(policy.floor_hours) if policy is not None else 0,
            )
        )
    return balances


def _approved_by_year(agent: Agent, code_ids: list[int]) -> dict[int, dict[int, int]]:
    """Approved minutes per code and year of the days: what a carry-over cap looks back on."""
    if not code_ids:
        return {}
    result: dict[int, dict[int, int]] = defaultdict(dict)
    for code_id, year, total in (
        TimeOffDay.objects.filter(
            agent=agent, request__activity_code_id__in=code_ids, request__status=TimeOffStatus.APPROVED
        )
        .values("request__activity_code_id", "date__year")
        .annotate(total=Sum("minutes"))
        .values_list("request__activity_code_id", "date__year", "total")
    ):
        result[code_id][year] = total
    return result


def balance_for_code(*, agent: Agent, activity_code: ActivityCode, today: dt.date) -> Balance:
    (balance,) = balances_for_agent(agent=agent, today=today, activity_codes=[activity_code])
    return balance
