"""The schedule service's writes as a few set-based statements, whatever the number of days.

On PostgreSQL the rows travel as arrays (`UPDATE ... FROM unnest(...)`, bound on the server) and new
activities by COPY: a first WFM sync writes some 2.5 million activities, and Django's `bulk_update`
(a `CASE` per row and field, resolved in Python) and `bulk_create` (every array element quoted in
Python) spent most of that sync's time (bench/README.md, "sync.py"). Elsewhere (SQLite, the demo's
database: a few hundred days, one writer at a time) the ORM does the same thing row by row.

Nothing here validates or decides: `schedules.services` does, and calls these inside its transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import psycopg
from django.db import IntegrityError, connection, models

from schedules.models import Activity, ScheduleDay, activity_references


class DayValues(NamedTuple):
    agent_id: int
    date: dt.date
    published: bool
    note: str
    first_start: dt.datetime | None
    last_end: dt.datetime | None
    updated_at: dt.datetime
    wfm_hash: str


class ActivityValues(NamedTuple):
    id: int | None  # None on SQLite, where the insert gives it
    agent_id: int
    day_id: int
    activity_code_id: int
    start: dt.datetime
    end: dt.datetime
    note: str
    source: str


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def _cursor() -> Iterator[psycopg.Cursor]:
    """A cursor on Django's own connection (so in its transaction) that binds parameters on the
    server: arrays go over as arrays instead of being quoted element by element in Python. Its
    errors are Django's (IntegrityError, OperationalError...), as from any other cursor."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


LockedDay = tuple[int, dt.date, int, bool, str, dt.datetime, str]


def days_lock(keys: Sequence[tuple[int, dt.date]]) -> list[LockedDay]:
    """The existing days among (agent, date) keys, locked in (agent, date) order (two writers never
    deadlock): (agent_id, date, id, published, note, updated_at, wfm_hash)."""
    columns = ("agent_id", "date", "id", "published", "note", "updated_at", "wfm_hash")
    if not keys:
        return []
    if not _postgresql():
        agent_ids = {agent_id for agent_id, _date in keys}
        dates = [date for _agent_id, date in keys]
        wanted = set(keys)
        in_range = ScheduleDay.objects.filter(
            agent_id__in=agent_ids, date__gte=min(dates), date__lte=max(dates)
        )
        return [
            row for row in in_range.order_by("agent_id", "date").values_list(*columns) if row[:2] in wanted
        ]
    with _cursor() as cursor:
        cursor.execute(
            """
            SELECT day.agent_id, day.date, day.id, day.published, day.note, day.updated_at, day.wfm_hash
            FROM schedules_scheduleday AS day
            JOIN unnest(%s::bigint[], %s::date[]) AS k(agent_id, date)
                ON day.agent_id = k.agent_id AND day.date = k.date
            ORDER BY day.agent_id, day.date
            FOR UPDATE OF day
            """,
            [[agent_id for agent_id, _date in keys], [date for _agent_id, date in keys]],
        )
        return cursor.fetchall()


def days_insert(rows: Sequence[DayValues]) -> dict[tuple[int, dt.date], int] | None:
    """Creates the days with their final values; their ids by (agent, date). None if another writer
    created one of them meanwhile (the caller rolls back to its savepoint and starts over)."""
    if not rows:
        return {}
    if not _postgresql():
        days = ScheduleDay.objects.bulk_create([ScheduleDay(**row._asdict()) for row in rows])
        return {(day.agent_id, day.date): day.pk for day in days}
    ids = _ids_allocate("schedules_scheduleday", len(rows))
    try:
        with (
            _cursor() as cursor,
            cursor.copy(
                "COPY schedules_scheduleday (id, agent_id, date, published, note, first_start, last_end,"
                " updated_at, wfm_hash) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(
                ["int8", "int8", "date", "bool", "text", "timestamptz", "timestamptz", "timestamptz", "text"]
            )
            for pk, row in zip(ids, rows, strict=True):
                copy.write_row((pk, *row))
    except IntegrityError as exc:
        if isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
            return None
        raise
    return {(row.agent_id, row.date): pk for pk, row in zip(ids, rows, strict=True)}


def days_update(rows: Sequence[tuple[int, DayValues]]) -> None:
    """(id, values) of existing days; agent and date stay as they are."""
    if not rows:
        return
    if not _postgresql():
        for pk, values in rows:
            ScheduleDay.objects.filter(pk=pk).update(
                published=values.published,
                note=values.note,
                first_start=values.first_start,
                last_end=values.last_end,
                updated_at=values.updated_at,
                wfm_hash=values.wfm_hash,
            )
        return
    with _cursor() as cursor:
        cursor.execute(
            """
            UPDATE schedules_scheduleday AS day
            SET published = v.published, note = v.note, first_start = v.first_start,
                last_end = v.last_end, updated_at = v.updated_at, wfm_hash = v.wfm_hash
            FROM unnest(%s::bigint[], %s::boolean[], %s::text[], %s::timestamptz[],
                        %s::timestamptz[], %s::timestamptz[], %s::text[])
                AS v(id, published, note, first_start, last_end, updated_at, wfm_hash)
            WHERE day.id = v.id
            """,
            [
                [pk for pk, _values in rows],
                [values.published for _pk, values in rows],
                [values.note for _pk, values in rows],
                [values.first_start for _pk, values in rows],
                [values.last_end for _pk, values in rows],
                [values.updated_at for _pk, values in rows],
                [values.wfm_hash for _pk, values in rows],
            ],
        )


def days_set_hash(rows: Sequence[tuple[int, str]]) -> None:
    """The WFM's hash of days whose content is already what the WFM says."""
    if not rows:
        return
    if not _postgresql():
        for pk, wfm_hash in rows:
            ScheduleDay.objects.filter(pk=pk).update(wfm_hash=wfm_hash)
        return
    with _cursor() as cursor:
        cursor.execute(
            """
            UPDATE schedules_scheduleday AS day SET wfm_hash = v.wfm_hash
            FROM unnest(%s::bigint[], %s::text[]) AS v(id, wfm_hash) WHERE day.id = v.id
            """,
            [[pk for pk, _hash in rows], [wfm_hash for _pk, wfm_hash in rows]],
        )


def activity_ids_allocate(count: int) -> list[int]:
    """Ids for new activities before they are written: the journal names them, and COPY takes
    them with the rows (on PostgreSQL; elsewhere none: the insert gives them)."""
    if count == 0 or not _postgresql():
        return []
    return _ids_allocate("schedules_activity", count)


def _ids_allocate(table: str, count: int) -> list[int]:
    with _cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
        )
        return [pk for (pk,) in cursor.fetchall()]


def activities_delete(ids: Sequence[int]) -> None:
    if not ids:
        return
    # What points at a removed activity (a request, time off, a swap offer: every foreign key to
    # Activity, schedules.models.activity_references) loses the link, or, for a many-to-many's own
    # table, the row; then one DELETE, not Django's collector (a SELECT and per-batch deletes per
    # relation). A schedule request keeps the id it named (activity_ref).
    for field in activity_references():
        rows = field.model._base_manager.filter(**{f"{field.attname}__in": ids})
        if field.remote_field.on_delete is models.SET_NULL:
            rows.update(**{field.attname: None})
        else:  # CASCADE on an auto-created many-to-many table (the check allows nothing else)
            rows._raw_delete(rows.db)
    if not _postgresql():
        Activity.objects.filter(pk__in=ids)._raw_delete(Activity.objects.db)
        return
    with _cursor() as cursor:
        cursor.execute("DELETE FROM schedules_activity WHERE id = ANY(%s::bigint[])", [list(ids)])


def activities_update(rows: Sequence[ActivityValues]) -> None:
    """Existing activities (by id) get new code, times, note and source."""
    if not rows:
        return
    if not _postgresql():
        for row in rows:
            Activity.objects.filter(pk=row.id or 0).update(  # existing activities: never 0
                activity_code_id=row.activity_code_id,
                start=row.start,
                end=row.end,
                note=row.note,
                source=row.source,
            )
        return
    with _cursor() as cursor:
        cursor.execute(
            """
            UPDATE schedules_activity AS a
            SET activity_code_id = v.code, start = v.start, "end" = v.end, note = v.note, source = v.source
            FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::text[],
                        %s::text[]) AS v(id, code, start, "end", note, source)
            WHERE a.id = v.id
            """,
            [
                [row.id for row in rows],
                [row.activity_code_id for row in rows],
                [row.start for row in rows],
                [row.end for row in rows],
                [row.note for row in rows],
                [row.source for row in rows],
            ],
        )


def activities_insert(rows: Sequence[ActivityValues]) -> list[int | None]:
    """New activities; their ids in order. On PostgreSQL a row without an id gets one from the
    sequence and the caller does not learn it (no journal names it: a first sync's 2.5 million);
    elsewhere the insert gives every id."""
    if not rows:
        return []
    if not _postgresql():
        created = Activity.objects.bulk_create([Activity(**row._asdict()) for row in rows])
        return [activity.pk for activity in created]
    # Binary: the rows' datetimes are not formatted as text in Python (8x less CPU for the client).
    columns = 'agent_id, day_id, activity_code_id, start, "end", note, source'
    types = ["int8", "int8", "int8", "timestamptz", "timestamptz", "text", "text"]
    with _cursor() as cursor:
        named = [row for row in rows if row.id is not None]
        if named:
            with cursor.copy(f"COPY schedules_activity (id, {columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", *types])
                for row in named:
                    copy.write_row(row)
        if len(named) < len(rows):
            with cursor.copy(f"COPY schedules_activity ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    if row.id is None:
                        copy.write_row(row[1:])
    return [row.id for row in rows]
