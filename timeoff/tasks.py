"""Celery tasks of the time-off app; every one is safe to run twice."""

import datetime as dt

from celery import shared_task

from em_agent.models import Organization
from timeoff.models import TimeOffRequest, TimeOffStatus, TimeOffSubstatus
from timeoff.services import time_off_requests_lapse, time_off_waitlist_advance


@shared_task(name="timeoff.advance_waitlist")
def advance_waitlist(organization_id: int, dates: list[str] | None = None) -> int:
    """After a place freed (a cancellation, a raised limit): the waitlisted requests of those days
    decided again, first come first served."""
    if not Organization.objects.filter(pk=organization_id).exists():
        return 0
    days = None if dates is None else [dt.date.fromisoformat(date) for date in dates]
    return time_off_waitlist_advance(organization_id=organization_id, dates=days)


@shared_task(name="timeoff.housekeeping")
def housekeeping() -> int:
    """Every 15 minutes: requests whose time off began undecided are denied; every waitlist is
    decided again (a place freed by something that queued no task, or a lost task)."""
    lapsed = time_off_requests_lapse()
    organizations = (
        TimeOffRequest.objects.filter(status=TimeOffStatus.PENDING, substatus=TimeOffSubstatus.WAITLISTED)
        .values_list("agent__organization_id", flat=True)
        .distinct()
    )
    for organization_id in list(organizations):
        time_off_waitlist_advance(organization_id=organization_id)
    return lapsed
