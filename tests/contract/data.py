"""What the contract fuzz and the generated client find in the database: three agents (two of one
organisation, one of another), each with a published schedule ahead, a pending request (a schedule
request in CXone, an absence in IEX), a device and notifications, so every operation has real objects
to read, change, delete, or to be refused. CXone agents also have time off: a balance, approved,
pending and waitlisted requests, and staffing that offers both interval types."""

import datetime as dt

from django.utils import timezone

from em_agent.models import Agent
from em_agent.policies import wfm_policy
from notifications.services import device_register, notify
from schedules.models import RequestType, RuleAction
from schedules.requests import schedule_request_create
from tests.schedules.factories import ActivityCodeFactory, local, shift
from timeoff.absences import absence_request_create
from timeoff.models import StaffingInterval, TimeOffBalance, TimeOffLimit
from timeoff.services import time_off_request_create

DAYS_AHEAD = 14


def contract_world(agents: list[Agent]) -> None:
    for agent in agents:
        organization = agent.organization
        training = ActivityCodeFactory(
            organization=organization, code="TRAINING", category="training", open_for_requests=True
        )
        organization.approval_rules.get_or_create(
            request_type=RequestType.SCHEDULE, activity_code=training, defaults={"action": RuleAction.MANUAL}
        )
        today = timezone.localdate(timezone=agent.zone)
        for offset in range(1, DAYS_AHEAD + 1):
            shift(
                agent,
                today + dt.timedelta(days=offset),
                ("PHONE", "09:00", "12:00"),
                ("PHONE", "13:00", "17:00"),
            )
        tomorrow = today + dt.timedelta(days=2)
        if wfm_policy(organization).schedule_requests:
            schedule_request_create(
                agent=agent,
                action="add",
                activity_code="TRAINING",
                start=local(agent, tomorrow, "17:00"),
                end=local(agent, tomorrow, "18:00"),
                comment="Contract fuzz",
            )
        if wfm_policy(organization).time_off:
            _time_off_world(agent, today)
        if wfm_policy(organization).absence_requests:
            for code, name in (("SICK", "Sick"), ("DOCTOR", "Doctor")):
                ActivityCodeFactory(
                    organization=organization, code=code, name=name, category="absence", open_for_absence=True
                )
            absence_request_create(
                agent=agent,
                date=tomorrow,
                exception_code="DOCTOR",
                start_time=dt.time(9),
                end_time=dt.time(10),
            )
        device_register(agent=agent, token=f"fcm-{agent.pk}-contract", platform="android", trusted=True)
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": tomorrow})
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": today})


def _time_off_world(agent: Agent, today: dt.date) -> None:
    organization = agent.organization
    vacation = ActivityCodeFactory(
        organization=organization, code="VAC", name="Vacation", category="time_off", open_for_time_off=True
    )
    personal = ActivityCodeFactory(
        organization=organization,
        code="PERSONAL",
        name="Personal",
        category="time_off",
        open_for_time_off=True,
    )
    organization.approval_rules.get_or_create(
        request_type=RequestType.TIME_OFF,
        activity_code=vacation,
        defaults={"action": RuleAction.AUTO_APPROVE, "waitlist_when_full": True},
    )
    for code in (vacation, personal):
        TimeOffBalance.objects.get_or_create(
            agent=agent, activity_code=code, defaults={"earned_minutes": 80 * 60, "as_of": today}
        )
    full_day = today + dt.timedelta(days=5)  # one place, taken by the first agent: the others wait
    TimeOffLimit.objects.get_or_create(
        organization=organization, team=None, date=full_day, defaults={"capacity": 1}
    )
    for day in range(1, DAYS_AHEAD + 1):
        date = today + dt.timedelta(days=day)
        for hour in range(9, 17):
            for minute in (0, 30):
                # Comfortable mornings (approved at once), tight afternoons (a supervisor decides).
                StaffingInterval.objects.get_or_create(
                    organization=organization,
                    team=None,
                    start=local(agent, date, f"{hour:02d}:{minute:02d}"),
                    defaults={"required": 5, "scheduled": 9 if hour < 13 else 5},
                )
    time_off_request_create(
        agent=agent, kind="full_day", activity_code="VAC", start_date=full_day, end_date=full_day
    )
    time_off_request_create(
        agent=agent,
        kind="full_day",
        activity_code="VAC",
        start_date=today + dt.timedelta(days=3),
        end_date=today + dt.timedelta(days=3),
        comment="Contract fuzz",
    )
    time_off_request_create(
        agent=agent,
        kind="partial_day",
        activity_code="PERSONAL",
        date=today + dt.timedelta(days=4),
        start_time=dt.time(14),
        end_time=dt.time(16),
    )
