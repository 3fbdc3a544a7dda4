"""Schedule API benchmark: GET /api/v1/schedule for random agents' current month, served by gunicorn.

    .venv/bin/python bench/schedule_api.py                           # 2,000 agents, 50 req/s for 30 s
    .venv/bin/python bench/schedule_api.py --agents 200 --duration 5 # smoke run (35-45 s in all)
    .venv/bin/python bench/schedule_api.py --workers 3 --concurrency 16

What it does, for real (nothing is mocked):
  1. drops and recreates its own PostgreSQL database (em_agent_schedbench), migrates it with
     `manage.py migrate`, flushes its own Redis database (/10: cache and sessions);
  2. starts `gunicorn em_agent.wsgi:application` as production's Dockerfile does (sync workers,
     access log), with the project's settings plus one URL, the bare view (bench/bare_settings.py);
  3. seeds the agents with six weeks of published schedules (the demo's shifts: work blocks, breaks,
     lunch, meetings and trainings, days off): the rows `schedule_days_apply` writes, with COPY, and
     checks with the service that one agent's days are what it would write (or, with
     --seed-with-service, through the service itself); then VACUUM ANALYZE;
  4. logs a pool of agents in through the allauth headless login and keeps their session tokens;
  5. measures, client side: one connection (no queueing); a fixed-rate run (open loop: requests at
     fixed times, latency from when each was due, so queueing counts) of random agents' current
     month; saturation runs (closed loop, N connections) against the real endpoint and against a
     bare Django view that calls the endpoint's selector and encodes its JSON the same way, without
     the session, authentication, DRF or ETag (bench/bare_urls.py);
  6. prints the summary against the goals, with the CPU seconds of gunicorn, PostgreSQL, Redis, the
     client and everything else over each run, and exits non-zero if a goal it prints fails: a
     request failed, a latency or the ratio missed its goal, the bare view's body differs from the
     endpoint's or the seeded rows differ from the service's.
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
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402  (after the path)
    PASSWORD,
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
    picker,
    print_cpu,
    print_goals,
    runs_json,
    server_env,
    verdict,
    wait_ready,
)
from bench.fanout import (  # noqa: E402
    Children,
    free_port,
    log,
    prepare_database,
    start_profiler,
    stop_profiler,
)

DB_NAME = "em_agent_schedbench"
SLUG = "schedbench"
# The window of the seed, in days from the agent's today (as the demo and the WFM sync hold it).
FIRST_DAY = -7
DAYS = 42
# Goals of the issue.
GOAL_RATE = 50.0
GOAL_P50_MS = 20.0
GOAL_P99_MS = 100.0
GOAL_RATIO = 0.70


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument(
        "--sessions",
        type=int,
        default=None,
        help="agents logged in, requests pick among them (default: a tenth of the agents, 20 to 200)",
    )
    parser.add_argument(
        "--rate", type=float, default=GOAL_RATE, help="requests per second of the fixed-rate run"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the fixed-rate run")
    parser.add_argument(
        "--saturation-duration",
        type=float,
        default=None,
        help="seconds of each saturation run (default: 20, or --duration when shorter)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="connections of the saturation runs")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="the saturation runs alternate real / bare in this many slices (each at least 2.5 s)",
    )
    parser.add_argument(
        "--batch", type=int, default=200, help="agents written at a time (per schedule_days_apply call)"
    )
    parser.add_argument(
        "--seed-with-service",
        action="store_true",
        help="write the schedules through schedule_days_apply (slow: see bench/README.md), not with COPY",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured requests first")
    parser.add_argument("--seed", type=int, default=1, help="of the random choice of agents")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record gunicorn's workers with py-spy (collapsed stacks) over the saturation runs",
    )
    parser.add_argument("--profile-gil", action="store_true", help="with --profile: only GIL-holding samples")
    parser.add_argument("--py-spy", default=None, help="py-spy binary (default: on PATH or /tmp/pyspy)")
    parser.add_argument(
        "--whatif",
        default="",
        metavar="CHANGES",
        help="NOT the project as it is: gunicorn serves bench/schedule_whatif.py's patched code (usercache)",
    )
    add_server_arguments(parser, db_name=DB_NAME, redis_db=10)
    args = parser.parse_args()
    if args.sessions is None:
        # A login costs ~0.1 s here (allauth, the session in the database and Redis): set-up stays short.
        args.sessions = max(20, min(200, args.agents // 10))
    args.sessions = min(args.sessions, args.agents)
    if args.saturation_duration is None:
        args.saturation_duration = min(20.0, args.duration)
    if args.py_spy is None and Path("/tmp/pyspy/bin/py-spy").exists():  # noqa: S108
        args.py_spy = "/tmp/pyspy/bin/py-spy"  # noqa: S108
    return args


# --- data ----------------------------------------------------------------------------------------


def seed(
    *, agents: int, batch: int, service: bool, slug: str = SLUG, name: str = "Schedule bench"
) -> dict[str, object]:
    """One organisation, `agents` activated agents in Amsterdam, six weeks of published days each (the
    demo's shifts, see schedules/demo.py). With `service`, written by `schedule_days_apply` as the WFM
    sync writes them (journal included, no notifications), `batch` agents a call; else the same rows
    with COPY, checked against the service for one agent."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from em_agent.models import Agent, Organization, User
    from schedules.demo import demo_activity_codes_upsert
    from schedules.models import Activity, ScheduleDay
    from schedules.services import schedule_days_apply

    now = timezone.now()
    # One hash for all (see log_in): hashing 2,000 times is not the point.
    password = make_password(PASSWORD)
    org = Organization.objects.create(
        name=name, slug=slug, mfa_required=False, default_timezone="Europe/Amsterdam"
    )
    codes = demo_activity_codes_upsert(organization=org)
    users = User.objects.bulk_create(
        [User(email=f"agent{i}@{slug}.example", password=password) for i in range(agents)],
        batch_size=5000,
    )
    rows = Agent.objects.bulk_create(
        [
            Agent(
                user=user,
                organization=org,
                external_id=f"A{i:06d}",
                name=f"Agent {i}",
                timezone="Europe/Amsterdam",
                language="nl" if i % 2 else "en",
                activated_at=now,
            )
            for i, user in enumerate(users)
        ],
        batch_size=5000,
    )
    for first in range(0, len(rows), batch):
        plans = day_plans(rows[first : first + batch], first=first, codes=codes, now=now)
        if service:
            schedule_days_apply(plans=plans, source="wfm", reason="schedule benchmark", notify=False)
        else:
            copy_days(plans, now=now)
    counts: dict[str, object] = {
        "days": ScheduleDay.objects.filter(agent__organization=org).count(),
        "working days": ScheduleDay.objects.filter(agent__organization=org, activities__isnull=False)
        .distinct()
        .count(),
        "activities": Activity.objects.filter(agent__organization=org).count(),
    }
    if not service:
        # The service finds nothing to change on the first agent's days: they hold what it would write.
        result = schedule_days_apply(
            plans=day_plans(rows[:1], first=0, codes=codes, now=now), source="wfm", notify=False
        )
        counts["first agent's days as the service writes them"] = not result.changes
    return counts


def vacuum_analyze() -> None:
    """What autovacuum does a minute after the seed; without statistics the planner guesses."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def day_plans(agents: list, *, first: int, codes: dict[str, int], now: dt.datetime) -> list:
    from django.utils import timezone

    from schedules.demo import DEFAULT_FLAVOUR, demo_day_plan

    plans = []
    for index, agent in enumerate(agents, start=first):
        today = timezone.localdate(now, agent.zone)
        plans.extend(
            demo_day_plan(
                agent=agent,
                index=index,
                date=today + dt.timedelta(days=offset),
                published=True,
                codes=codes,
                flavour=DEFAULT_FLAVOUR,
            )
            for offset in range(FIRST_DAY, FIRST_DAY + DAYS)
        )
    return plans


def copy_days(plans: list, *, now: dt.datetime) -> None:
    """The rows schedule_days_apply writes for new days (the days and their activities), with COPY;
    not its journal (ScheduleChange), which the endpoint never reads."""
    from django.db import connection, transaction

    from schedules.models import Activity, ScheduleDay

    def copy(model, objects) -> None:
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        with cursor.cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as out:
            for obj in objects:
                out.write_row([getattr(obj, f.attname) for f in fields])

    with transaction.atomic(), connection.cursor() as cursor:
        copy(
            ScheduleDay,
            (
                ScheduleDay(
                    agent_id=p.agent.pk,
                    date=p.date,
                    published=p.published,
                    note=p.note,
                    updated_at=now,
                    # The day's span, as the service keeps it (the days' exclusion constraint).
                    first_start=min((a.start for a in p.activities), default=None),
                    last_end=max((a.end for a in p.activities), default=None),
                )
                for p in plans
            ),
        )
        day_ids = {
            (agent_id, date): pk
            for pk, agent_id, date in ScheduleDay.objects.filter(
                agent_id__in={p.agent.pk for p in plans}
            ).values_list("pk", "agent_id", "date")
        }
        copy(
            Activity,
            (
                Activity(
                    agent_id=p.agent.pk,
                    day_id=day_ids[(p.agent.pk, p.date)],
                    activity_code_id=spec.activity_code_id,
                    start=spec.start,
                    end=spec.end,
                    note=spec.note,
                    source=spec.source,
                )
                for p in plans
                for spec in sorted(p.activities, key=lambda a: a.start)
            ),
        )


# --- HTTP ----------------------------------------------------------------------------------------


def real_targets(base: str, sessions: list[Session]) -> list[Target]:
    return [
        Target(f"{base}/api/v1/schedule?start={s.start}&end={s.end}", {"X-Session-Token": s.token})
        for s in sessions
    ]


def bare_targets(base: str, sessions: list[Session]) -> list[Target]:
    return [
        Target(f"{base}/bench/bare/{s.agent_id}?start={s.start}&end={s.end}&zone={quote(s.zone)}", {})
        for s in sessions
    ]


# --- the run -------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    return guarded_main(
        "schedule-api-", lambda workdir, children, profiler: run(args, workdir, children, profiler)
    )


def run(args: argparse.Namespace, workdir: Path, children: Children, profiler: list) -> int:
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    env = server_env(
        settings_module="bench.bare_settings",
        db_name=args.db_name,
        redis_url=redis_url,
        cache_prefix="schedbench",
        BENCH_WHATIF=args.whatif,
    )
    gunicorn = gunicorn_argv(
        application="bench.schedule_whatif:application" if args.whatif else "em_agent.wsgi:application",
        port=port,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads,
    )
    config = {
        "agents": args.agents,
        "sessions": args.sessions,
        "rate": args.rate,
        "duration": args.duration,
        "saturation_duration": args.saturation_duration,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "worker_class": args.worker_class,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "whatif": args.whatif,
    }
    log(f"config: {config}; work dir {workdir}; load average {loadavg()}")

    # 1. Database, Redis, settings for this process too.
    prepare_database(db_name=args.db_name, redis_url=redis_url, env=env)
    log(f"database {args.db_name} created and migrated; redis db {args.redis_db} flushed")

    # 2. The server boots while the data is written.
    server = children.start("gunicorn", gunicorn, env=env, log_path=workdir / "gunicorn.log")
    log(
        f"gunicorn (pid {server.pid}): {args.workers} {args.worker_class} worker(s)"
        + (f" x {args.threads} threads" if args.threads > 1 else "")
        + f" on {base}, DJANGO_SETTINGS_MODULE=bench.bare_settings (the project's + the bare URL), "
        f"CONN_MAX_AGE=60, DEBUG off, PRODUCTION unset; access log in {workdir / 'gunicorn.log'}"
    )
    log("  " + " ".join(gunicorn[2:]))

    # 3. The data.
    from django.test import override_settings

    # The tests' hasher for the bench agents' passwords: production's PBKDF2 (1,000,000 rounds) costs
    # ~0.5 s of CPU per login here, and no schedule request ever checks a password.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        started = time.perf_counter()
        counts = seed(agents=args.agents, batch=args.batch, service=args.seed_with_service)
        vacuum_analyze()
        how = (
            f"through schedule_days_apply, {args.batch} agents a call"
            if args.seed_with_service
            else "with COPY"
        )
        log(
            f"seeded {args.agents:,} agents x {DAYS} published days {how} in "
            f"{time.perf_counter() - started:.1f}s, then VACUUM ANALYZE: {counts}"
        )
        seeded_as_service = counts.get("first agent's days as the service writes them", True)

        # 4. Sessions.
        started = time.perf_counter()
        sessions = log_in(count=args.sessions, slug=SLUG)
        logged_in_at = time.time()
        log(f"logged {len(sessions):,} agents in in {time.perf_counter() - started:.1f}s")

    from django.db import connection

    connection.close()
    wait_ready(base, server, workdir / "gunicorn.log")
    log("gunicorn answers")

    # The bare view must answer what the endpoint answers, byte for byte.
    probe = sessions[0]
    status, real_body = fetch(*real_targets(base, [probe])[0])
    bare_status, bare_body = fetch(*bare_targets(base, [probe])[0])
    if status != 200 or bare_status != 200:
        raise RuntimeError(
            f"probe: schedule {status} {real_body[:300]!r}; bare {bare_status} {bare_body[:300]!r}"
        )
    real_days = json.loads(real_body)["days"]
    same_body = real_body == bare_body
    shape = (
        f"{len(real_days)} days ({probe.start} to {probe.end}), "
        f"{sum(d['published'] for d in real_days)} published, "
        f"{sum(len(d['activities']) for d in real_days)} activities, {len(real_body):,} bytes"
    )
    log(f"agent {probe.agent_id}'s month: {shape}; bare view's body {'the same' if same_body else 'DIFFERS'}")

    rng = random.Random(args.seed)
    real, bare = real_targets(base, sessions), bare_targets(base, sessions)
    timeout = args.timeout
    warm = Run("warm-up")
    for targets in (real, bare):
        asyncio.run(
            closed_loop(
                warm,
                picker(targets, rng),
                concurrency=2 * args.workers,
                duration=args.warmup / 2,
                timeout=timeout,
            )
        )
    log(f"warm-up: {warm.ok:,} requests, errors {dict(warm.errors)}")

    # 5. The runs.
    runs = []
    # No queueing at all: what one request takes, the floor under the fixed-rate run's latencies.
    single = Run("one connection (real endpoint)")
    runs.append(
        measured(
            single,
            closed_loop(
                single,
                picker(real, rng),
                concurrency=1,
                duration=min(5.0, args.duration / 2),
                timeout=timeout,
            ),
            server=server,
            db_name=args.db_name,
            sessions_since=logged_in_at,
        )
    )
    rate_run = Run(f"fixed rate {args.rate:g}/s (real endpoint)")
    runs.append(
        measured(
            rate_run,
            fixed_rate(rate_run, picker(real, rng), rate=args.rate, duration=args.duration, timeout=timeout),
            server=server,
            db_name=args.db_name,
            sessions_since=logged_in_at,
        )
    )
    # The two alternate in slices, so that both see the same share of a machine that others use too.
    endpoints = {"real endpoint": real, "bare view": bare}
    saturated = {name: Run(f"saturation, {args.concurrency} connections: {name}") for name in endpoints}
    rounds = min(args.rounds, max(1, int(args.saturation_duration / 2.5)))
    if args.profile:
        profiler.append(start_profiler(args, server.pid, workdir))
    for round_ in range(rounds):
        for name, targets in endpoints.items():
            part = Run(f"  {name}, slice {round_ + 1}/{rounds}")
            measured(
                part,
                closed_loop(
                    part,
                    picker(targets, rng),
                    concurrency=args.concurrency,
                    duration=args.saturation_duration / rounds,
                    timeout=timeout,
                ),
                server=server,
                db_name=args.db_name,
                sessions_since=logged_in_at,
            )
            saturated[name].absorb(part)
    if profiler:
        stop_profiler(profiler.pop())
    runs.extend(saturated.values())
    for run_ in saturated.values():
        log(
            f"{run_.name}: {run_.ok:,} ok in {run_.seconds:.1f}s ({run_.per_second:,.1f}/s) over {rounds} slices, "
            f"server CPU {run_.server_cpu_ms():.2f} ms per request"
        )

    checks = {"bare view's body = the endpoint's (one agent)": same_body}
    if not args.seed_with_service:
        checks["seeded days = what the service writes (one agent)"] = seeded_as_service
    return report(args, config, runs, saturated, checks=checks, shape=shape)


PARTIES = (
    ("gunicorn", "gunicorn"),
    ("postgres (bench db)", "pg bench"),
    ("postgres (others)", "pg other"),
    ("redis", "redis"),
    ("client (this process)", "client"),
    ("everything else", "the rest"),
)


def report(
    args, config: dict, runs: list[Run], saturated: dict[str, Run], *, checks: dict[str, bool], shape: str
) -> int:
    single, rate_run = runs[0], runs[1]
    real, bare = saturated["real endpoint"], saturated["bare view"]
    ratio = real.per_second / bare.per_second if bare.per_second else 0.0
    cost_ratio = bare.server_cpu_ms() / real.server_cpu_ms() if real.ok and bare.ok else 0.0
    p50, p99 = rate_run.ms(0.5), rate_run.ms(0.99)
    rows = [
        (
            f"fixed rate {args.rate:g}/s for {args.duration:g} s: ok / failed",
            f"{rate_run.ok:,} / {rate_run.failed:,}",
            "0 failed",
            verdict(rate_run.failed == 0),
        ),
        ("  achieved (req/s)", f"{rate_run.per_second:.1f}", "", ""),
        ("  p50 latency (ms)", f"{p50:.1f}", f"<= {GOAL_P50_MS:g}", verdict(p50 <= GOAL_P50_MS)),
        ("  p90 latency (ms)", f"{rate_run.ms(0.9):.1f}", "", ""),
        ("  p99 latency (ms)", f"{p99:.1f}", f"<= {GOAL_P99_MS:g}", verdict(p99 <= GOAL_P99_MS)),
        ("  max latency (ms)", f"{rate_run.ms(1.0):.1f}", "", ""),
        ("  the client's worst lateness sending (ms)", f"{rate_run.max_send_lag * 1000:.1f}", "", ""),
        (
            "  one connection, no queueing: p50 / p99 (ms)",
            f"{single.ms(0.5):.1f} / {single.ms(0.99):.1f}",
            "",
            "",
        ),
        (
            f"saturation, {args.concurrency} connections x {args.saturation_duration:g} s: real endpoint (req/s)",
            f"{real.per_second:,.1f}",
            "",
            "",
        ),
        ("  p50 / p99 (ms)", f"{real.ms(0.5):.0f} / {real.ms(0.99):.0f}", "", ""),
        ("  bare Django view, the same selector and JSON (req/s)", f"{bare.per_second:,.1f}", "", ""),
        ("  p50 / p99 (ms)", f"{bare.ms(0.5):.0f} / {bare.ms(0.99):.0f}", "", ""),
        ("  ratio real / bare", f"{ratio:.2f}", f">= {GOAL_RATIO:.2f}", verdict(ratio >= GOAL_RATIO)),
        (
            "  server CPU per request, gunicorn + its PostgreSQL + Redis (ms): real / bare",
            f"{real.server_cpu_ms():.2f} / {bare.server_cpu_ms():.2f}",
            "",
            "",
        ),
        ("  bare / real of those: the ratio where only the server's CPU limits", f"{cost_ratio:.2f}", "", ""),
        (
            "  failed requests: real / bare",
            f"{real.failed} / {bare.failed}",
            "0",
            verdict(real.failed + bare.failed == 0),
        ),
    ] + [(name, "yes" if ok else "NO", "yes", verdict(ok)) for name, ok in checks.items()]
    print()
    print(
        f"== schedule API: {config['agents']:,} agents x {DAYS} days, {config['sessions']:,} logged in; "
        f"gunicorn {config['workers']} {config['worker_class']} worker(s)"
        + (f" x {config['threads']} threads" if config["threads"] > 1 else "")
        + f"; {config['cpus']} CPUs =="
    )
    print(f"   one request: {shape}")
    if config["whatif"]:
        print(
            f"   WHAT-IF run: gunicorn served the project's code patched by bench/schedule_whatif.py ({config['whatif']})"
        )
    print_goals(rows)
    print_cpu(runs, PARTIES)
    print(
        f"  sessions whose activity stamp the middleware had written (of {config['sessions']}), "
        "after each run: " + ", ".join(str(r.sessions_touched) for r in runs)
    )
    print()
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "config": config,
                    "ratio": ratio,
                    "checks": checks,
                    "runs": runs_json(runs),
                },
                indent=2,
            )
        )
    failed = sum(r.failed for r in runs)
    return 0 if failed == 0 and not goals_failed(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
