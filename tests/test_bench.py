"""The benchmarks (bench/) against the code as it is now: each module imports, the pieces that run
in-process run at a tiny size, the what-ifs patch what the project really runs, the bare view does the
endpoint's work, and a goal that fails is a non-zero exit. A change to a function a benchmark calls
or patches breaks this suite, not the next benchmark run."""

import argparse
import datetime as dt
import importlib
import json
import sys
from pathlib import Path

import django
import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.module_loading import import_string

from em_agent import sessions
from schedules.models import Activity, ScheduleDay
from schedules.selectors import schedule_days_for_agent
from tests.notifications.fake_fcm import FakeFcm, write_service_account
from tests.schedules.factories import shift

BENCH = Path(__file__).resolve().parent.parent / "bench"
MODULES = sorted(f"bench.{path.stem}" for path in BENCH.glob("*.py") if path.stem != "__init__")


@pytest.fixture
def bench_import(monkeypatch):
    """Imports a bench module as its script or server would, with no what-if asked for. Django is
    already set up by pytest-django: a second django.setup() (the what-if modules call it, for
    Celery and gunicorn) would configure logging again under the other tests."""
    monkeypatch.delenv("BENCH_WHATIF", raising=False)
    monkeypatch.setattr(django, "setup", lambda *args, **kwargs: None)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the scripts put the repository first
    return importlib.import_module


@pytest.fixture
def fake_fcm():
    with FakeFcm() as server:
        yield server


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_module_imports(bench_import, name):
    assert bench_import(name)


def test_every_script_is_covered():
    assert {
        "bench.fanout",
        "bench.sync",
        "bench.schedule_api",
        "bench.profile_batch",
        "bench.timeoff",
        "bench.swaps",
    } <= set(MODULES)
    assert {"bench.alternatives", "bench.whatif", "bench.schedule_whatif", "bench.bare_urls"} <= set(MODULES)


# --- the schedule benchmark: the bare view and the what-if ---------------------------------------


@pytest.mark.django_db
def test_the_bare_view_does_the_endpoints_work_byte_for_byte_and_nothing_more(
    bench_import, agent, logged_in, settings
):
    bench_import("bench.bare_urls")
    with time_machine.travel("2026-11-10 08:00:00 +00:00", tick=False):
        for date in (dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 30)):
            shift(agent, date, ("PHONE", "09:00", "12:00"), ("LUNCH", "12:00", "12:30"), note=f"n{date.day}")
        # Outside the month, in the range the old bare view also read (no bound on the start).
        shift(agent, dt.date(2026, 10, 31), ("PHONE", "22:00", "06:00"))
        shift(agent, dt.date(2026, 12, 1), ("PHONE", "09:00", "17:00"))
        start, end = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
        endpoint = logged_in(agent).get(f"/api/v1/schedule?start={start}&end={end}")
        with CaptureQueriesContext(connection) as selector:
            schedule_days_for_agent(agent=agent, start=start, end=end)

        settings.ROOT_URLCONF = "bench.bare_urls"
        with CaptureQueriesContext(connection) as bare_queries:
            bare = Client().get(f"/bench/bare/{agent.pk}?start={start}&end={end}&zone={agent.timezone}")

    assert endpoint.status_code == bare.status_code == 200
    assert bare.content == endpoint.content
    assert sum(len(day["activities"]) for day in json.loads(bare.content)["days"]) == 6
    # The same statements, bounds included: the ratio compares the framework, not the queries.
    assert [q["sql"] for q in bare_queries.captured_queries] == [q["sql"] for q in selector.captured_queries]


@pytest.mark.django_db
def test_usercache_patches_the_backend_that_loads_a_sessions_user(
    bench_import, agent, logged_in, monkeypatch
):
    from allauth.core.internal.sessionkit import get_session_user

    whatif = bench_import("bench.schedule_whatif")
    for path in settings.AUTHENTICATION_BACKENDS:
        backend = import_string(path)
        monkeypatch.setattr(backend, "get_user", backend.get_user)  # undone after the test
    session = sessions.lookup(logged_in(agent).token)

    whatif.apply({"usercache"})

    with CaptureQueriesContext(connection) as first:
        assert get_session_user(session) == agent.user
    with CaptureQueriesContext(connection) as second:
        user = get_session_user(session)
    assert len(first.captured_queries) == 1  # the user with its agent and organisation, joined
    assert second.captured_queries == []
    assert user.agent.organization == agent.organization


def test_the_schedule_whatifs_that_the_project_adopted_are_refused(bench_import):
    whatif = bench_import("bench.schedule_whatif")
    for name in ("join", "idle", "nonsense"):
        with pytest.raises(SystemExit, match="unknown change"):
            whatif.parse(name)
    assert whatif.parse("usercache") == {"usercache"}


@pytest.mark.django_db
def test_the_schedule_seed_is_what_the_service_writes(bench_import, postgres):
    schedule_api = bench_import("bench.schedule_api")

    counts = schedule_api.seed(agents=3, batch=2, service=False)

    assert counts["first agent's days as the service writes them"] is True
    assert counts["days"] == 3 * schedule_api.DAYS
    assert counts["activities"] == Activity.objects.count() > 0


# --- the fan-out benchmark: the what-ifs, alternatives, profile_batch ----------------------------


@pytest.fixture
def fcm_settings(fake_fcm, tmp_path, settings):
    from notifications import push

    settings.FCM_CREDENTIALS_FILE = str(
        write_service_account(tmp_path / "sa.json", token_uri=fake_fcm.token_uri, project_id="test")
    )
    settings.FCM_SEND_URL = fake_fcm.send_url
    push.reset_gateway()
    yield fake_fcm
    push.reset_gateway()


def _messages(count: int):
    from notifications.push import PushMessage

    return [
        PushMessage(
            token=f"device-{i}",
            notification_id=i,
            title="t",
            body="b",
            data={"kind": "k"},
            collapse_key=f"n{i}",
        )
        for i in range(count)
    ]


def test_the_fanout_whatifs_patch_the_gateway_the_project_builds(
    bench_import, fcm_settings, monkeypatch, settings
):
    from notifications import push

    settings.FCM_TRANSPORT = "sdk"  # the what-ifs change firebase-admin's transport
    whatif = bench_import("bench.whatif")
    monkeypatch.setattr(push.FcmGateway, "_send_chunk", push.FcmGateway._send_chunk)
    monkeypatch.setattr(push.FcmGateway, "__init__", push.FcmGateway.__init__)

    def send_each(*args, **kwargs):
        raise AssertionError("pool32 sends one message at a time, from its pool")

    monkeypatch.setattr(push.messaging, "send_each", send_each)

    whatif.apply(whatif.parse("pool32,chunk2"))
    gateway = push.get_gateway()
    results = gateway.send(_messages(3))

    assert gateway.chunk_size == 2
    assert [r.outcome for r in results] == [push.PushOutcome.SENT] * 3
    assert sorted(fcm_settings.accepted_tokens()) == ["device-0", "device-1", "device-2"]


def test_the_fanout_whatifs_that_the_project_adopted_are_refused(bench_import):
    whatif = bench_import("bench.whatif")
    for name in ("record", "trustenv", "chunk", "pool"):
        with pytest.raises(SystemExit, match="unknown changes"):
            whatif.parse(name)
    assert whatif.parse("pool32, chunk100,switch50") == {"pool32", "chunk100", "switch50"}


@pytest.mark.django_db
def test_alternatives_sends_every_way_at_a_tiny_size(bench_import, fcm_settings, capsys):
    fanout, alternatives = bench_import("bench.fanout"), bench_import("bench.alternatives")
    fanout.seed(agents=2, devices=2)

    short = alternatives.send(argparse.Namespace(messages=4, repeat=1), fcm_settings.base_url)

    assert short == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " ok in " in line]
    assert len(lines) == 3
    assert all("    4 ok in" in line for line in lines)


def test_profile_batch_times_functions_that_exist(bench_import):
    profile_batch = bench_import("bench.profile_batch")
    for owner, attribute, _name in profile_batch.timed_functions():
        assert callable(getattr(owner, attribute)), f"{owner}.{attribute}"


# --- goals: a failed one is a non-zero exit ------------------------------------------------------


def _schedule_report(schedule_api, *, p50_ms: float, bare_per_second: float) -> int:
    def run(name: str, latency_ms: float, count: int) -> "schedule_api.Run":
        result = schedule_api.Run(name, latencies=[latency_ms / 1000] * count, seconds=1.0)
        result.cpu = {"gunicorn": 1.0}
        return result

    args = argparse.Namespace(rate=50.0, duration=1.0, concurrency=16, saturation_duration=1.0, json=None)
    config = {"agents": 1, "sessions": 1, "workers": 1, "worker_class": "sync", "threads": 1, "cpus": 2}
    saturated = {"real endpoint": run("real", 10, 100), "bare view": run("bare", 10, int(bare_per_second))}
    runs = [run("single", 10, 10), run("rate", p50_ms, 50), *saturated.values()]
    config["whatif"] = ""
    return schedule_api.report(args, config, runs, saturated, checks={"body": True}, shape="")


def test_schedule_api_exits_1_when_a_goal_fails(bench_import, capsys):
    schedule_api = bench_import("bench.schedule_api")

    assert _schedule_report(schedule_api, p50_ms=10, bare_per_second=120) == 0
    assert _schedule_report(schedule_api, p50_ms=25, bare_per_second=120) == 1  # p50 > 20 ms
    assert _schedule_report(schedule_api, p50_ms=10, bare_per_second=150) == 1  # ratio 0.67 < 0.70
    assert "goals FAILED: ratio real / bare" in capsys.readouterr().out


def test_fanout_exits_1_when_a_goal_fails(bench_import, capsys):
    fanout = bench_import("bench.fanout")
    args = argparse.Namespace(agents=10, json=None)
    config = {"agents": 10, "devices": 2, "workers": 1, "concurrency": 2, "beat": True, "cpus": 2}
    config.update(whatif="", transports=["sdk", "async"])

    def run(transport, **fields):
        # 20 messages in 30 s with 8 ms of worker CPU: 0.67 msg/s, 0.4 ms per message.
        values = {"total_seconds": 30.0, "peak_rss_mb": 400.0, "cpu": {"celery workers": 0.008}, **fields}
        return fanout.Summary(
            config=config, messages=20, transport=transport, delivered=10, accepted=20, **values
        )

    def report(ceiling: float | None = 1.0, sdk=None, **async_fields) -> int:
        # The sdk's time, rate and CPU are printed, not judged; its correctness and memory are.
        sdk_run = run("sdk", total_seconds=100.0, cpu={"celery workers": 0.03}, **(sdk or {}))
        runs = {"sdk": sdk_run, "async": run("async", **async_fields)}
        return fanout.report(runs, fanout.Ceiling(msgs_per_s=ceiling), args)

    assert report() == 0
    assert report(ceiling=None) == 0  # --no-ceiling: no ratio to judge
    assert report(ceiling=0.5, total_seconds=61.0) == 1  # over 60 s
    assert report(cpu={"celery workers": 0.02}) == 1  # 1 ms per message
    assert report(ceiling=2.0) == 1  # ratio 0.33
    assert report(peak_rss_mb=600.0) == 1
    assert report(sdk={"duplicates": 1}) == 1
    assert report(sdk={"peak_rss_mb": 600.0}) == 1
    assert report(timed_out=True) == 1
    out = capsys.readouterr().out
    assert "goals FAILED: peak worker RSS (MB) (async)" in out
    assert "goals FAILED: duplicates (sdk)" in out
    assert "ratio to the ceiling (async)" in out


def test_fanout_runs_the_transports_it_is_asked_for(bench_import):
    fanout = bench_import("bench.fanout")

    assert fanout.parse_transports("sdk, async") == ["sdk", "async"]
    assert fanout.parse_args.__module__ == "bench.fanout"
    with pytest.raises(SystemExit, match="unknown"):
        fanout.parse_transports("sdk,http2")


@pytest.mark.django_db(transaction=True)  # TRUNCATE, as the benchmark runs it: outside a transaction
def test_fanout_empties_the_outbox_between_transports_and_keeps_the_agents(bench_import, postgres):
    from em_agent.models import Agent
    from notifications.models import Delivery, Device, Notification
    from notifications.services import notify

    fanout = bench_import("bench.fanout")
    fanout.seed(agents=3, devices=2)
    notify(recipients=list(Agent.objects.all()), kind=fanout.KIND, params={"date": "2026-12-03"})
    assert Delivery.objects.exists()

    fanout.forget_notifications()

    assert not Notification.objects.exists() and not Delivery.objects.exists()
    assert Agent.objects.count() == 3 and Device.objects.count() == 6


def test_sync_exits_1_when_a_goal_fails(bench_import, capsys):
    sync = bench_import("bench.sync")
    args = argparse.Namespace(agents=1, days=1, change_percent=1.0, json=None)
    shape = sync.ExportShape(days=1, activities=1)

    def report(first_seconds: float) -> int:
        results = [
            sync.SyncResult(name, seconds=seconds, status="succeeded")
            for name, seconds in (("roster", 1.0), ("first", first_seconds), ("rerun", 1.0), ("changed", 1.0))
        ]
        return sync.report(args, {"cpus": 2}, shape, results, *results[1:], 1.0, 1, {"check": True})

    assert report(100.0) == 0
    assert report(130.0) == 1  # the first sync over 120 s
    assert "goals FAILED: first sync" in capsys.readouterr().out


# --- the sync benchmark: its export through the sync, at a tiny size -----------------------------


@pytest.mark.django_db
def test_the_sync_benchmarks_export_goes_through_the_sync(bench_import, tmp_path):
    from em_agent.models import Agent, Organization
    from sync.connectors import DirectoryConnector
    from sync.services import wfm_sync

    sync = bench_import("bench.sync")
    with time_machine.travel("2026-11-10 08:00:00 +01:00", tick=False):
        org = Organization.objects.create(name="Sync bench", slug="syncbench", default_timezone=sync.ZONE)
        stamp = "2026-11-10T08:00:00+01:00"
        roster_only, full = tmp_path / "roster", tmp_path / "full"
        sync.write_roster(roster_only, agents=3, generated_at=stamp)
        (roster_only / "schedules.json").write_text(
            json.dumps({**sync.EXPORT, "generated_at": stamp, "days": []})
        )
        sync.write_roster(full, agents=3, generated_at=stamp)
        write = {"agents": 3, "days": 10, "today": dt.date(2026, 11, 10), "generated_at": stamp}
        shape = sync.write_schedules(full / "schedules.json", change_percent=0, **write)

        roster = wfm_sync(organization=org, connector=DirectoryConnector(roster_only), trigger="bench")
        Agent.objects.filter(organization=org).update(activated_at=dt.datetime.now(tz=dt.UTC))
        first = wfm_sync(organization=org, connector=DirectoryConnector(full), trigger="bench")
        changed_shape = sync.write_schedules(full / "schedules.json", change_percent=20, **write)
        changed = wfm_sync(organization=org, connector=DirectoryConnector(full), trigger="bench")

    assert (roster.status, first.status, changed.status) == ("succeeded",) * 3
    assert roster.counts["agents_created"] == 3
    assert ScheduleDay.objects.filter(agent__organization=org).count() == shape.days == 30
    assert Activity.objects.filter(agent__organization=org).count() == shape.activities
    assert changed.counts["days_changed"] == changed_shape.changed_days > 0


# --- the time-off benchmark (issue 11) -------------------------------------------------------------


def _timeoff_report(timeoff, *, p99_ms: float, check_ok: bool = True, timed_out: bool = False) -> int:
    def run(name: str, latency_ms: float, count: int) -> "timeoff.Run":
        result = timeoff.Run(name, latencies=[latency_ms / 1000] * count, seconds=1.0)
        result.cpu = {"gunicorn": 1.0, "celery worker": 1.0}
        return result

    args = argparse.Namespace(rate=20.0, concurrency=16, cancel_concurrency=4, eager=False, json=None)
    config = {"agents": 1, "limit": 1, "workers": 1, "worker_class": "sync", "threads": 1}
    config.update(celery="worker", cpus=2)
    runs = [run("rate", p99_ms, 20), run("saturated", 10, 20), run("cancel", 10, 2), run("advance", 0, 0)]
    progress = {"refilled": 1.0, "drained": 2.0, **({"timed_out": True} if timed_out else {})}
    checks = {"a check": (check_ok, "what it saw")}
    return timeoff.report(args, config, runs, checks=checks, progress=progress, cancels=2)


def test_timeoff_exits_1_when_a_goal_fails(bench_import, capsys):
    timeoff = bench_import("bench.timeoff")

    assert _timeoff_report(timeoff, p99_ms=200) == 0
    assert _timeoff_report(timeoff, p99_ms=300) == 1  # p99 > 250 ms at 20/s
    assert _timeoff_report(timeoff, p99_ms=200, check_ok=False) == 1
    assert _timeoff_report(timeoff, p99_ms=200, timed_out=True) == 1  # the waitlist never moved up
    assert "goals FAILED: a check" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_timeoff_checks_see_what_they_claim(bench_import, postgres):
    from django.utils import timezone

    from em_agent.models import Agent
    from timeoff.models import TimeOffRequest, TimeOffStatus
    from timeoff.services import time_off_request_cancel, time_off_request_create, time_off_waitlist_advance

    schedule_api, timeoff = bench_import("bench.schedule_api"), bench_import("bench.timeoff")
    schedule_api.seed(agents=8, batch=4, service=False, slug=timeoff.SLUG, name="Time-off bench")
    timeoff.seed_time_off(limit=1)
    agents = list(Agent.objects.filter(organization__slug=timeoff.SLUG).order_by("pk"))
    dates = timeoff.five_weekdays(timezone.localdate(timezone.now(), agents[0].zone))
    before = timeoff.schedules_of(dates)
    date = next(d for d in dates if all(before.get((a.pk, d)) for a in agents[:4]))
    requests = [
        time_off_request_create(
            agent=agent, kind="full_day", activity_code=timeoff.CODE, start_date=date, end_date=date
        )
        for agent in agents[:4]
    ]
    vac_id = requests[0].activity_code_id
    lines = {date: timeoff.waitlists(dates)[date]}  # the one date asked for

    def outcomes():
        return {date: timeoff.outcomes(dates)[date]}

    assert [r.status for r in requests] == ["approved", "pending", "pending", "pending"]
    assert lines[date] == [r.pk for r in requests[1:]]
    assert timeoff.limits_hold(outcomes(), lines, limit=1)[0]
    assert timeoff.positions_in_order(lines)
    assert timeoff.balances_hold()[0]
    assert timeoff.schedules_hold(before, dates, vac_id=vac_id)[0]

    time_off_request_cancel(agent=agents[0], request_id=requests[0].pk)
    time_off_waitlist_advance(organization_id=agents[0].organization_id, dates=[date])
    assert timeoff.advanced_in_order(lines, cancelled=[date])[0]
    assert timeoff.limits_hold(outcomes(), {date: timeoff.waitlists(dates)[date]}, limit=1, cancelled=1)[0]
    assert timeoff.schedules_hold(before, dates, vac_id=vac_id)[0]  # the cancelled day restored

    # Each check fails when what it checks is broken: the second in line approved out of turn
    # (over the limit too) without the service writing its day.
    TimeOffRequest.objects.filter(pk=requests[2].pk).update(status=TimeOffStatus.APPROVED, substatus="")
    assert not timeoff.advanced_in_order(lines, cancelled=[date])[0]
    assert not timeoff.limits_hold(outcomes(), {date: timeoff.waitlists(dates)[date]}, limit=1, cancelled=1)[
        0
    ]
    assert not timeoff.schedules_hold(before, dates, vac_id=vac_id)[0]  # approved, but no time off in the day


# --- the swap benchmark (issue 12) -----------------------------------------------------------------


def _swaps_report(swaps, *, p99_ms: float, queries_big: int = 14, check_ok: bool = True) -> int:
    def run(name: str, latency_ms: float, count: int) -> "swaps.Run":
        result = swaps.Run(name, latencies=[latency_ms / 1000] * count, seconds=1.0, keep_answers=True)
        result.cpu = {"gunicorn": 1.0}
        return result

    args = argparse.Namespace(rate=10.0, duration=1.0, racers=2, json=None)
    config = {"agents": 20, "same_team_only": False, "workers": 1, "worker_class": "sync", "threads": 1}
    config["cpus"] = 2
    runs = [run("candidates", p99_ms, 10), run("offers", 50, 2), run("race", 50, 2)]
    queries = {
        2: {kind: [14, 12] for kind, _weight in swaps.KINDS},
        20: {kind: [queries_big] for kind, _weight in swaps.KINDS},
    }
    checks = {"a check": (check_ok, "what it saw")}
    return swaps.report(args, config, runs, queries=queries, checks=checks)


def test_swaps_exits_1_when_a_goal_fails(bench_import, capsys):
    swaps = bench_import("bench.swaps")

    assert _swaps_report(swaps, p99_ms=100) == 0  # the bound the same: 14 at both sizes
    assert _swaps_report(swaps, p99_ms=200) == 1  # p99 > 150 ms at 10/s
    assert _swaps_report(swaps, p99_ms=100, queries_big=15) == 1  # more queries in the larger one
    assert _swaps_report(swaps, p99_ms=100, check_ok=False) == 1
    assert "goals FAILED: a check" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_swap_races_checks_see_what_they_claim(bench_import, postgres):
    import random

    from bench._common import Answer, Target
    from em_agent.models import Agent
    from schedules.models import ScheduleChange
    from swaps.services import swap_accept, swap_offer_create

    schedule_api, swaps = bench_import("bench.schedule_api"), bench_import("bench.swaps")
    schedule_api.seed(agents=80, batch=40, service=False, slug=swaps.SLUG, name="Swap bench")
    swaps.seed_swaps(slug=swaps.SLUG, same_team_only=False)
    rng = random.Random(1)
    offers = swaps.choose_offers(count=2, racers=2, rng=rng)
    agents = Agent.objects.select_related("organization").in_bulk([o.requester for o in offers])
    agents.update(Agent.objects.in_bulk([r for o in offers for r in o.racers]))
    before = swaps.days_of(swaps.race_keys(offers))
    answers = []
    for offer in offers:
        offer.swap_id = swap_offer_create(
            agent=agents[offer.requester], date=offer.date, their_date=offer.date, open=True
        ).pk
        for n, racer in enumerate(offer.racers):
            target = Target(f"http://x/api/v1/swaps/{offer.swap_id}/accept", {"X-Session-Token": f"t{racer}"})
            if n == 0:
                swap_accept(agent=agents[racer], swap_id=offer.swap_id)
                answers.append(Answer(target, 200, b"{}", 0.1))
            else:
                answers.append(Answer(target, 409, b'{"code": "swap_not_open"}', 0.1))
    agent_of = {f"t{r}": r for offer in offers for r in offer.racers}

    assert all(ok for ok, _detail in swaps.race_outcome(offers, answers, agent_of).values())
    assert all(ok for ok, _detail in swaps.exchanges_hold(offers, before).values())

    # Each check fails when what it checks is broken: two winners of one offer; a loser's day
    # changed; a journal row gone.
    two_winners = [Answer(a.target, 200, b"{}", 0.1) for a in answers]
    assert not swaps.race_outcome(offers, two_winners, agent_of)[
        f"exactly one 200 per offer ({len(offers)} winners)"
    ][0]
    loser = offers[0].racers[1]
    Activity.objects.filter(agent_id=loser, day__date=offers[0].date).delete()
    ScheduleChange.objects.filter(agent_id=offers[1].requester, date=offers[1].date).delete()
    held = swaps.exchanges_hold(offers, before)
    assert not held["every loser's day untouched"][0]
    assert not held["one journal group per exchange, a row for each day"][0]
    assert held["both days hold each other's shift, exactly once"][0]

    # The queries of each kind of call, counted as the benchmark counts them (tiny here).
    counts = swaps.count_queries(swaps.SLUG, calls_per_kind=1, rng=rng)
    assert set(counts) == {kind for kind, _weight in swaps.KINDS}
    assert all(len(values) == 1 and values[0] > 5 for values in counts.values())
