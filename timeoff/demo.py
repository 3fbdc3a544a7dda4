"""The demo's time-off setup for CXone organisations (what `seed_demo` adds after the WFM sync):
approval rules that approve vacation at once while the day's limit has room and waitlist it when
full, a limit of agents off per day, a floor and an accrual rule, and, for the first demo agent of
the first organisation, one waitlisted request to look at. Idempotent: a second run adds nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction

from em_agent.models import Agent, Organization, WfmSystem
from schedules.models import ActivityCode, ApprovalRule, BlackoutPeriod, RequestType, RuleAction, ScheduleDay
from timeoff.days import full_days
from timeoff.models import TimeOffLimit, TimeOffPolicy, TimeOffRequest, TimeOffSettings, timeoff_settings_for
from timeoff.services import time_off_request_create

AGENTS_OFF_PER_DAY = 3


def demo_time_off_upsert(
    *, organization: Organization, today: dt.date, waitlisted_for: Agent | None = None
) -> None:
    if organization.wfm_system != WfmSystem.CXONE:
        return
    codes = dict(ActivityCode.objects.filter(organization=organization).values_list("code", "pk"))
    with transaction.atomic():
        # An interval is approved at once while one agent more than required stays without this one
        # (the demo staffing's comfortable blocks), and a supervisor decides where exactly the
        # requirement stays (its tight blocks): both types on the coming days.
        TimeOffSettings.objects.get_or_create(organization=organization, defaults={"interval_auto_margin": 1})
        for code in ("VAC", "COMP"):
            ApprovalRule.objects.update_or_create(
                organization=organization,
                request_type=RequestType.TIME_OFF,
                activity_code_id=codes[code],
                defaults={
                    "action": RuleAction.AUTO_APPROVE,
                    "min_lead_hours": 24,
                    "max_per_day": None,
                    "when_conditions_fail": RuleAction.MANUAL,
                    "waitlist_when_full": True,
                    "priority": 10,
                    "active": True,
                },
            )
        TimeOffLimit.objects.update_or_create(
            organization=organization,
            team=None,
            date=None,
            defaults={"capacity": Decimal(AGENTS_OFF_PER_DAY)},
        )
        TimeOffPolicy.objects.update_or_create(
            organization=organization, activity_code_id=codes["VAC"], defaults={"floor_hours": Decimal(-16)}
        )
        # Created once: a later seed (next year too) keeps the rule's start.
        TimeOffPolicy.objects.get_or_create(
            organization=organization,
            activity_code_id=codes["COMP"],
            defaults={
                "accrual_hours_per_month": Decimal(4),
                "accrual_start": dt.date(today.year, 1, 1),
                "starting_hours": Decimal(0),
                "carry_over_cap_hours": Decimal(16),
            },
        )
    if waitlisted_for is not None:
        _one_waitlisted_request(agent=waitlisted_for, today=today)


def _one_waitlisted_request(*, agent: Agent, today: dt.date) -> None:
    """A colleague takes the only place of a working day ten days or more ahead; the agent asks for
    the same day and waits in line (pending, waitlisted, position 1)."""
    if TimeOffRequest.objects.filter(agent=agent, substatus="waitlisted").exists():
        return
    colleague = (
        Agent.objects.filter(organization=agent.organization, activated_at__isnull=False)
        .exclude(pk=agent.pk)
        .order_by("pk")
        .first()
    )
    if colleague is None:
        return
    date = _a_working_day_for_both(agent, colleague, today=today)
    if date is None:
        return
    TimeOffLimit.objects.update_or_create(
        organization=agent.organization, team=None, date=date, defaults={"capacity": Decimal(1)}
    )
    for who in (colleague, agent):
        if not TimeOffRequest.objects.filter(agent=who, start_date__lte=date, end_date__gte=date).exists():
            time_off_request_create(
                agent=who,
                kind="full_day",
                activity_code="VAC",
                start_date=date,
                end_date=date,
                comment="Demo: a day the limit has one place for",
            )


def _a_working_day_for_both(agent: Agent, colleague: Agent, *, today: dt.date) -> dt.date | None:
    defaults = timeoff_settings_for(agent.organization).default_minutes()
    blackouts = list(BlackoutPeriod.objects.filter(organization=agent.organization, applies_to_time_off=True))
    for offset in range(10, 30):
        date = today + dt.timedelta(days=offset)
        if any(period.start_date <= date <= period.end_date for period in blackouts):
            continue
        published = ScheduleDay.objects.filter(
            agent__in=[agent, colleague], date=date, published=True
        ).count()
        if published == 2 and all(
            full_days(agent=who, start_date=date, end_date=date, default_minutes=lambda: defaults)[0].minutes
            > 0
            for who in (agent, colleague)
        ):
            return date
    return None
