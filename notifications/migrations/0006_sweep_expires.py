"""A sweep that could not start within its minute is dropped, not queued behind a fan-out: the next
one does the same work (measured in bench/fanout.py: sweeps piled up behind 46 delivery tasks)."""

from django.db import migrations

SWEEP = "Notifications: sweep the outbox"


def expire(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=SWEEP, expire_seconds__isnull=True).update(expire_seconds=55)


def unexpire(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=SWEEP).update(expire_seconds=None)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0005_notification_schedules")]

    operations = [migrations.RunPython(expire, unexpire)]
