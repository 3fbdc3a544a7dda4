"""`make run` starts Celery beat beside the server, with the demo's settings: no broker (memory://)
and tasks run eagerly. Beat then runs each due entry of the schedule in its own process, so in the
demo offers expire and live swaps are re-checked, as the worker would in production."""

import datetime as dt

import pytest
import time_machine
from celery import beat
from django_celery_beat.models import PeriodicTask

import swaps.tasks  # noqa: F401  (beat's start imports every app's tasks)
import timeoff.tasks  # noqa: F401
from em_agent.celery import app
from swaps.models import Swap, SwapStatus
from tests.schedules.factories import shift
from tests.swaps.test_swaps import DAY, NOW, offer

pytestmark = pytest.mark.django_db


def _run_entry(task: str):
    """What beat does with a due entry of the schedule. (Celery's own scheduler: the database one's
    sync afterwards closes the connection, the test's transaction with it.)"""
    entry = PeriodicTask.objects.get(task=task)
    return beat.Scheduler(app=app, lazy=True).apply_async(
        beat.ScheduleEntry(name=entry.name, task=entry.task, app=app), advance=False
    )


def test_beat_without_a_broker_expires_an_offer_itself(logged_in, agent, teammate):
    with time_machine.travel(NOW, tick=False):
        shift(agent, DAY, ("EARLY", "07:00", "15:00"))
        shift(teammate, DAY, ("LATE", "13:00", "21:00"))
        offer(logged_in(agent), recipients=[teammate.pk])

    with time_machine.travel(dt.datetime(2026, 12, 8, 4, 0, tzinfo=dt.UTC), tick=False):
        result = _run_entry("swaps.expire")

    assert result.result == 1
    assert Swap.objects.get().status == SwapStatus.EXPIRED


def test_the_schedule_beat_reads_has_the_swap_and_time_off_entries_enabled():
    entries = PeriodicTask.objects.filter(task__in=["swaps.expire", "swaps.recheck", "timeoff.housekeeping"])

    assert sorted((entry.task, entry.enabled) for entry in entries) == [
        ("swaps.expire", True),
        ("swaps.recheck", True),
        ("timeoff.housekeeping", True),
    ]
    assert _run_entry("swaps.recheck").result == {"checked": 0, "cancelled": 0, "denied": 0}
