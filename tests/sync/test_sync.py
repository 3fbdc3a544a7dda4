import datetime as dt
import json

import pytest
import time_machine

from em_agent.models import Agent, Organization
from notifications.models import Notification
from schedules.models import Activity, ActivitySource, ScheduleChange, ScheduleDay
from schedules.services import DayPlan, activity_specs, schedule_days_apply
from sync import services
from sync.connectors import DirectoryConnector
from sync.models import RunStatus, SyncIssue, SyncRun, WfmSource
from sync.services import wfm_sync
from tests.conftest import run_together

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 12, 1)  # "now" is 09:00 in Amsterdam


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False):
        yield


@pytest.fixture
def wfm_org(db):
    return Organization.objects.create(name="Contoso", slug="contoso", default_timezone="Europe/Amsterdam")


ROSTER = {
    "format": "em-agent-wfm-export",
    "version": 1,
    "teams": [{"external_id": "T1", "name": "Care"}],
    "skills": [{"external_id": "S-NL", "name": "Dutch"}, {"external_id": "S-EN", "name": "English"}],
    "activity_codes": [
        {"code": "PHONE", "name": "Phone", "category": "work", "color": "#4A90D9"},
        {"code": "BREAK", "name": "Break", "category": "break", "color": "#999999"},
    ],
    "agents": [
        {
            "external_id": "A1",
            "name": "Anna",
            "email": "anna@contoso.test",
            "timezone": "Europe/Amsterdam",
            "team": "T1",
            "skills": [{"skill": "S-NL", "level": 3}],
        },
        {
            "external_id": "A2",
            "name": "Bram",
            "email": "bram@contoso.test",
            "timezone": "Europe/Amsterdam",
            "language": "nl",
            "team": "T1",
            "skills": [{"skill": "S-EN", "level": 1}],
        },
    ],
}


def _day(agent, date, start="09:00", end="17:00", published=True, note=""):
    return {
        "agent": agent,
        "date": date.isoformat(),
        "published": published,
        "note": note,
        "activities": [
            {"code": "PHONE", "start": start, "end": "12:00"},
            {"code": "BREAK", "start": "12:00", "end": "12:30"},
            {"code": "PHONE", "start": "12:30", "end": end},
        ],
    }


def _schedule(days=range(-3, 10), agents=("A1", "A2"), **changes):
    rows = []
    for agent in agents:
        for offset in days:
            date = TODAY + dt.timedelta(days=offset)
            rows.append(changes.get(f"{agent}/{date}") or _day(agent, date))
    return rows


def _export(tmp_path, roster=ROSTER, days=None):
    (tmp_path / "roster.json").write_text(json.dumps(roster))
    (tmp_path / "schedules.json").write_text(json.dumps({"days": _schedule() if days is None else days}))
    return DirectoryConnector(tmp_path)


def _activate_all(org):
    Agent.objects.filter(organization=org).update(activated_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC))


def _synced(org, tmp_path):
    """The roster, the agents activated, then their schedules: the state after the first nights."""
    wfm_sync(organization=org, connector=_export(tmp_path))
    _activate_all(org)
    wfm_sync(organization=org, connector=_export(tmp_path))


def _approve_request_keeping_two(agent, date):
    """A local change: a request approved here leaves the day its first two activities."""
    specs = activity_specs(Activity.objects.filter(agent=agent, day__date=date).order_by("start"))[:2]
    schedule_days_apply(
        plans=[DayPlan(agent=agent, date=date, activities=specs)], source=ActivitySource.REQUEST
    )


def _adjusted():
    return Notification.objects.filter(kind="schedule_adjusted").count()


def test_a_first_sync_creates_the_roster_and_a_newly_activated_agent_gets_its_schedule_at_the_next(
    wfm_org, tmp_path
):
    connector = _export(tmp_path)

    run = wfm_sync(organization=wfm_org, connector=connector)

    assert run.status == RunStatus.SUCCEEDED, run.error
    anna = Agent.objects.get(external_id="A1")
    assert anna.user.email == "anna@contoso.test" and not anna.user.has_usable_password()
    assert anna.team.name == "Care"
    assert list(anna.agent_skills.values_list("skill__external_id", "level")) == [("S-NL", 3)]
    assert not ScheduleDay.objects.exists()  # not activated yet: no schedule

    _activate_all(wfm_org)
    run = wfm_sync(organization=wfm_org, connector=connector)

    assert run.counts["days_changed"] == 26
    assert ScheduleDay.objects.filter(agent=anna).count() == 13
    # A first publication is news in the calendar, not an adjustment: no notification flood.
    assert _adjusted() == 0
    anna.refresh_from_db()
    assert anna.last_synced_at is not None


def test_a_second_sync_with_the_same_input_writes_nothing(wfm_org, tmp_path):
    connector = _export(tmp_path)
    wfm_sync(organization=wfm_org, connector=connector)
    _activate_all(wfm_org)
    wfm_sync(organization=wfm_org, connector=connector)
    changes, notifications = ScheduleChange.objects.count(), _adjusted()
    activities = list(Activity.objects.values_list("id", flat=True))

    run = wfm_sync(organization=wfm_org, connector=connector)

    assert run.counts.get("days_changed", 0) == 0
    assert run.counts["days_unchanged"] == 26
    assert ScheduleChange.objects.count() == changes
    assert _adjusted() == notifications
    assert list(Activity.objects.values_list("id", flat=True)) == activities


def test_one_changed_future_day_is_written_and_told_once_and_a_past_one_silently(wfm_org, tmp_path):
    _synced(wfm_org, tmp_path)
    notifications = _adjusted()
    future, past = TODAY + dt.timedelta(days=4), TODAY - dt.timedelta(days=2)
    days = _schedule(
        **{f"A1/{future}": _day("A1", future, start="10:00"), f"A2/{past}": _day("A2", past, end="16:00")}
    )

    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, days=days))

    assert run.counts["days_changed"] == 2
    assert _adjusted() == notifications + 1
    told = Notification.objects.filter(kind="schedule_adjusted").order_by("-id").first()
    assert told.user.agent.external_id == "A1" and told.params == {"date": future.isoformat()}


def test_bad_rows_are_skipped_with_their_reasons_and_the_rest_is_applied(wfm_org, tmp_path):
    wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    _activate_all(wfm_org)
    overlap = _day("A1", TODAY + dt.timedelta(days=1))
    overlap["activities"][1]["start"] = "11:00"
    dst = _day("A2", dt.date(2027, 3, 28))
    dst["activities"][0]["start"] = "02:30"  # the clocks go from 02:00 to 03:00 in Amsterdam
    days = [
        *_schedule(days=range(0, 3), agents=("A2",)),
        _day("NOBODY", TODAY),
        overlap,
        {
            **_day("A1", TODAY + dt.timedelta(days=2)),
            "activities": [{"code": "LUNCH?", "start": "09:00", "end": "10:00"}],
        },
        _day("A1", TODAY + dt.timedelta(days=3)),
        _day("A1", TODAY + dt.timedelta(days=3), start="08:00"),  # the same day twice
        {"agent": "A1", "date": "2026-13-01"},
    ]
    roster = {
        **ROSTER,
        "agents": [
            *ROSTER["agents"],
            {"external_id": "A3", "name": "X", "email": "nope", "timezone": "Europe/Amsterdam"},
        ],
    }
    with time_machine.travel("2027-03-20 08:00:00 +00:00", tick=False):
        dst_run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, days=[dst]))
    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, roster=roster, days=days))

    assert run.status == RunStatus.SUCCEEDED
    reasons = dict(SyncIssue.objects.filter(run=run).values_list("reference", "reason"))
    assert reasons["NOBODY/2026-12-01"] == "unknown agent 'NOBODY'"
    assert reasons["A1/2026-12-02"] == "activities overlap"
    assert reasons["A1/2026-12-03"] == "unknown activity code 'LUNCH?'"
    assert reasons["A1/2026-12-04"] == "the day is listed more than once"
    assert reasons["A1/2026-13-01"] == "date is not YYYY-MM-DD"
    assert reasons["A3"] == "email is not an email address"
    assert "does not exist on 2027-03-28" in SyncIssue.objects.get(run=dst_run).reason
    assert ScheduleDay.objects.filter(agent__external_id="A2").count() == 3  # the good rows


def test_an_agent_the_wfm_no_longer_lists_is_deactivated(wfm_org, tmp_path):
    wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    roster = {**ROSTER, "agents": ROSTER["agents"][:1]}

    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, roster=roster))

    assert run.counts["agents_deactivated"] == 1
    assert not Agent.objects.get(external_id="A2").user.is_active
    assert Agent.objects.get(external_id="A1").user.is_active


def test_a_local_change_since_the_last_sync_wins_and_is_reported(wfm_org, tmp_path):
    _synced(wfm_org, tmp_path)
    anna = Agent.objects.get(external_id="A1")
    date = TODAY + dt.timedelta(days=5)
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False):
        _approve_request_keeping_two(anna, date)
        days = _schedule(**{f"A1/{date}": _day("A1", date, start="07:00")})

        run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, days=days))

    assert run.counts["conflicts"] == 1
    assert SyncIssue.objects.get(run=run).reference == f"A1/{date}"
    assert Activity.objects.filter(agent=anna, day__date=date).count() == 2  # the local change kept


def test_the_same_day_in_another_form_is_unchanged_and_an_older_local_change_stays(wfm_org, tmp_path):
    _synced(wfm_org, tmp_path)
    anna = Agent.objects.get(external_id="A1")
    date = TODAY + dt.timedelta(days=5)
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False):
        _approve_request_keeping_two(anna, date)
    with time_machine.travel("2026-12-01 10:00:00 +00:00", tick=False):
        wfm_sync(organization=wfm_org, connector=_export(tmp_path))  # the WFM's copy, unchanged
    notifications = _adjusted()
    # The WFM lists the days again in another form: activities and keys in another order, an
    # extension's key added, defaults spelled out. Nothing to write, so the request's change stays.
    reshaped = []
    for row in _schedule():
        activities = [
            {"note": "", "end": a["end"], "start": a["start"], "code": a["code"], "x-room": "B1"}
            for a in reversed(row["activities"])
        ]
        reshaped.append({"activities": activities, **{k: v for k, v in row.items() if k != "activities"}})
    with time_machine.travel("2026-12-01 11:00:00 +00:00", tick=False):
        run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, days=reshaped))

    assert run.status == RunStatus.SUCCEEDED
    assert run.counts.get("days_changed", 0) == 0 and run.counts["days_unchanged"] == 26
    assert Activity.objects.filter(agent=anna, day__date=date).count() == 2
    assert _adjusted() == notifications


def test_a_nul_character_skips_its_row_and_the_rest_is_applied(wfm_org, tmp_path):
    wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    _activate_all(wfm_org)
    days = _schedule(**{f"A1/{TODAY}": _day("A1", TODAY, note="Team\x00meeting")})
    days[1]["activities"][0]["note"] = "a\x00b"

    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, days=days))

    assert run.status == RunStatus.SUCCEEDED
    reasons = dict(SyncIssue.objects.filter(run=run).values_list("reference", "reason"))
    assert reasons == {
        f"A1/{TODAY}": "note contains a NUL character",
        f"A1/{days[1]['date']}": "note contains a NUL character",
    }
    assert run.counts["days_changed"] == 24


def test_a_request_approved_while_the_run_reads_is_kept_and_reported(wfm_org, tmp_path, monkeypatch):
    _synced(wfm_org, tmp_path)
    anna = Agent.objects.get(external_id="A1")
    date = TODAY + dt.timedelta(days=5)
    roster = {**ROSTER, "generated_at": "2026-12-01T08:30:00+01:00"}
    days = _schedule(**{f"A1/{date}": _day("A1", date, note="Training in the afternoon")})
    real_validate = services.rows.day_row_from_content

    def approve_meanwhile(*args, **kwargs):
        # After the run read the local changes, before it writes: a supervisor approves a request.
        if not ScheduleChange.objects.filter(source=ActivitySource.REQUEST).exists():
            _approve_request_keeping_two(anna, date)
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(services.rows, "day_row_from_content", approve_meanwhile)
    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, roster=roster, days=days))

    assert run.counts["conflicts"] == 1
    assert SyncIssue.objects.get(run=run, kind="conflict").reference == f"A1/{date}"
    assert Activity.objects.filter(agent=anna, day__date=date).count() == 2


def test_a_crash_in_the_middle_leaves_whole_days_and_a_rerun_finishes(wfm_org, tmp_path, monkeypatch):
    wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    _activate_all(wfm_org)
    monkeypatch.setattr(services, "BATCH_DAYS", 5)
    real_write = services._write
    calls = []

    def failing_write(batch, *args):
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real_write(batch, *args)

    monkeypatch.setattr(services, "_write", failing_write)
    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path))

    assert run.status == RunStatus.FAILED and "went away" in run.error
    # A batch ends between agents: A1's 13 days were written, none of A2's.
    assert calls == [13, 13]
    assert ScheduleDay.objects.count() == 13
    assert set(ScheduleDay.objects.values_list("agent__external_id", flat=True)) == {"A1"}
    assert all(day.activities.count() == 3 for day in ScheduleDay.objects.all())

    monkeypatch.setattr(services, "_write", real_write)
    rerun = wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    assert rerun.status == RunStatus.SUCCEEDED
    assert rerun.counts["days_changed"] == 13 and rerun.counts["days_unchanged"] == 13


def test_a_missing_export_fails_the_run_and_writes_nothing(wfm_org, tmp_path):
    run = wfm_sync(organization=wfm_org, connector=DirectoryConnector(tmp_path / "nothing"))
    assert run.status == RunStatus.FAILED
    assert "does not exist" in run.error
    assert not Agent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_syncs_of_one_organisation_at_once_one_runs_one_skips(postgres, wfm_org, tmp_path):
    connector = _export(tmp_path)
    real_roster = connector.roster

    def slow_roster():
        import time

        time.sleep(0.5)  # hold the lock while the other starts
        return real_roster()

    connector.roster = slow_roster
    runs = run_together([lambda: wfm_sync(organization=wfm_org, connector=connector) for _ in range(2)])

    assert sorted(run.status for run in runs) == [RunStatus.SKIPPED, RunStatus.SUCCEEDED]
    assert SyncRun.objects.filter(status=RunStatus.SUCCEEDED).count() == 1


def test_the_command_syncs_from_the_organisations_source(wfm_org, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    _export(tmp_path)
    WfmSource.objects.create(organization=wfm_org, location=str(tmp_path))
    out = StringIO()
    call_command("sync_wfm", "--org", "contoso", stdout=out)
    assert "contoso: succeeded" in out.getvalue()
    assert "agents_created 2" in out.getvalue()


def test_supervisors_see_their_organisations_runs_and_can_start_a_sync(
    wfm_org, other_org, tmp_path, client, monkeypatch, django_capture_on_commit_callbacks
):
    from sync import admin as sync_admin
    from tests.factories import SupervisorFactory

    supervisor = SupervisorFactory(organization=wfm_org)
    source = WfmSource.objects.create(organization=wfm_org, location=str(tmp_path))
    theirs = WfmSource.objects.create(organization=other_org, location=str(tmp_path))
    ours = SyncRun.objects.create(
        organization=wfm_org, status=RunStatus.SUCCEEDED, finished_at=dt.datetime.now(dt.UTC)
    )
    SyncIssue.objects.create(
        run=ours, section="schedules", reference="A1/2026-12-03", reason="activities overlap"
    )
    SyncRun.objects.create(
        organization=other_org, status=RunStatus.SUCCEEDED, finished_at=dt.datetime.now(dt.UTC)
    )
    started = []
    monkeypatch.setattr(
        sync_admin.sync_organization, "delay", lambda pk, trigger: started.append((pk, trigger))
    )
    client.force_login(supervisor)

    runs = client.get("/admin/sync/syncrun/")
    assert runs.status_code == 200
    assert runs.context["cl"].result_count == 1
    # The run's page shows the rows it skipped and why (no permission on the rows needed), and
    # nobody adds or deletes a run.
    page = client.get(f"/admin/sync/syncrun/{ours.pk}/change/").content.decode()
    assert "A1/2026-12-03" in page and "activities overlap" in page
    assert client.get("/admin/sync/syncrun/add/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/sync/wfmsource/",
            {"action": "sync_now", "_selected_action": [source.pk, theirs.pk]},
        )
    assert started == [(wfm_org.pk, "admin")]


def test_a_skipped_agent_row_or_a_missing_list_deactivates_nobody(wfm_org, tmp_path):
    wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    broken = {**ROSTER, "agents": [ROSTER["agents"][0], {**ROSTER["agents"][1], "timezone": "Mars/Olympus"}]}

    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, roster=broken))
    assert run.counts["agents_skipped"] == 1
    assert Agent.objects.get(external_id="A2").user.is_active

    no_agents = {key: value for key, value in ROSTER.items() if key != "agents"}
    wfm_sync(organization=wfm_org, connector=_export(tmp_path, roster=no_agents))
    assert Agent.objects.filter(user__is_active=True).count() == 2


def test_two_new_agents_with_one_email_are_skipped_and_the_rest_goes_on(wfm_org, tmp_path):
    twin = {**ROSTER["agents"][1], "external_id": "A9", "email": "ANNA@contoso.test"}
    roster = {**ROSTER, "agents": [*ROSTER["agents"], twin]}

    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, roster=roster))

    assert run.status == RunStatus.SUCCEEDED
    assert set(Agent.objects.values_list("external_id", flat=True)) == {"A2"}
    assert run.counts["agents_skipped"] == 2


def test_an_agent_listed_again_is_not_switched_back_on(wfm_org, tmp_path):
    from em_agent.services import user_set_active

    wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    user_set_active(user=Agent.objects.get(external_id="A1").user, active=False)  # a supervisor did

    wfm_sync(organization=wfm_org, connector=_export(tmp_path))

    assert not Agent.objects.get(external_id="A1").user.is_active


def test_another_export_version_is_refused(wfm_org, tmp_path):
    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, roster={**ROSTER, "version": 2}))
    assert run.status == RunStatus.FAILED
    assert "version" in run.error
    assert not Agent.objects.exists()


def test_days_of_agents_not_yet_activated_are_counted_not_reported(wfm_org, tmp_path):
    wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    assert not SyncIssue.objects.filter(run=run).exists()
    assert run.counts["days_not_fed"] == 26 and run.counts["days_seen"] == 26


def test_an_export_that_cannot_be_read_to_its_end_changes_nothing_not_even_the_roster(wfm_org, tmp_path):
    _synced(wfm_org, tmp_path)
    roster = {**ROSTER, "agents": [{**ROSTER["agents"][0], "name": "Anna B."}]}  # Bram has left
    earlier = [
        _day(a, TODAY + dt.timedelta(days=n), start="08:00") for a in ("A1", "A2") for n in range(-3, 10)
    ]
    full = json.dumps({"format": "em-agent-wfm-export", "version": 1, "days": earlier})
    wrong = [
        full[: len(full) // 2],  # cut short
        json.dumps({"days": {}}),  # not a list
        full.replace('"version": 1', '"version": 2'),
        # Keys in sorted order, the version after the days: still read and refused.
        json.dumps({"days": earlier, "format": "em-agent-wfm-export", "version": 2}),
    ]
    for text in wrong:
        connector = _export(tmp_path, roster=roster)
        (tmp_path / "schedules.json").write_text(text)

        run = wfm_sync(organization=wfm_org, connector=connector)

        assert run.status == RunStatus.FAILED, text[:60]
        assert Agent.objects.get(external_id="A1").name == "Anna"
        assert Agent.objects.get(external_id="A2").user.is_active
        assert not SyncIssue.objects.filter(run=run).exists()
        assert run.counts.get("agents_deactivated") is None
        assert not Activity.objects.filter(start__hour=7).exists()  # 08:00 in Amsterdam: not written


def test_a_local_change_after_the_exports_copy_wins_again_at_the_next_run(wfm_org, tmp_path):
    _synced(wfm_org, tmp_path)
    anna = Agent.objects.get(external_id="A1")
    date = TODAY + dt.timedelta(days=5)
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False):
        _approve_request_keeping_two(anna, date)
    # The WFM's export was made at 08:30, before the request was approved, and has that day changed.
    roster = {**ROSTER, "generated_at": "2026-12-01T09:30:00+01:00"}
    days = _schedule(**{f"A1/{date}": _day("A1", date, note="Training in the afternoon")})
    for hour in ("10", "11"):  # the same export, synced twice
        with time_machine.travel(f"2026-12-01 {hour}:00:00 +00:00", tick=False):
            run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, roster=roster, days=days))
        assert run.counts["conflicts"] == 1, hour
        assert Activity.objects.filter(agent=anna, day__date=date).count() == 2, hour

    # A copy the WFM made after the change is the WFM's word.
    roster = {**ROSTER, "generated_at": "2026-12-01T12:30:00+01:00"}
    with time_machine.travel("2026-12-01 12:00:00 +00:00", tick=False):
        run = wfm_sync(organization=wfm_org, connector=_export(tmp_path, roster=roster, days=days))
    assert run.counts.get("conflicts") is None
    assert Activity.objects.filter(agent=anna, day__date=date).count() == 3


def test_an_agent_activated_where_the_option_is_on_gets_its_schedule_at_once(
    wfm_org, tmp_path, django_capture_on_commit_callbacks
):
    from activation.services import activation_code_issue, agent_activate

    _export(tmp_path)
    WfmSource.objects.create(organization=wfm_org, location=str(tmp_path), sync_on_activation=True)
    wfm_sync(organization=wfm_org)  # the roster: agents exist, not activated
    anna, bram = Agent.objects.get(external_id="A1"), Agent.objects.get(external_id="A2")
    code = activation_code_issue(agent=anna).code

    with django_capture_on_commit_callbacks(execute=True):
        agent_activate(agent=anna, code=code, address="127.0.0.1")

    run = SyncRun.objects.order_by("-id").first()
    assert run.trigger == "activation" and run.status == RunStatus.SUCCEEDED
    assert ScheduleDay.objects.filter(agent=anna).count() == 13
    assert not ScheduleDay.objects.filter(agent=bram).exists()


def test_without_the_option_a_new_agent_waits_for_the_night(
    wfm_org, tmp_path, django_capture_on_commit_callbacks
):
    from activation.services import activation_code_issue, agent_activate

    _export(tmp_path)
    WfmSource.objects.create(organization=wfm_org, location=str(tmp_path))
    wfm_sync(organization=wfm_org)
    anna = Agent.objects.get(external_id="A1")
    code = activation_code_issue(agent=anna).code

    with django_capture_on_commit_callbacks(execute=True):
        agent_activate(agent=anna, code=code, address="127.0.0.1")

    assert not ScheduleDay.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_writer_threads_write_every_batch_whole_and_a_writers_crash_fails_the_run(
    postgres, wfm_org, tmp_path, monkeypatch
):
    # Outside a caller's transaction (a worker, the command) batches go to writer threads.
    import threading

    wfm_sync(organization=wfm_org, connector=_export(tmp_path))
    _activate_all(wfm_org)
    monkeypatch.setattr(services, "BATCH_DAYS", 3)
    real_apply, writers = services._apply_days, set()

    def recorded(batch, *args):
        writers.add(threading.current_thread().name)
        return real_apply(batch, *args)

    monkeypatch.setattr(services, "_apply_days", recorded)
    run = wfm_sync(organization=wfm_org, connector=_export(tmp_path))

    assert run.status == RunStatus.SUCCEEDED
    assert run.counts["days_changed"] == 26 and ScheduleDay.objects.count() == 26
    assert Activity.objects.count() == 78
    assert writers and threading.main_thread().name not in writers

    calls = []
    real_write = services._write

    def failing_write(batch, *args):
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real_write(batch, *args)

    monkeypatch.setattr(services, "_write", failing_write)
    later = _schedule(
        **{
            f"{a}/{TODAY + dt.timedelta(days=n)}": _day(a, TODAY + dt.timedelta(days=n), start="08:00")
            for a in ("A1", "A2")
            for n in range(-3, 10)
        }
    )
    failed = wfm_sync(organization=wfm_org, connector=_export(tmp_path, days=later))

    assert failed.status == RunStatus.FAILED and "went away" in failed.error
    starts = {
        day.pk: sorted(a.start.astimezone(day.agent.zone).strftime("%H:%M") for a in day.activities.all())
        for day in ScheduleDay.objects.select_related("agent")
    }
    assert all(
        first in (["08:00", "12:00", "12:30"], ["09:00", "12:00", "12:30"]) for first in starts.values()
    )
    assert ["09:00", "12:00", "12:30"] in starts.values()  # not every batch was written

    monkeypatch.setattr(services, "_write", real_write)
    rerun = wfm_sync(organization=wfm_org, connector=_export(tmp_path, days=later))
    assert rerun.status == RunStatus.SUCCEEDED
    assert all(
        a.start.astimezone(a.agent.zone).strftime("%H:%M") == "08:00"
        for a in Activity.objects.select_related("agent").filter(
            activity_code__code="PHONE", start__hour__lt=10
        )
    )
    assert Activity.objects.count() == 78
