"""Beat entries of the swaps app (expiry, the re-check of live swaps), created once so that
operators' edits survive deploys. A run that could not start within its minute is dropped, not
queued: the next one does the same work."""

from django.db import migrations

TASKS = {
    "Swaps: expire offers at their expiry": ("swaps.expire", 60),
    "Swaps: re-check live swaps whose days changed": ("swaps.recheck", 60),
}


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, (task, seconds) in TASKS.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": interval, "expire_seconds": 55}
        )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(TASKS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("swaps", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
