"""The export's time-off sections through the sync: `time_off_balances` (earned balances by agent
and code) and `staffing` (agents required and scheduled per interval), as docs/wfm-export.md has
them. On PostgreSQL (DATABASE_URL), as the other sync tests."""

import datetime as dt
import json

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from em_agent.models import Agent, Organization, Team
from em_agent.services import user_set_active
from schedules.models import ActivityCode
from sync.connectors import DirectoryConnector
from sync.models import RunStatus, SyncIssue
from sync.services import wfm_sync
from timeoff.models import StaffingInterval, TimeOffBalance

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@pytest.fixture(autouse=True)
def _frozen():
    # Friday 20 March 2026, 09:00 in Amsterdam: the window runs from 13 March to 1 May.
    with time_machine.travel("2026-03-20 08:00:00 +00:00", tick=False):
        yield


@pytest.fixture
def wfm_org(db):
    return Organization.objects.create(name="Contoso", slug="contoso", default_timezone="Europe/Amsterdam")


def _code(code, category, open_for_time_off=False):
    return {
        "code": code,
        "name": code.title(),
        "category": category,
        "color": "#4A90D9",
        "paid": True,
        "open_for_requests": False,
        "open_for_time_off": open_for_time_off,
        "open_for_absence": False,
    }


def _agent(external_id, team="T1"):
    return {
        "external_id": external_id,
        "name": external_id,
        "email": f"{external_id.lower()}@contoso.test",  # an id per test, an email per id
        "timezone": "Europe/Amsterdam",
        "team": team,
        "supervisor_email": None,
        "skills": [],
    }


def roster(*, agents=("A1", "A2"), balances=None, staffing=None, **extra):
    document = {
        "format": "em-agent-wfm-export",
        "version": 1,
        "generated_at": "2026-03-20T02:00:00+01:00",
        "teams": [{"external_id": "T1", "name": "Care"}, {"external_id": "T2", "name": "Sales"}],
        "skills": [],
        "activity_codes": [
            _code("PHONE", "work"),
            _code("VAC", "time_off", open_for_time_off=True),
            _code("PERSONAL", "time_off", open_for_time_off=True),
            _code("SICK", "absence"),
        ],
        "agents": [_agent(external_id) for external_id in agents],
        **extra,
    }
    if balances is not None:
        document["time_off_balances"] = balances
    if staffing is not None:
        document["staffing"] = staffing
    return document


def balance(agent="A1", code="VAC", hours=200, as_of="2026-01-01", **changes):
    return {"agent": agent, "code": code, "earned_hours": hours, "as_of": as_of, **changes}


def interval(start="09:00", date="2026-03-23", team="T1", minutes=30, required=4, scheduled=6, **changes):
    return {
        "team": team,
        "date": date,
        "start": start,
        "minutes": minutes,
        "required": required,
        "scheduled": scheduled,
        **changes,
    }


def grid(date, *, team="T1", first=9, hours=2, minutes=30, required=4, scheduled=6):
    """A day's intervals from `first` o'clock for `hours` hours."""
    return [
        interval(
            f"{first + n * minutes // 60:02d}:{n * minutes % 60:02d}",
            date,
            team,
            minutes,
            required,
            scheduled,
        )
        for n in range(hours * 60 // minutes)
    ]


def sync(org, tmp_path, document, schedules=None):
    (tmp_path / "roster.json").write_text(json.dumps(document))
    (tmp_path / "schedules.json").write_text(
        schedules
        if schedules is not None
        else json.dumps({"format": "em-agent-wfm-export", "version": 1, "days": []})
    )
    run = wfm_sync(organization=org, connector=DirectoryConnector(tmp_path))
    assert run.status == RunStatus.SUCCEEDED or schedules is not None, run.error
    return run


def reasons(run, section):
    return dict(SyncIssue.objects.filter(run=run, section=section).values_list("reference", "reason"))


def issues(run, section):
    return sorted(SyncIssue.objects.filter(run=run, section=section).values_list("reference", "reason"))


def balances():
    return {
        (agent, code): (minutes, as_of)
        for agent, code, minutes, as_of in TimeOffBalance.objects.values_list(
            "agent__external_id", "activity_code__code", "earned_minutes", "as_of"
        )
    }


def staffing(zone="Europe/Amsterdam"):
    """The stored intervals as the export writes them: (team, local date and time) -> values."""
    import zoneinfo

    local = zoneinfo.ZoneInfo(zone)
    return {
        (team, f"{start.astimezone(local):%Y-%m-%d %H:%M}"): (minutes, required, scheduled)
        for team, start, minutes, required, scheduled in StaffingInterval.objects.values_list(
            "team__external_id", "start", "minutes", "required", "scheduled"
        )
    }


def writes(queries, *tables):
    return [
        q["sql"]
        for q in queries
        if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")
        and any(table in q["sql"] for table in tables)
    ]


TABLES = ("timeoff_timeoffbalance", "timeoff_staffinginterval")


# --- balances ------------------------------------------------------------------------------------


def test_balances_are_stored_in_minutes_and_a_rerun_writes_nothing(wfm_org, tmp_path):
    document = roster(
        balances=[
            balance("A1", "VAC", 200),
            balance("A1", "PERSONAL", 7.33, "2026-03-01"),
            balance("A2", "VAC", -4.25),
            balance("A2", "PERSONAL", 0),
        ]
    )

    run = sync(wfm_org, tmp_path, document)

    assert balances() == {
        ("A1", "VAC"): (12000, dt.date(2026, 1, 1)),
        ("A1", "PERSONAL"): (440, dt.date(2026, 3, 1)),  # 7.33 h is 439.8 min
        ("A2", "VAC"): (-255, dt.date(2026, 1, 1)),
        ("A2", "PERSONAL"): (0, dt.date(2026, 1, 1)),
    }
    assert (run.counts["time_off_balances_created"], run.counts["time_off_balances_unchanged"]) == (4, 0)
    assert set(TimeOffBalance.objects.values_list("updated_at", flat=True)) == {
        dt.datetime(2026, 3, 20, 8, tzinfo=UTC)
    }

    with time_machine.travel("2026-03-21 08:00:00 +00:00", tick=False):
        with CaptureQueriesContext(connection) as queries:
            rerun = sync(wfm_org, tmp_path, document)

    assert writes(queries, *TABLES) == []
    assert rerun.counts["time_off_balances_unchanged"] == 4
    assert rerun.counts["time_off_balances_created"] == rerun.counts["time_off_balances_updated"] == 0
    assert set(TimeOffBalance.objects.values_list("updated_at", flat=True)) == {
        dt.datetime(2026, 3, 20, 8, tzinfo=UTC)
    }


def test_a_changed_balance_is_updated_and_the_agents_and_codes_not_listed_keep_theirs(wfm_org, tmp_path):
    sync(wfm_org, tmp_path, roster(balances=[balance("A1", "VAC", 200), balance("A2", "VAC", 100)]))
    first = dict(TimeOffBalance.objects.values_list("agent__external_id", "pk"))

    with time_machine.travel("2026-03-21 08:00:00 +00:00", tick=False):
        run = sync(
            wfm_org,
            tmp_path,
            roster(balances=[balance("A1", "VAC", 192, "2026-03-21"), balance("A1", "PERSONAL", 16)]),
        )

    assert balances() == {
        ("A1", "VAC"): (192 * 60, dt.date(2026, 3, 21)),
        ("A1", "PERSONAL"): (16 * 60, dt.date(2026, 1, 1)),
        ("A2", "VAC"): (100 * 60, dt.date(2026, 1, 1)),  # not listed: kept
    }
    assert (
        dict(TimeOffBalance.objects.filter(activity_code__code="VAC").values_list("agent__external_id", "pk"))
        == first
    )
    assert (
        run.counts["time_off_balances_created"],
        run.counts["time_off_balances_updated"],
        run.counts["time_off_balances_unchanged"],
    ) == (1, 1, 0)
    assert TimeOffBalance.objects.get(agent__external_id="A2").updated_at == dt.datetime(
        2026, 3, 20, 8, tzinfo=UTC
    )

    # Only the date changed: a change all the same.
    run = sync(wfm_org, tmp_path, roster(balances=[balance("A1", "VAC", 192, "2026-03-22")]))
    assert run.counts["time_off_balances_updated"] == 1


def test_each_bad_balance_row_is_skipped_with_its_reason_and_the_rest_applied(wfm_org, tmp_path):
    sync(wfm_org, tmp_path, roster(agents=("A1", "A2", "A3"), balances=[balance("A1", "PERSONAL", 8)]))
    user_set_active(user=Agent.objects.get(external_id="A3").user, active=False)  # a supervisor did
    retired = roster(agents=("A1", "A2", "A3"))
    retired["activity_codes"] = [*retired["activity_codes"], _code("OLD", "time_off", True)]
    sync(wfm_org, tmp_path, retired)
    ActivityCode.objects.filter(code="OLD").update(active=False)  # the WFM no longer lists it

    run = sync(
        wfm_org,
        tmp_path,
        roster(
            agents=("A1", "A2", "A3"),
            balances=[
                balance("A1", "VAC", 200),  # the good one
                balance("NOBODY"),
                balance("A3"),  # deactivated
                balance("A2", "SWIM"),
                balance("A2", "SICK"),  # an absence code, not open to time off
                balance("A2", "PHONE"),
                balance("A2", "OLD"),  # retired
                balance("A2", "VAC", 10000.01),
                balance("A2", "PERSONAL", 1.005),
                balance("A2", "PERSONAL", True),
                balance("A1", "PERSONAL", "8"),
                balance("A1", "PERSONAL", 8, "2026-02-30"),
                balance("A2", "PERSONAL", float("nan")),
                {"agent": "A2", "code": "VAC", "as_of": "2026-01-01"},
                balance("A2\x00", "VAC", 1),
                "A2 VAC 8",
                balance("A2", "VAC", 8),
                balance("A2", "VAC", 9),  # the same agent and code twice
            ],
        ),
    )

    assert run.status == RunStatus.SUCCEEDED
    assert issues(run, "time_off_balances") == sorted(
        [
            ("NOBODY/VAC", "unknown agent 'NOBODY'"),
            ("A3/VAC", "unknown agent 'A3'"),
            ("A2/SWIM", "unknown activity code 'SWIM'"),
            ("A2/SICK", "activity code 'SICK' is not open to time off"),
            ("A2/PHONE", "activity code 'PHONE' is not open to time off"),
            ("A2/OLD", "activity code 'OLD' is not open to time off"),
            ("A2/VAC", "earned_hours is not from -10000 to 10000"),
            ("A2/PERSONAL", "earned_hours has more than 2 decimals"),
            ("A2/PERSONAL", "earned_hours is not a number"),  # true
            ("A1/PERSONAL", "earned_hours is not a number"),  # "8"
            ("A1/PERSONAL", "as_of is not YYYY-MM-DD"),
            ("A2/PERSONAL", "earned_hours is not from -10000 to 10000"),  # NaN
            ("A2/VAC", "earned_hours is not a number"),  # missing
            # PostgreSQL keeps no NUL in text: the reference shows a replacement character.
            ("A2\ufffd/VAC", "agent contains a NUL character"),
            ("#15", "not an object"),
            ("A2/VAC", "listed more than once"),
        ]
    )
    assert run.counts["time_off_balances_skipped"] == 16
    # The good row applied; the skipped ones changed nothing (A1's PERSONAL stays as it was).
    assert balances() == {
        ("A1", "VAC"): (12000, dt.date(2026, 1, 1)),
        ("A1", "PERSONAL"): (480, dt.date(2026, 1, 1)),
    }


def test_a_balance_may_name_an_agent_and_a_code_that_arrive_in_the_same_roster(wfm_org, tmp_path):
    document = roster(agents=("A1",), balances=[balance("A1", "VAC", 40)])

    run = sync(wfm_org, tmp_path, document)

    assert run.counts["agents_created"] == 1 and run.counts.get("time_off_balances_skipped") is None
    assert balances() == {("A1", "VAC"): (2400, dt.date(2026, 1, 1))}


def test_an_absent_or_empty_section_changes_nothing_and_one_that_is_no_list_is_reported(wfm_org, tmp_path):
    sync(wfm_org, tmp_path, roster(balances=[balance()], staffing=grid("2026-03-23")))
    stored_balances, stored_staffing = balances(), staffing()

    absent = sync(wfm_org, tmp_path, roster())
    empty = sync(wfm_org, tmp_path, roster(balances=[], staffing=[]))
    wrong = sync(wfm_org, tmp_path, roster(balances={"A1": 8}, staffing="none"))

    assert balances() == stored_balances and staffing() == stored_staffing
    assert not any(key.startswith(("time_off_balances", "staffing")) for key in absent.counts)
    assert empty.counts["time_off_balances_unchanged"] == empty.counts["staffing_unchanged"] == 0
    assert reasons(wrong, "time_off_balances") == {"time_off_balances": "not a list"}
    assert reasons(wrong, "staffing") == {"staffing": "not a list"}


def test_an_export_that_cannot_be_read_to_its_end_writes_no_balance_nor_staffing(wfm_org, tmp_path):
    full = json.dumps({"format": "em-agent-wfm-export", "version": 1, "days": []})

    run = sync(
        wfm_org, tmp_path, roster(balances=[balance()], staffing=grid("2026-03-23")), schedules=full[:-5]
    )

    assert run.status == RunStatus.FAILED
    assert not TimeOffBalance.objects.exists() and not StaffingInterval.objects.exists()


# --- staffing ------------------------------------------------------------------------------------


def test_staffing_is_stored_per_team_and_for_the_organisation_and_a_rerun_writes_nothing(wfm_org, tmp_path):
    rows = [*grid("2026-03-23"), *grid("2026-03-23", team="T2", minutes=60), *grid("2026-03-24", team=None)]
    document = roster(staffing=rows)

    run = sync(wfm_org, tmp_path, document)

    assert (run.counts["staffing_created"], run.counts["staffing_deleted"]) == (4 + 2 + 4, 0)
    stored = staffing()
    assert stored[("T1", "2026-03-23 09:30")] == (30, 4, 6)
    assert stored[("T2", "2026-03-23 10:00")] == (60, 4, 6)
    assert stored[(None, "2026-03-24 10:30")] == (30, 4, 6)
    # The start is the instant: 09:00 in Amsterdam in winter time.
    first = StaffingInterval.objects.get(team__external_id="T1", start__hour=8, start__minute=0)
    assert first.start == dt.datetime(2026, 3, 23, 8, 0, tzinfo=UTC)

    with time_machine.travel("2026-03-21 08:00:00 +00:00", tick=False):
        with CaptureQueriesContext(connection) as queries:
            rerun = sync(wfm_org, tmp_path, document)

    assert writes(queries, *TABLES) == []
    assert rerun.counts["staffing_unchanged"] == 10
    assert (
        rerun.counts["staffing_created"]
        == rerun.counts["staffing_updated"]
        == rerun.counts["staffing_deleted"]
        == 0
    )
    assert set(StaffingInterval.objects.values_list("updated_at", flat=True)) == {
        dt.datetime(2026, 3, 20, 8, tzinfo=UTC)
    }


def test_the_team_and_dates_listed_are_replaced_and_the_others_stay(wfm_org, tmp_path):
    days = ("2026-03-23", "2026-03-24", "2026-03-25")
    sync(
        wfm_org,
        tmp_path,
        roster(
            staffing=[row for date in days for team in ("T1", "T2", None) for row in grid(date, team=team)]
        ),
    )
    ids = dict(StaffingInterval.objects.filter(team__external_id="T1").values_list("start", "pk"))

    # T1 on the 23rd: 09:00-10:00 only now, 09:30 with other numbers; T1 on the 25th and T2 on the
    # 24th as they were; nothing else listed. Rows outside the window are ignored, without a report.
    run = sync(
        wfm_org,
        tmp_path,
        roster(
            staffing=[
                interval("09:00"),
                interval("09:30", required=5, scheduled=5),
                *grid("2026-03-25"),
                *grid("2026-03-24", team="T2"),
                interval("09:00", "2026-05-02"),
                interval("09:00", "2026-03-12"),
            ]
        ),
    )

    assert (
        run.counts["staffing_created"],
        run.counts["staffing_updated"],
        run.counts["staffing_unchanged"],
        run.counts["staffing_deleted"],
    ) == (0, 1, 1 + 4 + 4, 2)
    assert not SyncIssue.objects.filter(run=run).exists()
    stored = staffing()
    per_day = {
        (team, date): len([key for key in stored if key[0] == team and key[1].startswith(date)])
        for team in ("T1", "T2", None)
        for date in days
    }
    # Only T1's 23rd lost its intervals from 10:00: the days between and around, of every team, stay.
    assert per_day == {key: 2 if key == ("T1", "2026-03-23") else 4 for key in per_day}
    assert stored[("T1", "2026-03-23 09:30")] == (30, 5, 5)
    assert not any(time.startswith(("2026-05-02", "2026-03-12")) for _team, time in stored)
    # The intervals kept are the same rows (the same ids), updated in place.
    kept = dict(StaffingInterval.objects.filter(team__external_id="T1").values_list("start", "pk"))
    assert kept.items() <= ids.items() and len(kept) == len(ids) - 2


def test_each_bad_staffing_row_is_skipped_with_its_reason_and_leaves_its_interval(wfm_org, tmp_path):
    Team.objects.create(organization=wfm_org, external_id="T-OLD", name="Kept from an earlier roster")
    sync(wfm_org, tmp_path, roster(staffing=grid("2026-03-23", hours=4)))  # 09:00-13:00
    before = staffing()

    rows = [
        interval("09:00", scheduled=7),  # the good one
        interval("09:30", team="T9"),
        interval("10:00", minutes=45),
        interval("10:30", required=-1),
        interval("11:00", scheduled="3"),
        interval("11:30", required=1.5),
        interval("12:00", scheduled=100001),
        interval("12:30", scheduled=8),
        interval("12:30", scheduled=9),  # the same team and start twice
        interval("24:00"),
        interval("9:00"),
        interval("09:00", date="2026-02-30"),
        interval("09:00", team="T-OLD"),  # a team not in this roster is still the organisation's
        interval("16:00", minutes=60),
        interval("16:30"),  # overlaps 16:00 for 60 minutes
        interval("09:00", team=None, required=None),
        interval("09:00", team="T2\x00"),
        ["T1", "2026-03-23", "09:00"],
    ]
    run = sync(wfm_org, tmp_path, roster(staffing=rows))

    assert run.status == RunStatus.SUCCEEDED
    assert reasons(run, "staffing") == {
        "T9/2026-03-23 09:30": "unknown team 'T9'",
        "T1/2026-03-23 10:00": "minutes is not 15, 30 or 60",
        "T1/2026-03-23 10:30": "required is not a whole number from 0 to 100000",
        "T1/2026-03-23 11:00": "scheduled is not a whole number from 0 to 100000",
        "T1/2026-03-23 11:30": "required is not a whole number from 0 to 100000",
        "T1/2026-03-23 12:00": "scheduled is not a whole number from 0 to 100000",
        "T1/2026-03-23 12:30": "listed more than once",
        "T1/2026-03-23 24:00": "time '24:00' is not HH:MM",
        "T1/2026-03-23 9:00": "time '9:00' is not HH:MM",
        "T1/2026-02-30 09:00": "date is not YYYY-MM-DD",
        "T1/2026-03-23 16:00": "overlaps another interval of the team",
        "T1/2026-03-23 16:30": "overlaps another interval of the team",
        "(organisation)/2026-03-23 09:00": "required is not a whole number from 0 to 100000",
        "T2\ufffd/2026-03-23 09:00": "team contains a NUL character",
        "#17": "not an object",
    }
    assert run.counts["staffing_skipped"] == 15
    after = staffing()
    assert after[("T1", "2026-03-23 09:00")] == (30, 4, 7)
    assert after[("T-OLD", "2026-03-23 09:00")] == (30, 4, 6)
    # The skipped rows' intervals are left as they were; 13:00-16:00 was never there.
    for time in ("10:00", "10:30", "11:00", "11:30", "12:00", "12:30"):
        assert after[("T1", f"2026-03-23 {time}")] == before[("T1", f"2026-03-23 {time}")], time
    # 09:30 was named only by a row of an unknown team: no row of T1 lists it, so it went.
    assert ("T1", "2026-03-23 09:30") not in after
    assert run.counts["staffing_deleted"] == 1


def test_a_pair_named_only_by_skipped_rows_is_not_replaced(wfm_org, tmp_path):
    sync(wfm_org, tmp_path, roster(staffing=grid("2026-03-23")))
    before = staffing()

    run = sync(wfm_org, tmp_path, roster(staffing=[interval("09:00", minutes=20)]))

    assert run.counts["staffing_skipped"] == 1 and run.counts["staffing_deleted"] == 0
    assert staffing() == before


def test_spring_forward_a_start_the_clocks_skip_is_skipped_and_minutes_are_real_time(wfm_org, tmp_path):
    # Sunday 29 March 2026 in Amsterdam: 02:00 becomes 03:00.
    rows = [
        interval("01:00", "2026-03-29"),
        interval("01:30", "2026-03-29"),
        interval("02:00", "2026-03-29"),
        interval("02:30", "2026-03-29"),
        interval("03:00", "2026-03-29"),
        interval("01:30", "2026-03-29", team="T2", minutes=60),
        interval("03:30", "2026-03-29", team="T2", minutes=60),
    ]

    run = sync(wfm_org, tmp_path, roster(staffing=rows))

    assert reasons(run, "staffing") == {
        "T1/2026-03-29 02:00": "02:00 does not exist on 2026-03-29 in Europe/Amsterdam (the clocks go forward)",
        "T1/2026-03-29 02:30": "02:30 does not exist on 2026-03-29 in Europe/Amsterdam (the clocks go forward)",
    }
    starts = sorted(StaffingInterval.objects.filter(team__external_id="T1").values_list("start", flat=True))
    assert starts == [
        dt.datetime(2026, 3, 29, 0, 0, tzinfo=UTC),  # 01:00 CET
        dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # 01:30 CET, to 03:00 CEST
        dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 03:00 CEST: the next interval, no gap
    ]
    # 01:30 for 60 minutes runs to 03:30 summer time, where the next one starts: no overlap.
    assert run.counts["staffing_created"] == 5
    assert staffing()[("T2", "2026-03-29 03:30")] == (60, 4, 6)


def test_fall_back_a_repeated_start_is_its_first_occurrence_and_the_day_has_25_hours(wfm_org, tmp_path):
    with time_machine.travel("2026-10-20 08:00:00 +00:00", tick=False):
        # Sunday 25 October 2026 in Amsterdam: 03:00 summer time becomes 02:00 again.
        late = [
            interval("23:30", "2026-10-25"),
            interval("00:00", "2026-10-26"),
            interval("23:30", "2026-10-24"),
        ]
        sync(wfm_org, tmp_path, roster(staffing=late))
        rows = [
            interval("01:30", "2026-10-25"),
            interval("02:00", "2026-10-25"),
            interval("02:30", "2026-10-25"),
            interval("03:00", "2026-10-25"),
            interval("02:00", "2026-10-25", team="T2"),
            interval("02:00", "2026-10-25", team="T2", scheduled=9),  # the "second" 02:00: a duplicate
        ]

        run = sync(wfm_org, tmp_path, roster(staffing=rows))

    assert reasons(run, "staffing") == {"T2/2026-10-25 02:00": "listed more than once"}
    starts = sorted(
        StaffingInterval.objects.filter(
            team__external_id="T1", start__lt=dt.datetime(2026, 10, 25, 12, tzinfo=UTC)
        ).values_list("start", flat=True)
    )
    assert starts == [
        dt.datetime(2026, 10, 24, 21, 30, tzinfo=UTC),  # 23:30 on the 24th (CEST): not listed, kept
        dt.datetime(2026, 10, 24, 23, 30, tzinfo=UTC),  # 01:30 CEST
        dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC),  # 02:00 CEST, the first one
        dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST
        dt.datetime(2026, 10, 25, 2, 0, tzinfo=UTC),  # 03:00 CET: an hour later in real time
    ]
    # The 25th is replaced over all of its 25 hours: its 23:30 (22:30 UTC) was not listed and went;
    # the 26th's 00:00 (23:00 UTC on the 25th) belongs to the 26th and stays.
    assert run.counts["staffing_deleted"] == 1
    assert ("T1", "2026-10-25 23:30") not in staffing() and ("T1", "2026-10-26 00:00") in staffing()


def test_the_runs_queries_do_not_grow_with_the_rows(postgres, wfm_org, tmp_path):
    # PostgreSQL, as in production: SQLite splits a bulk write by its limit on bound parameters, so
    # there the count grows with the rows by design of the driver, not of the feed.
    other = Organization.objects.create(name="Large", slug="large", default_timezone="Europe/Amsterdam")

    def export(prefix, agents, days):
        names = [f"{prefix}{n}" for n in range(1, agents + 1)]
        rows = [
            row
            for offset in range(days)
            for team in ("T1", "T2", None)
            for row in grid(f"2026-03-{21 + offset:02d}", team=team, first=8, hours=5)
        ]
        return roster(
            agents=names,
            balances=[balance(name, code, 8) for name in names for code in ("VAC", "PERSONAL")],
            staffing=rows,
        )

    def queries(org, document, directory):
        directory.mkdir()
        with CaptureQueriesContext(connection) as captured:
            sync(org, directory, document)
        return len(captured)

    small, large = export("S", agents=2, days=1), export("L", agents=60, days=10)
    assert (len(small["staffing"]), len(large["staffing"])) == (30, 300)
    first_small = queries(wfm_org, small, tmp_path / "a")
    first_large = queries(other, large, tmp_path / "b")
    rerun_small = queries(wfm_org, small, tmp_path / "c")
    rerun_large = queries(other, large, tmp_path / "d")
    changed = export("L", agents=60, days=10)
    for row in changed["staffing"][::2]:
        row["scheduled"] += 1
    for row in changed["time_off_balances"][::2]:
        row["earned_hours"] += 1
    del changed["staffing"][-1]
    changed_large = queries(other, changed, tmp_path / "e")

    assert TimeOffBalance.objects.filter(agent__organization=other).count() == 120
    assert StaffingInterval.objects.filter(organization=other).count() == 299
    assert first_large == first_small
    assert rerun_large == rerun_small < first_small
    # An update and a delete statement more than the rerun, not one per row.
    assert changed_large <= rerun_large + 2 + 2  # (and the savepoints of the two feed functions)
