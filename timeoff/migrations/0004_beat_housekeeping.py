"""Beat entry of the time-off app, created once so that operators' edits survive deploys."""

from django.db import migrations

NAME = "Time off: deny requests whose time passed undecided, move waitlists up"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=900, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": "timeoff.housekeeping", "interval": interval, "expires": None}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("timeoff", "0003_time_off_requests"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
