"""What the contract fuzz and the generated client find in the database: three agents (two of one
organisation, one of another), each with a published schedule ahead, a pending request, a device and
notifications, so every operation has real objects to read, change, delete, or to be refused."""

import datetime as dt

from django.utils import timezone

from em_agent.models import Agent
from notifications.services import device_register, notify
from schedules.models import RequestType, RuleAction
from schedules.requests import schedule_request_create
from tests.schedules.factories import ActivityCodeFactory, local, shift

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
        schedule_request_create(
            agent=agent,
            action="add",
            activity_code="TRAINING",
            start=local(agent, tomorrow, "17:00"),
            end=local(agent, tomorrow, "18:00"),
            comment="Contract fuzz",
        )
        device_register(agent=agent, token=f"fcm-{agent.pk}-contract", platform="android", trusted=True)
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": tomorrow})
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": today})
