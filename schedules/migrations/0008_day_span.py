"""What a first WFM sync of 10,000 agents (2.5 million activities, 420,000 days; bench/sync.py)
cannot afford, kept another way on PostgreSQL:

- No two activities of an agent overlap: kept by the days' spans instead of by every activity. The
  exclusion constraint on activities cost 113 s of GiST work for those rows (their COPY: 140 s with
  it, 17 s without); on the days it costs ~11 s. Every activity starts on its own local day, so two
  days' spans overlap exactly when an activity of one overlaps one of the other; within a day the
  schedule service checks, under the day's row lock.
- An activity's day and agent: one foreign key (day_id, agent_id) -> the day's (id, agent_id)
  instead of two (each costs ~12 s of checks for those rows), and a stronger one: the day is
  the activity's agent's."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Max, Min, OuterRef, Subquery

DAY_CONSTRAINT = """
ALTER TABLE schedules_scheduleday ADD CONSTRAINT schedule_day_no_overlap
    EXCLUDE USING gist (agent_id WITH =, tstzrange(first_start, last_end, '[)') WITH &&)
    WHERE (first_start IS NOT NULL)
    DEFERRABLE INITIALLY IMMEDIATE;
"""
ACTIVITY_CONSTRAINT = """
ALTER TABLE schedules_activity ADD CONSTRAINT activity_no_overlap
    EXCLUDE USING gist (agent_id WITH =, tstzrange(start, "end", '[)') WITH &&)
    DEFERRABLE INITIALLY IMMEDIATE;
"""


def spans(apps, schema_editor):
    ScheduleDay = apps.get_model("schedules", "ScheduleDay")
    Activity = apps.get_model("schedules", "Activity")
    of_day = Activity.objects.filter(day=OuterRef("pk")).values("day")
    ScheduleDay.objects.filter(activities__isnull=False).distinct().update(
        first_start=Subquery(of_day.annotate(v=Min("start")).values("v")),
        last_end=Subquery(of_day.annotate(v=Max("end")).values("v")),
    )


DAY_OF_AGENT = """
ALTER TABLE schedules_activity ADD CONSTRAINT activity_day_of_agent
    FOREIGN KEY (day_id, agent_id) REFERENCES schedules_scheduleday (id, agent_id)
    DEFERRABLE INITIALLY DEFERRED;
"""


def to_days(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE schedules_activity DROP CONSTRAINT IF EXISTS activity_no_overlap;")
        schema_editor.execute(DAY_CONSTRAINT)
        schema_editor.execute(DAY_OF_AGENT)


def to_activities(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE schedules_activity DROP CONSTRAINT IF EXISTS activity_day_of_agent;")
        schema_editor.execute("ALTER TABLE schedules_scheduleday DROP CONSTRAINT IF EXISTS schedule_day_no_overlap;")
        schema_editor.execute(ACTIVITY_CONSTRAINT)


class Migration(migrations.Migration):

    dependencies = [
        ('em_agent', '0004_organization_idle_timeout_bounds'),
        ('schedules', '0007_day_ordering'),
    ]

    operations = [
        migrations.AddField(
            model_name='scheduleday',
            name='first_start',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='scheduleday',
            name='last_end',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name='activity',
            name='agent',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='activities', to='em_agent.agent'),
        ),
        migrations.AlterField(
            model_name='activity',
            name='day',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='activities', to='schedules.scheduleday'),
        ),
        migrations.AddConstraint(
            model_name='scheduleday',
            constraint=models.UniqueConstraint(fields=('id', 'agent'), name='schedule_day_id_agent'),
        ),
        migrations.AddConstraint(
            model_name='scheduleday',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('first_start__isnull', True), ('last_end__isnull', True)), ('last_end__gt', models.F('first_start')), _connector='OR'), name='schedule_day_span'),
        ),
        migrations.RunPython(spans, migrations.RunPython.noop),
        migrations.RunPython(to_days, to_activities),
    ]
