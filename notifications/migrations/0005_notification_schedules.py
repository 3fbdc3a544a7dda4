"""Beat entries of the notifications app, created once so that operators' edits survive deploys."""

from django.db import migrations

SCHEDULES = [
    # (task, name, every, minute, hour): an interval in seconds, or a crontab
    ("notifications.sweep_deliveries", "Notifications: sweep the outbox", 60, None, None),
    ("notifications.delete_old_notifications", "Notifications: delete after 30 days", None, "41", "3"),
    ("notifications.prune_devices", "Notifications: prune devices unused for 90 days", None, "47", "3"),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for task, name, every, minute, hour in SCHEDULES:
        if every:
            interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
            PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval})
        else:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
            )
            PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[entry[1] for entry in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0004_push_receipts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
