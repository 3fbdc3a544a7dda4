"""What the HTTP benchmarks share (schedule_api.py, timeoff.py): the server started as production's
Dockerfile starts it, the agents logged in through allauth's headless login, the open-loop and
closed-loop clients, the CPU seconds of every party over each run, the goals table and the exit code.
Not run directly."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import (  # noqa: E402  (after the path)
    TICKS,
    Children,
    cpu_by_group,
    cpu_snapshot,
    log,
    machine_busy,
    stop_profiler,
)

LOGIN_URL = "/_allauth/app/v1/auth/login"
PASSWORD = "correct-horse-battery"  # noqa: S105  (the bench agents' own)


# --- the server ------------------------------------------------------------------------------------


def server_env(
    *, settings_module: str, db_name: str, redis_url: str, cache_prefix: str, **extra: str
) -> dict:
    """The environment of the server (and of this process, which seeds and logs in): the
    benchmark's database and Redis, production's connection reuse, DEBUG and PRODUCTION off."""
    env = {
        key: value for key, value in os.environ.items() if key not in ("PRODUCTION", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "CACHE_KEY_PREFIX": cache_prefix,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "0",
            "CONN_MAX_AGE": "60",  # production's default (settings: 60 when PRODUCTION)
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def gunicorn_argv(*, application: str, port: int, workers: int, worker_class: str, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        application,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        # As the Dockerfile's CMD: heartbeats on tmpfs, no control socket, access log on stdout.
        "--worker-tmp-dir",
        "/dev/shm",  # noqa: S108
        "--no-control-socket",
        "--access-logfile",
        "-",
    ]


def guarded_main(prefix: str, body: Callable[[Path, Children, list[subprocess.Popen]], int]) -> int:
    """Runs `body(workdir, children, profilers)`; every process it started is stopped on exit,
    Ctrl-C, SIGTERM and SIGHUP."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    children = Children()
    profiler: list[subprocess.Popen] = []

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, on_signal)  # also when started in the background (SIGINT ignored)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return body(workdir, children, profiler)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'Ctrl-C'}): stopping everything")
        return 130
    finally:
        for proc in profiler:
            stop_profiler(proc)
        children.stop_all()
        log(f"processes stopped; logs in {workdir}")


def add_server_arguments(parser: argparse.ArgumentParser, *, db_name: str, redis_db: int) -> None:
    """The options of the server, the clients and the benchmark's own database and Redis."""
    parser.add_argument(
        "--workers", type=int, default=3, help="gunicorn workers (production: WEB_CONCURRENCY=3)"
    )
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (production: sync)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds before a request counts as failed"
    )
    parser.add_argument("--db-name", default=db_name)
    parser.add_argument("--redis-db", type=int, default=redis_db)
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (default: a free one)")
    parser.add_argument("--json", metavar="FILE", help="also write the summary as JSON to FILE")


# --- sessions ------------------------------------------------------------------------------------


@dataclass
class Session:
    agent_id: int
    token: str
    start: dt.date  # the agent's current month, in its zone
    end: dt.date
    zone: str  # the bare view's: the endpoint has it from the logged-in agent


def log_in(*, count: int | None, slug: str, processes: int = 1) -> list[Session]:
    """The app's login (allauth headless, client "app") for the first `count` agents (None: all) of
    the organisation, in this process (or in `processes` of its own, spawned, a share each): the
    same view, database and Redis as the server, so the tokens are live there. By agent id."""
    from em_agent.models import Agent

    agents = Agent.objects.filter(organization__slug=slug).order_by("pk").values_list("pk", flat=True)
    ids = list(agents[:count] if count is not None else agents)
    if processes <= 1:
        return _log_in_agents(list(enumerate(ids)))
    import multiprocessing

    from django.db import connections

    connections.close_all()
    shares = [list(enumerate(ids))[n::processes] for n in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes, initializer=_set_up_django) as pool:
        return sorted(
            (s for share in pool.map(_log_in_share, shares) for s in share), key=lambda s: s.agent_id
        )


def _set_up_django() -> None:
    import django

    django.setup()  # the parent's environment: its settings, database and Redis


def _log_in_share(agents: list[tuple[int, int]]) -> list[Session]:
    from django.test import override_settings

    # The hasher the parent hashed the bench agents' passwords with (see the benchmarks' seeds).
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        return _log_in_agents(agents)


def _log_in_agents(agents: list[tuple[int, int]]) -> list[Session]:
    """(n, agent id): the n-th agent logs in from an address of its own."""
    from django.test import Client
    from django.utils import timezone

    from em_agent.models import Agent

    sessions = []
    client = Client(HTTP_HOST="127.0.0.1")  # one: each new one loads the middleware (WhiteNoise scans)
    by_id = Agent.objects.select_related("user").in_bulk([pk for _n, pk in agents])
    for n, pk in agents:
        agent = by_id[pk]
        client.cookies.clear()
        response = client.post(
            LOGIN_URL,
            {"email": agent.user.email, "password": PASSWORD},
            content_type="application/json",
            # An address each: allauth limits logins per address (30 a minute).
            REMOTE_ADDR=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"login of {agent.user.email}: {response.status_code} {response.content[:300]!r}"
            )
        today = timezone.localdate(timezone.now(), agent.zone)
        first = today.replace(day=1)
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        sessions.append(
            Session(agent.pk, response.json()["meta"]["session_token"], first, last, agent.timezone)
        )
    return sessions


def sessions_active_since(epoch: float) -> int:
    """Pool sessions whose activity stamp was written after `epoch`: the middleware's touches."""
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.contrib.sessions.models import Session as SessionRow

    from em_agent.sessions import LAST_ACTIVITY_AT

    store = SessionStore()
    return sum(
        1
        for data in SessionRow.objects.values_list("session_data", flat=True)
        if store.decode(data).get(LAST_ACTIVITY_AT, 0) > epoch
    )


# --- HTTP ----------------------------------------------------------------------------------------


def fetch(
    url: str, headers: dict[str, str] | None = None, body: dict | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """GET, or POST of `body` as JSON."""
    data = None if body is None else json.dumps(body).encode()
    headers = {**(headers or {}), **({"Content-Type": "application/json"} if data is not None else {})}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310  (our server on loopback)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(base: str, server: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if fetch(f"{base}/health/live", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not start: see {log_path}")
        time.sleep(0.2)


class Target(NamedTuple):
    url: str
    headers: dict[str, str]
    body: dict | None = None  # a POST of this JSON; None: a GET


def picker(targets: Sequence[Target], rng: random.Random | None = None) -> Callable[[], Target | None]:
    """The clients' next request: a random one of `targets` (with `rng`), or each in turn once and
    then None (the load ends)."""
    if rng is not None:
        return lambda: rng.choice(targets)
    remaining = iter(targets)
    return lambda: next(remaining, None)


@dataclass
class Answer:
    target: Target
    status: int  # 0: no answer (the error's name is in Run.errors)
    body: bytes
    latency: float  # seconds


@dataclass
class Run:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, of the successful requests
    errors: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    max_send_lag: float = 0.0  # how late the client itself sent a request (fixed rate)
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    loadavg: str = ""
    sessions_touched: int = 0
    keep_answers: bool = False  # every answer's status and body, in `answers`
    answers: list[Answer] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def server_cpu_ms(self) -> float:
        """CPU of the server side (gunicorn, its PostgreSQL backends, Redis) per successful request."""
        used = sum(self.cpu.get(name, 0.0) for name in ("gunicorn", "postgres (bench db)", "redis"))
        return 1000 * used / self.ok if self.ok else float("nan")

    def absorb(self, part: Run) -> None:
        """Adds a slice of the same load (the saturation runs alternate in slices)."""
        busy = self.machine_busy * self.seconds + part.machine_busy * part.seconds
        self.latencies.extend(part.latencies)
        self.errors.update(part.errors)
        self.answers.extend(part.answers)
        self.seconds += part.seconds
        self.machine_busy = busy / self.seconds if self.seconds else 0.0
        for name, seconds in part.cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds
        first = self.loadavg.split(" -> ")[0] if self.loadavg else part.loadavg.split(" -> ")[0]
        self.loadavg = f"{first} -> {part.loadavg.split(' -> ')[-1]}"
        self.sessions_touched = part.sessions_touched

    def ms(self, quantile: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        return percentile_ms(self.latencies, quantile)


def percentile_ms(latencies: Sequence[float], quantile: float) -> float:
    """Nearest-rank percentile of latencies in seconds, in milliseconds."""
    if not latencies:
        return float("nan")
    ordered = sorted(latencies)
    rank = max(0, min(len(ordered) - 1, -(-len(ordered) * quantile // 1) - 1))
    return ordered[int(rank)] * 1000


async def _request(session, target: Target, run: Run, since: float) -> None:
    """One request; a 2xx answer counts, with its latency from `since`."""
    import aiohttp

    loop = asyncio.get_running_loop()
    status, content = 0, b""
    try:
        async with session.request(
            "GET" if target.body is None else "POST", target.url, headers=target.headers, json=target.body
        ) as response:
            content = await response.read()
            status = response.status
            if 200 <= status < 300:
                run.latencies.append(loop.time() - since)
            else:
                run.errors[f"HTTP {status}"] += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        run.errors[type(exc).__name__] += 1
    if run.keep_answers:
        run.answers.append(Answer(target, status, content, loop.time() - since))


async def fixed_rate(
    run: Run, pick: Callable[[], Target | None], *, rate: float, duration: float, timeout: float
) -> None:
    """Open loop: request i is due at start + i / rate whatever happened to the others; its latency
    runs from when it was due, so time spent queueing (in the client or the server) counts."""
    import aiohttp

    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        tasks = []
        start = loop.time()
        for i in range(int(rate * duration)):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            target = pick()
            if target is None:
                break
            run.max_send_lag = max(run.max_send_lag, loop.time() - due)
            tasks.append(asyncio.create_task(_request(session, target, run, due)))
        await asyncio.gather(*tasks)
        run.seconds = loop.time() - start


async def closed_loop(
    run: Run, pick: Callable[[], Target | None], *, concurrency: int, duration: float, timeout: float
) -> None:
    """N connections, each sending its next request as soon as the last one is answered, until
    `duration` has passed or `pick` has no more."""
    import aiohttp

    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        start = loop.time()
        stop = start + duration

        async def one_connection() -> None:
            while loop.time() < stop and (target := pick()) is not None:
                await _request(session, target, run, loop.time())

        await asyncio.gather(*[one_connection() for _ in range(concurrency)])
        run.seconds = loop.time() - start


# --- CPU accounting --------------------------------------------------------------------------------


def loadavg() -> str:
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def backends_of(db_name: str) -> list[int]:
    """PostgreSQL's processes serving `db_name` (their title names the database): other engineers'
    test databases live on the same server."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                title = cmdline.read()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {db_name} ".encode() in title:
            pids.append(int(entry))
    return pids


class BackendSampler(threading.Thread):
    """The CPU seconds of the benchmark database's backends, sampled while a run lasts: a Celery
    worker's live for one task each (Celery's Django fixup closes the connection after every task),
    so a snapshot at the end would find them gone. What a backend used after its last sample is
    missed (at most `interval`; finding them scans /proc, ~25 ms of CPU on a busy machine)."""

    def __init__(self, db_name: str, before: dict[int, tuple[str, float]], interval: float = 1.0) -> None:
        super().__init__(daemon=True, name="backend-sampler")
        self.db_name, self.before, self.interval = db_name, before, interval
        self.last: dict[int, float] = {}
        self._halt = threading.Event()

    def sample(self) -> None:
        for pid in backends_of(self.db_name):
            try:
                with open(f"/proc/{pid}/stat", "rb") as stat:
                    text = stat.read()
            except OSError:
                continue
            fields = text[text.rindex(b")") + 2 :].split()
            self.last[pid] = (int(fields[11]) + int(fields[12])) / TICKS

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> float:
        """The backends' CPU seconds over the run."""
        self._halt.set()
        self.join(timeout=5)
        self.sample()
        return sum(seconds - self.before.get(pid, ("", 0.0))[1] for pid, seconds in self.last.items())


class AutoAnalyze(threading.Thread):
    """What autovacuum's ANALYZE does for production's PostgreSQL, where this machine's server has it
    off (`SHOW autovacuum`; the tests want it so): every `naptime` seconds (autovacuum_naptime), each
    table of the benchmark's database whose rows changed by more than 50 + 10 % of its rows since its
    last ANALYZE (the default thresholds) is analyzed. Without it the planner takes the tables a run
    fills for as empty as they were at the seed's ANALYZE. Does nothing where autovacuum is on."""

    def __init__(self, db_name: str, naptime: float = 60.0) -> None:
        super().__init__(daemon=True, name="auto-analyze")
        self.url, self.naptime = f"postgresql://postgres@127.0.0.1:5432/{db_name}", naptime
        self.analyzed: Counter = Counter()
        self._halt = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            if conn.execute("SHOW autovacuum").fetchone() == ("on",):
                return
            while not self._halt.wait(self.naptime):
                due = conn.execute(
                    "SELECT relname FROM pg_stat_user_tables WHERE n_mod_since_analyze > 50 + 0.1 * n_live_tup"
                ).fetchall()
                for (table,) in due:
                    conn.execute(f'ANALYZE "{table}"')
                    self.analyzed[table] += 1

    def stop(self) -> Counter:
        """The tables analyzed, and how often."""
        self._halt.set()
        self.join(timeout=30)
        return self.analyzed


def measured(
    run: Run,
    coroutine,
    *,
    server: subprocess.Popen,
    db_name: str,
    sessions_since: float,
    others: dict[str, list[int]] | None = None,
    sample_backends: bool = False,
) -> Run:
    """Runs the load, with the CPU seconds of every party over the same window: gunicorn's tree,
    the PostgreSQL backends of the benchmark's database (`sample_backends`: sampled throughout, for
    short-lived ones), the rest of PostgreSQL, Redis, `others` (name: root pids), this process and
    everything else on the machine."""
    run.loadavg = loadavg()
    me = os.getpid()
    before, busy_before = cpu_snapshot(), machine_busy()
    sampler = BackendSampler(db_name, before) if sample_backends else None
    if sampler is not None:
        sampler.start()
    asyncio.run(coroutine)
    backends = sampler.stop() if sampler is not None else None
    after, busy_after = cpu_snapshot(), machine_busy()
    bench_db = list(sampler.last) if sampler is not None else backends_of(db_name)
    run.cpu = cpu_by_group(
        before, after, {"gunicorn": [server.pid], **(others or {}), "postgres (bench db)": bench_db}
    )
    if backends is not None:
        run.cpu["postgres (bench db)"] = backends
    run.cpu["postgres (others)"] = run.cpu.pop("postgres", 0.0)
    run.cpu["client (this process)"] = after[me][1] - before[me][1]
    busy = busy_after[0] - busy_before[0]
    run.cpu["everything else"] = max(0.0, busy - sum(run.cpu.values()))
    run.machine_busy = busy / (busy_after[1] - busy_before[1]) * 100
    run.loadavg += f" -> {loadavg()}"
    run.sessions_touched = sessions_active_since(sessions_since)
    errors = f", errors {dict(run.errors)}" if run.errors else ""
    log(
        f"{run.name}: {run.ok:,} ok in {run.seconds:.1f}s ({run.per_second:,.1f}/s), p50 {run.ms(0.5):.1f} ms, "
        f"p99 {run.ms(0.99):.1f} ms, max {run.ms(1.0):.1f} ms{errors}; CPU s "
        + ", ".join(f"{k} {v:.1f}" for k, v in run.cpu.items())
        + f"; machine {run.machine_busy:.0f}% busy, load {run.loadavg}"
    )
    return run


# --- the summary -----------------------------------------------------------------------------------

Row = tuple[str, str, str, str]  # what, the value, the goal, PASS / FAIL / ""


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_goals(rows: Sequence[Row]) -> None:
    width = max(len(r[0]) for r in rows)
    for name, value, goal, ok in rows:
        print(f"  {name:<{width}}  {value:>13}  {goal:>9}  {ok}")
    print()


def print_cpu(runs: Sequence[Run], parties: Sequence[tuple[str, str]], *, width: int = 48) -> None:
    """The CPU seconds of each party (name, short name) over each run, gunicorn's per request, how
    busy the machine was (others' work included) and its load average."""
    print(
        f"  {'CPU seconds over each run':<{width}}"
        + "".join(f"{short:>9}" for _name, short in parties)
        + "  gunicorn ms/req  busy  load average before -> after"
    )
    for run_ in runs:
        per_request = 1000 * run_.cpu.get("gunicorn", 0.0) / max(run_.ok, 1)
        print(
            f"  {run_.name:<{width}}"
            + "".join(f"{run_.cpu.get(name, 0.0):>9.1f}" for name, _short in parties)
            + f"  {per_request:>15.2f}  {run_.machine_busy:>3.0f}%  {run_.loadavg}"
        )


def goals_failed(rows: Sequence[Row]) -> list[str]:
    """The goals that failed, said after the tables (the exit code is 1 when there are any)."""
    failed = [name.strip() for name, _value, _goal, ok in rows if ok == "FAIL"]
    if failed:
        print("  goals FAILED: " + "; ".join(failed))
    return failed


def runs_json(runs: Sequence[Run]) -> list[dict]:
    return [
        {
            "name": r.name,
            "ok": r.ok,
            "errors": dict(r.errors),
            "seconds": r.seconds,
            "per_second": r.per_second,
            "p50_ms": r.ms(0.5),
            "p90_ms": r.ms(0.9),
            "p99_ms": r.ms(0.99),
            "max_ms": r.ms(1.0),
            "cpu": r.cpu,
            "machine_busy": r.machine_busy,
            "loadavg": r.loadavg,
        }
        for r in runs
    ]


def log_in_ids(ids: Sequence[int], *, processes: int = 1) -> list[Session]:
    """log_in for the agents `ids` (any organisation's, in any order), by agent id."""
    if processes <= 1:
        return sorted(_log_in_agents(list(enumerate(ids))), key=lambda s: s.agent_id)
    import multiprocessing

    from django.db import connections

    connections.close_all()
    shares = [list(enumerate(ids))[n::processes] for n in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes, initializer=_set_up_django) as pool:
        return sorted(
            (s for share in pool.map(_log_in_share, shares) for s in share), key=lambda s: s.agent_id
        )
