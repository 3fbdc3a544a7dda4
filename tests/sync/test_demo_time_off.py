"""The demo's time-off data (sync/demo.py, what `seed_demo` writes): earned balances and interval
staffing for the CXone organisations, none for the IEX one, in the documented format."""

import datetime as dt
import io
import json
from collections import Counter
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from jsonschema import Draft202012Validator

from em_agent.models import Agent
from sync.demo import ORGANIZATIONS, demo_roster, demo_schedules
from sync.models import SyncIssue, SyncRun
from timeoff.models import StaffingInterval, TimeOffBalance

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "wfm-export.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)  # the coming 14 days cross the spring-forward night
SPEC = {spec.slug: spec for spec in ORGANIZATIONS}
CONTOSO = SPEC["contoso-cxone"]


def test_the_demo_rosters_validate_and_only_cxone_has_balances_and_staffing():
    for spec in ORGANIZATIONS:
        roster = demo_roster(spec=spec, now=NOW)
        assert list(VALIDATOR.iter_errors(roster)) == [], spec.slug
        cxone = spec.wfm_system == "cxone"
        assert ("time_off_balances" in roster, "staffing" in roster) == (cxone, cxone), spec.slug


def test_every_agent_has_earned_vacation_and_personal_time_as_of_new_year():
    balances = demo_roster(spec=CONTOSO, now=NOW)["time_off_balances"]

    assert sorted((row["agent"], row["code"]) for row in balances) == sorted(
        (agent.external_id, code) for agent in CONTOSO.agents for code in ("VAC", "PERSONAL")
    )
    assert {(row["code"], row["earned_hours"], row["as_of"]) for row in balances} == {
        ("VAC", 200, "2026-01-01"),
        ("PERSONAL", 16, "2026-01-01"),
    }


def test_staffing_covers_each_team_for_14_days_in_half_hours_with_room_tight_and_short_intervals():
    staffing = demo_roster(spec=CONTOSO, now=NOW)["staffing"]

    dates = sorted({row["date"] for row in staffing})
    assert dates[0] == "2026-03-20" and len(dates) == 14 and "2026-03-29" in dates
    per_day = Counter((row["team"], row["date"]) for row in staffing)
    assert set(per_day) == {(team, date) for team, _name in CONTOSO.teams for date in dates}
    assert set(per_day.values()) == {24}  # 08:00 to 20:00
    assert {row["minutes"] for row in staffing} == {30}
    assert (
        min(row["start"] for row in staffing) == "08:00" and max(row["start"] for row in staffing) == "19:30"
    )
    # Every team's day has intervals where an agent can leave at once, tight ones and short ones.
    for key in per_day:
        surplus = {
            row["scheduled"] - row["required"] for row in staffing if (row["team"], row["date"]) == key
        }
        assert surplus == {4, 1, -2}, key
    # Scheduled counts the team's demo agents at work in the interval: on a weekday morning at
    # 10:00 Anna (09:00 shift) and Bram (08:00 shift) of customer care are on the phone.
    days = {
        (day["agent"], day["date"]): day["activities"]
        for day in demo_schedules(spec=CONTOSO, now=NOW)["days"]
    }
    monday = "2026-03-23"

    def at_work(agent, start):
        end = (dt.datetime.fromisoformat(f"{monday}T{start}") + dt.timedelta(minutes=30)).strftime("%H:%M")
        return any(
            a["code"] in {"PHONE", "EMAIL", "CHAT"} and a["start"] <= start and end <= a["end"]
            for a in days[(agent, monday)]
        )

    for start in ("08:00", "10:00", "12:30", "19:30"):
        row = next(r for r in staffing if (r["team"], r["date"], r["start"]) == ("T-CARE", monday, start))
        working = sum(at_work(agent, start) for agent in ("C-1001", "C-1002", "C-1005"))
        assert row["scheduled"] == 8 + working, start


@pytest.mark.django_db
def test_seed_demo_loads_them_through_the_sync_and_a_second_seed_changes_nothing(settings, tmp_path):
    settings.WFM_DEMO_EXPORT_DIR = tmp_path / "wfm-export"
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", stdout=io.StringIO())

    assert not SyncIssue.objects.exists()
    for spec in ORGANIZATIONS:
        agents = Agent.objects.filter(organization__slug=spec.slug).count()
        balances = TimeOffBalance.objects.filter(agent__organization__slug=spec.slug)
        intervals = StaffingInterval.objects.filter(organization__slug=spec.slug)
        if spec.wfm_system == "cxone":
            assert balances.count() == 2 * agents
            assert intervals.count() == 14 * 24 * len(spec.teams)
            assert not intervals.filter(team__isnull=True).exists()
        else:
            assert not balances.exists() and not intervals.exists()
    anna = TimeOffBalance.objects.get(agent__external_id="C-1001", activity_code__code="VAC")
    assert (anna.earned_minutes, anna.as_of) == (200 * 60, dt.date(2026, 1, 1))
    written = sorted(StaffingInterval.objects.values_list("pk", "updated_at"))

    later = NOW + dt.timedelta(hours=3)
    with time_machine.travel(later, tick=False):
        call_command("seed_demo", stdout=io.StringIO())

    assert sorted(StaffingInterval.objects.values_list("pk", "updated_at")) == written
    assert not TimeOffBalance.objects.filter(updated_at=later).exists()
    contoso = SyncRun.objects.filter(organization__slug="contoso-cxone", started_at=later).get()
    assert contoso.counts["staffing_unchanged"] == 14 * 24 * 2
    assert contoso.counts["time_off_balances_unchanged"] == 10
