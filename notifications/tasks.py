"""Celery tasks of the notifications app. They take ids, do nothing for rows already handled, and
are safe under acks_late: a redelivered task finds its deliveries claimed or sent and sends nothing."""

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from notifications.delivery import deliveries_send, deliveries_sweep
from notifications.models import Device, Notification

logger = logging.getLogger(__name__)


@shared_task(name="notifications.send_deliveries")
def send_deliveries(ids: list[int]) -> dict[str, int]:
    report = deliveries_send(ids=ids)
    return {
        "sent": report.sent,
        "retried": report.retried,
        "failed": report.failed,
        "skipped": report.skipped,
        "messages": report.messages,
    }


@shared_task(name="notifications.sweep_deliveries")
def sweep_deliveries() -> int:
    """Every minute: retries that are due, and deliveries a lost task left behind."""
    return deliveries_sweep()


@shared_task(name="notifications.delete_old_notifications")
def delete_old_notifications() -> int:
    """Retention: notifications older than 30 days go, with their outbox rows, in small batches."""
    horizon = timezone.now() - dt.timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    deleted = 0
    while True:
        batch = list(Notification.objects.filter(created_at__lt=horizon).values_list("pk", flat=True)[:5000])
        if not batch:
            return deleted
        Notification.objects.filter(pk__in=batch).delete()
        deleted += len(batch)


@shared_task(name="notifications.prune_devices")
def prune_devices() -> int:
    """Devices unused for 90 days (the app registers on every start) are forgotten."""
    horizon = timezone.now() - dt.timedelta(days=settings.DEVICE_PRUNE_AFTER_DAYS)
    deleted, _ = Device.objects.filter(last_seen_at__lt=horizon).delete()
    return deleted
