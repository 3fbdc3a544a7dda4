"""The nightly sync: one claimed run per organisation and night, retries with a growing delay and a
cap, lost messages and lost runs recovered, operators' runs as before (sync.nightly)."""

import datetime as dt
import json
import threading

import pytest
import time_machine
from django.utils import formats, timezone

from em_agent.models import Organization
from sync import nightly, tasks
from sync.models import NightlySync, NightStatus, RunStatus, SyncRun, WfmSource
from sync.services import wfm_sync
from tests.conftest import run_together

pytestmark = pytest.mark.django_db
EXPORT = {"format": "em-agent-wfm-export", "version": 1}
# Amsterdam is UTC+1 in winter: the sync of the night of 2 December is due at 01:00 UTC.
NIGHT = dt.date(2026, 12, 2)
DUE = dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC)


def _write_export(directory):
    directory.mkdir(parents=True, exist_ok=True)
    roster = {**EXPORT, "teams": [], "skills": [], "activity_codes": [], "agents": []}
    (directory / "roster.json").write_text(json.dumps(roster))
    (directory / "schedules.json").write_text(json.dumps({**EXPORT, "days": []}))


@pytest.fixture
def wfm_org(db, tmp_path):
    org = Organization.objects.create(name="Contoso", slug="contoso", default_timezone="Europe/Amsterdam")
    _write_export(tmp_path / "export")
    WfmSource.objects.create(organization=org, location=str(tmp_path / "export"))
    return org


class Broker:
    """sync_night.delay: records each night handed out (when, which night) and, unless `hold`,
    runs it at once as a worker would."""

    def __init__(self) -> None:
        self.handed: list[tuple[dt.datetime, int]] = []
        self.hold = False
        self._lock = threading.Lock()

    def delay(self, night_id: int) -> None:
        with self._lock:
            self.handed.append((timezone.now(), night_id))
        if not self.hold:
            tasks.sync_night(night_id)

    def times(self) -> list[dt.datetime]:
        return [when for when, _night in self.handed]


@pytest.fixture
def broker(monkeypatch):
    broker = Broker()
    monkeypatch.setattr(tasks.sync_night, "delay", broker.delay)
    return broker


@pytest.fixture
def beat(django_capture_on_commit_callbacks):
    """Beat firing run_due_syncs at `when` (UTC); the tasks handed out go after the commit."""

    def fire(when: dt.datetime) -> int:
        with time_machine.travel(when, tick=False), django_capture_on_commit_callbacks(execute=True):
            return tasks.run_due_syncs()

    return fire


def quarters(start: dt.datetime, end: dt.datetime):
    """Beat's times, every 15 minutes from start to end inclusive."""
    while start <= end:
        yield start
        start += dt.timedelta(minutes=15)


def _succeeded(org, started_at, trigger="schedule"):
    return SyncRun.objects.create(
        organization=org,
        trigger=trigger,
        status=RunStatus.SUCCEEDED,
        started_at=started_at,
        finished_at=started_at + dt.timedelta(minutes=2),
    )


def test_the_beat_entry_exists():
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="sync.run_due_syncs", enabled=True).exists()


def test_the_night_is_due_at_two_in_the_organisations_zone_and_runs_once(wfm_org, broker, beat):
    _succeeded(wfm_org, DUE - dt.timedelta(days=1) + dt.timedelta(minutes=10))  # last night's

    for when in quarters(DUE - dt.timedelta(hours=3), DUE + dt.timedelta(hours=22)):
        beat(when)

    assert broker.times() == [DUE]
    night = NightlySync.objects.get(night=NIGHT)
    assert night.status == NightStatus.SUCCEEDED and night.attempts == 1
    assert list(night.runs.values_list("status", "trigger", "started_at")) == [
        (RunStatus.SUCCEEDED, "schedule", DUE)
    ]


def test_a_slow_queue_across_several_beats_queues_the_night_once(wfm_org, broker, beat, settings):
    settings.CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS = 3600
    _succeeded(wfm_org, DUE - dt.timedelta(days=1) + dt.timedelta(minutes=10))
    broker.hold = True  # the workers are busy: the message waits in the queue

    for when in quarters(DUE, DUE + dt.timedelta(minutes=45)):
        beat(when)

    assert broker.times() == [DUE]
    assert NightlySync.objects.get().status == NightStatus.QUEUED
    assert not SyncRun.objects.filter(night__isnull=False).exists()

    # The message finally arrives, and a copy of it too (redelivered): one run.
    with time_machine.travel(DUE + dt.timedelta(minutes=50), tick=False):
        tasks.sync_night(broker.handed[0][1])
        tasks.sync_night(broker.handed[0][1])
    assert SyncRun.objects.filter(night__isnull=False).count() == 1
    for when in quarters(DUE + dt.timedelta(hours=1), DUE + dt.timedelta(hours=20)):
        beat(when)
    assert broker.times() == [DUE]


def test_a_claim_whose_task_never_started_is_handed_out_again_after_the_visibility_timeout(
    wfm_org, broker, beat, settings
):
    settings.CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS = 3600
    _succeeded(wfm_org, DUE - dt.timedelta(days=1) + dt.timedelta(minutes=10))
    broker.hold = True  # this message is lost

    for when in quarters(DUE, DUE + dt.timedelta(minutes=45)):
        beat(when)
    broker.hold = False
    for when in quarters(DUE + dt.timedelta(hours=1), DUE + dt.timedelta(hours=3)):
        beat(when)

    assert broker.times() == [DUE, DUE + dt.timedelta(hours=1)]
    night = NightlySync.objects.get()
    assert night.status == NightStatus.SUCCEEDED and night.attempts == 1
    # The lost message turns up after all: the night is done, nothing runs.
    tasks.sync_night(night.pk)
    assert SyncRun.objects.filter(night=night).count() == 1


def test_a_failed_night_is_retried_with_a_growing_delay_up_to_the_cap_and_the_next_night_starts_over(
    wfm_org, broker, beat, tmp_path, settings
):
    settings.WFM_SYNC_RETRIES_PER_NIGHT = 4
    _succeeded(wfm_org, DUE - dt.timedelta(days=1) + dt.timedelta(minutes=10))
    WfmSource.objects.filter(organization=wfm_org).update(location=str(tmp_path / "missing"))
    planned = []

    for when in quarters(DUE, DUE + dt.timedelta(hours=23, minutes=45)):
        beat(when)
        night = NightlySync.objects.get(night=NIGHT)
        if night.next_attempt_at and (not planned or planned[-1] != night.next_attempt_at):
            planned.append(night.next_attempt_at)

    minutes = [0, 15, 45, 105, 225]  # 15, 30, 60, 120 minutes after each failure
    assert broker.times() == [DUE + dt.timedelta(minutes=m) for m in minutes]
    assert planned == [DUE + dt.timedelta(minutes=m) for m in minutes[1:]]
    night = NightlySync.objects.get(night=NIGHT)
    assert night.status == NightStatus.FAILED and night.attempts == 5 and night.next_attempt_at is None
    runs = list(night.runs.order_by("started_at"))
    assert [run.status for run in runs] == [RunStatus.FAILED] * 5
    assert all("does not exist" in run.error for run in runs)

    # The next night starts over, with the export back.
    WfmSource.objects.filter(organization=wfm_org).update(location=str(tmp_path / "export"))
    beat(DUE + dt.timedelta(days=1))
    assert broker.times()[-1] == DUE + dt.timedelta(days=1)
    assert NightlySync.objects.get(night=NIGHT + dt.timedelta(days=1)).status == NightStatus.SUCCEEDED


def test_no_retry_is_planned_after_the_next_nights_sync(wfm_org, broker, beat, tmp_path, settings):
    settings.WFM_SYNC_RETRIES_PER_NIGHT = 10
    WfmSource.objects.filter(organization=wfm_org).update(location=str(tmp_path / "missing"))

    for when in quarters(DUE, DUE + dt.timedelta(hours=24)):
        beat(when)

    # 15, 30, ... 960 minutes: the sixth retry would come after the next night's due time.
    first = NightlySync.objects.get(night=NIGHT)
    assert first.status == NightStatus.FAILED and first.attempts == 7
    assert broker.times()[-1] == DUE + dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("night", "first_beat", "due"),
    [
        # Spring forward: 02:00 does not exist in Amsterdam on 28 March 2027; due when the clocks
        # jump to 03:00 (01:00 UTC), not an hour early or late.
        (dt.date(2027, 3, 28), dt.datetime(2027, 3, 27, 22, 0, tzinfo=dt.UTC), "2027-03-28T01:00:00+00:00"),
        # Fall back: 02:00 comes twice on 25 October 2026; due the first time (00:00 UTC), once.
        (dt.date(2026, 10, 25), dt.datetime(2026, 10, 24, 22, 0, tzinfo=dt.UTC), "2026-10-25T00:00:00+00:00"),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_on_a_dst_night_the_sync_at_two_local_runs_once(wfm_org, broker, beat, night, first_beat, due):
    _succeeded(wfm_org, first_beat - dt.timedelta(hours=1))  # the night before's

    for when in quarters(first_beat, first_beat + dt.timedelta(hours=6)):
        beat(when)

    assert [when.isoformat() for when in broker.times()] == [due]
    assert list(
        NightlySync.objects.filter(status=NightStatus.SUCCEEDED, runs__isnull=False).values_list(
            "night", flat=True
        )
    ) == [night]
    assert NightlySync.objects.get(night=night).due_at == dt.datetime.fromisoformat(due)


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_queue_each_night_once(postgres, tmp_path, broker):
    organizations = []
    for slug in ("contoso", "fabrikam"):
        org = Organization.objects.create(name=slug, slug=slug, default_timezone="Europe/Amsterdam")
        WfmSource.objects.create(organization=org, location=str(tmp_path))
        organizations.append(org)
    broker.hold = True

    with time_machine.travel(DUE + dt.timedelta(minutes=1), tick=False):
        handed = run_together([tasks.run_due_syncs for _ in range(4)])

    assert sum(handed) == 2
    assert sorted(night for _when, night in broker.handed) == sorted(
        NightlySync.objects.values_list("pk", flat=True)
    )
    assert NightlySync.objects.filter(night=NIGHT).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_message_at_once_run_one_sync(postgres, wfm_org, broker, monkeypatch):
    import time

    from sync.connectors import DirectoryConnector

    real_roster = DirectoryConnector.roster

    def slow_roster(self):
        time.sleep(0.5)  # the first is still running when the second starts
        return real_roster(self)

    monkeypatch.setattr(DirectoryConnector, "roster", slow_roster)
    broker.hold = True
    with time_machine.travel(DUE, tick=False):
        tasks.run_due_syncs()
    night_id = broker.handed[0][1]

    with time_machine.travel(DUE + dt.timedelta(minutes=1), tick=False):
        statuses = run_together([lambda: tasks.sync_night(night_id) for _ in range(2)])

    assert sorted(statuses, key=str) == [None, RunStatus.SUCCEEDED]
    assert SyncRun.objects.filter(night_id=night_id).count() == 1


def test_an_operators_run_after_the_due_time_does_the_nights_work_as_before(wfm_org, broker, beat):
    admin_run = _succeeded(wfm_org, DUE + dt.timedelta(minutes=5), trigger="admin")

    beat(DUE + dt.timedelta(minutes=15))

    assert broker.handed == []
    night = NightlySync.objects.get(night=NIGHT)
    assert night.status == NightStatus.SUCCEEDED and night.covered_by == admin_run
    assert night.attempts == 0


def test_an_operators_run_while_the_night_waits_in_the_queue_leaves_its_task_nothing(wfm_org, broker, beat):
    broker.hold = True
    beat(DUE)
    with time_machine.travel(DUE + dt.timedelta(minutes=5), tick=False):
        command_run = wfm_sync(organization=wfm_org, trigger="command")
    assert command_run.night is None

    with time_machine.travel(DUE + dt.timedelta(minutes=20), tick=False):
        tasks.sync_night(broker.handed[0][1])

    night = NightlySync.objects.get()
    assert night.status == NightStatus.SUCCEEDED and night.covered_by == command_run
    assert SyncRun.objects.count() == 1


def test_one_agents_run_after_its_activation_is_not_the_nights(wfm_org, broker, beat):
    _succeeded(wfm_org, DUE + dt.timedelta(minutes=5), trigger="activation")
    SyncRun.objects.create(  # an operator's run that failed does not count either
        organization=wfm_org,
        trigger="admin",
        status=RunStatus.FAILED,
        started_at=DUE + dt.timedelta(minutes=6),
        finished_at=DUE + dt.timedelta(minutes=7),
    )

    beat(DUE + dt.timedelta(minutes=15))

    assert broker.times() == [DUE + dt.timedelta(minutes=15)]
    assert NightlySync.objects.get().runs.get().trigger == "schedule"


def test_a_run_skipped_for_another_holding_the_lock_is_retried(wfm_org, broker, beat, monkeypatch):
    from contextlib import contextmanager

    from sync import services

    @contextmanager
    def taken(organization):
        yield False

    monkeypatch.setattr(services, "_organization_lock", taken)
    beat(DUE)
    night = NightlySync.objects.get()
    assert night.runs.get().status == RunStatus.SKIPPED
    assert night.status == NightStatus.RETRY_PLANNED
    assert night.next_attempt_at == DUE + dt.timedelta(minutes=15)


def test_a_run_whose_worker_died_counts_as_a_failed_attempt_and_is_retried(wfm_org, broker, beat):
    night = NightlySync.objects.create(
        organization=wfm_org,
        night=NIGHT,
        due_at=DUE,
        queued_at=DUE,
        started_at=DUE,
        status=NightStatus.RUNNING,
        attempts=1,
    )
    lost = SyncRun.objects.create(organization=wfm_org, night=night, started_at=DUE)

    beat(DUE + dt.timedelta(minutes=45))  # still within the task's time limit: running
    night.refresh_from_db()
    assert night.status == NightStatus.RUNNING and broker.handed == []

    beat(DUE + dt.timedelta(minutes=60))  # past the hard limit and a margin: lost
    night.refresh_from_db()
    lost.refresh_from_db()
    assert lost.status == RunStatus.FAILED and "worker stopped" in lost.error
    assert night.status == NightStatus.RETRY_PLANNED
    assert night.next_attempt_at == DUE + dt.timedelta(minutes=75)

    beat(DUE + dt.timedelta(minutes=75))
    night.refresh_from_db()
    assert night.status == NightStatus.SUCCEEDED and night.attempts == 2


def test_the_admin_shows_each_nights_attempts_and_its_next_retry(
    wfm_org, other_org, broker, beat, client, tmp_path
):
    from tests.factories import SupervisorFactory

    WfmSource.objects.filter(organization=wfm_org).update(location=str(tmp_path / "missing"))
    WfmSource.objects.create(organization=other_org, location=str(tmp_path / "missing"))
    beat(DUE)
    beat(DUE + dt.timedelta(minutes=15))
    night = NightlySync.objects.get(organization=wfm_org, night=NIGHT)
    assert night.status == NightStatus.RETRY_PLANNED and night.attempts == 2
    client.force_login(SupervisorFactory(organization=wfm_org))

    listing = client.get("/admin/sync/nightlysync/")
    assert listing.status_code == 200
    assert [row.pk for row in listing.context["cl"].result_list] == [night.pk]  # not Fabrikam's
    html = listing.content.decode()
    assert "Failed: retry planned" in html and "next retry" in html.lower()
    assert formats.localize(timezone.template_localtime(night.next_attempt_at)) in html

    page = client.get(f"/admin/sync/nightlysync/{night.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("does not exist") == 2  # each attempt with its error
    assert client.get("/admin/sync/nightlysync/add/").status_code == 403
    theirs = NightlySync.objects.get(organization=other_org)
    assert client.get(f"/admin/sync/nightlysync/{theirs.pk}/change/").status_code == 302


def test_nights_are_timed_in_utc_not_by_wall_clock_comparison(wfm_org):
    # 03:10 CEST on the spring-forward day, with a sync time of 02:30 (a time the clocks skip):
    # due at 03:30 CEST, still to come: the night due last is the day before's.
    wfm_org.nightly_sync_time = dt.time(2, 30)
    night, due = nightly.night_of(wfm_org, now=dt.datetime(2027, 3, 28, 1, 10, tzinfo=dt.UTC))
    assert night == dt.date(2027, 3, 27)
    assert due == dt.datetime(2027, 3, 27, 1, 30, tzinfo=dt.UTC)
