"""Swap benchmark (issue 12, "Numbers"): `GET /api/v1/swaps/candidates` for random agents and days of
a 2,000-agent organisation, served by gunicorn on PostgreSQL; then 50 board offers, each accepted by
20 racing HTTP clients at once.

    .venv/bin/python bench/swaps.py                  # 2,000 agents in 20 teams, 10 req/s for 30 s, 50 offers
    .venv/bin/python bench/swaps.py --agents 200     # smoke run (about a minute)

What it does, for real (nothing is mocked):
  1. drops and recreates its own PostgreSQL database (em_agent_swapbench), migrates it, flushes its
     own Redis database (/7: cache, sessions and the broker, which nothing consumes here);
  2. starts `gunicorn em_agent.wsgi:application` as production's Dockerfile does (3 sync workers,
     access log);
  3. seeds one CXone organisation: the agents with six weeks of published schedules (the schedule
     benchmark's seed: the demo's shifts), 20 teams, three skills (Dutch for everyone, English and
     Billing for some teams, at levels 1-2), the default swap rules with swaps across the whole
     organisation (see bench/README.md for why), a rule that approves swaps automatically; and a
     second organisation of a tenth of the size, the same in every other way, to count the
     queries at both sizes; then VACUUM ANALYZE;
  4. counts the queries of candidate calls at both sizes in this process (Django's test client
     against the same database, CaptureQueriesContext), for each kind of call;
  5. logs a pool of agents in (allauth headless) and measures, client side, candidates for random
     agents and their working days at a fixed rate (open loop: latency from when each request was
     due): a swap on the same day, one across two days, a give-away, and include=ineligible;
  6. offers 50 shifts on the board over HTTP and lets 20 eligible colleagues accept each at once:
     exactly one 200 per offer, the others 409 swap_not_open; then checks in the database that each
     offer was completed by its winner, both agents' days hold each other's shift exactly once (the
     activities moved, no copy left behind), one journal change group per exchange;
  7. prints the summary with the CPU seconds of every party over each run and exits 1 if a goal it
     prints fails.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402  (after the path)
    Row,
    Run,
    Session,
    Target,
    add_server_arguments,
    closed_loop,
    fixed_rate,
    goals_failed,
    guarded_main,
    gunicorn_argv,
    loadavg,
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
from bench.schedule_api import DAYS, FIRST_DAY, seed, vacuum_analyze  # noqa: E402

DB_NAME = "em_agent_swapbench"
SLUG = "swapbench"
SMALL_SLUG = "swapbench-small"
TEAMS = 20
SKILLS = (("S-NL", "Dutch"), ("S-EN", "English"), ("S-BILL", "Billing"))
FULL_AGENTS = 2000
GOAL_RATE = 10.0
GOAL_P99_MS = 150.0
OFFERS = 50
RACERS = 20
CANDIDATES_URL = "/api/v1/swaps/candidates"
# The calls measured, and how often each comes: most ask who can swap the same day.
KINDS = (("swap", 6), ("swap, another day", 1), ("give-away", 2), ("include=ineligible", 1))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=FULL_AGENTS)
    parser.add_argument(
        "--sessions", type=int, default=None, help="agents logged in for the candidates (default 200)"
    )
    parser.add_argument("--rate", type=float, default=GOAL_RATE, help="candidate calls per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the fixed-rate run")
    parser.add_argument("--offers", type=int, default=OFFERS)
    parser.add_argument("--racers", type=int, default=RACERS, help="clients accepting each offer at once")
    parser.add_argument(
        "--same-team-only",
        action="store_true",
        help="the organisation keeps swaps within teams (default: across the organisation)",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured calls first")
    parser.add_argument("--seed", type=int, default=1, help="of the random choices")
    parser.add_argument(
        "--login-processes", type=int, default=2, help="processes logging the agents in (one a core)"
    )
    add_server_arguments(parser, db_name=DB_NAME, redis_db=7)
    args = parser.parse_args()
    if args.sessions is None:
        args.sessions = min(200, args.agents)
    return args


# --- data ----------------------------------------------------------------------------------------


def _hashed(n: int, salt: str) -> int:
    return hashlib.sha256(f"{salt}:{n}".encode()).digest()[0]


def skills_of(index: int, team: int) -> list[tuple[str, int]]:
    """An agent's skills by its place and team: everyone speaks Dutch, a team's queues decide
    whether it takes English and Billing calls, and the levels differ within a team (1 or 2)."""
    skills = [("S-NL", 1 + _hashed(index, "nl") % 2)]
    if team % 2 == 0:
        skills.append(("S-EN", 1 + _hashed(index, "en") % 2))
    if team % 4 == 1:
        skills.append(("S-BILL", 1))
    return skills


def seed_swaps(*, slug: str, same_team_only: bool) -> dict[str, object]:
    """The organisation's teams, skills, swap rules and the approval rule that completes swaps."""
    from em_agent.models import Agent, AgentSkill, Organization, Skill, Team
    from schedules.models import ApprovalRule, RequestType, RuleAction
    from swaps.models import SwapSettings

    org = Organization.objects.get(slug=slug)
    teams = Team.objects.bulk_create(
        [Team(organization=org, external_id=f"T{n:02d}", name=f"Team {n + 1}") for n in range(TEAMS)]
    )
    skills = {key: Skill.objects.create(organization=org, external_id=key, name=name) for key, name in SKILLS}
    agents = list(Agent.objects.filter(organization=org).order_by("external_id"))
    # A team is agents next to each other in the WFM's order: each has every shift pattern.
    size = -(-len(agents) // TEAMS)
    for index, agent in enumerate(agents):
        agent.team = teams[index // size]
    Agent.objects.bulk_update(agents, ["team"], batch_size=2000)
    AgentSkill.objects.bulk_create(
        [
            AgentSkill(agent=agent, skill=skills[key], level=level)
            for index, agent in enumerate(agents)
            for key, level in skills_of(index, index // size)
        ],
        batch_size=5000,
    )
    SwapSettings.objects.create(organization=org, same_team_only=same_team_only)
    ApprovalRule.objects.create(
        organization=org,
        request_type=RequestType.SWAP,
        action=RuleAction.AUTO_APPROVE,
        when_conditions_fail=RuleAction.MANUAL,
    )
    return {"teams": TEAMS, "skills": len(skills), "same_team_only": same_team_only}


# --- the candidates ------------------------------------------------------------------------------


def working_days(agent_ids: list[int], *, first: dt.date, last: dt.date) -> dict[int, list[dt.date]]:
    """Each agent's published working days from `first` to `last`."""
    from schedules.models import ScheduleDay

    days: dict[int, list[dt.date]] = defaultdict(list)
    for agent_id, date in (
        ScheduleDay.objects.filter(
            agent_id__in=agent_ids,
            date__gte=first,
            date__lte=last,
            published=True,
            first_start__isnull=False,
        )
        .order_by("agent_id", "date")
        .values_list("agent_id", "date")
    ):
        days[agent_id].append(date)
    return days


def window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The days asked about: from the day after tomorrow (the lead time) to the seed's last week."""
    return today + dt.timedelta(days=2), today + dt.timedelta(days=FIRST_DAY + DAYS - 8)


def candidate_query(kind: str, date: dt.date, days: list[dt.date], rng: random.Random) -> str:
    """The query string of one call of `kind` (KINDS) for the caller's working day `date`."""
    if kind == "give-away":
        return f"date={date}&kind=give_away"
    if kind == "include=ineligible":
        return f"date={date}&include=ineligible"
    if kind == "swap, another day":
        near = [d for d in days if d != date and abs((d - date).days) <= 7]
        return f"date={date}&their_date={rng.choice(near)}" if near else f"date={date}"
    return f"date={date}"


def kind_of(url: str) -> str:
    if "kind=give_away" in url:
        return "give-away"
    if "include=ineligible" in url:
        return "include=ineligible"
    return "swap, another day" if "their_date=" in url else "swap"


def candidate_targets(
    base: str, sessions: list[Session], days: dict[int, list[dt.date]], count: int, rng: random.Random
) -> list[Target]:
    """`count` calls of random agents for random working days of theirs, the kinds as KINDS weighs them."""
    kinds = [kind for kind, weight in KINDS for _ in range(weight)]
    usable = [s for s in sessions if days.get(s.agent_id)]
    targets = []
    for _ in range(count):
        session = rng.choice(usable)
        date = rng.choice(days[session.agent_id])
        query = candidate_query(rng.choice(kinds), date, days[session.agent_id], rng)
        targets.append(Target(f"{base}{CANDIDATES_URL}?{query}", {"X-Session-Token": session.token}))
    return targets


def count_queries(slug: str, *, calls_per_kind: int, rng: random.Random) -> dict[str, list[int]]:
    """The queries of candidate calls through Django's test client in this process (the same
    database as the server), per kind, for random agents of the organisation `slug` and their
    working days; each call once unmeasured first (the session's first touch writes)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from bench._common import log_in_ids
    from em_agent.models import Agent

    ids = list(Agent.objects.filter(organization__slug=slug).values_list("pk", flat=True))
    chosen = rng.sample(ids, min(len(ids), 2 * calls_per_kind))
    sessions = log_in_ids(chosen)
    days = working_days(chosen, first=window(timezone.localdate())[0], last=window(timezone.localdate())[1])
    client = Client(HTTP_HOST="127.0.0.1")
    counts: dict[str, list[int]] = defaultdict(list)
    usable = [s for s in sessions if days.get(s.agent_id)]
    for kind, _weight in KINDS:
        for n in range(calls_per_kind):
            session = usable[n % len(usable)]
            query = candidate_query(kind, rng.choice(days[session.agent_id]), days[session.agent_id], rng)
            url = f"{CANDIDATES_URL}?{query}"
            client.get(url, HTTP_X_SESSION_TOKEN=session.token)
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, HTTP_X_SESSION_TOKEN=session.token)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.content[:300]!r}")
            counts[kind].append(len(queries))
    return counts


# --- the race --------------------------------------------------------------------------------------


class Offer:
    """One board offer of the race: its requester, date, the colleagues who will race for it."""

    def __init__(self, requester: int, date: dt.date, racers: list[int]) -> None:
        self.requester, self.date, self.racers = requester, date, racers
        self.swap_id: int | None = None
        self.winner: int | None = None  # the agent answered 200


def choose_offers(*, count: int, racers: int, rng: random.Random, slug: str = SLUG) -> list[Offer]:
    """`count` (requester, day) pairs with `racers` eligible colleagues each (the candidates, as
    the endpoint finds them), no agent in two offers: each race is on days nobody else touches."""
    from django.utils import timezone

    from em_agent.models import Agent
    from swaps.selectors import swap_candidates_for_agent

    agents = {a.pk: a for a in Agent.objects.filter(organization__slug=slug).select_related("organization")}
    first, last = window(timezone.localdate())
    days = working_days(list(agents), first=first, last=last)
    order = list(agents)
    rng.shuffle(order)
    used: set[int] = set()
    offers: list[Offer] = []
    for requester in order:
        if len(offers) == count:
            break
        if requester in used or not days.get(requester):
            continue
        date = rng.choice(days[requester])
        fits = [
            c.agent.pk
            for c in swap_candidates_for_agent(agent=agents[requester], date=date, their_date=date)
            if c.agent.pk not in used
        ]
        if len(fits) < racers:
            continue
        chosen = rng.sample(fits, racers)
        used |= {requester, *chosen}
        offers.append(Offer(requester, date, chosen))
    if len(offers) < count:
        raise RuntimeError(f"only {len(offers)} offers with {racers} eligible colleagues each")
    return offers


DaySnapshot = list[tuple[int, dt.datetime, dt.datetime]]


def days_of(keys: list[tuple[int, dt.date]]) -> dict[tuple[int, dt.date], DaySnapshot]:
    """The activities (code id, start, end) of each (agent, local day), in order."""
    from schedules.models import Activity

    wanted = set(keys)
    found: dict[tuple[int, dt.date], DaySnapshot] = {key: [] for key in keys}
    for agent_id, date, code_id, start, end in (
        Activity.objects.filter(agent_id__in={a for a, _d in keys}, day__date__in={d for _a, d in keys})
        .order_by("start")
        .values_list("agent_id", "day__date", "activity_code_id", "start", "end")
    ):
        if (agent_id, date) in wanted:
            found[(agent_id, date)].append((code_id, start, end))
    return found


def race_keys(offers: list[Offer]) -> list[tuple[int, dt.date]]:
    return [(agent, offer.date) for offer in offers for agent in (offer.requester, *offer.racers)]


async def race(run: Run, groups: list[list[Target]], *, timeout: float) -> None:
    """Each group's requests sent at once (its clients racing), one group after the other."""
    import aiohttp

    from bench._common import _request

    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        start = loop.time()
        for group in groups:
            now = loop.time()
            await asyncio.gather(*[_request(session, target, run, now) for target in group])
        run.seconds = loop.time() - start


def race_outcome(offers: list[Offer], answers: list, agent_of: dict[str, int]) -> dict[str, tuple[bool, str]]:
    """Per offer: one 200, the others 409 swap_not_open; the winners, by offer."""
    by_swap: dict[int, list] = defaultdict(list)
    for answer in answers:
        swap_id = int(answer.target.url.rstrip("/").split("/")[-2])
        by_swap[swap_id].append(answer)
    one_winner = other_409 = 0
    codes: Counter = Counter()
    for offer in offers:
        group = by_swap[offer.swap_id or 0]
        won = [a for a in group if a.status == 200]
        lost = [a for a in group if a.status != 200]
        codes.update(
            f"{a.status} {json.loads(a.body).get('code') if a.body[:1] == b'{' else a.body[:40]!r}"
            for a in lost
        )
        if len(won) == 1 and len(group) == len(offer.racers):
            one_winner += 1
            offer.winner = agent_of[won[0].target.headers["X-Session-Token"]]
        other_409 += all(a.status == 409 and json.loads(a.body).get("code") == "swap_not_open" for a in lost)
    return {
        f"exactly one 200 per offer ({len(offers)} winners)": (
            one_winner == len(offers),
            f"{one_winner} of {len(offers)} offers had one",
        ),
        "  every other answer 409 swap_not_open": (
            other_409 == len(offers),
            f"losers' answers: {dict(codes)}",
        ),
    }


def exchanges_hold(
    offers: list[Offer], before: dict[tuple[int, dt.date], DaySnapshot]
) -> dict[str, tuple[bool, str]]:
    """In the database: each swap completed by its winner; the requester's and the winner's days
    hold each other's shift, exactly once (times and codes as they were); every loser's day
    untouched; the exchange one journal group with a row for each of the two days."""
    from schedules.models import ScheduleChange
    from swaps.models import Swap, SwapStatus

    swaps = Swap.objects.in_bulk([o.swap_id for o in offers if o.swap_id])
    now = days_of(race_keys(offers))
    completed = swapped = untouched = journal = 0
    for offer in offers:
        swap = swaps.get(offer.swap_id or 0)
        winner = offer.winner
        if swap is None or winner is None:
            continue
        completed += swap.status == SwapStatus.COMPLETED and swap.taker_id == winner
        mine, theirs = (offer.requester, offer.date), (winner, offer.date)
        swapped += now[mine] == before[theirs] and now[theirs] == before[mine] and bool(before[mine])
        untouched += all(now[(r, offer.date)] == before[(r, offer.date)] for r in offer.racers if r != winner)
        rows = set(ScheduleChange.objects.filter(group=swap.change_group).values_list("agent_id", "date"))
        journal += swap.change_group is not None and rows == {mine, theirs}
    n = len(offers)
    return {
        "each swap completed, its taker the one answered 200": (completed == n, f"{completed} of {n}"),
        "both days hold each other's shift, exactly once": (swapped == n, f"{swapped} of {n}"),
        "every loser's day untouched": (untouched == n, f"{untouched} of {n} offers"),
        "one journal group per exchange, a row for each day": (journal == n, f"{journal} of {n}"),
    }


# --- the run -------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    return guarded_main("swaps-bench-", lambda workdir, children, _profiler: run(args, workdir, children))


PARTIES = (
    ("gunicorn", "gunicorn"),
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
        cache_prefix="swapbench",
        CELERY_TASK_ALWAYS_EAGER="0",
        EMAIL_URL="dummymail://",
    )
    gunicorn = gunicorn_argv(
        application="em_agent.wsgi:application",
        port=port,
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads,
    )
    small = max(TEAMS, args.agents // 10)
    config = {
        "agents": args.agents,
        "small": small,
        "sessions": args.sessions,
        "rate": args.rate,
        "duration": args.duration,
        "offers": args.offers,
        "racers": args.racers,
        "same_team_only": args.same_team_only,
        "workers": args.workers,
        "worker_class": args.worker_class,
        "threads": args.threads,
        "cpus": os.cpu_count(),
    }
    log(f"config: {config}; work dir {workdir}; load average {loadavg()}")

    # 1. Database, Redis, settings for this process too.
    prepare_database(db_name=args.db_name, redis_url=redis_url, env=env)
    log(f"database {args.db_name} created and migrated; redis db {args.redis_db} flushed")

    # 2. The server boots while the data is written.
    server = children.start("gunicorn", gunicorn, env=env, log_path=workdir / "gunicorn.log")
    log(f"gunicorn (pid {server.pid}): " + " ".join(gunicorn[3:]) + "; DEBUG off, PRODUCTION unset")

    # 3. The data, and 4. the queries per call at both sizes.
    from django.test import override_settings
    from django.utils import timezone

    from bench._common import log_in_ids
    from em_agent.models import Agent

    rng = random.Random(args.seed)
    # The tests' hasher for the bench agents' passwords, as schedule_api.py does: production's
    # PBKDF2 costs ~0.5 s of CPU per login here, and no swap checks a password.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        started = time.perf_counter()
        counts: dict[str, dict[str, object]] = {}
        for slug, size, name in ((SLUG, args.agents, "Swap bench"), (SMALL_SLUG, small, "Swap bench, small")):
            counts[slug] = seed(agents=size, batch=200, service=False, slug=slug, name=name)
            counts[slug].update(seed_swaps(slug=slug, same_team_only=args.same_team_only))
        vacuum_analyze()
        log(
            f"seeded {args.agents:,} and {small:,} agents x {DAYS} published days in {time.perf_counter() - started:.1f}s: {counts}"
        )

        queries = {
            size: count_queries(slug, calls_per_kind=5, rng=rng)
            for size, slug in ((args.agents, SLUG), (small, SMALL_SLUG))
        }
        log(f"queries per call, by kind: {queries}")

        # 5. The race's offers are chosen first (their agents log in with the rest).
        offers = choose_offers(count=args.offers, racers=args.racers, rng=rng)
        racing = {agent for offer in offers for agent in (offer.requester, *offer.racers)}
        ids = list(Agent.objects.filter(organization__slug=SLUG).values_list("pk", flat=True))
        pool = rng.sample(ids, min(args.sessions, len(ids)))
        started = time.perf_counter()
        sessions = log_in_ids(sorted(racing | set(pool)), processes=args.login_processes)
        logged_in_at = time.time()
        log(f"logged {len(sessions):,} agents in in {time.perf_counter() - started:.1f}s")

    from django.db import connection

    by_agent = {s.agent_id: s for s in sessions}
    first, last = window(timezone.localdate())
    days = working_days(pool, first=first, last=last)
    calls = int(args.rate * args.duration)
    targets = candidate_targets(base, [by_agent[a] for a in pool], days, calls, rng)
    warm_targets = candidate_targets(base, [by_agent[a] for a in pool], days, 50, rng)
    before = days_of(race_keys(offers))
    connection.close()
    wait_ready(base, server, workdir / "gunicorn.log")
    log("gunicorn answers")

    measure = {"server": server, "db_name": args.db_name, "sessions_since": logged_in_at}
    warm = Run("warm-up")
    asyncio.run(
        closed_loop(
            warm,
            picker(warm_targets, rng),
            concurrency=args.workers,
            duration=args.warmup,
            timeout=args.timeout,
        )
    )
    log(f"warm-up: {warm.ok:,} candidate calls, errors {dict(warm.errors)}")

    # 6. Candidates at the fixed rate.
    rate_run = Run(f"candidates at {args.rate:g}/s", keep_answers=True)
    measured(
        rate_run,
        fixed_rate(rate_run, picker(targets), rate=args.rate, duration=args.duration, timeout=args.timeout),
        **measure,
    )

    # 7. The offers, then the races.
    offer_run = Run(f"{len(offers)} board offers, one connection", keep_answers=True)
    offer_targets = [
        Target(
            f"{base}/api/v1/swaps",
            {"X-Session-Token": by_agent[o.requester].token},
            {"date": str(o.date), "their_date": str(o.date), "open": True, "message": "bench"},
        )
        for o in offers
    ]
    measured(
        offer_run,
        closed_loop(
            offer_run, picker(offer_targets), concurrency=1, duration=float("inf"), timeout=args.timeout
        ),
        **measure,
    )
    for offer, answer in zip(offers, offer_run.answers, strict=True):
        if answer.status == 201:
            offer.swap_id = json.loads(answer.body)["id"]
    groups = [
        [
            Target(f"{base}/api/v1/swaps/{o.swap_id}/accept", {"X-Session-Token": by_agent[r].token}, {})
            for r in o.racers
        ]
        for o in offers
        if o.swap_id
    ]
    race_run = Run(f"accepts: {len(groups)} offers x {args.racers} clients at once", keep_answers=True)
    measured(race_run, race(race_run, groups, timeout=max(args.timeout, 30.0)), **measure)
    agent_of = {s.token: s.agent_id for s in sessions}
    checks: dict[str, tuple[bool, str]] = {
        "every offer created (201)": (
            sum(o.swap_id is not None for o in offers) == len(offers),
            f"{sum(o.swap_id is not None for o in offers)} of {len(offers)}",
        )
    }
    checks.update(race_outcome(offers, race_run.answers, agent_of))
    checks.update(exchanges_hold(offers, before))
    connection.close()
    return report(args, config, [rate_run, offer_run, race_run], queries=queries, checks=checks)


def report(
    args,
    config: dict,
    runs: list[Run],
    *,
    queries: dict[int, dict[str, list[int]]],
    checks: dict[str, tuple[bool, str]],
) -> int:
    rate_run, offer_run, race_run = runs
    p99 = rate_run.ms(0.99)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for answer in rate_run.answers:
        if answer.status == 200:
            by_kind[kind_of(answer.target.url)].append(answer.latency)
    sizes = sorted(queries)
    # The bound: the most queries a call of each kind made, at either size (a call finding nobody
    # skips the reads of the candidates' days, so a tiny organisation can make fewer).
    same = all(
        max(queries[sizes[0]].get(kind, [0])) == max(queries[sizes[-1]].get(kind, [0]))
        for kind, _weight in KINDS
    )

    def spread(values: list[int]) -> str:
        return f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"

    rows: list[Row] = [
        (
            f"candidates at {args.rate:g}/s for {args.duration:g} s: ok / failed",
            f"{rate_run.ok:,} / {rate_run.failed:,}",
            "0 failed",
            verdict(rate_run.failed == 0),
        ),
        ("  achieved (req/s)", f"{rate_run.per_second:.1f}", "", ""),
        ("  p50 latency (ms)", f"{rate_run.ms(0.5):.1f}", "", ""),
        ("  p99 latency (ms)", f"{p99:.1f}", f"<= {GOAL_P99_MS:g}", verdict(p99 <= GOAL_P99_MS)),
        ("  max latency (ms)", f"{rate_run.ms(1.0):.1f}", "", ""),
        *(
            (
                f"    {kind} ({len(by_kind[kind])}): p50 / p99 (ms)",
                f"{percentile_ms(by_kind[kind], 0.5):.0f} / {percentile_ms(by_kind[kind], 0.99):.0f}",
                "",
                "",
            )
            for kind, _weight in KINDS
        ),
        (
            "  server CPU per call, gunicorn + its PostgreSQL + Redis (ms)",
            f"{rate_run.server_cpu_ms():.1f}",
            "",
            "",
        ),
        ("  the client's worst lateness sending (ms)", f"{rate_run.max_send_lag * 1000:.1f}", "", ""),
        ("  machine busy (others' work included)", f"{rate_run.machine_busy:.0f} %", "", ""),
        *(
            (
                f"  queries per call, {kind}: {sizes[-1]:,} / {sizes[0]:,} agents",
                f"{spread(queries[sizes[-1]][kind])} / {spread(queries[sizes[0]][kind])}",
                "",
                "",
            )
            for kind, _weight in KINDS
        ),
        (
            f"  queries per call the same at {sizes[0]:,} and {sizes[-1]:,} agents",
            "yes" if same else "NO",
            "yes",
            verdict(same),
        ),
        (
            f"offers: {offer_run.ok} created, p50 / p99 (ms)",
            f"{offer_run.ms(0.5):.0f} / {offer_run.ms(0.99):.0f}",
            "",
            "",
        ),
        (
            f"accepts, {args.racers} at once per offer: p50 / p99 (ms)",
            f"{percentile_ms([a.latency for a in race_run.answers], 0.5):.0f} / "
            f"{percentile_ms([a.latency for a in race_run.answers], 0.99):.0f}",
            "",
            "",
        ),
        (
            "  server CPU per accept (ms)",
            f"{1000 * sum(race_run.cpu.get(n, 0.0) for n in ('gunicorn', 'postgres (bench db)', 'redis')) / max(len(race_run.answers), 1):.1f}",
            "",
            "",
        ),
    ] + [(name, "yes" if ok else "NO", "yes", verdict(ok)) for name, (ok, _detail) in checks.items()]
    print()
    print(
        f"== swaps: {config['agents']:,} agents in {TEAMS} teams x {DAYS} days, three skills, swaps "
        + ("within teams" if config["same_team_only"] else "across the organisation")
        + f"; gunicorn {config['workers']} {config['worker_class']} worker(s)"
        + (f" x {config['threads']} threads" if config["threads"] > 1 else "")
        + f"; {config['cpus']} CPUs =="
    )
    print_goals(rows)
    print("  what the checks saw:")
    for name, (_ok, detail) in checks.items():
        if detail:
            print(f"    {name.strip()}: {detail}")
    print()
    print_cpu(runs, PARTIES)
    print()
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"config": config, "queries": queries, "checks": checks, "runs": runs_json(runs)},
                indent=2,
                default=str,
            )
        )
    # The race's losers answer 409 by design: only the candidates' and the offers' failures count.
    failed = rate_run.failed + offer_run.failed
    return 0 if failed == 0 and not goals_failed(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
