"""Undo of a multi-day change (schedules.services.schedule_change_group_undo): one decision changed
three days in one call of the schedule service (a change group in the journal); undoing it removes
what it added, by id, and puts back what it removed or changed where the time is still free, even
after a sync and a supervisor changed those days since, and reports what it could not put back.

The agent works in New York; the group spans 1 November 2026, when its clocks fall back (02:00 EDT
becomes 01:00 EST: a 25-hour day), with a night shift running into it."""

import datetime as dt

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification
from schedules import bulk
from schedules.diff import ActivitySpec, DayPlan, day_carve
from schedules.models import Activity, ActivitySource, ScheduleChange
from schedules.services import (
    activity_specs,
    schedule_change_group_undo,
    schedule_days_apply,
    schedule_days_lock,
)
from tests.conftest import run_together
from tests.schedules.factories import ActivityCodeFactory, local, shift

SAT, SUN, MON = dt.date(2026, 10, 31), dt.date(2026, 11, 1), dt.date(2026, 11, 2)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-10-20 12:00:00 +00:00", tick=False):
        yield


@pytest.fixture
def agent(agent):
    agent.timezone = "America/New_York"
    agent.save()
    return agent


@pytest.fixture
def vacation(org):
    return ActivityCodeFactory(organization=org, code="VAC", category="time_off")


@pytest.fixture
def schedule(agent):
    """Saturday night into Sunday (9 real hours: the clocks repeat 01:00-02:00), Sunday and Monday."""
    shift(agent, SAT, ("NIGHT", "22:00", "06:00"))
    shift(agent, SUN, ("PHONE", "09:00", "12:00"), ("LUNCH", "12:00", "12:30"), ("PHONE", "12:30", "17:00"))
    shift(agent, MON, ("PHONE", "09:00", "17:00"))
    return _days(agent)


def _days(agent) -> dict[dt.date, list[tuple]]:
    """Each day's activities as (id, code, local start, local end, real length)."""
    zone = agent.zone
    days: dict[dt.date, list[tuple]] = {SAT: [], SUN: [], MON: []}
    for a in Activity.objects.filter(agent=agent).select_related("activity_code", "day").order_by("start"):
        days[a.day.date].append(
            (
                a.pk,
                a.activity_code.code,
                a.start.astimezone(zone).strftime("%m-%d %H:%M%z"),
                a.end.astimezone(zone).strftime("%m-%d %H:%M%z"),
                a.end - a.start,
                a.source,
            )
        )
    return days


def _time_off(agent, vacation):
    """One decision over three days, in one call: Saturday's night and Monday's shift become time
    off, Sunday from 11:00 (a partial day carved out of it)."""
    plans = []
    for date in (SAT, SUN, MON):
        specs = activity_specs(Activity.objects.filter(agent=agent, day__date=date).order_by("start"))
        if date == SUN:
            start, end = local(agent, SUN, "11:00"), local(agent, SUN, "17:00")
        else:
            start, end = min(s.start for s in specs), max(s.end for s in specs)
        specs = [
            *day_carve(specs, start=start, end=end),
            ActivitySpec(vacation.pk, start, end, source="time_off"),
        ]
        plans.append(DayPlan(agent=agent, date=date, activities=specs))
    return schedule_days_apply(plans=plans, source=ActivitySource.TIME_OFF, reason="time off request 1")


def _adjusted(agent) -> int:
    return Notification.objects.filter(user=agent.user, kind="schedule_adjusted").count()


@pytest.mark.django_db
def test_a_group_is_one_call_of_the_service_and_its_undo_gives_every_day_back_exactly(
    agent, vacation, schedule
):
    applied = _time_off(agent, vacation)
    assert applied.group is not None
    assert {c.group for c in applied.changes} == {applied.group} and len(applied.changes) == 3
    assert ScheduleChange.objects.filter(group=applied.group).count() == 3
    night = schedule[SAT][0]
    assert night[4] == dt.timedelta(hours=9)  # 22:00 EDT to 06:00 EST
    changed = _days(agent)
    assert [a[1] for a in changed[SUN]] == ["PHONE", "VAC"]
    assert changed[SUN][0][0] == schedule[SUN][0][0]  # the morning shortened, still itself
    assert changed[SAT][0][4] == dt.timedelta(hours=9)
    told = _adjusted(agent)

    undone = schedule_change_group_undo(
        group=applied.group, source=ActivitySource.TIME_OFF, reason="cancelled"
    )

    assert _days(agent) == schedule  # ids, times, lengths and origins: as before the group
    assert sorted(undone.removed) == sorted(a[0] for day in changed.values() for a in day if a[1] == "VAC")
    assert sorted(undone.restored) == sorted(
        [
            schedule[SAT][0][0],
            schedule[SUN][0][0],
            schedule[SUN][1][0],
            schedule[SUN][2][0],
            schedule[MON][0][0],
        ]
    )
    assert undone.not_restored == []
    rows = undone.applied.changes
    assert len(rows) == 3 and {row.reverts for row in rows} == set(applied.changes)
    assert undone.applied.group not in (None, applied.group)  # the undo is a change of its own
    assert _adjusted(agent) == told + 3  # each day told once


@pytest.mark.django_db
def test_undo_after_a_sync_and_a_supervisor_changed_the_days_removes_by_id_and_restores_where_free(
    agent, vacation, schedule
):
    applied = _time_off(agent, vacation)
    changed = _days(agent)
    sunday_vac = changed[SUN][1]
    # Since: a supervisor shortens Sunday's time off to 16:00 and puts a meeting at 16:00-17:00 ...
    meeting = ActivityCodeFactory(organization=agent.organization, code="MEET")
    sunday = activity_specs(Activity.objects.filter(agent=agent, day__date=SUN).order_by("start"))
    sunday = [s._replace(end=local(agent, SUN, "16:00")) if s.id == sunday_vac[0] else s for s in sunday]
    sunday.append(
        ActivitySpec(meeting.pk, local(agent, SUN, "16:00"), local(agent, SUN, "17:00"), source="supervisor")
    )
    schedule_days_apply(
        plans=[DayPlan(agent=agent, date=SUN, activities=sunday)], source=ActivitySource.SUPERVISOR
    )
    # ... and the WFM's new copy of Monday has training first, then the time off.
    shift(agent, MON, ("TRAIN", "09:00", "10:00"), ("VAC", "10:00", "17:00"))
    before_undo = _days(agent)

    undone = schedule_change_group_undo(group=applied.group, source=ActivitySource.TIME_OFF)

    after = _days(agent)
    assert after[SAT] == schedule[SAT]  # untouched since: exactly as before
    # Sunday: the time off goes by its id though it was shortened since; the morning (shortened by
    # the group) and lunch come back; the afternoon's time is the meeting's now.
    assert after[SUN] == [*schedule[SUN][:2], before_undo[SUN][-1]]
    assert before_undo[SUN][-1][1] == "MEET"
    # Monday: the WFM's rows stay (its time off is not the group's row); the shift finds no room.
    assert after[MON] == before_undo[MON]
    assert sunday_vac[0] in undone.removed
    assert [(n.date, n.activity["id"], n.why) for n in undone.not_restored] == [
        (SUN, schedule[SUN][2][0], "overlap"),
        (MON, schedule[MON][0][0], "overlap"),
    ]
    assert undone.not_restored[1].activity["start"] == "2026-11-02T14:00:00+00:00"  # as it was


@pytest.mark.django_db
def test_with_wfm_copy_wins_a_day_the_sync_rewrote_keeps_the_wfms_copy(agent, vacation, schedule):
    applied = _time_off(agent, vacation)
    shift(agent, MON, ("TRAIN", "09:00", "10:00"))  # the WFM's Monday: training only, the rest free
    wfm_monday = _days(agent)[MON]

    undone = schedule_change_group_undo(
        group=applied.group, source=ActivitySource.TIME_OFF, wfm_copy_wins=True
    )

    after = _days(agent)
    assert after[MON] == wfm_monday  # 10:00-17:00 is free, but the WFM's copy stands
    assert after[SAT] == schedule[SAT] and after[SUN] == schedule[SUN]
    assert [(n.date, n.why) for n in undone.not_restored] == [(MON, "wfm_copy")]


@pytest.mark.django_db
def test_an_activity_the_group_changed_and_someone_changed_again_stays_as_they_left_it(
    agent, vacation, schedule
):
    applied = _time_off(agent, vacation)
    morning = schedule[SUN][0][0]
    Activity.objects.filter(pk=morning).update(note="Coaching")  # the group's shortened morning, edited since

    undone = schedule_change_group_undo(group=applied.group, source=ActivitySource.TIME_OFF)

    kept = Activity.objects.get(pk=morning)
    assert (kept.note, kept.end.astimezone(agent.zone).strftime("%H:%M")) == ("Coaching", "11:00")
    assert [(n.date, n.activity["id"], n.why) for n in undone.not_restored] == [(SUN, morning, "changed")]
    assert [a[1] for a in _days(agent)[SUN]] == ["PHONE", "LUNCH", "PHONE"]  # the rest came back


@pytest.mark.django_db
def test_a_night_shift_is_not_put_back_over_the_next_mornings_new_shift(agent, vacation, schedule):
    """The free-time check looks past the day's end: Saturday's night ran to 06:00 on Sunday."""
    applied = _time_off(agent, vacation)
    # A supervisor clears Saturday night and starts Sunday early at 05:00.
    sunday = activity_specs(Activity.objects.filter(agent=agent, day__date=SUN).order_by("start"))
    early = ActivityCodeFactory(organization=agent.organization, code="EARLY")
    sunday.insert(
        0, ActivitySpec(early.pk, local(agent, SUN, "05:00"), local(agent, SUN, "07:00"), source="supervisor")
    )
    schedule_days_apply(
        plans=[
            DayPlan(agent=agent, date=SAT, activities=[]),
            DayPlan(agent=agent, date=SUN, activities=sunday),
        ],
        source=ActivitySource.SUPERVISOR,
    )

    undone = schedule_change_group_undo(group=applied.group, source=ActivitySource.TIME_OFF)

    assert [(n.date, n.activity["id"], n.why) for n in undone.not_restored] == [
        (SAT, schedule[SAT][0][0], "overlap")
    ]
    assert _days(agent)[SAT] == []
    assert [a[1] for a in _days(agent)[SUN]] == ["EARLY", "PHONE", "LUNCH", "PHONE"]


@pytest.mark.django_db
def test_undoing_a_group_twice_changes_nothing_the_second_time(agent, vacation, schedule):
    applied = _time_off(agent, vacation)
    schedule_change_group_undo(group=applied.group, source=ActivitySource.TIME_OFF)
    journal, told = ScheduleChange.objects.count(), _adjusted(agent)

    again = schedule_change_group_undo(group=applied.group, source=ActivitySource.TIME_OFF)

    assert (again.removed, again.restored, again.not_restored, again.applied.changes) == ([], [], [], [])
    assert (ScheduleChange.objects.count(), _adjusted(agent)) == (journal, told)
    assert _days(agent) == schedule


@pytest.mark.django_db
def test_a_later_change_joining_the_group_is_undone_with_it(agent, vacation, schedule):
    """Time off laid again over a day the sync rewrote joins the request's group: one undo takes
    both away."""
    applied = _time_off(agent, vacation)
    shift(agent, MON, ("PHONE", "08:00", "16:00"))  # the WFM moves Monday's shift: its time off is gone
    monday = activity_specs(Activity.objects.filter(agent=agent, day__date=MON))
    start, end = local(agent, MON, "08:00"), local(agent, MON, "16:00")
    overlay = [
        *day_carve(monday, start=start, end=end),
        ActivitySpec(vacation.pk, start, end, source="time_off"),
    ]
    again = schedule_days_apply(
        plans=[DayPlan(agent=agent, date=MON, activities=overlay)],
        source=ActivitySource.TIME_OFF,
        group=applied.group,
    )
    assert again.group == applied.group

    undone = schedule_change_group_undo(group=applied.group, source=ActivitySource.TIME_OFF)

    monday_now = _days(agent)[MON]
    assert [(a[1], a[2], a[3]) for a in monday_now] == [("PHONE", "11-02 08:00-0500", "11-02 16:00-0500")]
    assert monday_now[0][0] != schedule[MON][0][0]  # the WFM's row, put back by the overlay's undo
    assert [(n.date, n.why) for n in undone.not_restored] == [(MON, "overlap")]  # the old 09-17 shift


@pytest.mark.django_db
def test_every_day_of_the_group_is_locked_in_one_statement_before_anything_is_read(
    agent, vacation, schedule, monkeypatch
):
    applied = _time_off(agent, vacation)
    real_lock, locks = bulk.days_lock, []

    def days_lock(keys):
        locks.append((list(keys), len(connection.queries)))
        return real_lock(keys)

    monkeypatch.setattr(bulk, "days_lock", days_lock)
    with CaptureQueriesContext(connection) as queries:
        schedule_change_group_undo(group=applied.group, source=ActivitySource.TIME_OFF)

    three = [(agent.pk, SAT), (agent.pk, SUN), (agent.pk, MON)]
    # The undo's own lock of all three days, then the service's (the same days, the same order).
    assert [keys for keys, _at in locks] == [three, three]
    read_before_lock = [q["sql"] for q in queries.captured_queries[: locks[0][1] - queries.initial_queries]]
    assert read_before_lock and all("schedules_activity" not in sql for sql in read_before_lock)


@pytest.mark.django_db(transaction=True)
def test_an_undo_and_another_writer_of_one_of_its_days_at_once_both_land(postgres, agent, vacation, schedule):
    applied = _time_off(agent, vacation)
    meeting = ActivityCodeFactory(organization=agent.organization, code="MEET")

    def undo():
        return schedule_change_group_undo(group=applied.group, source=ActivitySource.TIME_OFF)

    def supervisor_adds_a_meeting_after_work():
        with transaction.atomic():
            # As every writer does: the day's lock first, then its activities read under it.
            schedule_days_lock(keys=[(agent.pk, SUN)])
            sunday = activity_specs(Activity.objects.filter(agent=agent, day__date=SUN))
            sunday.append(
                ActivitySpec(
                    meeting.pk, local(agent, SUN, "18:00"), local(agent, SUN, "19:00"), source="supervisor"
                )
            )
            schedule_days_apply(
                plans=[DayPlan(agent=agent, date=SUN, activities=sunday)], source="supervisor"
            )

    undone, _none = run_together([undo, supervisor_adds_a_meeting_after_work])

    assert undone.not_restored == []
    after = _days(agent)
    assert after[SAT] == schedule[SAT] and after[MON] == schedule[MON]
    assert after[SUN][:3] == schedule[SUN]  # the group undone whichever came first ...
    assert [a[1] for a in after[SUN][3:]] == ["MEET"]  # ... and the meeting kept


@pytest.mark.django_db
def test_a_supervisor_finds_every_day_of_a_group_in_the_journal(agent, vacation, schedule, supervisor):
    from django.test import Client

    applied = _time_off(agent, vacation)
    client = Client()
    client.force_login(supervisor)

    found = client.get("/admin/schedules/schedulechange/", {"q": str(applied.group)})

    assert sorted(found.context["cl"].result_list, key=lambda c: c.pk) == sorted(
        applied.changes, key=lambda c: c.pk
    )
    by_name = client.get("/admin/schedules/schedulechange/", {"q": "alice"})  # not a group id: by name
    assert by_name.status_code == 200 and by_name.context["cl"].result_count == ScheduleChange.objects.count()
    page = client.get(f"/admin/schedules/schedulechange/{applied.changes[0].pk}/change/")
    assert str(applied.group) in page.content.decode()
