"""Approved time off laid over the days the sync writes (issue 11, point 3): approved time off is part
of the schedule whatever the WFM sends later, its hours recomputed and the balance following, unless
the WFM's day already carries it; a cancellation afterwards gives back the WFM's copy."""

import datetime as dt
import json

import pytest
import time_machine

from notifications.models import Notification
from schedules.models import Activity, ApprovalRule, RequestType, RuleAction, ScheduleChange, ScheduleDay
from sync.connectors import DirectoryConnector
from sync.models import RunStatus
from sync.services import wfm_sync
from tests.factories import AgentFactory
from tests.schedules.factories import ActivityCodeFactory, shift
from timeoff.balances import balance_for_code
from timeoff.models import TimeOffBalance, TimeOffDay, TimeOffRequest
from timeoff.services import time_off_request_cancel, time_off_request_create

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)  # Thursday 10:00 in Amsterdam
MONDAY = dt.date(2026, 12, 7)
TUESDAY = dt.date(2026, 12, 8)
FRIDAY = dt.date(2026, 12, 11)  # not published yet when the time off is approved
GENERATED = NOW + dt.timedelta(hours=1)  # the WFM's copy: made after the approvals
SYNCED = NOW + dt.timedelta(hours=2)


def _code(code, category="work", paid=True, time_off=False):
    return {
        "code": code,
        "name": code.title(),
        "category": category,
        "color": "#4A90D9",
        "paid": paid,
        "open_for_time_off": time_off,
    }


ROSTER = {
    "format": "em-agent-wfm-export",
    "version": 1,
    "generated_at": GENERATED.isoformat(),
    "teams": [],
    "skills": [],
    "activity_codes": [
        _code("PHONE"),
        _code("LUNCH", "break", paid=False),
        _code("VAC", "time_off", time_off=True),
    ],
    "agents": [
        {
            "external_id": "A1",
            "name": "Alice",
            "email": "alice@contoso.test",
            "timezone": "Europe/Amsterdam",
            "skills": [],
        }
    ],
}


def _row(date, *blocks, published=True, note=""):
    return {
        "agent": "A1",
        "date": date.isoformat(),
        "published": published,
        "note": note,
        "activities": [{"code": code, "start": start, "end": end} for code, start, end in blocks],
    }


WORKDAY = (("PHONE", "09:00", "12:00"), ("LUNCH", "12:00", "12:30"), ("PHONE", "12:30", "17:30"))


@pytest.fixture
def alice(org):
    agent = AgentFactory(
        organization=org, external_id="A1", user__email="alice@contoso.test", timezone="Europe/Amsterdam"
    )
    ActivityCodeFactory(organization=org, code="LUNCH", paid=False)
    vac = ActivityCodeFactory(
        organization=org, code="VAC", category="time_off", open_for_time_off=True, paid=True
    )
    TimeOffBalance.objects.create(agent=agent, activity_code=vac, earned_minutes=40 * 60, as_of=NOW.date())
    ApprovalRule.objects.create(
        organization=org, request_type=RequestType.TIME_OFF, action=RuleAction.AUTO_APPROVE
    )
    with time_machine.travel(NOW, tick=False):
        for date in (MONDAY, TUESDAY):
            shift(agent, date, *WORKDAY)
    return agent


def _request(agent, **body):
    with time_machine.travel(NOW, tick=False):
        request = time_off_request_create(agent=agent, activity_code="VAC", **body)
    assert request.status == "approved", request.status_reason
    return request


def _sync(org, tmp_path, *days):
    directory = tmp_path / f"export-{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    (directory / "roster.json").write_text(json.dumps(ROSTER))
    (directory / "schedules.json").write_text(
        json.dumps(
            {
                "format": "em-agent-wfm-export",
                "version": 1,
                "generated_at": ROSTER["generated_at"],
                "days": list(days),
            }
        )
    )
    with time_machine.travel(SYNCED, tick=False):
        run = wfm_sync(organization=org, connector=DirectoryConnector(directory))
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _day(agent, date, *, source=False):
    return [
        (
            a.activity_code.code,
            f"{a.start.astimezone(agent.zone):%H:%M}",
            f"{a.end.astimezone(agent.zone):%H:%M}",
            *((a.source,) if source else ()),
        )
        for a in Activity.objects.filter(agent=agent, day__date=date)
        .select_related("activity_code")
        .order_by("start")
    ]


def _balance(agent):
    vac = agent.organization.activity_codes.get(code="VAC")
    with time_machine.travel(SYNCED, tick=False):
        return balance_for_code(agent=agent, activity_code=vac, today=SYNCED.date())


def _adjusted(agent):
    return Notification.objects.filter(user=agent.user, kind="schedule_adjusted").count()


def test_time_off_on_an_unpublished_day_appears_when_the_sync_publishes_it_and_a_rerun_changes_nothing(
    org, alice, tmp_path
):
    request = _request(alice, kind="full_day", start_date=FRIDAY, end_date=FRIDAY)
    assert _day(alice, FRIDAY) == [("VAC", "09:00", "17:00")]  # the default 8 hours at the day start
    assert request.minutes == 8 * 60
    adjusted = _adjusted(alice)
    friday = _row(
        FRIDAY, ("PHONE", "08:00", "12:00"), ("LUNCH", "12:00", "12:30"), ("PHONE", "12:30", "18:00")
    )
    monday = _row(
        MONDAY, ("PHONE", "08:00", "12:00"), ("LUNCH", "12:00", "12:30"), ("PHONE", "12:30", "17:30")
    )

    run = _sync(org, tmp_path, friday, monday)

    assert run.counts["days_time_off_laid"] == 1
    assert run.counts["days_changed"] == 2
    assert ScheduleDay.objects.get(agent=alice, date=FRIDAY).published is True
    assert _day(alice, FRIDAY, source=True) == [("VAC", "08:00", "18:00", "time_off")]
    assert _day(alice, MONDAY)[0] == ("PHONE", "08:00", "12:00")  # no time off there: as sent
    # The published day counts its paid time, 9.5 hours (the lunch unpaid), and the balance follows.
    request.refresh_from_db()
    assert request.minutes == 570
    assert list(TimeOffDay.objects.filter(request=request).values_list("minutes", flat=True)) == [570]
    balance = _balance(alice)
    assert (balance.planned, balance.remaining) == (570, 40 * 60 - 570)
    # A first publication is news in the calendar: Monday's change is told, Friday's is not.
    assert _adjusted(alice) == adjusted + 1

    journal = ScheduleChange.objects.count()
    rerun = _sync(org, tmp_path, friday, monday)

    assert rerun.counts.get("days_changed", 0) == 0 and "days_time_off_laid" not in rerun.counts
    assert ScheduleChange.objects.count() == journal
    assert _adjusted(alice) == adjusted + 1
    assert _day(alice, FRIDAY, source=True) == [("VAC", "08:00", "18:00", "time_off")]


def test_the_hours_of_a_published_day_are_recomputed_and_a_cancellation_gives_back_the_wfms_copy(
    org, alice, tmp_path
):
    request = _request(alice, kind="full_day", start_date=MONDAY, end_date=MONDAY)
    assert (request.minutes, _day(alice, MONDAY)) == (480, [("VAC", "09:00", "17:30")])
    adjusted = _adjusted(alice)
    longer = _row(
        MONDAY, ("PHONE", "09:00", "12:00"), ("LUNCH", "12:00", "13:00"), ("PHONE", "13:00", "19:00")
    )

    run = _sync(org, tmp_path, longer)

    assert run.counts["days_time_off_laid"] == 1 and run.counts["time_off_days_recounted"] == 1
    assert _day(alice, MONDAY, source=True) == [("VAC", "09:00", "19:00", "time_off")]
    request.refresh_from_db()
    assert request.minutes == 9 * 60
    assert _balance(alice).remaining == 31 * 60
    assert _adjusted(alice) == adjusted + 1  # a published day the agent sees change: told once

    with time_machine.travel(SYNCED, tick=False):
        time_off_request_cancel(agent=alice, request_id=request.pk)

    assert _day(alice, MONDAY) == [
        ("PHONE", "09:00", "12:00"),
        ("LUNCH", "12:00", "13:00"),
        ("PHONE", "13:00", "19:00"),
    ]
    assert _balance(alice).remaining == 40 * 60


def test_part_of_a_day_is_carved_out_of_the_new_day_with_its_hours_and_undone_to_the_wfms_copy(
    org, alice, tmp_path
):
    request = _request(alice, kind="partial_day", date=TUESDAY, start_time=dt.time(14), end_time=dt.time(16))

    run = _sync(org, tmp_path, _row(TUESDAY, ("PHONE", "10:00", "18:00")))

    assert run.counts["days_time_off_laid"] == 1 and run.counts.get("time_off_days_recounted", 0) == 0
    assert _day(alice, TUESDAY) == [
        ("PHONE", "10:00", "14:00"),
        ("VAC", "14:00", "16:00"),
        ("PHONE", "16:00", "18:00"),
    ]
    request.refresh_from_db()
    assert request.minutes == 120  # the clock's two hours, whatever the day around them

    with time_machine.travel(SYNCED, tick=False):
        time_off_request_cancel(agent=alice, request_id=request.pk)

    assert _day(alice, TUESDAY) == [("PHONE", "10:00", "18:00")]


def test_a_day_whose_wfm_copy_already_carries_the_time_off_is_left_as_the_wfm_sent_it(org, alice, tmp_path):
    whole = _request(alice, kind="full_day", start_date=MONDAY, end_date=MONDAY)
    part = _request(alice, kind="partial_day", date=TUESDAY, start_time=dt.time(14), end_time=dt.time(16))
    monday = _row(MONDAY, ("VAC", "09:00", "17:30"), note="Enjoy")
    tuesday = _row(
        TUESDAY,
        ("PHONE", "09:00", "14:00"),
        ("VAC", "14:00", "15:00"),
        ("VAC", "15:00", "16:00"),
        ("PHONE", "16:00", "17:30"),
    )

    run = _sync(org, tmp_path, monday, tuesday)

    assert "days_time_off_laid" not in run.counts
    assert _day(alice, MONDAY, source=True) == [("VAC", "09:00", "17:30", "wfm")]
    assert ScheduleDay.objects.get(agent=alice, date=MONDAY).note == "Enjoy"
    assert _day(alice, TUESDAY, source=True) == [
        ("PHONE", "09:00", "14:00", "wfm"),
        ("VAC", "14:00", "15:00", "wfm"),
        ("VAC", "15:00", "16:00", "wfm"),
        ("PHONE", "16:00", "17:30", "wfm"),
    ]
    # The WFM counted the time off in: its hours stay what the approval counted.
    assert [r.minutes for r in TimeOffRequest.objects.filter(pk__in=[whole.pk, part.pk]).order_by("pk")] == [
        480,
        120,
    ]


def test_a_wfm_day_that_carries_only_part_of_the_time_off_gets_it_laid_over(org, alice, tmp_path):
    _request(alice, kind="partial_day", date=TUESDAY, start_time=dt.time(14), end_time=dt.time(16))

    _sync(
        org,
        tmp_path,
        _row(TUESDAY, ("PHONE", "09:00", "14:00"), ("VAC", "14:00", "15:00"), ("PHONE", "15:00", "17:30")),
    )

    assert _day(alice, TUESDAY) == [
        ("PHONE", "09:00", "14:00"),
        ("VAC", "14:00", "16:00"),
        ("PHONE", "16:00", "17:30"),
    ]


def test_cancelled_or_denied_time_off_is_not_laid_over(org, alice, tmp_path):
    request = _request(alice, kind="full_day", start_date=MONDAY, end_date=MONDAY)
    with time_machine.travel(NOW, tick=False):
        time_off_request_cancel(agent=alice, request_id=request.pk)

    run = _sync(org, tmp_path, _row(MONDAY, ("PHONE", "10:00", "18:00")))

    assert "days_time_off_laid" not in run.counts
    assert _day(alice, MONDAY) == [("PHONE", "10:00", "18:00")]


def test_cancelling_time_off_the_wfms_copy_carries_leaves_the_wfms_copy(org, alice, tmp_path):
    request = _request(alice, kind="full_day", start_date=MONDAY, end_date=MONDAY)
    _sync(org, tmp_path, _row(MONDAY, ("VAC", "09:00", "17:30")))
    # The WFM's vacation has the same code and times as the approval's: its row (and id) stayed.
    assert _day(alice, MONDAY, source=True) == [("VAC", "09:00", "17:30", "wfm")]

    with time_machine.travel(SYNCED, tick=False):
        time_off_request_cancel(agent=alice, request_id=request.pk)

    # The WFM's newer copy of the day stands (issue 11, point 8), until the WFM sends another.
    assert _day(alice, MONDAY, source=True) == [("VAC", "09:00", "17:30", "wfm")]
    assert _balance(alice).remaining == 40 * 60


def test_two_requests_parts_of_one_day_are_laid_each_in_its_own_group_and_cancelled_apart(
    org, alice, tmp_path
):
    morning = _request(alice, kind="partial_day", date=TUESDAY, start_time=dt.time(10), end_time=dt.time(12))
    afternoon = _request(
        alice, kind="partial_day", date=TUESDAY, start_time=dt.time(14), end_time=dt.time(16)
    )

    run = _sync(org, tmp_path, _row(TUESDAY, ("PHONE", "09:00", "17:30")))

    assert run.counts["days_time_off_laid"] == 1
    assert _day(alice, TUESDAY) == [
        ("PHONE", "09:00", "10:00"),
        ("VAC", "10:00", "12:00"),
        ("PHONE", "12:00", "14:00"),
        ("VAC", "14:00", "16:00"),
        ("PHONE", "16:00", "17:30"),
    ]
    with time_machine.travel(SYNCED, tick=False):
        time_off_request_cancel(agent=alice, request_id=afternoon.pk)
        assert _day(alice, TUESDAY) == [
            ("PHONE", "09:00", "10:00"),
            ("VAC", "10:00", "12:00"),
            ("PHONE", "12:00", "17:30"),
        ]
        time_off_request_cancel(agent=alice, request_id=morning.pk)

    assert _day(alice, TUESDAY) == [("PHONE", "09:00", "17:30")]
