import datetime as dt

import pytest
import time_machine
from django_celery_beat.models import PeriodicTask

from notifications.models import Delivery, Device, Notification
from notifications.services import notify
from notifications.tasks import delete_old_notifications, prune_devices

pytestmark = pytest.mark.django_db


def test_the_outbox_sweeper_retention_and_pruning_are_in_beat():
    tasks = set(PeriodicTask.objects.values_list("task", flat=True))

    assert {
        "notifications.sweep_deliveries",
        "notifications.delete_old_notifications",
        "notifications.prune_devices",
    } <= tasks


def test_notifications_older_than_30_days_are_deleted_twice_safely(agent):
    with time_machine.travel("2026-10-01 09:00:00 +00:00", tick=False) as traveller:
        old = notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-10-02"})[0]
        traveller.shift(dt.timedelta(days=29))
        recent = notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-10-31"})[0]
        traveller.shift(dt.timedelta(days=1, seconds=1))

        assert delete_old_notifications() == 1
        assert delete_old_notifications() == 0

    assert list(Notification.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Delivery.objects.filter(notification_id=old.pk).exists()


def test_devices_unused_for_90_days_are_pruned(agent):
    with time_machine.travel("2026-08-01 09:00:00 +00:00", tick=False) as traveller:
        Device.objects.create(agent=agent, token="old-phone", platform="ios", trusted=True)
        traveller.shift(dt.timedelta(days=60))
        Device.objects.create(agent=agent, token="new-phone", platform="ios", trusted=True)
        traveller.shift(dt.timedelta(days=30, seconds=1))

        assert prune_devices() == 1
        assert prune_devices() == 0

    assert list(Device.objects.values_list("token", flat=True)) == ["new-phone"]


def test_a_sweep_that_cannot_start_within_its_minute_is_dropped():
    sweep = PeriodicTask.objects.get(task="notifications.sweep_deliveries")

    assert sweep.interval.every == 60 and sweep.expire_seconds == 55
