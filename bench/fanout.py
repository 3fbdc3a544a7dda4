"""Fan-out benchmark: one `notify` call to N agents with D trusted devices each, delivered by push
through real Celery worker process(es) to the local fake FCM server, once per push transport
(FCM_TRANSPORT: "sdk", firebase-admin's send_each; "async", keep-alive HTTP/1.1 on asyncio), side by
side with a plain aiohttp client's ceiling.

    .venv/bin/python bench/fanout.py                      # 50,000 agents x 2 devices = 100,000 messages, each transport
    .venv/bin/python bench/fanout.py --agents 2000        # smoke run (a few seconds)
    .venv/bin/python bench/fanout.py --workers 1 --concurrency 2
    .venv/bin/python bench/fanout.py --transports async   # one transport only

What it does, for real (nothing is mocked):
  1. drops and recreates its own PostgreSQL database (em_agent_bench) and migrates it with
     `manage.py migrate`; flushes its own Redis database (/13, broker and cache);
  2. starts the fake FCM server (`python -m tests.notifications.fake_fcm`) as a separate process,
     writes a service-account JSON whose OAuth token endpoint is the fake, and starts real
     `celery -A em_agent worker -P prefork` process(es) (and `celery beat`, whose sweeper is part of
     the delivery guarantee) with the environment production would give them;
  3. creates the agents (one organisation, no MFA) with their trusted devices in bulk, opts every one
     out of email for the kind (so the run measures push); then, for each transport in turn, with
     workers (and beat) started with that FCM_TRANSPORT and an empty outbox, makes ONE
     `notify(recipients=agents, kind="schedule_adjusted", ...)` call in `transaction.atomic()`;
  4. waits until every push delivery is `sent` (polling the database), samples the worker process
     tree's memory from /proc meanwhile, and reads the fake's counts: accepted, duplicates, losses;
     the CPU of each process group, and the machine's busy share (and what other processes took);
  5. the ceiling: a plain aiohttp client sends the same requests (firebase-admin's JSON body and
     headers, one POST per message, a bearer token) to the same fake server;
  6. prints the transports side by side with the ceiling against the goals of issue 13 (for the
     async transport: ratio to the ceiling >= 0.5, worker CPU <= 0.5 ms per message, all delivered
     within 60 s; for each: 0 duplicates, 0 losses, worker memory < 500 MB) and exits non-zero if a
     goal it prints fails or a run timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KIND = "schedule_adjusted"
DB_NAME = "em_agent_bench"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Goals of issue 13 ("Numbers"), for the async transport: its rate against the plain client's, the
# workers' CPU per message, 100,000 messages within a minute on a quiet machine; for every
# transport, nothing lost or duplicated and the workers' memory.
GOAL_TRANSPORT = "async"
GOAL_RATIO = 0.5
GOAL_WORKER_MS_PER_MESSAGE = 0.5
GOAL_SECONDS = 60.0
GOAL_WORKER_MB = 500.0
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
T0 = time.perf_counter()


class Phases:
    """Seconds and calls per named phase, of the project's functions wrapped from outside (`timed`):
    the benchmarks time the code as it is, without changing a file."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds
        self.calls[name] += 1

    def timed(self, name: str, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start)

        return wrapper

    def clear(self) -> None:
        self.seconds.clear()
        self.calls.clear()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=2, help="trusted devices per agent")
    parser.add_argument(
        "--workers", type=int, default=1, help="celery worker processes (each with --concurrency)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="prefork children per worker")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for all deliveries")
    parser.add_argument(
        "--transports",
        default="sdk,async",
        help="FCM_TRANSPORT of each run, in order (default both: sdk,async)",
    )
    parser.add_argument(
        "--ceiling-connections", type=int, default=100, help="connections of the plain client"
    )
    parser.add_argument("--ceiling-procs", type=int, default=1, help="processes of the plain client")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the plain-client ceiling")
    parser.add_argument("--no-beat", action="store_true", help="do not run celery beat (the outbox sweeper)")
    parser.add_argument("--db-name", default=DB_NAME)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--port", type=int, default=0, help="fake FCM port (default: a free one)")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the worker tree with py-spy (collapsed stacks) into FILE; see bench/stacks.py",
    )
    parser.add_argument("--profile-gil", action="store_true", help="with --profile: only GIL-holding samples")
    parser.add_argument("--py-spy", default=None, help="py-spy binary (default: on PATH or /tmp/pyspy-venv)")
    parser.add_argument("--json", metavar="FILE", help="also write the summary as JSON to FILE")
    parser.add_argument(
        "--whatif",
        default="",
        metavar="CHANGES",
        help="NOT the project as it is: workers run bench/whatif.py's patched code (pool32, chunk<N>, "
        "switch<N>; they change the sdk transport)",
    )
    return parser.parse_args()


# --- processes we start, and their clean-up ------------------------------------------------------


class Children:
    """Every process this script starts, each in a session of its own, ended on exit."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
        out = open(log_path, "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(  # noqa: S603  (our own argv)
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # its own process group (start_new_session): it and its children
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for _name, proc in reversed(self.procs):
            self.stop(proc)
        self.procs.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(url: str, *, method: str = "GET", timeout: float = 60.0) -> dict:
    request = urllib.request.Request(  # noqa: S310  (the fake on loopback)
        url, method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


# --- memory of a process tree, from /proc -------------------------------------------------------


def start_fake_fcm(children: Children, *, port: int, env: dict, workdir: Path) -> subprocess.Popen:
    """The fake FCM server as its own process, once it answers."""
    fake = children.start(
        "fake-fcm",
        [sys.executable, "-m", "tests.notifications.fake_fcm", "--port", str(port)],
        env=env,
        log_path=workdir / "fake_fcm.log",
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            http_json(f"http://127.0.0.1:{port}/stats", timeout=2)
            return fake
        except OSError:
            if fake.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the fake FCM did not start: see {workdir / 'fake_fcm.log'}") from None
            time.sleep(0.1)


def _proc_stats():
    """(pid, raw /proc/PID/stat) of every process that still exists."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                yield int(entry), stat.read()
        except OSError:
            continue


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, text in _proc_stats():
        ppid = int(text[text.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(pid)
    return children


def tree(pids: list[int]) -> list[int]:
    children = _children_map()
    seen: list[int] = []
    stack = list(pids)
    while stack:
        pid = stack.pop()
        seen.append(pid)
        stack.extend(children.get(pid, []))
    return seen


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class MemorySampler(threading.Thread):
    """Sums RSS (and PSS, which counts pages shared after fork once) over the worker process trees."""

    def __init__(self, roots: list[int], interval: float = 0.25) -> None:
        super().__init__(daemon=True, name="memory-sampler")
        self.roots = roots
        self.interval = interval
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.peak_processes = 0
        self.samples = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        pids = tree(self.roots)
        self.peak_rss_kb = max(self.peak_rss_kb, sum(rss_kb(pid) for pid in pids))
        if self.samples % 4 == 0:  # smaps_rollup walks the page tables: less often
            self.peak_pss_kb = max(self.peak_pss_kb, sum(pss_kb(pid) for pid in pids))
        self.peak_processes = max(self.peak_processes, len(pids))
        self.samples += 1

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.sample()


# --- CPU time per process group, from /proc ------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """(command name, user + system CPU seconds) of every process."""
    snapshot = {}
    for pid, text in _proc_stats():
        comm = text[text.index(b"(") + 1 : text.rindex(b")")].decode(errors="replace")
        fields = text[text.rindex(b")") + 2 :].split()
        snapshot[pid] = (comm, (int(fields[11]) + int(fields[12])) / TICKS)
    return snapshot


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def cpu_by_group(before, after, groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used between two snapshots, per group of process trees (by root pid), plus
    postgres and redis by command name. Processes that ended in between are not counted."""
    owner: dict[int, str] = {}
    for name, roots in groups.items():
        for pid in tree(roots) if roots else []:
            owner.setdefault(pid, name)  # the first group that names a tree owns it
    used: dict[str, float] = {}
    for pid, (comm, seconds) in after.items():
        name = owner.get(pid)
        if name is None:
            if comm.startswith("postgres"):
                name = "postgres"
            elif comm.startswith("redis"):
                name = "redis"
            else:
                continue
        used[name] = used.get(name, 0.0) + seconds - before.get(pid, (comm, 0.0))[1]
    return used


# --- database, broker, data ---------------------------------------------------------------------


def prepare_database(*, db_name: str, redis_url: str, env: dict) -> None:
    """A fresh benchmark database, migrated; the Redis database flushed; Django set up in this
    process with the same environment the children get (PRODUCTION off)."""
    import redis

    recreate_database(db_name)
    redis.Redis.from_url(redis_url).flushdb()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    os.environ.pop("PRODUCTION", None)
    import django

    django.setup()


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed(*, agents: int, devices: int) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from em_agent.models import Agent, Organization, User
    from notifications.models import Device, EmailOptOut, Platform

    now = timezone.now()
    unusable = make_password(None)  # the same unusable hash for all: hashing 50,000 times is not the point
    with transaction.atomic():
        org = Organization.objects.create(name="Bench", slug="bench", mfa_required=False)
        users = User.objects.bulk_create(
            [User(email=f"agent{i}@bench.example", password=unusable) for i in range(agents)], batch_size=5000
        )
        agent_rows = Agent.objects.bulk_create(
            [
                Agent(
                    user=user,
                    organization=org,
                    external_id=f"A{i:06d}",
                    name=f"Agent {i}",
                    timezone="Europe/Amsterdam",
                    language="nl" if i % 2 else "en",  # both languages rendered
                    activated_at=now,
                )
                for i, user in enumerate(users)
            ],
            batch_size=5000,
        )
        Device.objects.bulk_create(
            [
                Device(
                    agent=agent,
                    # FCM registration tokens are ~163 characters: same request size as the real thing
                    token=f"b{agent.pk}d{d}:APA91b{secrets.token_urlsafe(120)}"[:163],
                    platform=Platform.ANDROID if d % 2 == 0 else Platform.IOS,
                    trusted=True,
                    created_at=now,
                    last_seen_at=now,
                )
                for agent in agent_rows
                for d in range(devices)
            ],
            batch_size=5000,
        )
        EmailOptOut.objects.bulk_create(
            [EmailOptOut(user=user, kind=KIND) for user in users], batch_size=5000
        )


def unfinished_push_deliveries() -> int:
    """Pending and sending push deliveries, counted status by status: each count reads one partial
    index (delivery_due, delivery_claimed), where `status IN (...)` read the whole table, five times a
    second (29 ms a count at the end of a full run: a sixth of a CPU taken from the run it measures)."""
    from notifications.models import Channel, Delivery, DeliveryStatus

    push = Delivery.objects.filter(channel=Channel.PUSH)
    return (
        push.filter(status=DeliveryStatus.PENDING).count()
        + push.filter(status=DeliveryStatus.SENDING).count()
    )


def delivery_counts() -> dict[str, int]:
    from django.db.models import Count

    from notifications.models import Channel, Delivery

    return {
        row["status"]: row["n"]
        for row in Delivery.objects.filter(channel=Channel.PUSH).values("status").annotate(n=Count("id"))
    }


# --- the ceiling: a plain HTTP client ------------------------------------------------------------


@dataclass
class CeilingResult:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0


def ceiling_bodies() -> list[bytes]:
    """The very requests the project sends: same tokens, notification ids, texts and JSON shape."""
    import zoneinfo

    from notifications import kinds
    from notifications.models import Device, Notification

    definition = kinds.kind_get(KIND)
    readers = {}
    tokens: dict[int, list[str]] = {}
    for user_id, token, language, zone in Device.objects.filter(
        trusted=True, disabled_at__isnull=True
    ).values_list("agent__user_id", "token", "agent__language", "agent__timezone"):
        tokens.setdefault(user_id, []).append(token)
        readers[user_id] = (language, zone)
    bodies = []
    texts: dict[tuple[str, str, str], tuple[str, str]] = {}
    for pk, user_id, params in Notification.objects.filter(kind=KIND).values_list("pk", "user_id", "params"):
        language, zone = readers[user_id]
        key = (language, zone, json.dumps(params, sort_keys=True))
        if key not in texts:
            texts[key] = kinds.render(definition, params, language=language, zone=zoneinfo.ZoneInfo(zone))
        title, body = texts[key]
        data = {k: str(v) for k, v in kinds.data_for(definition, params).items()}
        data["kind"] = KIND
        data["notification_id"] = str(pk)
        for token in tokens.get(user_id, []):
            message = {
                "data": data,
                "notification": {"title": title, "body": body},
                "android": {"collapse_key": f"n{pk}"},
                "apns": {"headers": {"apns-collapse-id": f"n{pk}"}},
                "token": token,
            }
            bodies.append(json.dumps({"message": message}, separators=(",", ":")).encode())
    return bodies


def firebase_shape_matches(sample: bytes) -> bool:
    """Our hand-made body has exactly the keys firebase-admin's encoder produces for the project's message."""
    from firebase_admin import messaging

    from notifications.push import PushMessage, _fcm_message

    ours = json.loads(sample)["message"]
    theirs = messaging._MessagingService.encode_message(
        _fcm_message(
            PushMessage(
                token=ours["token"],
                notification_id=int(ours["data"]["notification_id"]),
                title=ours["notification"]["title"],
                body=ours["notification"]["body"],
                data={k: v for k, v in ours["data"].items() if k != "notification_id"},
                collapse_key=ours["android"]["collapse_key"],
            )
        )
    )
    return theirs == ours


async def _ceiling_async(url: str, bodies: list[bytes], connections: int) -> CeilingResult:
    import aiohttp
    import firebase_admin

    headers = {
        "Authorization": "Bearer fake-access-token",
        "Content-Type": "application/json",
        "X-GOOG-API-FORMAT-VERSION": "2",
        "X-FIREBASE-CLIENT": f"fire-admin-python/{firebase_admin.__version__}",
    }
    result = CeilingResult()
    position = iter(range(len(bodies)))
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one_connection() -> None:
            for index in position:
                result.sent += 1
                try:
                    async with session.post(url, data=bodies[index]) as response:
                        payload = await response.json()
                        if response.status == 200 and payload.get("name"):
                            result.ok += 1
                        else:
                            result.errors += 1
                except aiohttp.ClientError:
                    result.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*[one_connection() for _ in range(connections)])
        result.seconds = time.perf_counter() - started
    return result


def _ceiling_proc(url: str, bodies: list[bytes], connections: int, start: multiprocessing.Event, out) -> None:
    start.wait()
    result = asyncio.run(_ceiling_async(url, bodies, connections))
    out.put((result.sent, result.ok, result.errors, result.seconds))


def run_ceiling(url: str, bodies: list[bytes], *, connections: int, procs: int) -> CeilingResult:
    if procs <= 1:
        return asyncio.run(_ceiling_async(url, bodies, connections))
    context = multiprocessing.get_context("fork")
    start = context.Event()
    out = context.Queue()
    workers = [
        context.Process(target=_ceiling_proc, args=(url, bodies[i::procs], connections, start, out))
        for i in range(procs)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    started = time.perf_counter()
    start.set()
    parts = [out.get() for _ in workers]
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join()
    return CeilingResult(
        sent=sum(p[0] for p in parts),
        ok=sum(p[1] for p in parts),
        errors=sum(p[2] for p in parts),
        seconds=seconds,
    )


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Summary:
    """One transport's fan-out."""

    config: dict
    messages: int
    transport: str = "async"
    notify_seconds: float = 0.0
    commit_seconds: float = 0.0
    total_seconds: float | None = None
    last_sent_seconds: float | None = None
    delivered: int = 0
    statuses: dict = field(default_factory=dict)
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    losses: int = 0
    receipts: int = 0
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    worker_processes: int = 0
    timed_out: bool = False
    cpu: dict = field(default_factory=dict)
    machine_busy: float = 0.0  # % of all CPUs busy during the run, whoever used them
    others_busy: float = 0.0  # % of all CPUs used by processes this benchmark did not start

    @property
    def msgs_per_s(self) -> float:
        return self.accepted / self.total_seconds if self.total_seconds else 0.0

    @property
    def worker_ms_per_message(self) -> float | None:
        seconds = self.cpu.get("celery workers")
        return 1000 * seconds / self.accepted if seconds is not None and self.accepted else None


@dataclass
class Ceiling:
    msgs_per_s: float | None = None
    ok: int | None = None
    duplicates: int | None = None


def main() -> int:
    args = parse_args()
    messages = args.agents * args.devices
    workdir = Path(tempfile.mkdtemp(prefix="fanout-"))
    children = Children()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, on_signal)  # also when started in the background (SIGINT ignored)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return run(args, messages, workdir, children)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'Ctrl-C'}): stopping everything")
        return 130
    finally:
        children.stop_all()
        log(f"processes stopped; logs in {workdir}")


def run(args: argparse.Namespace, messages: int, workdir: Path, children: Children) -> int:
    from tests.notifications.fake_fcm import write_service_account

    transports = parse_transports(args.transports)
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    send_url = f"{base}/v1/projects/{{project_id}}/messages:send"
    credentials = write_service_account(workdir / "service-account.json", token_uri=f"{base}/token")
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "em_agent.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db_name}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CACHE_KEY_PREFIX": "bench",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "FCM_CREDENTIALS_FILE": str(credentials),
        "FCM_SEND_URL": send_url,
        "CONN_MAX_AGE": "60",  # production's default (settings: 60 when PRODUCTION)
        "PYTHONUNBUFFERED": "1",
        "BENCH_WHATIF": args.whatif,
    }
    config = {
        "agents": args.agents,
        "devices": args.devices,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "beat": not args.no_beat,
        "ceiling_connections": args.ceiling_connections,
        "ceiling_procs": args.ceiling_procs,
        "cpus": os.cpu_count(),
        "whatif": args.whatif,
        "transports": transports,
    }
    log(f"config: {config}; {messages:,} push messages per transport; work dir {workdir}")

    # 1. Database, broker, settings for this process too.
    prepare_database(db_name=args.db_name, redis_url=redis_url, env=env)
    log(f"database {args.db_name} created and migrated; redis db {args.redis_db} flushed")

    # 2. Fake FCM; the data once, for every transport.
    fake = start_fake_fcm(children, port=port, env=env, workdir=workdir)
    log(f"fake FCM up at {base} (pid {fake.pid})")
    started = time.perf_counter()
    seed(agents=args.agents, devices=args.devices)
    log(
        f"created {args.agents:,} agents x {args.devices} trusted devices in {time.perf_counter() - started:.1f}s; "
        f"every agent opted out of email for {KIND!r}, so this run measures push only"
    )

    # 3. Each transport in turn, from the same empty outbox, with workers of its own.
    runs: dict[str, Summary] = {}
    for transport in transports:
        forget_notifications()
        http_json(f"{base}/reset", method="POST")
        runs[transport] = run_transport(
            args,
            Summary(config=config, messages=messages, transport=transport),
            env={**env, "FCM_TRANSPORT": transport},
            children=children,
            fake=fake,
            base=base,
            workdir=workdir,
        )

    # 4. The ceiling, once the workers are gone.
    ceiling = Ceiling()
    if not args.no_ceiling:
        from django.db import connection

        bodies = ceiling_bodies()
        connection.close()
        same = firebase_shape_matches(bodies[0])
        log(
            f"ceiling: {len(bodies):,} requests built (body {'identical to' if same else 'DIFFERS from'} "
            f"firebase-admin's encoding); {args.ceiling_procs} process(es) x {args.ceiling_connections} connections"
        )
        http_json(f"{base}/reset", method="POST")
        result = run_ceiling(
            send_url.format(project_id="test"),
            bodies,
            connections=args.ceiling_connections,
            procs=args.ceiling_procs,
        )
        stats = http_json(f"{base}/stats")
        ceiling = Ceiling(
            msgs_per_s=result.ok / result.seconds if result.seconds else 0.0,
            ok=stats["accepted"],
            duplicates=stats["duplicates"],
        )
        log(f"ceiling: {result.ok:,} ok, {result.errors} errors in {result.seconds:.2f}s; fake FCM {stats}")

    return report(runs, ceiling, args)


def parse_transports(value: str) -> list[str]:
    from notifications.push import TRANSPORTS

    transports = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in transports if name not in TRANSPORTS]
    if unknown or not transports:
        raise SystemExit(f"--transports: unknown {unknown}; known: {', '.join(TRANSPORTS)}")
    return transports


def forget_notifications() -> None:
    """An empty outbox for the next transport: the notifications, their deliveries and receipts go
    (the agents and devices stay), and the planner gets fresh statistics."""
    from django.db import connection

    from notifications.models import Delivery, Notification, PushReceipt

    tables = ", ".join(model._meta.db_table for model in (PushReceipt, Delivery, Notification))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables}")  # noqa: S608  (our own table names)
        cursor.execute("ANALYZE")


def run_transport(
    args: argparse.Namespace,
    summary: Summary,
    *,
    env: dict,
    children: Children,
    fake: subprocess.Popen,
    base: str,
    workdir: Path,
) -> Summary:
    """Workers (and beat) with FCM_TRANSPORT set, one notify, until every push delivery is sent."""
    transport = summary.transport
    workers = []
    for n in range(args.workers):
        workers.append(
            children.start(
                f"worker{n}-{transport}",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "bench.whatif" if args.whatif else "em_agent",
                    "worker",
                    "-l",
                    "warning",
                    "-P",
                    "prefork",
                    "--concurrency",
                    str(args.concurrency),
                    "-n",
                    f"bench{n}-{transport}@%h",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
                env=env,
                log_path=workdir / f"worker{n}-{transport}.log",
            )
        )
    beat = None
    if not args.no_beat:
        beat = children.start(
            f"beat-{transport}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "em_agent",
                "beat",
                "-l",
                "warning",
                "-S",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile",
                str(workdir / f"beat-{transport}.pid"),
                "-s",
                str(workdir / f"beat-schedule-{transport}"),
            ],
            env=env,
            log_path=workdir / f"beat-{transport}.log",
        )

    from em_agent.celery import app as celery_app

    deadline = time.monotonic() + 60
    while True:
        replies = celery_app.control.ping(timeout=1.0)
        if len(replies) >= args.workers:
            break
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"a worker exited at start: see {workdir}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers not ready after 60 s: see {workdir}")
    log(f"[{transport}] {len(replies)} worker(s) ready: {[next(iter(r)) for r in replies]}")
    sampler = MemorySampler([worker.pid for worker in workers])
    sampler.start()

    profiler = None
    if args.profile:
        profiler = start_profiler(args, workers[0].pid, workdir, transport)

    from django.db import transaction
    from django.utils import timezone

    from em_agent.models import Agent
    from notifications.models import Delivery, PushReceipt
    from notifications.services import notify

    recipients = list(Agent.objects.filter(organization__slug="bench"))
    params = {"date": (timezone.localdate() + dt.timedelta(days=3)).isoformat()}
    log(f"[{transport}] loaded {len(recipients):,} agents; calling notify(...) once")

    # One notify, timed; then until every push delivery is sent.
    cpu_before, busy_before = cpu_snapshot(), machine_busy()
    start_wall = timezone.now()
    start = time.perf_counter()
    with transaction.atomic():
        notify(recipients=recipients, kind=KIND, params=params)
        summary.notify_seconds = time.perf_counter() - start
    summary.commit_seconds = time.perf_counter() - start - summary.notify_seconds
    log(
        f"[{transport}] notify() took {summary.notify_seconds:.2f}s; commit + enqueue of "
        f"{-(-args.agents // 500)} tasks {summary.commit_seconds:.2f}s"
    )

    last_print = 0.0
    while True:
        # Cheap while the run lasts (the partial indexes of unfinished rows): a GROUP BY over the
        # whole table five times a second cost PostgreSQL as much CPU as the claims themselves.
        unfinished = unfinished_push_deliveries()
        elapsed = time.perf_counter() - start
        if unfinished == 0:
            summary.total_seconds = elapsed
            break
        if elapsed - last_print >= 5:
            log(f"[{transport}]   {elapsed:6.1f}s: {unfinished:,} push deliveries not yet sent")
            last_print = elapsed
        if elapsed > args.timeout:
            summary.timed_out = True
            log(f"[{transport}] TIMEOUT after {args.timeout:.0f}s: {delivery_counts()}")
            break
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"a worker died during the run: see {workdir}")
        time.sleep(0.2)
    cpu_after, busy_after = cpu_snapshot(), machine_busy()
    window = time.perf_counter() - start
    groups = {
        "celery workers": [w.pid for w in workers],
        "fake FCM": [fake.pid],
        "beat": [beat.pid] if beat else [],
    }
    summary.cpu = {k: round(v, 1) for k, v in cpu_by_group(cpu_before, cpu_after, groups).items()}
    summary.cpu["bench (notify, polling)"] = round(cpu_after[os.getpid()][1] - cpu_before[os.getpid()][1], 1)
    busy, total = busy_after[0] - busy_before[0], busy_after[1] - busy_before[1]
    summary.machine_busy = round(busy / total * 100, 1)
    # postgres and redis are counted by name, so another session's postgres backends count as ours:
    # the share of others is, if anything, understated.
    summary.others_busy = round(max(busy - sum(summary.cpu.values()), 0.0) / total * 100, 1)
    log(
        f"[{transport}] CPU seconds over the {window:.0f}s window (machine {summary.machine_busy}% busy of "
        f"{os.cpu_count()} CPUs, {summary.others_busy}% by other processes): {summary.cpu}"
    )
    sampler.stop()
    if profiler is not None:
        stop_profiler(profiler)
    summary.statuses = delivery_counts()
    summary.delivered = summary.statuses.get("sent", 0)
    last_sent = (
        Delivery.objects.filter(status="sent").order_by("-sent_at").values_list("sent_at", flat=True).first()
    )
    if last_sent:
        summary.last_sent_seconds = (last_sent - start_wall).total_seconds()
    summary.receipts = PushReceipt.objects.count()
    log(f"[{transport}] deliveries: {summary.statuses} after {summary.total_seconds or elapsed:.1f}s")

    # Late duplicates (a redelivered task) would arrive after "all sent": give them a moment.
    time.sleep(2)
    stats = http_json(f"{base}/stats")
    summary.requests = stats["requests"]
    summary.accepted = stats["accepted"]
    summary.duplicates = stats["duplicates"]
    summary.losses = summary.messages - (stats["accepted"] - stats["duplicates"])
    summary.peak_rss_mb = sampler.peak_rss_kb / 1024
    summary.peak_pss_mb = sampler.peak_pss_kb / 1024
    summary.worker_processes = sampler.peak_processes
    log(
        f"[{transport}] fake FCM: {stats}; worker tree peak RSS {summary.peak_rss_mb:.0f} MB "
        f"(PSS {summary.peak_pss_mb:.0f} MB)"
    )

    # Done: stop this transport's workers and beat, so the next run (and the ceiling) has the CPU.
    for proc in [*workers, *([beat] if beat else [])]:
        children.stop(proc)
    return summary


def start_profiler(args: argparse.Namespace, pid: int, workdir: Path, transport: str) -> subprocess.Popen:
    import shutil

    binary = args.py_spy or shutil.which("py-spy") or "/tmp/pyspy-venv/bin/py-spy"  # noqa: S108
    argv = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--nonblocking",
        "--threads",
        "--rate",
        "50",
        "--format",
        "raw",
        "-o",
        str(Path(f"{args.profile}.{transport}").resolve()),
    ]
    if args.profile_gil:
        argv.append("--gil")
    log_file = open(workdir / "py-spy.log", "wb")  # noqa: SIM115  (closed below, the child keeps it)
    proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT)  # noqa: S603
    log_file.close()
    time.sleep(1.0)
    log(f"py-spy recording the worker tree into {args.profile}.{transport} (pid {proc.pid})")
    return proc


def stop_profiler(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    log("py-spy stopped")


def report(runs: dict[str, Summary], ceiling: Ceiling, args: argparse.Namespace) -> int:
    """The transports side by side with the ceiling, against the goals of issue 13 (the async
    transport) and, for every transport, nothing lost, nothing duplicated, the memory bound."""

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    def ratio(s: Summary) -> float | None:
        return s.msgs_per_s / ceiling.msgs_per_s if ceiling.msgs_per_s else None

    names = list(runs)
    rows: list[tuple[str, list[str], str, list[str]]] = []  # name, value per transport, goal, verdicts

    def row(name: str, value, goal: str = "", check=None, only: str | None = None) -> None:
        values, verdicts = [], []
        for transport in names:
            s = runs[transport]
            values.append(value(s))
            judged = check is not None and (only is None or transport == only)
            verdicts.append(verdict(check(s)) if judged else "")
        rows.append((name, values, goal, verdicts))

    def seconds(s: Summary) -> str:
        if s.total_seconds is None:
            return f"not all ({s.delivered:,}/{args.agents:,})"
        return f"{s.total_seconds:.1f}"

    def within(s: Summary) -> bool:
        return s.total_seconds is not None and s.total_seconds <= GOAL_SECONDS and s.delivered == args.agents

    def ms(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else "-"

    row("messages / second", lambda s: f"{s.msgs_per_s:,.0f}")
    row(
        "ratio to the ceiling",
        lambda s: f"{ratio(s):.2f}" if ratio(s) is not None else "-",
        f">= {GOAL_RATIO}",
        (lambda s: ratio(s) is not None and ratio(s) >= GOAL_RATIO) if ceiling.msgs_per_s else None,
        only=GOAL_TRANSPORT,
    )
    row("all delivered after (s)", seconds, f"<= {GOAL_SECONDS:.0f}", within, only=GOAL_TRANSPORT)
    row("  machine busy during the run (%)", lambda s: f"{s.machine_busy:.0f}")
    row("  of which other processes (%)", lambda s: f"{s.others_busy:.0f}")
    row(
        "  last sent_at - notify start (s)",
        lambda s: f"{s.last_sent_seconds:.1f}" if s.last_sent_seconds else "-",
    )
    row("notify() call (s)", lambda s: f"{s.notify_seconds:.2f}")
    row("  commit + enqueue (s)", lambda s: f"{s.commit_seconds:.2f}")
    row(
        "worker CPU (ms / message)",
        lambda s: ms(s.worker_ms_per_message),
        f"<= {GOAL_WORKER_MS_PER_MESSAGE}",
        lambda s: (
            s.worker_ms_per_message is not None and s.worker_ms_per_message <= GOAL_WORKER_MS_PER_MESSAGE
        ),
        only=GOAL_TRANSPORT,
    )
    row("requests reaching the fake", lambda s: f"{s.requests:,}")
    row("accepted", lambda s: f"{s.accepted:,}", "= messages", lambda s: s.accepted == s.messages)
    row("duplicates", lambda s: f"{s.duplicates:,}", "0", lambda s: s.duplicates == 0)
    row("losses", lambda s: f"{s.losses:,}", "0", lambda s: s.losses == 0)
    row("push receipts in the DB", lambda s: f"{s.receipts:,}")
    row(
        "peak worker RSS (MB)",
        lambda s: f"{s.peak_rss_mb:,.0f} ({s.worker_processes} proc)",
        f"< {GOAL_WORKER_MB:.0f}",
        lambda s: s.peak_rss_mb < GOAL_WORKER_MB,
    )
    row("  peak worker PSS (MB, shared pages once)", lambda s: f"{s.peak_pss_mb:,.0f}")
    groups = sorted(
        {name for s in runs.values() for name in s.cpu},
        key=lambda n: -max(r.cpu.get(n, 0) for r in runs.values()),
    )
    for group in groups:
        row(
            f"  CPU ms/msg: {group}",
            lambda s, group=group: ms(1000 * s.cpu[group] / max(s.accepted, 1)) if group in s.cpu else "-",
        )

    config = next(iter(runs.values())).config
    print()
    print(
        f"== fanout: {config['agents']:,} agents x {config['devices']} devices = {args.agents * config['devices']:,} "
        f"push messages per transport; {config['workers']} worker(s) x concurrency {config['concurrency']} "
        f"(prefork), beat {'on' if config['beat'] else 'off'}, {config['cpus']} CPUs =="
    )
    if config["whatif"]:
        print(
            f"   WHAT-IF run: the workers ran the project's code patched by bench/whatif.py ({config['whatif']})"
        )
    print(
        f"   goals of issue 13 for the {GOAL_TRANSPORT} transport; for every transport: all accepted, none "
        "duplicated or lost, worker memory"
    )
    width = max(len(r[0]) for r in rows)
    columns = [max(len(name), *(len(r[1][i]) for r in rows)) for i, name in enumerate(names)]
    header = "  ".join(f"{name:>{columns[i]}}" for i, name in enumerate(names))
    print(f"  {'':<{width}}  {header}  {'ceiling':>9}  {'goal':>10}")
    ceiling_values = {
        "messages / second": f"{ceiling.msgs_per_s:,.0f}" if ceiling.msgs_per_s else "-",
        "accepted": f"{ceiling.ok:,}" if ceiling.ok is not None else "-",
        "duplicates": f"{ceiling.duplicates:,}" if ceiling.duplicates is not None else "-",
    }
    for name, values, goal, verdicts in rows:
        cells = "  ".join(f"{value:>{columns[i]}}" for i, value in enumerate(values))
        judged = " ".join(f"{names[i]} {v}" for i, v in enumerate(verdicts) if v)
        print(f"  {name:<{width}}  {cells}  {ceiling_values.get(name, ''):>9}  {goal:>10}  {judged}")
    print()
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "runs": {
                        name: {**s.__dict__, "msgs_per_s": s.msgs_per_s, "ratio": ratio(s)}
                        for name, s in runs.items()
                    },
                    "ceiling": ceiling.__dict__,
                },
                indent=2,
                default=str,
            )
        )
    failed = [
        f"{name.strip()} ({names[i]})"
        for name, _values, _goal, verdicts in rows
        for i, v in enumerate(verdicts)
        if v == "FAIL"
    ]
    failed += [f"timed out ({name})" for name, s in runs.items() if s.timed_out]
    if failed:
        print("  goals FAILED: " + "; ".join(failed))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
