"""timeoff/feed.py: the writes the WFM sync makes for time off (earned balances, interval staffing),
the models' constraints and indexes, and the read-only admin. On PostgreSQL (DATABASE_URL)."""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from tests.factories import AgentFactory, OrganizationFactory, SupervisorFactory, TeamFactory
from tests.schedules.factories import ActivityCodeFactory
from timeoff.feed import EarnedBalance, IntervalStaffing, staffing_intervals_replace, time_off_balances_upsert
from timeoff.models import StaffingInterval, TimeOffBalance

pytestmark = pytest.mark.django_db
UTC = dt.UTC
NOW = dt.datetime(2026, 10, 20, 8, 0, tzinfo=UTC)
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def nyc(db):
    return OrganizationFactory(default_timezone="America/New_York")


def at(date: str, time: str, zone=NEW_YORK, fold=0) -> dt.datetime:
    wall = dt.datetime.fromisoformat(f"{date}T{time}").replace(tzinfo=zone, fold=fold)
    return wall.astimezone(UTC)


def staffed(team, start, minutes=30, required=3, scheduled=5):
    return IntervalStaffing(
        team_id=None if team is None else team.pk,
        start=start,
        minutes=minutes,
        required=required,
        scheduled=scheduled,
    )


def stored(org):
    return {
        (team, start): (minutes, required, scheduled)
        for team, start, minutes, required, scheduled in StaffingInterval.objects.filter(
            organization=org
        ).values_list("team_id", "start", "minutes", "required", "scheduled")
    }


# --- balances ------------------------------------------------------------------------------------


def test_balances_upsert_counts_and_leaves_other_agents_codes_and_organisations_alone(org, other_org):
    vac, personal = ActivityCodeFactory(organization=org, code="VAC"), ActivityCodeFactory(organization=org)
    anna, bram = AgentFactory(organization=org), AgentFactory(organization=org)
    outsider = AgentFactory(organization=other_org)
    theirs = ActivityCodeFactory(organization=other_org, code="VAC")
    time_off_balances_upsert(
        organization=other_org,
        balances=[EarnedBalance(outsider.pk, theirs.pk, 600, dt.date(2026, 1, 1))],
        now=NOW,
    )
    first = time_off_balances_upsert(
        organization=org,
        balances=[
            EarnedBalance(anna.pk, vac.pk, 12000, dt.date(2026, 1, 1)),
            EarnedBalance(anna.pk, personal.pk, 960, dt.date(2026, 1, 1)),
            EarnedBalance(bram.pk, vac.pk, 6000, dt.date(2026, 1, 1)),
        ],
        now=NOW,
    )
    later = NOW + dt.timedelta(days=1)

    second = time_off_balances_upsert(
        organization=org,
        balances=[
            EarnedBalance(anna.pk, vac.pk, 11520, dt.date(2026, 10, 21)),  # changed
            EarnedBalance(bram.pk, vac.pk, 6000, dt.date(2026, 1, 1)),  # the same
            EarnedBalance(bram.pk, personal.pk, -120, dt.date(2026, 10, 21)),  # new, below zero
        ],
        now=later,
    )

    assert first == {"created": 3, "updated": 0, "unchanged": 0, "deleted": 0}
    assert second == {"created": 1, "updated": 1, "unchanged": 1, "deleted": 0}
    rows = {
        (row.agent_id, row.activity_code_id): (row.earned_minutes, row.as_of, row.updated_at)
        for row in TimeOffBalance.objects.all()
    }
    assert rows == {
        (anna.pk, vac.pk): (11520, dt.date(2026, 10, 21), later),
        (anna.pk, personal.pk): (960, dt.date(2026, 1, 1), NOW),  # not listed
        (bram.pk, vac.pk): (6000, dt.date(2026, 1, 1), NOW),  # equal: not written
        (bram.pk, personal.pk): (-120, dt.date(2026, 10, 21), later),
        (outsider.pk, theirs.pk): (600, dt.date(2026, 1, 1), NOW),
    }


def test_a_balance_another_writer_stored_meanwhile_is_updated_not_a_failure(org, monkeypatch):
    vac, anna = ActivityCodeFactory(organization=org, code="VAC"), AgentFactory(organization=org)
    TimeOffBalance.objects.create(agent=anna, activity_code=vac, earned_minutes=60, as_of=dt.date(2026, 1, 1))
    # The read saw no balance (another transaction committed it after the read): the upsert must
    # not fail on the unique constraint.
    real_filter = TimeOffBalance.objects.filter
    monkeypatch.setattr(TimeOffBalance.objects, "filter", lambda *a, **k: real_filter(pk=-1))

    counts = time_off_balances_upsert(
        organization=org, balances=[EarnedBalance(anna.pk, vac.pk, 120, dt.date(2026, 2, 1))], now=NOW
    )

    assert counts["created"] == 1  # as far as it knew
    assert list(TimeOffBalance.objects.values_list("earned_minutes", "as_of")) == [(120, dt.date(2026, 2, 1))]


def test_a_balance_is_unique_per_agent_and_code_and_within_10000_hours(org):
    vac, anna = ActivityCodeFactory(organization=org, code="VAC"), AgentFactory(organization=org)
    TimeOffBalance.objects.create(agent=anna, activity_code=vac, earned_minutes=0, as_of=dt.date(2026, 1, 1))
    for values in (
        {"agent": anna, "activity_code": vac, "earned_minutes": 60},
        {"agent": AgentFactory(organization=org), "activity_code": vac, "earned_minutes": 600_001},
        {"agent": AgentFactory(organization=org), "activity_code": vac, "earned_minutes": -600_001},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            TimeOffBalance.objects.create(as_of=dt.date(2026, 1, 1), **values)
    TimeOffBalance.objects.create(
        agent=AgentFactory(organization=org),
        activity_code=vac,
        earned_minutes=-600_000,
        as_of=dt.date(2026, 1, 1),
    )


# --- staffing ------------------------------------------------------------------------------------


def test_replace_writes_only_what_differs_and_removes_what_the_listed_days_no_longer_have(nyc):
    care, sales = TeamFactory(organization=nyc), TeamFactory(organization=nyc)
    monday = [at("2026-10-19", f"{hour:02d}:{minute:02d}") for hour in (9, 10) for minute in (0, 30)]
    first = staffing_intervals_replace(
        organization=nyc,
        days={
            (care.pk, dt.date(2026, 10, 19)),
            (sales.pk, dt.date(2026, 10, 19)),
            (None, dt.date(2026, 10, 19)),
        },
        intervals=[staffed(team, start) for team in (care, sales, None) for start in monday],
        now=NOW,
    )
    ids = dict(StaffingInterval.objects.filter(team=care).values_list("start", "pk"))
    later = NOW + dt.timedelta(hours=1)

    second = staffing_intervals_replace(
        organization=nyc,
        days={(care.pk, dt.date(2026, 10, 19))},
        intervals=[staffed(care, monday[0]), staffed(care, monday[1], scheduled=2)],
        now=later,
    )

    assert first == {"created": 12, "updated": 0, "unchanged": 0, "deleted": 0}
    assert second == {"created": 0, "updated": 1, "unchanged": 1, "deleted": 2}
    rows = stored(nyc)
    assert [start for team, start in rows if team == care.pk] == monday[:2]
    assert rows[(care.pk, monday[1])] == (30, 3, 2)
    assert (
        len([key for key in rows if key[0] == sales.pk]) == len([key for key in rows if key[0] is None]) == 4
    )
    assert dict(StaffingInterval.objects.filter(team=care).values_list("start", "pk")).items() <= ids.items()
    assert StaffingInterval.objects.get(team=care, start=monday[0]).updated_at == NOW
    assert StaffingInterval.objects.get(team=care, start=monday[1]).updated_at == later


def test_keep_leaves_the_intervals_of_skipped_rows(nyc):
    care = TeamFactory(organization=nyc)
    starts = [at("2026-10-19", time) for time in ("09:00", "09:30", "10:00")]
    staffing_intervals_replace(
        organization=nyc,
        days={(care.pk, dt.date(2026, 10, 19))},
        intervals=[staffed(care, start) for start in starts],
        now=NOW,
    )

    counts = staffing_intervals_replace(
        organization=nyc,
        days={(care.pk, dt.date(2026, 10, 19))},
        intervals=[staffed(care, starts[0], scheduled=9)],
        keep={(care.pk, starts[2])},
        now=NOW,
    )

    assert counts["deleted"] == 1
    assert sorted(start for _team, start in stored(nyc)) == [starts[0], starts[2]]


@pytest.mark.parametrize(
    ("day", "hours", "first", "last"),
    [
        # New York: 8 March 2026 has 23 hours (02:00 -> 03:00), 1 November 25 (02:00 -> 01:00).
        ("2026-03-08", 23, dt.datetime(2026, 3, 8, 5, tzinfo=UTC), dt.datetime(2026, 3, 9, 4, tzinfo=UTC)),
        ("2026-11-01", 25, dt.datetime(2026, 11, 1, 4, tzinfo=UTC), dt.datetime(2026, 11, 2, 5, tzinfo=UTC)),
    ],
)
def test_a_listed_day_is_its_local_day_23_or_25_hours_long(nyc, day, hours, first, last):
    # Hourly intervals around the clock from the day before to the day after, for the whole
    # organisation; then the DST day listed with none: exactly its own hours go.
    start = first - dt.timedelta(hours=3)
    every_hour = [start + dt.timedelta(hours=n) for n in range(hours + 6)]
    date = dt.date.fromisoformat(day)
    staffing_intervals_replace(
        organization=nyc,
        days={(None, date - dt.timedelta(days=1)), (None, date), (None, date + dt.timedelta(days=1))},
        intervals=[staffed(None, moment, minutes=60) for moment in every_hour],
        now=NOW,
    )

    counts = staffing_intervals_replace(organization=nyc, days={(None, date)}, intervals=[], now=NOW)

    assert counts["deleted"] == hours
    left = sorted(start for _team, start in stored(nyc))
    assert left == [moment for moment in every_hour if not first <= moment < last]
    assert len(left) == 6


def test_replace_with_no_days_reads_and_writes_nothing(nyc):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        counts = staffing_intervals_replace(organization=nyc, days=set(), intervals=[], now=NOW)
    assert counts == {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    assert not [query for query in queries if "staffinginterval" in query["sql"]]


def test_one_interval_per_start_for_each_team_and_for_the_organisation(nyc):
    care = TeamFactory(organization=nyc)
    start = at("2026-10-19", "09:00")
    other = OrganizationFactory()
    for team in (care, None):
        StaffingInterval.objects.create(organization=nyc, team=team, start=start, required=1, scheduled=1)
        with pytest.raises(IntegrityError), transaction.atomic():
            StaffingInterval.objects.create(organization=nyc, team=team, start=start, required=2, scheduled=2)
    # Another organisation's interval at the same instant is its own.
    StaffingInterval.objects.create(organization=other, start=start, required=1, scheduled=1)
    assert StaffingInterval.objects.filter(start=start).count() == 3


@pytest.mark.parametrize(
    "values",
    [
        {"minutes": 45},
        {"minutes": 0},
        {"required": -1},
        {"scheduled": -1},
        {"required": 100_001},
        {"scheduled": 100_001},
    ],
)
def test_the_database_refuses_an_interval_out_of_bounds(nyc, values):
    fields = {"required": 0, "scheduled": 0, "minutes": 30, **values}
    with pytest.raises(IntegrityError), transaction.atomic():
        StaffingInterval.objects.create(organization=nyc, start=at("2026-10-19", "09:00"), **fields)


def test_an_interval_is_30_minutes_unless_told(nyc):
    interval = StaffingInterval.objects.create(
        organization=nyc, start=at("2026-10-19", "09:00"), required=0, scheduled=100_000
    )
    interval.refresh_from_db()
    assert interval.minutes == 30


def test_a_teams_and_an_organisations_intervals_over_a_time_range_are_read_through_an_index(postgres, nyc):
    care = TeamFactory(organization=nyc)
    begin, end = at("2026-10-19", "00:00"), at("2026-10-20", "00:00")
    # Each read and the indexes that serve it: a team's intervals may come from the team's own index
    # or from the organisation's range with the team as a filter (the planner picks by statistics,
    # which another test's rows in the same database can change); never a scan of the table.
    reads = [
        (
            StaffingInterval.objects.filter(organization=nyc, team=care, start__gte=begin, start__lt=end),
            ("staffing_interval_one_per_team_start", "staffing_interval_range"),
        ),
        (
            StaffingInterval.objects.filter(
                organization=nyc, team__isnull=True, start__gte=begin, start__lt=end
            ),
            ("staffing_interval_one_per_organization_start", "staffing_interval_range"),
        ),
        (
            StaffingInterval.objects.filter(organization=nyc, start__gte=begin, start__lt=end),
            ("staffing_interval_range",),
        ),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        # The table is empty: without this the planner reads it whole, which is right for no rows.
        cursor.execute("SET LOCAL enable_seqscan = off")
        for queryset, indexes in reads:
            plan = queryset.explain()
            assert any(index in plan for index in indexes), plan
            assert "Seq Scan on timeoff_staffinginterval" not in plan, plan


# --- the admin -----------------------------------------------------------------------------------


def test_supervisors_see_their_organisations_balances_and_staffing_read_only(client, org, other_org):
    supervisor = SupervisorFactory(organization=org)
    vac = ActivityCodeFactory(organization=org, code="VAC")
    ours = TimeOffBalance.objects.create(
        agent=AgentFactory(organization=org), activity_code=vac, earned_minutes=440, as_of=dt.date(2026, 1, 1)
    )
    TimeOffBalance.objects.create(
        agent=AgentFactory(organization=other_org),
        activity_code=ActivityCodeFactory(organization=other_org, code="VAC"),
        earned_minutes=60,
        as_of=dt.date(2026, 1, 1),
    )
    team = TeamFactory(organization=org, name="Customer care")
    interval = StaffingInterval.objects.create(
        organization=org,
        team=team,
        start=dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        required=4,
        scheduled=3,
    )
    StaffingInterval.objects.create(
        organization=other_org, start=dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC), required=1, scheduled=1
    )
    client.force_login(supervisor)

    balances = client.get("/admin/timeoff/timeoffbalance/")
    assert balances.status_code == 200 and balances.context["cl"].result_count == 1
    assert "7.33" in balances.content.decode()  # 440 minutes, in hours
    intervals = client.get("/admin/timeoff/staffinginterval/")
    assert intervals.status_code == 200 and intervals.context["cl"].result_count == 1
    page = intervals.content.decode()
    # 00:30 UTC on the fall-back night is 02:30 summer time in Amsterdam.
    assert "2026-10-25 02:30 CEST" in page and "Customer care" in page and "-1" in page
    for path in ("/admin/timeoff/timeoffbalance/add/", "/admin/timeoff/staffinginterval/add/"):
        assert client.get(path).status_code == 403
    change = client.post(
        f"/admin/timeoff/timeoffbalance/{ours.pk}/change/",
        {"earned_minutes": 99999, "as_of": "2026-01-01"},
    )
    assert change.status_code == 403
    ours.refresh_from_db()
    assert ours.earned_minutes == 440
    assert (
        client.post(f"/admin/timeoff/staffinginterval/{interval.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert StaffingInterval.objects.filter(pk=interval.pk).exists()
    theirs = StaffingInterval.objects.get(organization=other_org)
    assert client.get(f"/admin/timeoff/staffinginterval/{theirs.pk}/change/").status_code in (302, 404)
