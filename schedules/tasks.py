"""Celery tasks of the schedules app; every one is safe to run twice."""

from celery import shared_task

from schedules.requests import schedule_requests_lapse


@shared_task(name="schedules.lapse_requests")
def lapse_requests() -> int:
    """Every 15 minutes: pending requests whose time has come are denied with that reason."""
    return schedule_requests_lapse()
