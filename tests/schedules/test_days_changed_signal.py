"""schedule_days_changed: sent once after the commit of a write that changed days, with their
(agent id, date) keys; never for an unchanged day or a rolled-back write; a failing receiver is
logged, not the writer's error."""

import datetime as dt

import pytest
from django.db import transaction

from schedules.services import schedule_days_changed
from tests.schedules.factories import shift

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 12, 8)


@pytest.fixture
def received():
    calls: list[list[tuple[int, dt.date]]] = []

    def receiver(sender, *, keys, **kwargs):
        calls.append(sorted(keys))

    schedule_days_changed.connect(receiver, dispatch_uid="test-days-changed")
    yield calls
    schedule_days_changed.disconnect(dispatch_uid="test-days-changed")


def test_sent_after_commit_with_the_changed_days(
    agent, teammate, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        shift(agent, DAY, ("EARLY", "09:00", "17:00"))
        assert received == []  # not before the commit
    with django_capture_on_commit_callbacks(execute=True):
        shift(agent, DAY, ("EARLY", "09:00", "17:00"))  # the same content: nothing changed
        shift(teammate, DAY + dt.timedelta(days=1), ("LATE", "10:00", "18:00"))

    assert received == [[(agent.pk, DAY)], [(teammate.pk, DAY + dt.timedelta(days=1))]]


def test_not_sent_for_a_rolled_back_write(agent, received, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            shift(agent, DAY, ("EARLY", "09:00", "17:00"))
            raise RuntimeError("the caller's transaction fails after the write")

    assert callbacks == [] and received == []


def test_a_failing_receiver_is_logged_not_raised(agent, received, django_capture_on_commit_callbacks, caplog):
    def broken(sender, **kwargs):
        raise ValueError("receiver bug")

    schedule_days_changed.connect(broken, dispatch_uid="test-broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    finally:
        schedule_days_changed.disconnect(dispatch_uid="test-broken")

    assert received == [[(agent.pk, DAY)]]  # the other receiver still ran
    assert "receiver bug" in caplog.text
