"""What the contract fuzz and the generated client find in the database: three agents (two of one
organisation, one of another), each with a published schedule ahead, a pending request (a schedule
request in CXone, an absence in IEX), a device and notifications, so every operation has real objects
to read, change, delete, or to be refused."""

import datetime as dt

from django.utils import timezone

from em_agent.models import Agent
from em_agent.policies import wfm_policy
from notifications.services import device_register, notify
from schedules.models import RequestType, RuleAction
from schedules.requests import schedule_request_create
from tests.schedules.factories import ActivityCodeFactory, local, shift
from timeoff.absences import absence_request_create

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
