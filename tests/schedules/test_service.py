import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from em_agent.exceptions import ApplicationError
from notifications.models import Notification
from schedules.models import Activity, ScheduleChange, ScheduleDay
from schedules.services import (
    ActivitySpec,
    DayPlan,
    activity_specs,
    schedule_change_revert,
    schedule_days_apply,
)
from tests.conftest import run_together
from tests.schedules.factories import ActivityCodeFactory, local, shift

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 12, 3)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False):
        yield


def _day(agent, date=DAY):
    day = ScheduleDay.objects.get(agent=agent, date=date)
    return day, list(Activity.objects.filter(day=day).order_by("start"))


def _adjusted(agent):
    return list(
        Notification.objects.filter(user=agent.user, kind="schedule_adjusted").values_list(
            "params", flat=True
        )
    )


def test_a_published_future_day_is_written_and_its_first_publication_is_silent(agent):
    result = shift(
        agent, DAY, ("PHONE", "09:00", "12:30"), ("LUNCH", "12:30", "13:00"), ("PHONE", "13:00", "17:30")
    )

    day, activities = _day(agent)
    assert day.published
    assert [
        (a.start.astimezone(agent.zone).strftime("%H:%M"), a.end.astimezone(agent.zone).strftime("%H:%M"))
        for a in activities
    ] == [
        ("09:00", "12:30"),
        ("12:30", "13:00"),
        ("13:00", "17:30"),
    ]
    assert (day.first_start, day.last_end) == (activities[0].start, activities[-1].end)
    # A day the WFM creates replaced nothing: not journalled (the sync's run records it).
    assert result.days_written == 1 and result.changes == []
    assert _adjusted(agent) == []  # a newly published day is a green dot, not an adjustment

    result = shift(
        agent, DAY, ("PHONE", "09:00", "12:30"), ("LUNCH", "12:30", "13:00"), ("PHONE", "13:00", "17:00")
    )
    assert _adjusted(agent) == [{"date": "2026-12-03"}]
    (change,) = result.changes
    assert [a["id"] for a in change.before["activities"]] == [a.pk for a in activities]
    assert [a["id"] for a in change.after["activities"]] == [a.pk for a in _day(agent)[1]]
    assert change.after["activities"][-1]["end"] == local(agent, DAY, "17:00").astimezone(dt.UTC).isoformat()


def test_a_day_someone_other_than_the_wfm_creates_is_journalled(agent):
    result = schedule_days_apply(plans=[_plan(agent, DAY, ("PHONE", "09:00", "17:00"))], source="supervisor")

    (change,) = result.changes
    assert change.before == {"published": False, "note": "", "activities": []}
    assert [a["id"] for a in change.after["activities"]] == [Activity.objects.get().pk]
    assert _adjusted(agent) == [{"date": "2026-12-03"}]  # a shift added to a published day


def test_the_same_day_again_changes_nothing_and_tells_nobody(agent):
    shift(agent, DAY, ("PHONE", "09:00", "17:00"))
    before = _day(agent)[1]

    result = shift(agent, DAY, ("PHONE", "09:00", "17:00"))

    assert result.changes == [] and result.days_written == 0
    assert [a.pk for a in _day(agent)[1]] == [a.pk for a in before]  # not even rewritten
    assert _adjusted(agent) == []


def test_a_change_to_a_past_or_unpublished_day_is_silent(agent):
    shift(agent, dt.date(2026, 11, 30), ("PHONE", "09:00", "17:00"))  # yesterday in Amsterdam
    shift(agent, DAY, ("PHONE", "09:00", "17:00"), published=False)
    shift(agent, dt.date(2026, 11, 30), ("PHONE", "10:00", "17:00"))
    shift(agent, DAY, ("PHONE", "10:00", "17:00"), published=False)

    assert _adjusted(agent) == []
    assert ScheduleChange.objects.count() == 2


def test_several_days_and_agents_in_one_call_notify_each_changed_day_once(agent, teammate):
    code = ActivityCodeFactory(organization=agent.organization, code="PHONE")
    plans = [
        DayPlan(
            agent=who,
            date=DAY + dt.timedelta(days=offset),
            published=True,
            activities=[
                ActivitySpec(
                    activity_code_id=code.pk,
                    start=local(who, DAY + dt.timedelta(days=offset), "09:00"),
                    end=local(who, DAY + dt.timedelta(days=offset), "17:00"),
                )
            ],
        )
        for who in (agent, teammate)
        for offset in range(3)
    ]
    result = schedule_days_apply(plans=plans, source="supervisor")

    assert len(result.changes) == 6
    assert sorted(p["date"] for p in _adjusted(agent)) == ["2026-12-03", "2026-12-04", "2026-12-05"]
    assert len(_adjusted(teammate)) == 3


def test_overlapping_activities_are_refused_and_nothing_is_written(agent):
    with pytest.raises(ApplicationError) as refused:
        shift(agent, DAY, ("PHONE", "09:00", "12:00"), ("MEET", "11:30", "13:00"))
    assert refused.value.code == "overlap"
    assert not Activity.objects.exists()
    assert not ScheduleChange.objects.exists()


def test_a_night_shift_blocks_the_next_morning(agent):
    shift(agent, DAY, ("NIGHT", "22:00", "06:00"))  # runs into the next day

    with pytest.raises(ApplicationError) as refused:
        shift(agent, DAY + dt.timedelta(days=1), ("PHONE", "05:00", "09:00"))
    assert refused.value.code == "overlap"
    assert Activity.objects.count() == 1


def test_an_activity_starts_on_its_own_day(agent):
    code = ActivityCodeFactory(organization=agent.organization, code="PHONE")
    plan = DayPlan(
        agent=agent,
        date=DAY,
        activities=[
            ActivitySpec(
                activity_code_id=code.pk,
                start=local(agent, DAY + dt.timedelta(days=1), "09:00"),
                end=local(agent, DAY + dt.timedelta(days=1), "10:00"),
            )
        ],
    )
    with pytest.raises(ApplicationError) as refused:
        schedule_days_apply(plans=[plan], source="wfm")
    assert refused.value.code == "validation_error"


def test_another_organisations_code_is_refused(agent, outsider):
    theirs = ActivityCodeFactory(organization=outsider.organization, code="PHONE")
    plan = DayPlan(
        agent=agent,
        date=DAY,
        activities=[
            ActivitySpec(
                activity_code_id=theirs.pk, start=local(agent, DAY, "09:00"), end=local(agent, DAY, "10:00")
            )
        ],
    )
    with pytest.raises(ApplicationError) as refused:
        schedule_days_apply(plans=[plan], source="wfm")
    assert refused.value.code == "validation_error"
    assert "activity_code" in refused.value.fields


def test_revert_gives_back_exactly_the_original_day(agent):
    shift(
        agent,
        DAY,
        ("PHONE", "09:00", "12:00"),
        ("LUNCH", "12:00", "12:30"),
        ("PHONE", "12:30", "17:00"),
        note="Busy day",
    )
    day, original = _day(agent)
    original_rows = [(a.pk, a.activity_code_id, a.start, a.end, a.note, a.source) for a in original]
    training = ActivityCodeFactory(organization=agent.organization, code="TRAIN")

    # An approved request turns the afternoon into training.
    specs = activity_specs(original)[:2] + [
        ActivitySpec(
            activity_code_id=training.pk,
            start=local(agent, DAY, "12:30"),
            end=local(agent, DAY, "17:00"),
            source="request",
        )
    ]
    change = schedule_days_apply(
        plans=[DayPlan(agent=agent, date=DAY, activities=specs)], source="request"
    ).changes[0]
    assert _day(agent)[1][2].activity_code_id == training.pk

    schedule_change_revert(change=change)

    day, restored = _day(agent)
    assert [(a.pk, a.activity_code_id, a.start, a.end, a.note, a.source) for a in restored] == original_rows
    assert day.note == "Busy day"
    assert ScheduleChange.objects.filter(reverts=change).count() == 1
    assert len(_adjusted(agent)) == 2  # changed, restored (the WFM's first publication is silent)


def test_revert_refuses_when_the_day_changed_since(agent):
    shift(agent, DAY, ("PHONE", "09:00", "17:00"))
    change = shift(agent, DAY, ("PHONE", "10:00", "17:00")).changes[0]
    shift(agent, DAY, ("PHONE", "11:00", "17:00"))

    with pytest.raises(ApplicationError) as refused:
        schedule_change_revert(change=change)
    assert refused.value.code == "schedule_changed"


def test_dst_day_activities_keep_their_wall_clock_times(agent):
    # 2026-10-25: Amsterdam goes from +02:00 to +01:00 at 03:00; a 23:00-07:00 night is 9 hours.
    with time_machine.travel("2026-10-20 08:00:00 +00:00", tick=False):
        shift(agent, dt.date(2026, 10, 24), ("NIGHT", "23:00", "07:00"))
    activity = Activity.objects.get()
    assert activity.end - activity.start == dt.timedelta(hours=9)
    assert activity.start.astimezone(agent.zone).isoformat() == "2026-10-24T23:00:00+02:00"
    assert activity.end.astimezone(agent.zone).isoformat() == "2026-10-25T07:00:00+01:00"


def test_the_database_refuses_days_that_overlap_whoever_writes_them(postgres, agent):
    shift(agent, DAY, ("NIGHT", "22:00", "06:00"))
    shift(agent, DAY + dt.timedelta(days=1), ("PHONE", "09:00", "17:00"))
    next_day = ScheduleDay.objects.get(agent=agent, date=DAY + dt.timedelta(days=1))

    with pytest.raises(IntegrityError), transaction.atomic():
        ScheduleDay.objects.filter(pk=next_day.pk).update(first_start=local(agent, next_day.date, "05:00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        ScheduleDay.objects.filter(pk=next_day.pk).update(last_end=next_day.first_start)  # an empty span


def test_the_database_refuses_an_activity_on_another_agents_day(postgres, agent, teammate):
    shift(agent, DAY, ("PHONE", "09:00", "12:00"))
    day, (activity,) = _day(agent)

    with pytest.raises(IntegrityError), transaction.atomic():
        connection.cursor().execute("SET CONSTRAINTS activity_day_of_agent IMMEDIATE")  # not at commit
        Activity.objects.create(
            agent=teammate,
            day=day,
            activity_code_id=activity.activity_code_id,
            start=local(agent, DAY, "13:00"),
            end=local(agent, DAY, "14:00"),
        )


@pytest.mark.django_db(transaction=True)
def test_two_writers_of_neighbouring_days_cannot_make_them_overlap(postgres, agent):
    # Each writer locks only its own day and sees the other's old version: the days' exclusion
    # constraint is what refuses the second.
    for attempt in range(3):
        ScheduleDay.objects.filter(agent=agent).delete()
        shift(agent, DAY, ("NIGHT", "22:00", "02:00"))
        shift(agent, DAY + dt.timedelta(days=1), ("PHONE", "09:00", "17:00"))
        outcomes = []

        def write(date, start, end, outcomes=outcomes):
            def call():
                try:
                    shift(agent, date, ("NIGHT" if date == DAY else "PHONE", start, end))
                    outcomes.append("written")
                except ApplicationError as exc:
                    outcomes.append(exc.code)

            return call

        run_together([write(DAY, "22:00", "07:00"), write(DAY + dt.timedelta(days=1), "06:00", "17:00")])
        assert sorted(outcomes) == ["overlap", "written"], attempt
        night, morning = (
            list(Activity.objects.filter(agent=agent, day__date=date))
            for date in (DAY, DAY + dt.timedelta(days=1))
        )
        assert night[0].end <= morning[0].start


def _plan(agent, date, *blocks, **kwargs):
    specs = []
    for code, start, end in blocks:
        activity_code = ActivityCodeFactory(organization=agent.organization, code=code)
        begins, ends = local(agent, date, start), local(agent, date, end)
        if ends <= begins:
            ends = local(agent, date + dt.timedelta(days=1), end)
        specs.append(ActivitySpec(activity_code_id=activity_code.pk, start=begins, end=ends))
    return DayPlan(agent=agent, date=date, activities=specs, published=True, **kwargs)


def test_an_overlap_between_two_days_written_in_one_call_is_refused(agent):
    # Both days new in the same call: on SQLite no constraint would catch it.
    with pytest.raises(ApplicationError) as refused:
        schedule_days_apply(
            plans=[
                _plan(agent, DAY, ("NIGHT", "22:00", "06:00")),
                _plan(agent, DAY + dt.timedelta(days=1), ("PHONE", "05:00", "09:00")),
            ],
            source="wfm",
        )
    assert refused.value.code == "overlap"
    assert not Activity.objects.exists()


def test_a_writer_that_read_the_day_before_a_change_is_refused(agent):
    shift(agent, DAY, ("PHONE", "09:00", "17:00"))
    loaded = ScheduleDay.objects.get(agent=agent, date=DAY).updated_at
    with time_machine.travel("2026-12-01 08:05:00 +00:00", tick=False):
        shift(agent, DAY, ("PHONE", "10:00", "17:00"))  # someone else, meanwhile

        with pytest.raises(ApplicationError) as refused:
            schedule_days_apply(
                plans=[_plan(agent, DAY, ("PHONE", "09:00", "18:00"), expected_updated_at=loaded)],
                source="supervisor",
            )
    assert refused.value.code == "schedule_changed"
    assert _day(agent)[1][0].start == local(agent, DAY, "10:00")


def test_unpublishing_a_day_tells_the_agent(agent):
    shift(agent, DAY, ("PHONE", "09:00", "17:00"))
    shift(agent, DAY, ("PHONE", "09:00", "17:00"), published=False)
    assert len(_adjusted(agent)) == 1


def test_a_night_shift_still_running_is_news_though_its_day_is_yesterday(agent):
    with time_machine.travel("2026-12-02 22:00:00 +00:00", tick=False):  # 23:00 on the 2nd in Amsterdam
        shift(agent, dt.date(2026, 12, 2), ("NIGHT", "22:00", "06:00"))
    with time_machine.travel("2026-12-03 01:00:00 +00:00", tick=False):  # 02:00 on the 3rd: yesterday's night
        shift(agent, dt.date(2026, 12, 2), ("NIGHT", "22:00", "04:00"))
    assert len(_adjusted(agent)) == 1


@pytest.mark.django_db(transaction=True)
def test_writers_creating_the_same_new_days_in_opposite_orders_do_not_deadlock(postgres, agent):
    days = [DAY + dt.timedelta(days=offset) for offset in range(6)]

    def write(order, start):
        def call():
            schedule_days_apply(
                plans=[_plan(agent, day, ("PHONE", start, "17:00")) for day in order], source="wfm"
            )

        return call

    for attempt in range(3):
        ScheduleDay.objects.filter(agent=agent).delete()
        run_together([write(days, "09:00"), write(list(reversed(days)), "10:00")])
        assert ScheduleDay.objects.filter(agent=agent).count() == 6, attempt


def test_the_bulk_writers_errors_are_djangos(postgres, agent):
    from schedules import bulk

    shift(agent, DAY, ("PHONE", "09:00", "12:00"))
    day, (activity,) = _day(agent)
    twice = bulk.ActivityValues(
        activity.pk, agent.pk, day.pk, activity.activity_code_id, activity.start, activity.end, "", "wfm"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk.activities_insert([twice])


def test_the_copies_name_every_column():
    # COPY writes the columns it names and leaves the rest to their database defaults (none here):
    # a field added to Activity or ScheduleDay must be added to schedules.bulk's COPY too.
    from schedules import bulk

    assert {field.column for field in Activity._meta.concrete_fields} == set(bulk.ActivityValues._fields)
    assert {field.column for field in ScheduleDay._meta.concrete_fields} == {"id", *bulk.DayValues._fields}
