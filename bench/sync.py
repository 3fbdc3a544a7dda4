# ruff: noqa: S608  (db_counts: constant SQL of this file, the organisation id a parameter)
"""WFM sync benchmark: a 10,000-agent export (42 days, ~6 activities a day) synced into PostgreSQL.

    .venv/bin/python bench/sync.py                      # 10,000 agents x 42 days (~2.5 M activities)
    .venv/bin/python bench/sync.py --agents 200         # smoke run (well under a minute)
    .venv/bin/python bench/sync.py --agents 1000 --profile /tmp/sync.txt   # + py-spy of the first sync
    .venv/bin/python bench/sync.py --agents 1000 --cprofile /tmp/sync.prof # + cProfile of the first sync

What it does, for real (nothing is mocked; the project's code is not patched):
  1. drops and recreates its own PostgreSQL database (em_agent_syncbench), migrates it with
     `manage.py migrate`, flushes its own Redis database (/12: the broker the on-commit hooks of
     notifications enqueue to; no worker consumes it);
  2. writes an export in the documented format (docs/wfm-export.md) into a temporary directory:
     `roster.json` (agents with teams, skills, eight activity codes) and `schedules.json` (`--days`
     days from 7 days back; per agent a day off a week, working days of 7 activities: work blocks,
     breaks, lunch, a meeting or training; days 28 or more ahead unpublished), deterministic;
  3. one organisation (Europe/Amsterdam) and no WfmSource: each run is `wfm_sync(organization=,
     connector=DirectoryConnector(dir), trigger="bench")` in a child process of its own, so its peak
     memory is its own (ru_maxrss, and RSS sampled from /proc); the time is that of the call;
  4. a roster-only sync (agents are created, not activated), one UPDATE that activates them all, then
     the timed FIRST sync of the schedules; the COPY floor: the same activity rows (agent, start,
     end, code, note) COPYed from memory into an unindexed temporary table;
  5. a RERUN with no change (rows written to the schedule tables, from pg_stat_user_tables and from
     the journal and the activity ids), and a rerun with 1 % of the days changed in the export
     (lunch moved by 15 minutes and the day note; off days: the note), which must report exactly
     those days as changed;
  6. prints the summary against the goals, with each run's counts, phases (by wrapping the sync's
     functions from outside, in the child) and SQL statements, and exits non-zero if a goal it
     prints fails (time, memory, rows written) or a run failed, timed out or wrote what it should not
     have.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import (  # noqa: E402  (after the path)
    Children,
    MemorySampler,
    Phases,
    cpu_by_group,
    cpu_snapshot,
    log,
    machine_busy,
    prepare_database,
    start_profiler,
    stop_profiler,
)

DB_NAME = "em_agent_syncbench"
ZONE = "Europe/Amsterdam"
FIRST_DAY = -7  # the export starts 7 days back, as the sync window does
UNPUBLISHED_FROM = 28  # days this far ahead are not published yet
SCHEDULE_TABLES = ("schedules_scheduleday", "schedules_activity", "schedules_schedulechange")
EXPORT = {"format": "em-agent-wfm-export", "version": 1}
# Goals of the issue.
GOAL_FIRST_SECONDS = 120.0
GOAL_FIRST_MB = 1024.0
GOAL_RERUN_SECONDS = 30.0
GOAL_CHANGED_SECONDS = 30.0

CODES = [
    # code, name, category, colour, paid, open for requests / time off / absence
    ("OPEN", "Open shift", "work", "#4A90D9", True, True, False, False),
    ("BACK", "Back office", "other", "#8B572A", True, True, False, False),
    ("BREAK", "Break", "break", "#F5A623", True, False, False, False),
    ("LUNCH", "Lunch", "meal", "#7ED321", False, True, False, False),
    ("MEET", "Team meeting", "meeting", "#BD10E0", True, False, False, False),
    ("TRAIN", "Training", "training", "#9013FE", True, False, False, False),
    ("VAC", "Vacation", "time_off", "#50E3C2", True, False, True, False),
    ("SICK", "Sick", "absence", "#D0021B", True, False, False, True),
]
TEAMS = 20
SKILLS = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=42, help="days of the export, from 7 days back")
    parser.add_argument("--change-percent", type=float, default=1.0, help="days changed for the third run")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a sync run is stopped")
    parser.add_argument("--db-name", default=DB_NAME)
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument(
        "--no-phases",
        action="store_true",
        help="do not time the sync's functions and SQL statements in the child (they cost < 1 %%)",
    )
    parser.add_argument("--profile", metavar="FILE", help="py-spy (raw collapsed stacks) of the first sync")
    parser.add_argument("--profile-gil", action="store_true", help="with --profile: only GIL-holding samples")
    parser.add_argument("--py-spy", default=None, help="py-spy binary (default: on PATH or /tmp/pyspy)")
    parser.add_argument("--cprofile", metavar="FILE", help="cProfile of the first sync (pstats file)")
    parser.add_argument("--json", metavar="FILE", help="also write the summary as JSON to FILE")
    parser.add_argument("--keep", action="store_true", help="keep the export directory")
    # Internal: the child that runs one wfm_sync.
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--org", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.py_spy is None and Path("/tmp/pyspy/bin/py-spy").exists():  # noqa: S108
        args.py_spy = "/tmp/pyspy/bin/py-spy"  # noqa: S108
    return args


# --- the export ----------------------------------------------------------------------------------


def external_id(index: int) -> str:
    return f"B{index:06d}"


def roster_document(agents: int, generated_at: str) -> dict:
    return {
        **EXPORT,
        "generated_at": generated_at,
        "teams": [{"external_id": f"T{t:02d}", "name": f"Team {t}"} for t in range(TEAMS)],
        "skills": [{"external_id": f"S{s:02d}", "name": f"Skill {s}"} for s in range(SKILLS)],
        "activity_codes": [
            {
                "code": code,
                "name": name,
                "category": category,
                "color": color,
                "paid": paid,
                "open_for_requests": requests,
                "open_for_time_off": time_off,
                "open_for_absence": absence,
            }
            for code, name, category, color, paid, requests, time_off, absence in CODES
        ],
        "agents": [
            {
                "external_id": external_id(i),
                "name": f"Agent {i}",
                "email": f"agent{i}@syncbench.example",
                "timezone": ZONE,
                "language": "nl" if i % 2 else "en",
                "team": f"T{i % TEAMS:02d}",
                "supervisor_email": None,
                "skills": [
                    {"skill": f"S{(i + k * 3) % SKILLS:02d}", "level": 1 + (i * 7 + k) % 20}
                    for k in range(1 + i % 3)
                ],
            }
            for i in range(agents)
        ],
    }


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def is_changed(index: int, offset: int, days: int, percent: float) -> bool:
    """The days the third run changes: every (100 / percent)th day of the export, spread over agents
    and dates."""
    if percent <= 0:
        return False
    every = max(1, round(100 / percent))
    return (index * days + (offset - FIRST_DAY)) % every == every // 3


def day_row(index: int, offset: int, date: dt.date, *, changed: bool) -> dict:
    """Agent `index`'s day `offset` days from today: a day off a week (now and then a vacation day),
    else 7 activities from 06:00-10:00 for nine hours. `changed`: the lunch 15 minutes later (and the
    work around it) and the note, or only the note of a day off."""
    published = offset < UNPUBLISHED_FROM
    note = "Team meeting moved to Thursday." if (index + offset) % 11 == 0 else ""
    if (index + offset) % 7 == 0:
        activities = []
        if (index * 7 + offset) % 53 == 0:
            activities = [{"code": "VAC", "start": "09:00", "end": "17:00"}]
        if changed:
            note = "Day off (changed)."
        return {
            "agent": external_id(index),
            "date": date.isoformat(),
            "published": published,
            "note": note,
            "activities": activities,
        }
    start = 6 * 60 + ((index * 3 + offset) % 17) * 15
    shift = 15 if changed else 0
    last = {0: "MEET", 1: "TRAIN"}.get((index + offset) % 5, "BACK" if index % 4 == 0 else "OPEN")
    blocks = [
        ("OPEN", 120, ""),
        ("BREAK", 15, ""),
        ("OPEN", 135 + shift, ""),
        ("LUNCH", 30, ""),
        ("OPEN", 120 - shift, ""),
        ("BREAK", 15, ""),
        (last, 105, "Room 2.14" if last == "TRAIN" else ""),
    ]
    activities = []
    at = start
    for code, minutes, activity_note in blocks:
        activity = {"code": code, "start": hhmm(at), "end": hhmm(at + minutes)}
        if activity_note:
            activity["note"] = activity_note
        activities.append(activity)
        at += minutes
    if changed:
        note = "Lunch moved 15 minutes (changed)."
    return {
        "agent": external_id(index),
        "date": date.isoformat(),
        "published": published,
        "note": note,
        "activities": activities,
    }


@dataclass
class ExportShape:
    days: int = 0
    working_days: int = 0
    activities: int = 0
    changed_days: int = 0
    bytes: int = 0


def write_schedules(
    path: Path, *, agents: int, days: int, today: dt.date, generated_at: str, change_percent: float
) -> ExportShape:
    """schedules.json, written day by day (the document is never all in this process's memory) and
    replaced whole."""
    shape = ExportShape()
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8") as out:
        out.write(json.dumps({**EXPORT, "generated_at": generated_at})[:-1] + ', "days": [\n')
        first = True
        for index in range(agents):
            for offset in range(FIRST_DAY, FIRST_DAY + days):
                changed = is_changed(index, offset, days, change_percent)
                row = day_row(index, offset, today + dt.timedelta(days=offset), changed=changed)
                out.write(("" if first else ",\n") + json.dumps(row, separators=(",", ":")))
                first = False
                shape.days += 1
                shape.working_days += bool(row["activities"])
                shape.activities += len(row["activities"])
                shape.changed_days += changed
        out.write("\n]}\n")
    os.replace(partial, path)
    shape.bytes = path.stat().st_size
    return shape


def write_roster(directory: Path, *, agents: int, generated_at: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "roster.json").write_text(
        json.dumps(roster_document(agents, generated_at)), encoding="utf-8"
    )


# --- the child: one wfm_sync ---------------------------------------------------------------------

PHASES = Phases()
timed = PHASES.timed
SQL: dict[str, list] = defaultdict(lambda: [0, 0.0, 0])  # statement kind: calls, seconds, rows


_TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?([a-z_]+)"?', re.IGNORECASE)


def sql_kind(sql: str, many: bool) -> str:
    verb = sql.lstrip().split(None, 1)[0].upper()
    match = _TABLE.search(sql)
    kind = f"{verb} {match[1] if match else ''}".strip()
    if "FOR UPDATE" in sql:
        kind += " FOR UPDATE"
    if verb == "UPDATE" and "CASE WHEN" in sql:
        kind += " (bulk_update CASE)"
    if many:
        kind += " (executemany)"
    return kind


def sql_timer(execute, sql, params, many, context):
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        entry = SQL[sql_kind(sql, many)]
        entry[0] += 1
        entry[1] += time.perf_counter() - start
        with contextlib.suppress(Exception):
            entry[2] += max(context["cursor"].rowcount, 0)


def instrument() -> None:
    """Times the sync's own functions by wrapping them from outside (no file changes): the roster,
    each day row's key, hash and validation, each batch, its service call and the service's
    statements (schedules.bulk runs its own psycopg cursors, which the SQL timer does not see)."""
    import schedules.bulk
    import schedules.services
    import sync.rows
    import sync.services

    sync.services._sync_roster = timed("roster (_sync_roster)", sync.services._sync_roster)
    sync.rows.day_key = timed("day rows' keys (rows.day_key)", sync.rows.day_key)
    sync.rows.day_content = timed("day rows' content and hash (rows.day_content)", sync.rows.day_content)
    sync.rows.day_row_from_content = timed(
        "validate changed days (rows.day_row_from_content)", sync.rows.day_row_from_content
    )
    sync.services._local_changes_since = timed(
        "local changes (_local_changes_since)", sync.services._local_changes_since
    )
    sync.services._apply_days = timed("batches (_apply_days)", sync.services._apply_days)
    sync.services.schedule_days_apply = timed(
        "  of which schedule_days_apply", sync.services.schedule_days_apply
    )
    sync.services._plan = timed("  of which _plan (DayRow -> DayPlan)", sync.services._plan)
    for name in (
        "days_insert",
        "days_update",
        "days_set_hash",
        "activity_ids_allocate",
        "activities_delete",
        "activities_update",
        "activities_insert",
    ):
        setattr(schedules.bulk, name, timed(f"    of which bulk.{name}", getattr(schedules.bulk, name)))


def child(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.db import connection

    from em_agent.models import Organization
    from sync.connectors import DirectoryConnector
    from sync.services import wfm_sync

    if not args.no_phases:
        instrument()
    organization = Organization.objects.get(pk=args.org)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def backend_cpu() -> float:
        try:
            with open(f"/proc/{backend}/stat", "rb") as stat:
                text = stat.read()
            fields = text[text.rindex(b")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return 0.0

    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
    usage_before, backend_before = resource.getrusage(resource.RUSAGE_SELF), backend_cpu()
    started = time.perf_counter()
    wrapper = connection.execute_wrapper(sql_timer) if not args.no_phases else contextlib.nullcontext()
    with wrapper:
        if profiler:
            profiler.enable()
        run = wfm_sync(organization=organization, connector=DirectoryConnector(args.child), trigger="bench")
        if profiler:
            profiler.disable()
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    backend_seconds = backend_cpu() - backend_before
    connection.close()  # the backend exits and flushes its statistics (pg_stat_user_tables)
    if profiler:
        profiler.dump_stats(args.cprofile)
    result = {
        "run_id": run.pk,
        "status": run.status,
        "error": run.error,
        "counts": run.counts,
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_seconds": (usage.ru_utime + usage.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime),
        "backend_pid": backend,
        "backend_cpu_seconds": backend_seconds,
        "phases": {name: [PHASES.calls[name], PHASES.seconds[name]] for name in PHASES.seconds},
        "sql": dict(SQL),
    }
    Path(args.out).write_text(json.dumps(result, default=str))
    return 0


# --- the parent ----------------------------------------------------------------------------------


@dataclass
class SyncResult:
    name: str
    seconds: float | None = None  # of the wfm_sync call
    wall_seconds: float = 0.0  # of the child process (Django set-up included)
    status: str = "not run"
    error: str = ""
    counts: dict = field(default_factory=dict)
    peak_rss_mb: float = 0.0  # ru_maxrss of the child
    sampled_rss_mb: float = 0.0  # the highest RSS sampled from /proc
    cpu: dict = field(default_factory=dict)
    machine_busy: float = 0.0
    writes: dict = field(default_factory=dict)  # table: (inserted, updated, deleted)
    phases: dict = field(default_factory=dict)
    sql: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def schedule_rows_written(self) -> int:
        return sum(sum(self.writes.get(t, (0, 0, 0))) for t in SCHEDULE_TABLES)


def table_writes(db_url: str) -> dict[str, tuple[int, int, int]]:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
        ).fetchall()
    return {name: (ins, upd, dele) for name, ins, upd, dele in rows}


def postmaster_reaped_cpu() -> float:
    """CPU seconds of the postmaster's children that have ended (cutime + cstime)."""
    for pid, (comm, _seconds) in cpu_snapshot().items():
        if comm != "postgres":
            continue
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
        fields = text[text.rindex(b")") + 2 :].split()
        parent = int(fields[1])
        try:
            with open(f"/proc/{parent}/comm") as handle:
                if handle.read().strip() == "postgres":
                    continue  # a backend, not the postmaster
        except OSError:
            continue
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def backend_gone(db_url: str, pid: int, timeout: float = 10.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.05)


def run_sync(
    name: str,
    *,
    args: argparse.Namespace,
    org_id: int,
    directory: Path,
    env: dict,
    children: Children,
    workdir: Path,
    db_url: str,
    profile: bool = False,
) -> SyncResult:
    result = SyncResult(name)
    out = workdir / f"{name.replace(' ', '_')}.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(directory), "--org", str(org_id)]
    argv += ["--out", str(out)]
    if args.no_phases:
        argv.append("--no-phases")
    if profile and args.cprofile:
        argv += ["--cprofile", str(Path(args.cprofile).resolve())]
    before_writes = table_writes(db_url)
    before, busy_before, reaped_before = cpu_snapshot(), machine_busy(), postmaster_reaped_cpu()
    started = time.perf_counter()
    proc = children.start(name, argv, env=env, log_path=workdir / f"{name.replace(' ', '_')}.log")
    sampler = MemorySampler([proc.pid], interval=0.2)
    sampler.start()
    profiler = start_profiler(args, proc.pid, workdir) if profile and args.profile else None
    try:
        proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        log(f"{name}: no end after {args.timeout:.0f} s: stopping it")
        last = cpu_snapshot()  # the child's CPU so far, before it ends (its backend's is not known)
        result.cpu["sync (child process)"] = (
            last.get(proc.pid, ("", 0.0))[1] - before.get(proc.pid, ("", 0.0))[1]
        )
        children.stop(proc)
        result.status = "timed out"
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        sampler.stop()
    result.wall_seconds = time.perf_counter() - started
    after, busy_after = cpu_snapshot(), machine_busy()
    result.sampled_rss_mb = sampler.peak_rss_kb / 1024
    # Processes that ended (the child, its backend) are not in `after`: theirs come from the child.
    cpu = cpu_by_group(before, after, {"others": []})
    result.cpu["postgres (other processes, any database)"] = cpu.get("postgres", 0.0)
    busy = busy_after[0] - busy_before[0]
    result.machine_busy = busy / max(busy_after[1] - busy_before[1], 1e-9) * 100
    if out.exists():
        data = json.loads(out.read_text())
        result.seconds = data["seconds"]
        result.status, result.error, result.counts = data["status"], data["error"], data["counts"]
        result.peak_rss_mb = data["peak_rss_mb"]
        result.cpu["sync (child process)"] = data["cpu_seconds"]
        result.cpu["postgres (its backend)"] = data["backend_cpu_seconds"]
        result.phases, result.sql = data["phases"], data["sql"]
        backend_gone(db_url, data["backend_pid"])
        # The writer threads' connections (and autovacuum workers) ended during the run: their CPU
        # is in the postmaster's count of its reaped children, with the sync's own backend's.
        result.cpu["postgres (backends that ended: the writers', autovacuum)"] = max(
            0.0, postmaster_reaped_cpu() - reaped_before - data["backend_cpu_seconds"]
        )
    elif result.status == "not run":
        result.status = f"child exited {proc.returncode} without a result (see its log)"
    result.cpu["everything else"] = max(0.0, busy - sum(result.cpu.values()))
    after_writes = table_writes(db_url)
    result.writes = {
        table: tuple(a - b for a, b in zip(values, before_writes.get(table, (0, 0, 0)), strict=True))
        for table, values in after_writes.items()
        if values != before_writes.get(table, (0, 0, 0))
    }
    if result.seconds is not None:
        log(
            f"{name}: {result.status} in {result.seconds:.1f} s (child {result.wall_seconds:.1f} s), peak RSS "
            f"{result.peak_rss_mb:.0f} MB; counts {result.counts}"
            + (f"; error {result.error}" if result.error else "")
        )
    else:
        log(
            f"{name}: {result.status} after {result.wall_seconds:.1f} s; peak RSS sampled {result.sampled_rss_mb:.0f} MB"
        )
    return result


def copy_floor(db_url: str, org_id: int) -> tuple[float, int]:
    """The activity rows the first sync wrote (agent, start, end, code, note), COPYed out into memory
    first, then timed: COPY from memory into an unindexed temporary table (no constraint, no index,
    no WAL): PostgreSQL's cost of storing those rows, nothing else."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        chunks: list[bytes] = []
        with conn.cursor().copy(
            'COPY (SELECT a.agent_id, a.start, a."end", a.activity_code_id, a.note FROM schedules_activity a '
            "JOIN em_agent_agent g ON g.id = a.agent_id WHERE g.organization_id = %s) TO STDOUT",
            [org_id],
        ) as copy:
            for block in copy:
                chunks.append(bytes(block))
        conn.execute(
            'CREATE TEMP TABLE floor_activity (agent_id bigint, start timestamptz, "end" timestamptz, '
            "activity_code_id bigint, note text)"
        )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy(
            'COPY floor_activity (agent_id, start, "end", activity_code_id, note) FROM STDIN'
        ) as copy:
            for block in chunks:
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM floor_activity").fetchone()[0]
    return seconds, rows


def db_counts(db_url: str, org_id: int) -> dict[str, int]:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:

        def one(sql: str) -> int:
            return conn.execute(sql, [org_id]).fetchone()[0] or 0  # our own constant SQL

        agents = "SELECT id FROM em_agent_agent WHERE organization_id = %s"
        return {
            "days": one(f"SELECT count(*) FROM schedules_scheduleday WHERE agent_id IN ({agents})"),
            "activities": one(f"SELECT count(*) FROM schedules_activity WHERE agent_id IN ({agents})"),
            "max activity id": one(f"SELECT max(id) FROM schedules_activity WHERE agent_id IN ({agents})"),
            "journal rows": one(
                f"SELECT count(*) FROM schedules_schedulechange WHERE agent_id IN ({agents})"
            ),
            "notifications": one(
                "SELECT count(*) FROM notifications_notification WHERE user_id IN "
                "(SELECT user_id FROM em_agent_agent WHERE organization_id = %s)"
            ),
        }


def main() -> int:
    args = parse_args()
    if args.child:
        return child(args)
    workdir = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    children = Children()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return run(args, workdir, children)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'Ctrl-C'}): stopping everything")
        return 130
    finally:
        children.stop_all()
        if not args.keep:
            for name in (
                "full/schedules.json",
                "full/roster.json",
                "roster/schedules.json",
                "roster/roster.json",
            ):
                with contextlib.suppress(OSError):
                    (workdir / name).unlink()
        log(f"processes stopped; logs in {workdir}")


def run(args: argparse.Namespace, workdir: Path, children: Children) -> int:
    db_url = f"postgresql://postgres@127.0.0.1:5432/{args.db_name}"
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    env = {
        key: value for key, value in os.environ.items() if key not in ("PRODUCTION", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "em_agent.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db_name}",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "CACHE_KEY_PREFIX": "syncbench",
            "DEBUG": "0",  # no query log in memory
            "CONN_MAX_AGE": "60",
            "PYTHONUNBUFFERED": "1",
        }
    )
    config = {
        "agents": args.agents,
        "days": args.days,
        "change_percent": args.change_percent,
        "cpus": os.cpu_count(),
    }
    log(f"config: {config}; work dir {workdir}")

    # 1. Database, Redis, Django in this process (set-up and checks only).
    prepare_database(db_name=args.db_name, redis_url=redis_url, env=env)
    from django.db import connection
    from django.utils import timezone

    from em_agent.models import Organization

    log(f"database {args.db_name} created and migrated; redis db {args.redis_db} flushed")
    organization = Organization.objects.create(
        name="Sync bench", slug="syncbench", mfa_required=False, default_timezone=ZONE
    )

    # 2. The export.
    now = timezone.now()
    today = now.astimezone(zoneinfo.ZoneInfo(ZONE)).date()
    generated_at = now.astimezone(zoneinfo.ZoneInfo(ZONE)).isoformat(timespec="seconds")
    full, roster_only = workdir / "full", workdir / "roster"
    started = time.perf_counter()
    write_roster(full, agents=args.agents, generated_at=generated_at)
    write_roster(roster_only, agents=args.agents, generated_at=generated_at)
    (roster_only / "schedules.json").write_text(
        json.dumps({**EXPORT, "generated_at": generated_at, "days": []})
    )
    shape = write_schedules(
        full / "schedules.json",
        agents=args.agents,
        days=args.days,
        today=today,
        generated_at=generated_at,
        change_percent=0,
    )
    log(
        f"export written in {time.perf_counter() - started:.1f} s: {args.agents:,} agents, {shape.days:,} days "
        f"({shape.working_days:,} working), {shape.activities:,} activities; schedules.json "
        f"{shape.bytes / 2**20:.0f} MiB, roster.json {(full / 'roster.json').stat().st_size / 2**20:.1f} MiB"
    )
    sync = functools.partial(
        run_sync,
        args=args,
        org_id=organization.pk,
        env=env,
        children=children,
        workdir=workdir,
        db_url=db_url,
    )
    results: list[SyncResult] = []
    checks: dict[str, bool] = {}

    # 3. Roster, activation, the first sync of the schedules.
    roster = sync("roster sync", directory=roster_only)
    results.append(roster)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE em_agent_agent SET activated_at = %s WHERE organization_id = %s", [now, organization.pk]
        )
        activated = cursor.rowcount
        cursor.execute("ANALYZE")  # what autovacuum does after 10,000 new agents
    log(f"{activated:,} agents activated in one UPDATE; ANALYZE")
    checks["roster: every agent created"] = roster.counts.get("agents_created") == args.agents

    first = sync("first sync", directory=full, profile=True)
    results.append(first)
    counts_first = db_counts(db_url, organization.pk)
    log(f"database after the first sync: {counts_first}")
    checks["first sync: every day and activity written"] = (
        counts_first["days"] == shape.days and counts_first["activities"] == shape.activities
    )
    floor_seconds, floor_rows = (None, 0)
    if first.ok:
        floor_seconds, floor_rows = copy_floor(db_url, organization.pk)
        log(
            f"COPY floor: {floor_rows:,} activity rows into an unindexed temporary table in {floor_seconds:.2f} s"
        )

    # 4. The reruns.
    rerun = changed = None
    if first.ok:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # autovacuum would have by the next night
        rerun = sync("rerun, no change", directory=full)
        results.append(rerun)
        counts_rerun = db_counts(db_url, organization.pk)
        checks["rerun: no schedule row written (pg_stat_user_tables)"] = rerun.schedule_rows_written() == 0
        checks["rerun: no journal row, no new activity id"] = (
            counts_rerun["journal rows"] == counts_first["journal rows"]
            and counts_rerun["max activity id"] == counts_first["max activity id"]
        )
        checks["rerun: days_changed 0"] = rerun.counts.get("days_changed", 0) == 0
        started = time.perf_counter()
        changed_shape = write_schedules(
            full / "schedules.json",
            agents=args.agents,
            days=args.days,
            today=today,
            generated_at=generated_at,
            change_percent=args.change_percent,
        )
        log(
            f"export rewritten with {changed_shape.changed_days:,} days changed in {time.perf_counter() - started:.1f} s"
        )
        changed = sync(f"rerun, {args.change_percent:g} % changed", directory=full)
        results.append(changed)
        counts_changed = db_counts(db_url, organization.pk)
        checks[f"{args.change_percent:g} % rerun: days_changed = days changed in the export"] = (
            changed.counts.get("days_changed") == changed_shape.changed_days
        )
        checks[f"{args.change_percent:g} % rerun: activities as in the export"] = (
            counts_changed["activities"] == changed_shape.activities
        )
        log(f"database after the changed rerun: {counts_changed}")

    return report(args, config, shape, results, first, rerun, changed, floor_seconds, floor_rows, checks)


def report(args, config, shape, results, first, rerun, changed, floor_seconds, floor_rows, checks) -> int:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    def secs(result: SyncResult | None) -> str:
        if result is None:
            return "not run"
        if result.seconds is None:
            return f"{result.status} ({result.wall_seconds:.0f} s)"
        return f"{result.seconds:.1f}" + ("" if result.ok else f" ({result.status})")

    def within(result: SyncResult | None, goal: float) -> bool:
        return result is not None and result.ok and result.seconds is not None and result.seconds <= goal

    peak = max(first.peak_rss_mb, first.sampled_rss_mb)
    ratio = first.seconds / floor_seconds if first.seconds and floor_seconds else None
    rows = [
        (
            "first sync of the schedules (s)",
            secs(first),
            f"<= {GOAL_FIRST_SECONDS:g}",
            verdict(within(first, GOAL_FIRST_SECONDS)),
        ),
        (
            "  peak memory of the sync process (MB, ru_maxrss)",
            f"{peak:,.0f}",
            f"<= {GOAL_FIRST_MB:g}",
            verdict(first.ok and peak <= GOAL_FIRST_MB),
        ),
        (
            "  COPY of the same activity rows, unindexed temp table (s)",
            f"{floor_seconds:.2f}" if floor_seconds else "-",
            "",
            "",
        ),
        ("  ratio first sync / COPY", f"{ratio:,.0f}" if ratio else "-", "", ""),
        (
            "  activities per second",
            f"{shape.activities / first.seconds:,.0f}" if first.seconds else "-",
            "",
            "",
        ),
        (
            "rerun, no change (s)",
            secs(rerun),
            f"<= {GOAL_RERUN_SECONDS:g}",
            verdict(within(rerun, GOAL_RERUN_SECONDS)),
        ),
        (
            "  rows written to the schedule tables",
            f"{rerun.schedule_rows_written():,}" if rerun else "-",
            "0",
            verdict(rerun is not None and rerun.ok and rerun.schedule_rows_written() == 0),
        ),
        (
            f"rerun, {args.change_percent:g} % of days changed (s)",
            secs(changed),
            f"<= {GOAL_CHANGED_SECONDS:g}",
            verdict(within(changed, GOAL_CHANGED_SECONDS)),
        ),
        ("  days_changed", f"{changed.counts.get('days_changed', '-')}" if changed else "-", "", ""),
    ] + [(name, "yes" if ok else "NO", "yes", verdict(ok)) for name, ok in checks.items()]
    print()
    print(
        f"== WFM sync: {args.agents:,} agents x {args.days} days = {shape.days:,} days, {shape.activities:,} "
        f"activities ({shape.bytes / 2**20:.0f} MiB of JSON); {config['cpus']} CPUs; PostgreSQL on this machine =="
    )
    width = max(len(r[0]) for r in rows)
    for name, value, goal, ok in rows:
        print(f"  {name:<{width}}  {value:>16}  {goal:>8}  {ok}")
    print()
    for result in results:
        print(
            f"  {result.name}: {result.status}, "
            + (f"{result.seconds:.1f} s" if result.seconds is not None else "no result")
            + f", child {result.wall_seconds:.1f} s, peak RSS "
            f"{result.peak_rss_mb:,.0f} MB (sampled {result.sampled_rss_mb:,.0f}); machine {result.machine_busy:.0f} % busy"
        )
        if result.error:
            print(f"    error: {result.error[:500]}")
        print(f"    counts: {json.dumps(result.counts, sort_keys=True)}")
        print("    CPU s: " + ", ".join(f"{k} {v:.1f}" for k, v in result.cpu.items()))
        writes = {t: w for t, w in result.writes.items() if any(w)}
        print(
            "    rows inserted/updated/deleted: "
            + (", ".join(f"{t} {w[0]}/{w[1]}/{w[2]}" for t, w in sorted(writes.items())) or "none")
        )
        if result.phases:
            print(
                "    phases (s, calls): "
                + "; ".join(f"{k} {v[1]:.1f} ({v[0]:,})" for k, v in result.phases.items())
            )
        if result.sql:
            top = sorted(result.sql.items(), key=lambda kv: -kv[1][1])[:8]
            total = sum(v[1] for v in result.sql.values())
            calls = sum(v[0] for v in result.sql.values())
            print(
                f"    SQL {total:.1f} s in {calls:,} statements; top: "
                + "; ".join(f"{k} {v[1]:.1f} s ({v[0]:,}x, {v[2]:,} rows)" for k, v in top)
            )
    print()
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "config": config,
                    "export": shape.__dict__,
                    "floor_seconds": floor_seconds,
                    "floor_rows": floor_rows,
                    "checks": checks,
                    "runs": [r.__dict__ for r in results],
                },
                indent=2,
                default=str,
            )
        )
    goals_failed = [name.strip() for name, _value, _goal, ok in rows if ok == "FAIL"]
    if goals_failed:
        print("  goals FAILED: " + "; ".join(goals_failed))
    return 0 if all(r.ok for r in results) and not goals_failed and len(results) == 4 else 1


if __name__ == "__main__":
    sys.exit(main())
