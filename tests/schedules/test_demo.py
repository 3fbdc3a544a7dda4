import datetime as dt
import io
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from jsonschema import Draft202012Validator

from em_agent.models import Agent, Organization
from notifications.models import Notification
from schedules.models import (
    Activity,
    ActivityCode,
    ApprovalRule,
    BlackoutPeriod,
    ScheduleChange,
    ScheduleDay,
)
from schedules.services import ActivitySpec, DayPlan, activity_specs, schedule_days_apply
from sync.models import RunStatus, SyncIssue, SyncRun, WfmSource
from timeoff.models import TimeOffRequest

pytestmark = pytest.mark.django_db
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "wfm-export.schema.json").read_text())


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.WFM_DEMO_EXPORT_DIR = tmp_path / "wfm-export"


def _seed(when: str) -> str:
    out = io.StringIO()
    with time_machine.travel(when, tick=False):
        call_command("seed_demo", stdout=out)
    return out.getvalue()


def _activated():
    return list(Agent.objects.filter(activated_at__isnull=False).select_related("organization"))


def _days(agent):
    """The agent's days by date: (published, note, activities with their codes, in order)."""
    activities = defaultdict(list)
    for activity in (
        Activity.objects.filter(agent=agent).select_related("activity_code", "day").order_by("start")
    ):
        activities[activity.day.date].append(activity)
    return {day.date: (day, activities[day.date]) for day in ScheduleDay.objects.filter(agent=agent)}


def _local(agent, instant: dt.datetime) -> str:
    return instant.astimezone(agent.zone).strftime("%H:%M")


def test_every_activated_agent_gets_six_weeks_of_published_shifts_with_breaks_and_a_lunch():
    printed = _seed("2026-11-26 12:00:00 +00:00")

    agents = _activated()
    assert len(agents) == 8
    for agent in agents:
        today = dt.date(2026, 11, 26)
        days = _days(agent)
        assert sorted(days) == [today + dt.timedelta(days=n) for n in range(-7, 42)], agent
        next_four_weeks = [today + dt.timedelta(days=n) for n in range(28)]
        assert all(days[date][0].published for date in next_four_weeks), agent
        assert not any(days[date][0].published for date in sorted(days)[-7:]), agent
        working = [date for date in next_four_weeks if days[date][1]]
        off = [date for date in next_four_weeks if not days[date][1]]
        assert 16 <= len(working) <= 22 and off, agent
        for date in working:
            activities = days[date][1]
            codes = [a.activity_code for a in activities]
            if [c.category for c in codes] == ["time_off"]:
                continue  # the day off a colleague of the waitlisted demo request has (timeoff/demo.py)
            assert [c.category for c in codes].count("break") == 2
            assert [c.category for c in codes].count("meal") == 1
            assert "work" in {c.category for c in codes}
            assert all(
                a.end - a.start == dt.timedelta(minutes=15)
                for a in activities
                if a.activity_code.code == "BREAK"
            )
            assert [a.end - a.start for a in activities if a.activity_code.code == "LUNCH"] == [
                dt.timedelta(minutes=30)
            ]
            # One shift without gaps or overlaps, of 8 to 9 hours.
            assert all(a.end == b.start for a, b in zip(activities, activities[1:], strict=False)), (
                agent,
                date,
            )
            assert dt.timedelta(hours=8) <= activities[-1].end - activities[0].start <= dt.timedelta(hours=9)
    for org in Organization.objects.all():
        org_activities = Activity.objects.filter(agent__organization=org)
        assert org_activities.exclude(note="").exists(), org
        assert org_activities.filter(activity_code__code="MEETING", note="Monthly team meeting").exists(), org
        assert (
            ScheduleDay.objects.filter(agent__organization=org, published=True).exclude(note="").exists()
        ), org
        assert org.name in printed
    # Agents start at different times, and some work weekends.
    starts = {_local(agent, acts[0].start) for agent in agents for _, acts in _days(agent).values() if acts}
    assert len(starts) >= 4
    assert Activity.objects.filter(day__date=dt.date(2026, 11, 29)).exists()  # a Sunday
    # The seed tells nobody of the WFM's schedules: these are not adjustments. Only the demo's one
    # approved time-off request (timeoff/demo.py) adjusted its agent's day, through the API's path.
    approved = TimeOffRequest.objects.get(status="approved")
    assert set(
        Notification.objects.filter(kind="schedule_adjusted").values_list("user_id", "params__date")
    ) == {(approved.agent.user_id, approved.start_date.isoformat())}


def test_no_activities_overlap_and_each_starts_on_its_own_local_day():
    _seed("2026-11-26 12:00:00 +00:00")

    for agent in _activated():
        activities = list(Activity.objects.filter(agent=agent).select_related("day").order_by("start"))
        assert activities
        assert all(a.end <= b.start for a, b in zip(activities, activities[1:], strict=False)), agent
        assert all(a.start.astimezone(agent.zone).date() == a.day.date for a in activities), agent


def test_the_agent_who_is_not_activated_gets_no_schedule():
    _seed("2026-11-26 12:00:00 +00:00")

    unactivated = Agent.objects.filter(activated_at__isnull=True)
    assert {agent.user.email for agent in unactivated} == {
        "eva@contoso.demo",
        "iris@fabrikam.demo",
        "kate@northwind.demo",
    }
    assert not ScheduleDay.objects.filter(agent__in=unactivated).exists()
    assert not Activity.objects.filter(agent__in=unactivated).exists()


@pytest.mark.parametrize(
    ("email", "today", "before", "after"),
    [
        # Europe: summer time from Sunday 28 March 2027; America: from Sunday 14 March 2027.
        ("anna@contoso.demo", "2027-03-20", dt.date(2027, 3, 26), dt.date(2027, 3, 29)),
        ("jack@northwind.demo", "2027-03-20", dt.date(2027, 3, 26), dt.date(2027, 3, 29)),
        ("frank@fabrikam.demo", "2027-03-10", dt.date(2027, 3, 12), dt.date(2027, 3, 15)),
    ],
)
def test_a_nine_oclock_shift_starts_at_nine_local_on_both_sides_of_the_dst_change(
    email, today, before, after
):
    _seed(f"{today} 12:00:00 +00:00")

    agent = Agent.objects.get(user__email=email)
    days = _days(agent)
    start_before, start_after = days[before][1][0].start, days[after][1][0].start
    assert (_local(agent, start_before), _local(agent, start_after)) == ("09:00", "09:00")
    assert start_before.astimezone(dt.UTC).hour - start_after.astimezone(dt.UTC).hour == 1
    assert (_local(agent, days[before][1][-1].end), _local(agent, days[after][1][-1].end)) == (
        "17:30",
        "17:30",
    )


def test_shifts_on_the_dst_sunday_itself_keep_their_local_times():
    _seed("2027-03-20 12:00:00 +00:00")

    worked_on_the_change = set()
    for agent in _activated():
        change = dt.date(2027, 3, 14) if agent.timezone.startswith("America/") else dt.date(2027, 3, 28)
        starts = {
            date: (_local(agent, activities[0].start), _local(agent, activities[-1].end))
            for date, (_, activities) in _days(agent).items()
            if activities
        }
        assert len(set(starts.values())) == 1, (agent, starts)
        if change in starts:
            worked_on_the_change.add(agent.timezone)
    # Weekend workers in both kinds of zone: the 23-hour day itself is covered.
    assert {"Europe/Amsterdam", "America/Los_Angeles"} <= worked_on_the_change


def test_christmas_is_a_public_holiday_off_with_a_day_note():
    _seed("2026-12-20 12:00:00 +00:00")

    for agent in _activated():
        christmas = ScheduleDay.objects.get(agent=agent, date=dt.date(2026, 12, 25))
        assert christmas.published
        assert christmas.note == "Public holiday: Christmas"
        assert not christmas.activities.exists()


def test_a_second_run_changes_nothing():
    _seed("2026-11-26 12:00:00 +00:00")
    counts = (
        ScheduleChange.objects.count(),
        ActivityCode.objects.count(),
        ApprovalRule.objects.count(),
        BlackoutPeriod.objects.count(),
    )
    activities = sorted(Activity.objects.values_list("id", "start", "end", "activity_code_id", "note"))
    days = sorted(ScheduleDay.objects.values_list("id", "published", "note", "updated_at"))

    printed = _seed("2026-11-26 15:00:00 +00:00")

    assert counts == (
        ScheduleChange.objects.count(),
        ActivityCode.objects.count(),
        ApprovalRule.objects.count(),
        BlackoutPeriod.objects.count(),
    )
    assert (
        sorted(Activity.objects.values_list("id", "start", "end", "activity_code_id", "note")) == activities
    )
    assert sorted(ScheduleDay.objects.values_list("id", "published", "note", "updated_at")) == days
    assert printed.count("days_changed 0,") == 3
    # One sync per organisation this time: nobody was activated.
    second = SyncRun.objects.filter(started_at=dt.datetime(2026, 11, 26, 15, tzinfo=dt.UTC))
    assert sorted(run.organization.slug for run in second) == sorted(
        Organization.objects.values_list("slug", flat=True)
    )
    for run in second:
        assert (run.trigger, run.status) == ("seed_demo", RunStatus.SUCCEEDED)
        assert run.counts.get("days_changed", 0) == 0
        assert (
            run.counts["days_unchanged"]
            == 49 * Agent.objects.filter(organization=run.organization, activated_at__isnull=False).count()
        )
        assert run.counts["agents_created"] == run.counts["agents_updated"] == 0


def test_a_day_later_the_window_moves_on_and_the_days_already_there_stay_as_they_were():
    _seed("2026-11-26 12:00:00 +00:00")
    kept = set(Activity.objects.exclude(day__date=dt.date(2026, 12, 31)).values_list("id", flat=True))
    changes = ScheduleChange.objects.count()

    _seed("2026-11-27 12:00:00 +00:00")

    new = list(ScheduleChange.objects.order_by("id")[changes:])
    # Per agent: the day five weeks ahead is published now (journalled), and a new last day appears
    # (unpublished; a day the WFM creates replaced nothing, so it is not journalled).
    assert {change.date for change in new} == {dt.date(2026, 12, 31)}
    assert len(new) <= len(_activated())
    assert ScheduleDay.objects.filter(date=dt.date(2027, 1, 7)).count() == len(_activated())
    assert kept <= set(Activity.objects.values_list("id", flat=True))
    assert not ScheduleDay.objects.filter(date=dt.date(2026, 12, 31), published=False).exists()
    assert not ScheduleDay.objects.filter(date=dt.date(2027, 1, 7), published=True).exists()


def test_a_day_changed_by_a_request_since_is_kept_by_the_next_seed():
    _seed("2026-11-26 12:00:00 +00:00")
    agent = Agent.objects.get(user__email="anna@contoso.demo")
    date = dt.date(2026, 12, 1)
    day = ScheduleDay.objects.get(agent=agent, date=date)
    training = ActivityCode.objects.get(organization=agent.organization, code="TRAINING")
    specs = activity_specs(day.activities.order_by("start"))
    last = specs[-1]
    specs[-1] = ActivitySpec(
        activity_code_id=training.pk, start=last.start, end=last.end, source="request", id=last.id
    )
    with time_machine.travel("2026-11-26 13:00:00 +00:00", tick=False):
        schedule_days_apply(plans=[DayPlan(agent=agent, date=date, activities=specs)], source="request")
    requested = list(Activity.objects.filter(day=day).values_list("id", "activity_code_id"))

    _seed("2026-11-26 14:00:00 +00:00")

    # The WFM's copy of the day has not changed since the sync that wrote it: nothing to apply.
    assert list(Activity.objects.filter(day=day).values_list("id", "activity_code_id")) == requested


def test_each_organisation_has_activity_codes_for_work_breaks_requests_and_time_off():
    _seed("2026-11-26 12:00:00 +00:00")

    for org in Organization.objects.all():
        codes = {code.code: code for code in ActivityCode.objects.filter(organization=org)}
        assert {"PHONE", "EMAIL", "CHAT", "BREAK", "LUNCH", "MEETING", "TRAINING", "COACHING"} <= set(codes)
        assert (codes["LUNCH"].category, codes["LUNCH"].paid) == ("meal", False)
        assert codes["BREAK"].category == "break"
        assert codes["MEETING"].category == "meeting"
        assert {c for c, code in codes.items() if code.open_for_requests} == {"TRAINING", "COACHING"}
        time_off = {c for c, code in codes.items() if code.open_for_time_off}
        absence = {c for c, code in codes.items() if code.open_for_absence}
        if org.wfm_system == "iex":
            assert time_off == set() and {"SICK", "VAC"} <= absence
        else:
            assert absence == set() and {"VAC", "PERSONAL"} <= time_off
        assert codes["SICK"].category == "absence"
        colours = [code.color for code in codes.values()]
        assert len(set(colours)) == len(colours)
        assert all(re.fullmatch(r"#[0-9A-F]{6}", colour) for colour in colours)


def test_each_organisation_has_default_approval_rules_and_a_christmas_blackout():
    _seed("2026-11-26 12:00:00 +00:00")

    for org in Organization.objects.all():
        rules = {
            (rule.request_type, rule.activity_code.code if rule.activity_code else None): rule
            for rule in ApprovalRule.objects.filter(organization=org).select_related("activity_code")
        }
        time_off_codes = {("time_off", "VAC"), ("time_off", "COMP")} if org.wfm_system == "cxone" else set()
        # A swap of working days three days ahead approves itself (swaps/demo.py), by each code's rule.
        shift_codes = ("PHONE", "EMAIL", "CHAT", "BREAK", "LUNCH", "MEETING", "TRAINING", "COACHING")
        swap_codes = {("swap", code) for code in shift_codes} if org.wfm_system == "cxone" else set()
        assert (
            set(rules)
            == {
                ("schedule", "TRAINING"),
                ("schedule", "COACHING"),
                ("schedule", None),
                ("time_off", None),
                ("swap", None),
            }
            | time_off_codes
            | swap_codes
        )
        for code in ("TRAINING", "COACHING"):
            rule = rules[("schedule", code)]
            assert (rule.action, rule.min_lead_hours, rule.max_per_day, rule.when_conditions_fail) == (
                "auto_approve",
                24,
                3,
                "manual",
            )
        assert {rules[key].action for key in rules if key[1] is None} == {"manual"}
        for key in time_off_codes:  # vacation and time in lieu approve themselves, waitlisted when full
            assert (rules[key].action, rules[key].waitlist_when_full) == ("auto_approve", True)
        blackout = BlackoutPeriod.objects.get(organization=org)
        assert (blackout.start_date, blackout.end_date) == (dt.date(2026, 12, 24), dt.date(2027, 1, 1))
        assert (
            blackout.applies_to_time_off and not blackout.applies_to_schedule and not blackout.applies_to_swap
        )


def test_dates_follow_each_agents_own_zone():
    # 02:00 UTC on 27 November: still the 26th in New York and Los Angeles, the 27th in Europe.
    _seed("2026-11-27 02:00:00 +00:00")

    for agent in _activated():
        first = ScheduleDay.objects.filter(agent=agent).order_by("date").first()
        expected = dt.date(2026, 11, 19) if agent.timezone.startswith("America/") else dt.date(2026, 11, 20)
        assert first.date == expected, agent


def test_everything_comes_through_the_sync_from_an_export_in_the_documented_format(settings):
    printed = _seed("2026-11-26 12:00:00 +00:00")

    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for org in Organization.objects.all():
        source = WfmSource.objects.get(organization=org)
        assert (source.kind, Path(source.location)) == ("directory", settings.WFM_DEMO_EXPORT_DIR / org.slug)
        for name in ("roster.json", "schedules.json"):
            document = json.loads((Path(source.location) / name).read_text(encoding="utf-8"))
            assert list(validator.iter_errors(document)) == [], (org, name)
        runs = list(SyncRun.objects.filter(organization=org).order_by("id"))
        # The roster, then the schedules of the agents the seed activated in between.
        assert [(run.trigger, run.status) for run in runs] == [("seed_demo", RunStatus.SUCCEEDED)] * 2
        assert runs[0].counts["agents_created"] == org.agents.count()
        assert runs[1].counts["days_changed"] > 0
        # Every day was stamped with the WFM's copy it came from.
        days = ScheduleDay.objects.filter(agent__organization=org)
        assert days.exists() and not days.filter(wfm_hash="").exists()
        assert org.name in printed
    assert not SyncIssue.objects.exists()
    assert "Contoso Care (CXone): sync succeeded: agents 5, agents_created 5" in printed
    # The agents' own WFM data: the agents and their skills come from the roster, with the
    # supervisor the seed created.
    anna = Agent.objects.get(user__email="anna@contoso.demo")
    assert (anna.external_id, anna.timezone, anna.language, anna.team.name) == (
        "C-1001",
        "Europe/Amsterdam",
        "nl",
        "Customer care",
    )
    assert anna.supervisor.email == "sam@contoso.demo"
    assert sorted(anna.agent_skills.values_list("skill__external_id", "level")) == [("S-EN", 2), ("S-NL", 3)]
    assert Agent.objects.get(user__email="hugo@fabrikam.demo").timezone == "America/Los_Angeles"


def test_the_nightly_sync_of_the_demo_export_changes_nothing():
    _seed("2026-11-26 12:00:00 +00:00")
    changes = ScheduleChange.objects.count()
    out = io.StringIO()

    with time_machine.travel("2026-11-26 13:00:00 +00:00", tick=False):
        call_command("sync_wfm", stdout=out)

    assert ScheduleChange.objects.count() == changes
    runs = SyncRun.objects.filter(trigger="command")
    assert runs.count() == 3 and {run.status for run in runs} == {RunStatus.SUCCEEDED}
