"""Time-off benchmark (issue 11, "Numbers"): every agent files a full-day request over HTTP, a limit of
agents off per day fills and the rest waits in line; then approved time off is cancelled and the
waitlist moves up.

    .venv/bin/python bench/timeoff.py                 # 2,000 agents, a limit of 50 a day, 100 cancelled
    .venv/bin/python bench/timeoff.py --agents 200    # smoke run (under a minute): limit 5, 10 cancelled

What it does, for real (nothing is mocked):
  1. drops and recreates its own PostgreSQL database, migrates it, flushes its own Redis database;
  2. starts `gunicorn em_agent.wsgi:application` as production's Dockerfile does (3 sync workers,
     access log) and a `celery -A em_agent worker` (prefork, concurrency 2, as docker-compose's
     worker): the cancellation queues the waitlist's advance as a task after commit, and the
     notifications' deliveries are tasks too (emails to Django's dummy backend: no mail catcher);
     no beat, so only the cancellations' tasks move the waitlist;
  3. seeds one CXone organisation: the agents with six weeks of published schedules (the schedule
     benchmark's seed: the demo's shifts), a supervisor, an earned balance of VAC for everyone that
     no request here can use up, a limit of agents off per day for the organisation, and one time-off
     approval rule: approve automatically, waitlist when only the limit is full; then VACUUM ANALYZE,
     and from then on what autovacuum's ANALYZE would do (the server here runs without autovacuum);
  4. logs every agent in through the allauth headless login; each picks one of five weekdays two
     weeks ahead on which it works (a day off counts no hours and is refused);
  5. measures, client side: a fixed-rate run (open loop, 20 requests/s: the p99 goal) of the first
     agents' requests, then the rest as fast as `--concurrency` connections go (saturation);
  6. checks the outcome in the database and through the API: per date exactly the limit approved and
     the rest waitlisted, positions 1..n in order of waitlisted_at; every balance's invariant; every
     approved day's schedule one time-off activity over the shift, every other day untouched;
  7. cancels `--cancel` approved requests over HTTP, waits for the worker to drain its queue, and
     checks that exactly as many waitlisted requests were approved, each date's first ones in line,
     the cancelled days restored to the schedule they had, the supervisor told of each;
  8. prints the summary with the CPU seconds of every party over each run and exits 1 if a goal it
     prints fails.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402  (after the path)
    AutoAnalyze,
    Row,
    Run,
    Session,
    Target,
    add_server_arguments,
    closed_loop,
    fetch,
    fixed_rate,
    goals_failed,
    guarded_main,
    gunicorn_argv,
    loadavg,
    log_in,
    measured,
    percentile_ms,
    picker,
    print_cpu,
    print_goals,
    runs_json,
    server_env,
    verdict,
    wait_ready,
)
from bench.fanout import Children, free_port, log, prepare_database  # noqa: E402
from bench.schedule_api import DAYS, seed, vacuum_analyze  # noqa: E402

DB_NAME = "em_agent_timeoffbench"
SLUG = "timeoffbench"
CODE = "VAC"
DATES = 5
EARNED_HOURS = 400  # no one request (one day) can exhaust it: the limit decides, not the balance
# The numbers at 2,000 agents; a smaller run scales them (200 agents: a limit of 5, 10 cancelled).
FULL_AGENTS, FULL_LIMIT, FULL_CANCEL = 2000, 50, 100
GOAL_RATE = 20.0
GOAL_P99_MS = 250.0
REQUESTS_URL = "/api/v1/time-off/requests"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=FULL_AGENTS)
    parser.add_argument("--limit", type=int, default=None, help="agents off per day (default 50 per 2,000)")
    parser.add_argument(
        "--cancel", type=int, default=None, help="approved requests cancelled (default 100 per 2,000)"
    )
    parser.add_argument(
        "--rate", type=float, default=GOAL_RATE, help="requests per second of the fixed-rate run"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of the fixed-rate run (default 30, at most half of the agents' requests)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="connections of the saturation run")
    parser.add_argument("--cancel-concurrency", type=int, default=4, help="connections cancelling")
    parser.add_argument(
        "--celery-concurrency", type=int, default=2, help="prefork children of the worker (compose: 2)"
    )
    parser.add_argument(
        "--eager",
        action="store_true",
        help="no worker: gunicorn runs tasks in the request (CELERY_TASK_ALWAYS_EAGER=1), the cancel too",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of balance reads first")
    parser.add_argument(
        "--advance-timeout", type=float, default=1800.0, help="seconds to wait for the waitlist to move up"
    )
    parser.add_argument("--seed", type=int, default=1, help="of the random choices (dates, order, cancels)")
    parser.add_argument(
        "--login-processes", type=int, default=2, help="processes logging the agents in (one a core)"
    )
    add_server_arguments(parser, db_name=DB_NAME, redis_db=11)
    args = parser.parse_args()
    scale = args.agents / FULL_AGENTS
    if args.limit is None:
        args.limit = max(1, round(FULL_LIMIT * scale))
    if args.cancel is None:
        args.cancel = max(1, round(FULL_CANCEL * scale))
    if args.duration is None:
        args.duration = min(30.0, args.agents / 2 / args.rate)
    return args


# --- data ----------------------------------------------------------------------------------------


def seed_time_off(*, limit: int) -> dict[str, object]:
    """The organisation's time off: a supervisor for every agent, VAC's earned balance, the limit of
    agents off per day and the approval rule that waitlists when only the limit is full."""
    from django.utils import timezone

    from em_agent.models import Agent, Organization, User
    from schedules.models import ActivityCode, ApprovalRule, RequestType, RuleAction
    from timeoff.models import LimitUnit, TimeOffBalance, TimeOffLimit

    org = Organization.objects.get(slug=SLUG)
    vac = ActivityCode.objects.get(organization=org, code=CODE, open_for_time_off=True)
    supervisor = User.objects.create(
        email=f"supervisor@{SLUG}.example", organization=org, is_staff=True, first_name="Sam"
    )
    Agent.objects.filter(organization=org).update(supervisor=supervisor)
    agents = list(Agent.objects.filter(organization=org).values_list("pk", flat=True))
    TimeOffBalance.objects.bulk_create(
        [
            TimeOffBalance(
                agent_id=pk, activity_code=vac, earned_minutes=EARNED_HOURS * 60, as_of=timezone.localdate()
            )
            for pk in agents
        ],
        batch_size=5000,
    )
    TimeOffLimit.objects.create(organization=org, unit=LimitUnit.AGENTS, capacity=limit)
    ApprovalRule.objects.create(
        organization=org,
        request_type=RequestType.TIME_OFF,
        action=RuleAction.AUTO_APPROVE,
        when_conditions_fail=RuleAction.MANUAL,
        waitlist_when_full=True,
    )
    return {"balances": len(agents), "limit": f"{limit} agents a day", "rule": "auto-approve, waitlist"}


def five_weekdays(today: dt.date) -> list[dt.date]:
    """Five working weekdays from Monday of the week after next (in the seeded window, far from its
    ends): a public holiday (Christmas in the seed's Dutch calendar) is skipped, since nobody
    works then and its requests would be refused as counting no hours."""
    from schedules.models import Activity

    monday = today + dt.timedelta(days=7 - today.weekday() + 7)
    weekdays = [
        monday + dt.timedelta(days=n) for n in range(14) if (monday + dt.timedelta(days=n)).weekday() < 5
    ]
    worked = set(
        Activity.objects.filter(
            agent__organization__slug=SLUG, day__date__in=weekdays, activity_code__paid=True
        )
        .values_list("day__date", flat=True)
        .distinct()
    )
    return [date for date in weekdays if date in worked][:DATES]


Snapshot = dict[tuple[int, dt.date], list[tuple[int, dt.datetime, dt.datetime, str]]]


def schedules_of(dates: list[dt.date]) -> Snapshot:
    """Every agent's activities on the dates: (code id, start, end, source), in order."""
    from schedules.models import Activity

    days: Snapshot = defaultdict(list)
    for agent_id, date, code_id, start, end, source in (
        Activity.objects.filter(agent__organization__slug=SLUG, day__date__in=dates)
        .order_by("agent_id", "start")
        .values_list("agent_id", "day__date", "activity_code_id", "start", "end", "source")
    ):
        days[(agent_id, date)].append((code_id, start, end, source))
    return days


def choose_dates(sessions: list[Session], dates: list[dt.date], rng: random.Random) -> dict[int, dt.date]:
    """Each agent's date: one of the five on which it has paid work (a day off counts no hours)."""
    from schedules.models import Activity

    working: dict[int, set[dt.date]] = defaultdict(set)
    for agent_id, date in (
        Activity.objects.filter(agent__organization__slug=SLUG, day__date__in=dates, activity_code__paid=True)
        .values_list("agent_id", "day__date")
        .distinct()
    ):
        working[agent_id].add(date)
    return {s.agent_id: rng.choice(sorted(working[s.agent_id])) for s in sessions if working[s.agent_id]}


# --- the checks ------------------------------------------------------------------------------------


def outcomes(dates: list[dt.date]) -> dict[dt.date, Counter]:
    """Per date: how many requests are approved, waitlisted, or anything else (status/substatus)."""
    from timeoff.models import TimeOffRequest

    counts: dict[dt.date, Counter] = {date: Counter() for date in dates}
    for date, status, substatus in TimeOffRequest.objects.filter(agent__organization__slug=SLUG).values_list(
        "start_date", "status", "substatus"
    ):
        counts.setdefault(date, Counter())[f"{status}/{substatus}" if substatus else status] += 1
    return counts


def waitlists(dates: list[dt.date]) -> dict[dt.date, list[int]]:
    """Each date's waitlisted requests, first in line first (waitlisted_at, then id)."""
    from timeoff.models import TimeOffRequest, TimeOffStatus, TimeOffSubstatus

    lines: dict[dt.date, list[int]] = {date: [] for date in dates}
    for pk, date in (
        TimeOffRequest.objects.filter(
            agent__organization__slug=SLUG,
            status=TimeOffStatus.PENDING,
            substatus=TimeOffSubstatus.WAITLISTED,
        )
        .order_by("waitlisted_at", "id")
        .values_list("pk", "start_date")
    ):
        lines[date].append(pk)
    return lines


def positions_in_order(lines: dict[dt.date, list[int]]) -> bool:
    """The API's waitlist_position of each waitlisted request is its place in its date's line."""
    from timeoff.models import TimeOffRequest
    from timeoff.selectors import waitlist_position

    requests = TimeOffRequest.objects.select_related("agent").in_bulk(
        [pk for line in lines.values() for pk in line]
    )
    return all(
        waitlist_position(requests[pk]) == place
        for line in lines.values()
        for place, pk in enumerate(line, start=1)
    )


def balances_hold() -> tuple[bool, str]:
    """Every agent's VAC balance, as the app reads it, against the requests counted independently:
    earned as seeded, used + planned = approved minutes, pending = pending minutes, remaining =
    earned - used - planned, never below the floor."""
    from django.db.models import Sum
    from django.utils import timezone

    from em_agent.models import Agent
    from schedules.models import ActivityCode
    from timeoff.balances import balance_for_code
    from timeoff.models import TimeOffDay, TimeOffStatus

    vac = ActivityCode.objects.get(organization__slug=SLUG, code=CODE)
    minutes: dict[tuple[int, str], int] = {
        (agent_id, status): total
        for agent_id, status, total in TimeOffDay.objects.filter(organization__slug=SLUG)
        .values("agent_id", "request__status")
        .annotate(total=Sum("minutes"))
        .values_list("agent_id", "request__status", "total")
    }
    bad = []
    agents = Agent.objects.filter(organization__slug=SLUG).select_related("organization")
    for agent in agents:
        balance = balance_for_code(
            agent=agent, activity_code=vac, today=timezone.localdate(timezone.now(), agent.zone)
        )
        approved = minutes.get((agent.pk, TimeOffStatus.APPROVED), 0)
        pending = minutes.get((agent.pk, TimeOffStatus.PENDING), 0)
        if not (
            balance.earned == EARNED_HOURS * 60
            and balance.used + balance.planned == approved
            and balance.pending == pending
            and balance.remaining == balance.earned - balance.used - balance.planned
            and balance.remaining >= balance.floor
        ):
            bad.append(agent.pk)
    return not bad, f"{len(agents) - len(bad):,} of {len(agents):,} agents" + (
        f"; wrong: {bad[:5]}" if bad else ""
    )


def balances_over_http(base: str, sessions: list[Session]) -> bool:
    """The same for a sample, through GET /api/v1/time-off/balances: what the app shows."""
    from django.db.models import Sum

    from timeoff.models import TimeOffDay, TimeOffStatus

    for session in sessions:
        status, body = fetch(f"{base}/api/v1/time-off/balances", {"X-Session-Token": session.token})
        if status != 200:
            return False
        (vac,) = [b for b in json.loads(body)["balances"] if b["activity_code"] == CODE]
        approved = (
            TimeOffDay.objects.filter(
                agent_id=session.agent_id, request__status=TimeOffStatus.APPROVED
            ).aggregate(total=Sum("minutes"))["total"]
            or 0
        )
        if abs(vac["remaining"] - (EARNED_HOURS - approved / 60)) > 0.01 or vac["earned"] != EARNED_HOURS:
            return False
    return True


def schedules_hold(before: Snapshot, dates: list[dt.date], *, vac_id: int) -> tuple[bool, str]:
    """An approved day holds one VAC activity (source time off) over the span the shift took; every
    other day (waitlisted, cancelled, not asked for) is exactly as seeded."""
    from timeoff.models import TimeOffRequest, TimeOffStatus

    approved = set(
        TimeOffRequest.objects.filter(
            agent__organization__slug=SLUG, status=TimeOffStatus.APPROVED
        ).values_list("agent_id", "start_date")
    )
    now = schedules_of(dates)
    wrong_approved = wrong_other = 0
    for key in set(before) | set(now):
        if key in approved:
            shift = before[key]
            expected = [(vac_id, min(a[1] for a in shift), max(a[2] for a in shift), "time_off")]
            wrong_approved += now.get(key) != expected
        else:
            wrong_other += now.get(key, []) != before.get(key, [])
    return (
        wrong_approved == wrong_other == 0,
        f"{len(approved):,} approved days, {wrong_approved} wrong; other days {wrong_other} changed",
    )


# --- the waitlist's advance ------------------------------------------------------------------------


def queued(redis_url: str) -> int:
    """Tasks in the broker not yet finished: waiting in a queue's lists, or delivered and unacked
    (acks_late: a task stays in `unacked` until it has run)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    waiting = sum(
        client.llen(key) for key in client.scan_iter(match="celery*") if client.type(key) == b"list"
    )
    return waiting + client.hlen("unacked")


async def advance_wait(
    run: Run, *, redis_url: str, dates: list[dt.date], limit: int, timeout: float, progress: dict
) -> None:
    """Until the broker is empty (every advance ran): when each date's approvals were back to the
    limit, and when the last task finished."""
    from asgiref.sync import sync_to_async

    loop = asyncio.get_running_loop()
    start = loop.time()

    def full() -> bool:
        return all(counts.get("approved", 0) >= limit for counts in outcomes(dates).values())

    while loop.time() - start < timeout:
        if "refilled" not in progress and await sync_to_async(full)():
            progress["refilled"] = loop.time() - start
        if queued(redis_url) == 0 and "refilled" in progress:
            break
        await asyncio.sleep(1.0)  # each look at the outcomes reads every request: ~0.1 s of CPU
    else:
        progress["timed_out"] = True
    progress["drained"] = loop.time() - start
    run.seconds = progress["drained"]


# --- the run -------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    return guarded_main("timeoff-bench-", lambda workdir, children, _profiler: run(args, workdir, children))


PARTIES = (
    ("gunicorn", "gunicorn"),
    ("celery worker", "worker"),
    ("postgres (bench db)", "pg bench"),
    ("postgres (others)", "pg other"),
    ("redis", "redis"),
    ("client (this process)", "client"),
    ("everything else", "the rest"),
)


def run(args: argparse.Namespace, workdir: Path, children: Children) -> int:
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    env = server_env(
        settings_module="em_agent.settings",
        db_name=args.db_name,
        redis_url=redis_url,
        cache_prefix="timeoffbench",
        CELERY_TASK_ALWAYS_EAGER="1" if args.eager else "0",
        EMAIL_URL="dummymail://",
    )
    gunicorn = gunicorn_argv(
        application="em_agent.wsgi:application",
        port=port,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads,
    )
    config = {
        "agents": args.agents,
        "limit": args.limit,
        "dates": DATES,
        "cancel": args.cancel,
        "rate": args.rate,
        "duration": args.duration,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "worker_class": args.worker_class,
        "threads": args.threads,
        "celery": "eager, in gunicorn" if args.eager else f"worker, prefork x {args.celery_concurrency}",
        "cpus": os.cpu_count(),
    }
    log(f"config: {config}; work dir {workdir}; load average {loadavg()}")

    # 1. Database, Redis, settings for this process too.
    prepare_database(db_name=args.db_name, redis_url=redis_url, env=env)
    log(f"database {args.db_name} created and migrated; redis db {args.redis_db} flushed")

    # 2. The server and the worker boot while the data is written.
    server = children.start("gunicorn", gunicorn, env=env, log_path=workdir / "gunicorn.log")
    log(f"gunicorn (pid {server.pid}): " + " ".join(gunicorn[3:]) + "; DEBUG off, PRODUCTION unset")
    others: dict[str, list[int]] = {}
    if not args.eager:
        celery = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "em_agent",
            "worker",
            "-l",
            "info",
            "-P",
            "prefork",
            "--concurrency",
            str(args.celery_concurrency),
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ]
        worker = children.start("celery", celery, env=env, log_path=workdir / "celery.log")
        others["celery worker"] = [worker.pid]
        log(
            f"celery worker (pid {worker.pid}): "
            + " ".join(celery[2:])
            + f"; log in {workdir / 'celery.log'}"
        )

    # 3. The data.
    from django.test import override_settings
    from django.utils import timezone

    # The tests' hasher for the bench agents' passwords, as schedule_api.py does: production's
    # PBKDF2 costs ~0.5 s of CPU per login here, and no time-off request checks a password.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        started = time.perf_counter()
        counts = seed(agents=args.agents, batch=200, service=False, slug=SLUG, name="Time-off bench")
        counts.update(seed_time_off(limit=args.limit))
        vacuum_analyze()
        analyze = AutoAnalyze(args.db_name)
        analyze.start()
        log(
            f"seeded {args.agents:,} agents x {DAYS} published days in {time.perf_counter() - started:.1f}s: {counts}"
        )

        # 4. Sessions: every agent files a request, each its own.
        started = time.perf_counter()
        sessions = log_in(count=None, slug=SLUG, processes=args.login_processes)
        logged_in_at = time.time()
        log(f"logged {len(sessions):,} agents in in {time.perf_counter() - started:.1f}s")

    from django.db import connection

    from schedules.models import ActivityCode

    rng = random.Random(args.seed)
    dates = five_weekdays(timezone.localdate(timezone.now(), ZoneInfo(sessions[0].zone)))
    chosen = choose_dates(sessions, dates, rng)
    before = schedules_of(dates)
    vac_id = ActivityCode.objects.get(organization__slug=SLUG, code=CODE).pk
    by_agent = {s.agent_id: s for s in sessions}
    order = [s for s in sessions if s.agent_id in chosen]
    rng.shuffle(order)
    log(
        f"dates {dates[0]} to {dates[-1]}: agents per date {dict(Counter(str(d) for d in chosen.values()))}; "
        f"{len(sessions) - len(chosen)} agents work on none of them and file nothing"
    )
    connection.close()
    wait_ready(base, server, workdir / "gunicorn.log")
    log("gunicorn answers")

    def ask(session: Session) -> Target:
        date = str(chosen[session.agent_id])
        return Target(
            f"{base}{REQUESTS_URL}",
            {"X-Session-Token": session.token},
            {
                "kind": "full_day",
                "activity_code": CODE,
                "start_date": date,
                "end_date": date,
                "comment": "bench",
            },
        )

    # Warm-up: the workers' first requests (imports, connections) on calls that change nothing: the
    # balance, and the preview of the very request each of these agents files later (the request's
    # code path up to its decision, without the lock and the writes).
    warm = Run("warm-up")
    reads = [Target(f"{base}/api/v1/time-off/balances", {"X-Session-Token": s.token}) for s in sessions[:50]]
    previews = [
        Target(f"{base}{REQUESTS_URL}/preview", target.headers, target.body)
        for target in (ask(s) for s in sessions[:50] if s.agent_id in chosen)
    ]
    asyncio.run(
        closed_loop(
            warm,
            picker(reads + previews, rng),
            concurrency=2 * args.workers,
            duration=args.warmup,
            timeout=args.timeout,
        )
    )
    log(f"warm-up: {warm.ok:,} balance reads and previews, errors {dict(warm.errors)}")

    # 5. The requests: the first ones at the fixed rate (the approvals are among them), the rest at
    # saturation (by then every date's limit is full: they are waitlisted).
    targets = [ask(s) for s in order]
    at_rate = min(len(targets) // 2, int(args.rate * args.duration))
    measure = {
        "server": server,
        "db_name": args.db_name,
        "sessions_since": logged_in_at,
        "others": others,
        "sample_backends": True,
    }
    rate_run = Run(f"fixed rate {args.rate:g}/s: requests", keep_answers=True)
    measured(
        rate_run,
        fixed_rate(
            rate_run, picker(targets[:at_rate]), rate=args.rate, duration=args.duration, timeout=args.timeout
        ),
        **measure,
    )
    saturated = Run(f"saturation, {args.concurrency} connections: requests", keep_answers=True)
    measured(
        saturated,
        closed_loop(
            saturated,
            picker(targets[at_rate:]),
            concurrency=args.concurrency,
            duration=float("inf"),
            timeout=args.timeout,
        ),
        **measure,
    )

    # 6. What the requests left.
    agent_of = {s.token: s.agent_id for s in sessions}
    filed = {
        agent_of[answer.target.headers["X-Session-Token"]]: answer
        for answer in rate_run.answers + saturated.answers
    }
    after_requests = outcomes(dates)
    log(f"outcomes per date: { {str(d): dict(c) for d, c in after_requests.items()} }")
    lines = waitlists(dates)
    checks: dict[str, tuple[bool, str]] = {}
    created = sum(answer.status == 201 for answer in filed.values())
    checks["every agent's request answered 201"] = (
        created == len(targets) == len(filed),
        f"{created:,} of {len(targets):,}",
    )
    checks[f"exactly {args.limit} approved per date, the rest waitlisted"] = limits_hold(
        after_requests, lines, limit=args.limit
    )
    checks["waitlist positions 1..n per date in order of waitlisted_at"] = (
        positions_in_order(lines),
        f"{sum(len(line) for line in lines.values()):,} waitlisted",
    )
    checks["balances: remaining = earned - used - planned >= floor (after the requests)"] = balances_hold()
    checks["  the same through GET /time-off/balances (20 agents)"] = (
        balances_over_http(base, sessions[:20]),
        "",
    )
    checks["schedules: approved days hold the time off, the rest untouched"] = schedules_hold(
        before, dates, vac_id=vac_id
    )

    # 7. Cancellations, and the waitlist moving up behind them.
    from timeoff.models import TimeOffRequest, TimeOffStatus

    approved_before = {
        pk: (agent_id, date)
        for pk, agent_id, date in TimeOffRequest.objects.filter(
            agent__organization__slug=SLUG, status=TimeOffStatus.APPROVED
        ).values_list("pk", "agent_id", "start_date")
    }
    cancelled = sorted(rng.sample(sorted(approved_before), min(args.cancel, len(approved_before))))
    cancels = [
        Target(
            f"{base}{REQUESTS_URL}/{pk}/cancel",
            {"X-Session-Token": by_agent[approved_before[pk][0]].token},
            {},
        )
        for pk in cancelled
    ]
    connection.close()
    cancel_run = Run(f"cancel, {args.cancel_concurrency} connections", keep_answers=True)
    measured(
        cancel_run,
        closed_loop(
            cancel_run,
            picker(cancels),
            concurrency=args.cancel_concurrency,
            duration=float("inf"),
            timeout=max(args.timeout, 60.0 if args.eager else 0.0),
        ),
        **measure,
    )
    progress: dict = {}
    advance = Run("the waitlist's advance (after the cancels)")
    measured(
        advance,
        advance_wait(
            advance,
            redis_url=redis_url,
            dates=dates,
            limit=args.limit,
            timeout=args.advance_timeout,
            progress=progress,
        ),
        **measure,
    )
    log(f"waitlist advance: {progress}")
    after_cancel = outcomes(dates)
    log(f"outcomes per date: { {str(d): dict(c) for d, c in after_cancel.items()} }")
    cancelled_ok = sum(
        answer.status == 200 and json.loads(answer.body).get("status") == "cancelled"
        for answer in cancel_run.answers
    )
    checks["every cancel answered 200 cancelled"] = (
        cancelled_ok == len(cancels),
        f"{cancelled_ok} of {len(cancels)}",
    )
    checks[f"the waitlist approved exactly {len(cancels)} others, each date's first in line"] = (
        advanced_in_order(lines, cancelled=[approved_before[pk][1] for pk in cancelled])
    )
    checks[f"exactly {args.limit} approved per date again, the rest waitlisted"] = limits_hold(
        after_cancel, waitlists(dates), limit=args.limit, cancelled=len(cancels)
    )
    checks["  waitlist positions 1..n again"] = (positions_in_order(waitlists(dates)), "")
    checks["balances hold after the cancels"] = balances_hold()
    checks["schedules: cancelled days restored, the newly approved hold the time off"] = schedules_hold(
        before, dates, vac_id=vac_id
    )
    checks["the supervisor told of every cancellation, every approval told"] = notified(len(cancels))
    connection.close()

    log(f"the tables autovacuum would have analyzed (it is off here), and how often: {dict(analyze.stop())}")
    runs = [rate_run, saturated, cancel_run, advance]
    return report(args, config, runs, checks=checks, progress=progress, cancels=len(cancels))


def limits_hold(
    counts: dict[dt.date, Counter], lines: dict[dt.date, list[int]], *, limit: int, cancelled: int = 0
) -> tuple[bool, str]:
    ok = (
        all(
            c.get("approved", 0) == limit
            and c.get("pending/waitlisted", 0) == len(lines[date])
            and sum(c.values()) == limit + len(lines[date]) + c.get("cancelled", 0)
            for date, c in counts.items()
        )
        and sum(c.get("cancelled", 0) for c in counts.values()) == cancelled
    )
    approved = [c.get("approved", 0) for c in counts.values()]
    return ok, f"approved per date {approved}, waitlisted {[len(line) for line in lines.values()]}"


def advanced_in_order(lines: dict[dt.date, list[int]], *, cancelled: list[dt.date]) -> tuple[bool, str]:
    """The requests approved since the cancels are exactly the first k in each date's line, k the
    date's cancellations."""
    from timeoff.models import TimeOffRequest, TimeOffStatus

    waiting = [pk for line in lines.values() for pk in line]
    now_approved = set(
        TimeOffRequest.objects.filter(pk__in=waiting, status=TimeOffStatus.APPROVED).values_list(
            "pk", flat=True
        )
    )
    per_date = Counter(cancelled)
    expected = {pk for date, line in lines.items() for pk in line[: per_date[date]]}
    # Out of turn: approved while one ahead of it in its date's line still waits.
    passed_over = sorted(
        line.index(pk) + 1 for line in lines.values() for pk in line if pk in now_approved - expected
    )
    return now_approved == expected, (
        f"{len(now_approved)} approved from the waitlist, {len(expected)} expected"
        + (f"; {len(passed_over)} out of turn, from places {passed_over[:10]}" if passed_over else "")
    )


def notified(cancels: int) -> tuple[bool, str]:
    from django.db.models import Count

    from notifications.models import Notification
    from timeoff.models import TimeOffRequest

    kinds = dict(
        Notification.objects.filter(user__email__endswith=f"@{SLUG}.example")
        .values("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    ever_approved = TimeOffRequest.objects.filter(
        agent__organization__slug=SLUG, decided_at__isnull=False, status__in=["approved", "cancelled"]
    ).count()
    ok = kinds.get("time_off_cancelled", 0) == cancels and kinds.get("time_off_approved", 0) == ever_approved
    return ok, f"{kinds}"


def report(
    args, config: dict, runs: list[Run], *, checks: dict[str, tuple[bool, str]], progress: dict, cancels: int
) -> int:
    rate_run, saturated, cancel_run, advance = runs
    p99 = rate_run.ms(0.99)

    def by_outcome(run_: Run) -> dict[str, list[float]]:
        latencies: dict[str, list[float]] = defaultdict(list)
        for answer in run_.answers:
            if answer.status == 201:
                body = json.loads(answer.body)
                latencies[body["substatus"] or body["status"]].append(answer.latency)
        return latencies

    def outcome_rows(run_: Run) -> list:
        return [
            (
                f"    {name} ({len(values):,}): p50 / p99 (ms)",
                f"{percentile_ms(values, 0.5):.0f} / {percentile_ms(values, 0.99):.0f}",
                "",
                "",
            )
            for name, values in sorted(by_outcome(run_).items())
        ]

    def load_rows(title: str, run_: Run, *goals: Row) -> list[Row]:
        return [
            (
                f"{title}: ok / failed",
                f"{run_.ok:,} / {run_.failed:,}",
                "0 failed",
                verdict(run_.failed == 0),
            ),
            ("  requests per second", f"{run_.per_second:.1f}", "", ""),
            ("  p50 / p99 (ms)", f"{run_.ms(0.5):.0f} / {run_.ms(0.99):.0f}", "", ""),
            *goals,
            *outcome_rows(run_),
            (
                "  server CPU per request, gunicorn + its PostgreSQL + Redis (ms)",
                f"{run_.server_cpu_ms():.1f}",
                "",
                "",
            ),
            ("  machine busy (others' work included)", f"{run_.machine_busy:.0f} %", "", ""),
        ]

    rows = [
        *load_rows(
            f"fixed rate {args.rate:g}/s, {len(rate_run.answers):,} requests",
            rate_run,
            ("  p99 latency (ms)", f"{p99:.1f}", f"<= {GOAL_P99_MS:g}", verdict(p99 <= GOAL_P99_MS)),
            ("  max latency (ms)", f"{rate_run.ms(1.0):.1f}", "", ""),
            ("  the client's worst lateness sending (ms)", f"{rate_run.max_send_lag * 1000:.1f}", "", ""),
        ),
        *load_rows(f"saturation, {args.concurrency} connections", saturated),
        *load_rows(f"cancel {cancels}, {args.cancel_concurrency} connections", cancel_run),
        (
            "the waitlist's advance: every date full again / broker empty after (s)",
            f"{progress.get('refilled', float('nan')):.1f} / {progress['drained']:.1f}",
            "",
            verdict(not progress.get("timed_out")),
        ),
        (
            "  worker CPU per cancel, its tasks (ms)",
            f"{1000 * advance.cpu.get('celery worker', 0.0) / max(cancels, 1):.0f}"
            if not args.eager
            else "eager",
            "",
            "",
        ),
        (
            "  PostgreSQL (bench db) CPU over the advance (s)",
            f"{advance.cpu.get('postgres (bench db)', 0.0):.1f}",
            "",
            "",
        ),
    ] + [(name, "yes" if ok else "NO", "yes", verdict(ok)) for name, (ok, _detail) in checks.items()]
    print()
    print(
        f"== time off: {config['agents']:,} agents x {DAYS} days, a limit of {config['limit']} agents a day, "
        f"{DATES} dates; gunicorn {config['workers']} {config['worker_class']} worker(s)"
        + (f" x {config['threads']} threads" if config["threads"] > 1 else "")
        + f"; Celery {config['celery']}; {config['cpus']} CPUs =="
    )
    print_goals(rows)
    print("  what the checks saw:")
    for name, (_ok, detail) in checks.items():
        if detail:
            print(f"    {name.strip()}: {detail}")
    print()
    print_cpu(runs, PARTIES)
    print(
        "  the worker's tasks (notifications' deliveries, the waitlist's advance) use CPU in every run: "
        f"{sum(r.cpu.get('celery worker', 0.0) for r in runs):.1f} s in all"
    )
    print()
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"config": config, "progress": progress, "checks": checks, "runs": runs_json(runs)},
                indent=2,
                default=str,
            )
        )
    failed = sum(r.failed for r in runs)
    return 0 if failed == 0 and not goals_failed(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
