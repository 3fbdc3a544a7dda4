"""The export is fetched before the sync's transaction: the HTTP connector's pages spooled to a
bounded temporary file, then applied from it; nothing fetched while rows are locked."""

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection, transaction

from em_agent.models import Agent
from schedules.models import Activity, ScheduleDay
from sync import services
from sync.connectors import ConnectorError, DirectoryConnector, spooled_schedules
from sync.http_connector import HttpConnector
from sync.models import RunStatus
from sync.services import wfm_sync
from tests.sync.fake_wfm import TOKEN, FakeWfm, answer
from tests.sync.test_sync import ROSTER, TODAY, _activate_all, _day, _schedule

pytestmark = pytest.mark.django_db
# The roster of a later night: Anna renamed, Bram gone; and every day starts an hour earlier.
LATER_ROSTER = {**ROSTER, "agents": [{**ROSTER["agents"][0], "name": "Anna B."}]}
LATER_DAYS = [
    _day(a, TODAY + dt.timedelta(days=n), start="08:00") for a in ("A1", "A2") for n in range(-3, 10)
]


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False):
        yield


@pytest.fixture
def wfm_org(db):
    from em_agent.models import Organization

    return Organization.objects.create(name="Contoso", slug="contoso", default_timezone="Europe/Amsterdam")


@pytest.fixture
def wfm():
    server = FakeWfm(roster=ROSTER, days=_schedule(), page_size=2).start()  # 26 days: 13 pages
    yield server
    server.stop()


@pytest.fixture
def spool_dir(tmp_path, settings):
    settings.WFM_SYNC_SPOOL_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    return tmp_path / "spool"


def _connector(wfm: FakeWfm) -> HttpConnector:
    return HttpConnector(wfm.base_url, TOKEN, sleep=lambda seconds: None)


def _synced_over_http(org, wfm):
    """The roster, the agents activated, then their schedules."""
    assert wfm_sync(organization=org, connector=_connector(wfm)).status == RunStatus.SUCCEEDED
    _activate_all(org)
    run = wfm_sync(organization=org, connector=_connector(wfm))
    assert run.status == RunStatus.SUCCEEDED and run.counts["days_changed"] == 26


def _unchanged():
    assert Agent.objects.get(external_id="A1").name == "Anna"
    assert Agent.objects.get(external_id="A2").user.is_active
    assert ScheduleDay.objects.count() == 26
    assert not Activity.objects.filter(start__hour=7).exists()  # 08:00 in Amsterdam: not written


def test_a_sync_over_http_applies_the_spooled_export_and_removes_the_file(
    wfm_org, wfm, spool_dir, monkeypatch
):
    spooled = []
    real_read = services._read_schedules

    def read(*args, **kwargs):
        spooled.append(sorted(path.name for path in spool_dir.iterdir()))
        return real_read(*args, **kwargs)

    monkeypatch.setattr(services, "_read_schedules", read)
    _synced_over_http(wfm_org, wfm)
    wfm.roster, wfm.days = LATER_ROSTER, LATER_DAYS

    run = wfm_sync(organization=wfm_org, connector=_connector(wfm))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.counts["days_changed"] == 13  # Bram's days: he has left
    assert Agent.objects.get(external_id="A1").name == "Anna B."
    assert Activity.objects.filter(start__hour=7).count() == 13
    assert len(spooled) == 3 and all(
        len(names) == 1 and names[0].startswith("wfm-spool-") for names in spooled
    )
    assert list(spool_dir.iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_no_request_is_made_while_the_syncs_transaction_is_open_and_an_agents_write_does_not_wait(
    postgres, wfm_org, wfm
):
    _synced_over_http(wfm_org, wfm)
    wfm.roster, wfm.days = LATER_ROSTER, LATER_DAYS
    seen: list[tuple[str, int, str]] = []
    probe_lock = threading.Lock()

    def probe(path: str) -> None:
        # On the server's side, with a connection of its own, while the sync waits for the answer:
        # is any other session of this database inside a transaction (the sync's, holding the
        # roster's changed rows)? And may an agent change its own row now, without waiting?
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                )
                open_transactions = cursor.fetchone()[0]
            try:
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL lock_timeout = '500ms'")
                    Agent.objects.filter(external_id="A1").update(language="nl")
                write = "done"
            except Exception as exc:  # noqa: BLE001  (recorded: a lock wait that timed out)
                write = type(exc).__name__
            with probe_lock:
                seen.append((path, open_transactions, write))
        finally:
            connection.close()

    wfm.on_request = probe
    run = wfm_sync(organization=wfm_org, connector=_connector(wfm))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert Agent.objects.get(external_id="A1").name == "Anna B."  # the roster was applied after all
    assert len(seen) == 1 + 13  # the roster and every page
    assert [(path, count, write) for path, count, write in seen if count or write != "done"] == []


def test_an_export_cut_short_by_a_page_that_fails_changes_nothing_not_even_the_roster(
    wfm_org, wfm, spool_dir
):
    _synced_over_http(wfm_org, wfm)
    wfm.roster, wfm.days = LATER_ROSTER, LATER_DAYS
    wfm.next_links[6] = f"{wfm.base_url}/broken"  # page 7 of 13 never answers 200

    run = wfm_sync(organization=wfm_org, connector=_connector(wfm))

    assert run.status == RunStatus.FAILED
    assert "/broken" in run.error and "404" in run.error
    assert run.counts.get("agents_deactivated") is None
    _unchanged()
    assert list(spool_dir.iterdir()) == []


def test_a_page_that_fails_after_its_retries_changes_nothing(wfm_org, wfm, spool_dir):
    _synced_over_http(wfm_org, wfm)
    wfm.roster, wfm.days = LATER_ROSTER, LATER_DAYS

    async def first_page(request):
        return wfm._schedules(request)

    wfm.script["/schedules"] = [first_page, *[answer(503, "busy")] * 5]  # page 2: 1 + 4 retries

    run = wfm_sync(organization=wfm_org, connector=_connector(wfm))

    assert run.status == RunStatus.FAILED
    assert "failed after 5 attempts: 503" in run.error
    _unchanged()
    assert list(spool_dir.iterdir()) == []


def test_an_export_over_the_spool_limit_fails_the_run_with_the_reason_and_changes_nothing(
    wfm_org, wfm, spool_dir, settings
):
    _synced_over_http(wfm_org, wfm)
    wfm.roster, wfm.days = LATER_ROSTER, LATER_DAYS
    settings.WFM_SYNC_SPOOL_MAX_BYTES = 3000  # a handful of days
    requests_before = len(wfm.seen)

    run = wfm_sync(organization=wfm_org, connector=_connector(wfm))

    assert run.status == RunStatus.FAILED
    assert "larger than 3000 bytes" in run.error and "WFM_SYNC_SPOOL_MAX_BYTES" in run.error
    assert len(wfm.seen) - requests_before < 1 + 13  # stopped as it arrived, not after the download
    _unchanged()
    assert list(spool_dir.iterdir()) == []


def test_the_spool_is_removed_when_applying_it_fails(wfm_org, wfm, spool_dir, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_sync_roster", crash)

    run = wfm_sync(organization=wfm_org, connector=_connector(wfm))

    assert run.status == RunStatus.FAILED and "went away" in run.error
    assert list(spool_dir.iterdir()) == []


def test_a_day_row_that_is_not_json_fails_the_spool(spool_dir):
    with pytest.raises(ConnectorError, match="NaN"), spooled_schedules([{"x": float("nan")}], name="the API"):
        pass
    assert list(spool_dir.iterdir()) == []


def test_the_directory_connector_hands_over_its_own_file(tmp_path, spool_dir):
    (tmp_path / "schedules.json").write_text('{"days": []}')
    with DirectoryConnector(tmp_path).schedules_file(start=TODAY, end=TODAY) as path:
        assert path == tmp_path / "schedules.json"
    assert (tmp_path / "schedules.json").exists()
    assert list(spool_dir.iterdir()) == []
