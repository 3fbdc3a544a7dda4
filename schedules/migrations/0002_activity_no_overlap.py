"""On PostgreSQL, no two activities of one agent overlap, whatever writes them (btree_gist lets the
agent's id share a GiST index with the time range). Deferrable, so the schedule service can move
activities within a day in any order and have the constraint checked once they are all written. SQLite, the demo's database, relies on the
service's own check."""

from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE schedules_activity ADD CONSTRAINT activity_no_overlap
    EXCLUDE USING gist (agent_id WITH =, tstzrange(start, "end", '[)') WITH &&)
    DEFERRABLE INITIALLY IMMEDIATE;
"""
DROP = "ALTER TABLE schedules_activity DROP CONSTRAINT IF EXISTS activity_no_overlap;"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("schedules", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
