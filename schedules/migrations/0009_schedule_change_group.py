# The journal's change groups: the rows one call of the schedule service writes share a group, so a
# decision that changed many days is undone together (issue 11, point 0). Nullable, no default: on
# PostgreSQL adding the column rewrites nothing; rows written before it have no group.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("schedules", "0008_day_span"),
    ]

    operations = [
        migrations.AddField(
            model_name="schedulechange",
            name="group",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="schedulechange",
            index=models.Index(fields=["group"], name="schedule_change_group"),
        ),
    ]
