"""Beat entries for housekeeping, created once by a data migration so that operators' later edits in
the admin (times, enabling) survive restarts and deploys."""

from django.db import migrations

SCHEDULES = [
    # (task, name, minute, hour)
    ("em_agent.sessions_clear_expired", "Clear expired sessions", "17", "*/6"),
    ("em_agent.activation_counters_prune", "Prune activation attempt counters", "23", "3"),
]


def create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for task, name, minute, hour in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for _task, name, _m, _h in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("em_agent", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
