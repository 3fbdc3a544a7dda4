"""The WFM sync of one organisation: roster, skills and activity codes upserted by external id, then
the schedules of activated agents for a window, each changed day replaced through the schedules
service (so the agent hears of a changed future day once, and of a past day never).

A run is recorded with its counts and every row it skipped. Only one run per organisation at a
time (a PostgreSQL advisory lock; a second one is recorded as skipped). The export is fetched whole
before any transaction (the HTTP connector's pages spooled to a bounded temporary file); its day
rows are then streamed from the file and only the changed ones kept (a hash per day row); they are
written in batches, each its own transaction that never splits a day (on PostgreSQL by writer
threads while the next batch is validated): a run that dies leaves every day old or new, and the
next run finishes the work (unchanged days are found by their hash and not touched)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import zoneinfo
from collections import Counter
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from em_agent.exceptions import ApplicationError
from em_agent.models import Agent, AgentSkill, Organization, Skill, Team, User
from em_agent.services import user_set_active
from schedules.models import ActivityCode, ActivitySource, ScheduleChange, ScheduleDay
from schedules.services import DayPlan, schedule_days_apply, schedule_days_lock
from sync import rows
from sync.connectors import ConnectorError, WfmConnector, check_format, connector_for, read_schedule_days
from sync.models import IssueKind, NightlySync, RunStatus, SyncIssue, SyncRun, WfmSource
from sync.time_off import schedule_days_apply_over_time_off, time_off_requests_lock
from timeoff.feed import (
    EarnedBalance,
    IntervalStaffing,
    staffing_intervals_replace,
    time_off_balances_upsert,
)

logger = logging.getLogger(__name__)

# Days per transaction: large enough to be set-based, small enough that a lock is short.
BATCH_DAYS = 2000
# Threads writing batches at once (bench/sync.py: 2 on a 2-core machine).
WRITERS = 2
_LOCK_NAMESPACE = 0x5750  # "WP": the sync's advisory locks, keyed by organisation id
_LOCAL_SOURCES = [
    ActivitySource.REQUEST,
    ActivitySource.TIME_OFF,
    ActivitySource.SWAP,
    ActivitySource.SUPERVISOR,
]


class _Issues:
    def __init__(self, run: SyncRun) -> None:
        self.run = run
        self.rows: list[SyncIssue] = []
        self.counts: Counter[str] = Counter()

    def skip(self, section: str, reference: str, reason: str) -> None:
        # A reference is the row's own text, which may hold a NUL: PostgreSQL keeps none in text,
        # and the run's record (every issue in one insert) must not fail because of one row.
        reference, reason = reference.replace("\x00", "\ufffd"), reason.replace("\x00", "\ufffd")
        self.rows.append(
            SyncIssue(run=self.run, section=section, reference=reference[:200], reason=reason[:500])
        )
        self.counts[f"{section}_skipped"] += 1

    def merge(self, other: _Issues) -> None:
        self.rows.extend(other.rows)
        self.counts.update(other.counts)

    def conflict(self, reference: str, reason: str) -> None:
        self.rows.append(
            SyncIssue(
                run=self.run, kind=IssueKind.CONFLICT, section="schedules", reference=reference, reason=reason
            )
        )
        self.counts["conflicts"] += 1


@contextmanager
def _organization_lock(organization: Organization):
    """True while this process holds the organisation's sync lock; False if another run has it."""
    if connection.vendor != "postgresql":
        yield True  # SQLite (the demo) serialises writers itself
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, organization.pk])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, organization.pk])


def wfm_sync(
    *,
    organization: Organization,
    trigger: str = "command",
    connector: WfmConnector | None = None,
    now: dt.datetime | None = None,
    only_agent: Agent | None = None,
    night: NightlySync | None = None,
) -> SyncRun:
    """`only_agent`: that agent's schedule only (right after its activation), roster untouched.
    `night`: the nightly sync this run is an attempt of (sync.nightly)."""
    now = now or timezone.now()
    with _organization_lock(organization) as held:
        if not held:
            return SyncRun.objects.create(
                organization=organization,
                trigger=trigger,
                night=night,
                status=RunStatus.SKIPPED,
                started_at=now,
                finished_at=now,
            )
        run = SyncRun.objects.create(organization=organization, trigger=trigger, night=night, started_at=now)
        issues = _Issues(run)
        try:
            connector = connector or connector_for(WfmSource.objects.get(organization=organization))
            start, end = sync_window(organization, now=now)
            read = _Issues(run)
            # Everything from the WFM is fetched before the transaction: the roster, and the
            # schedules as a local file (the HTTP connector's pages, with their retries and
            # Retry-After waits, spooled to a bounded temporary file). So the roster's changed rows,
            # locked until the commit, wait for no download, and an agent's request for them neither.
            roster = None if only_agent is not None else connector.roster()
            if roster is not None:
                check_format(roster, name="the roster")
            with connector.schedules_file(start=start, end=end) as schedules, transaction.atomic():
                # The roster and the whole of the schedules in one transaction: an export that
                # cannot be read to its end (cut short, another version; or, before this, a page
                # that failed, a spool over its limit) changes nothing at all, not even the roster.
                # Only then are the changed days written, batch by batch.
                if roster is not None:
                    _sync_roster(organization, roster, read, now=now)
                days = read_schedule_days(schedules, start=start, end=end)
                pending = _read_schedules(
                    organization, days, read, start=start, end=end, only_agent=only_agent
                )
            generated_at = _aware(roster.get("generated_at")) if roster is not None else None
            issues.merge(read)
            _write_schedules(organization, pending, issues, now=now, wfm_copy_at=generated_at)
            run.status = RunStatus.SUCCEEDED
        except (ConnectorError, WfmSource.DoesNotExist) as exc:
            run.status, run.error = RunStatus.FAILED, str(exc)[:5000]
        except Exception as exc:
            logger.exception("WFM sync of %s failed", organization.slug)
            run.status, run.error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"[:5000]
        finally:
            SyncIssue.objects.bulk_create(issues.rows, batch_size=1000)
            run.counts = dict(issues.counts)
            run.finished_at = max(timezone.now(), run.started_at)
            run.save(update_fields=["status", "error", "counts", "finished_at"])
        return run


# --- roster -----------------------------------------------------------------------------------------


def _parsed(section: str, raw: object, parse, issues: _Issues, key) -> dict:
    """Rows of a section by key; bad rows and duplicated keys skipped with their reason."""
    if not isinstance(raw, list):
        if raw is not None:
            issues.skip(section, section, "not a list")
        return {}
    parsed: dict = {}
    duplicated: set = set()
    for index, row in enumerate(raw):
        try:
            value = parse(row)
        except rows.BadRow as exc:
            reference = row.get("external_id") or row.get("code") if isinstance(row, dict) else None
            issues.skip(section, str(reference or f"#{index}"), str(exc))
            continue
        if key(value) in parsed:
            duplicated.add(key(value))
        parsed[key(value)] = value
    for duplicate in duplicated:
        issues.skip(section, str(duplicate), "listed more than once")
        del parsed[duplicate]
    return parsed


@transaction.atomic
def _sync_roster(organization: Organization, roster: dict, issues: _Issues, *, now: dt.datetime) -> None:
    teams = _parsed("teams", roster.get("teams"), rows.team_row, issues, lambda r: r.external_id)
    skills = _parsed("skills", roster.get("skills"), rows.skill_row, issues, lambda r: r.external_id)
    codes = _parsed("activity_codes", roster.get("activity_codes"), rows.code_row, issues, lambda r: r.code)
    agents = _parsed(
        "agents",
        roster.get("agents"),
        lambda row: rows.agent_row(row, teams=set(teams), skills=set(skills)),
        issues,
        lambda r: r.external_id,
    )
    raw_agents = roster.get("agents")
    # Who the WFM lists, valid rows or not: a skipped row leaves its agent as it is; only an agent
    # the export does not mention at all has left. No list at all: the export says nothing of anyone.
    listed = (
        {str(row.get("external_id")) for row in raw_agents if isinstance(row, dict)}
        if isinstance(raw_agents, list)
        else None
    )
    team_ids = _upsert_named(Team, organization, teams)
    skill_ids = _upsert_named(Skill, organization, skills)
    _upsert_codes(organization, codes, now=now)
    _upsert_agents(organization, agents, team_ids, skill_ids, issues, listed=listed)
    issues.counts.update(teams=len(teams), skills=len(skills), activity_codes=len(codes), agents=len(agents))
    # After the agents and codes: a balance may name an agent or a code that arrives in this run.
    _sync_balances(organization, roster.get("time_off_balances"), issues, now=now)
    _sync_staffing(organization, roster.get("staffing"), team_ids, issues, now=now)


def _upsert_named(model, organization: Organization, parsed: dict) -> dict[str, int]:
    existing = {obj.external_id: obj for obj in model.objects.filter(organization=organization)}
    new = [
        model(organization=organization, external_id=key, name=row.name)
        for key, row in parsed.items()
        if key not in existing
    ]
    changed = []
    for key, row in parsed.items():
        obj = existing.get(key)
        if obj is not None and obj.name != row.name:
            obj.name = row.name
            changed.append(obj)
    model.objects.bulk_create(new)
    model.objects.bulk_update(changed, ["name"])
    return dict(model.objects.filter(organization=organization).values_list("external_id", "pk"))


def _upsert_codes(organization: Organization, parsed: dict, *, now: dt.datetime) -> None:
    fields = [
        "name",
        "category",
        "color",
        "paid",
        "open_for_requests",
        "open_for_time_off",
        "open_for_absence",
    ]
    existing = {code.code: code for code in ActivityCode.objects.filter(organization=organization)}
    new, changed = [], []
    for key, row in parsed.items():
        code = existing.get(key)
        if code is None:
            new.append(
                ActivityCode(
                    organization=organization,
                    code=key,
                    updated_at=now,
                    **{f: getattr(row, f) for f in fields},
                )
            )
        elif any(getattr(code, f) != getattr(row, f) for f in fields) or not code.active:
            for f in fields:
                setattr(code, f, getattr(row, f))
            code.active, code.updated_at = True, now
            changed.append(code)
    # A code the WFM no longer lists stays (activities point at it) but cannot be picked any more.
    retired = [code for key, code in existing.items() if key not in parsed and code.active]
    for code in retired:
        code.active, code.updated_at = False, now
    ActivityCode.objects.bulk_create(new)
    ActivityCode.objects.bulk_update([*changed, *retired], [*fields, "active", "updated_at"])


def _upsert_agents(
    organization: Organization,
    parsed: dict,
    team_ids: dict[str, int],
    skill_ids: dict[str, int],
    issues: _Issues,
    *,
    listed: set[str] | None,
) -> None:
    existing = {
        agent.external_id: agent
        for agent in Agent.objects.filter(organization=organization).select_related("user")
    }
    supervisors = {
        user.email.lower(): user for user in User.objects.filter(organization=organization, is_staff=True)
    }
    taken = {
        email.lower(): pk
        for email, pk in User.objects.filter(email__in=[row.email for row in parsed.values()]).values_list(
            "email", "pk"
        )
    }
    created_users, new_agents, changed_agents, changed_users = [], [], [], []
    emails = Counter(row.email for row in parsed.values())
    for key in [key for key, row in parsed.items() if emails[row.email] > 1]:
        issues.skip("agents", key, "the email address is listed for more than one agent")
        del parsed[key]
    for key, row in parsed.items():
        agent = existing.get(key)
        owner = taken.get(row.email)
        if owner is not None and (agent is None or owner != agent.user_id):
            issues.skip("agents", key, "the email address belongs to another account")
            continue
        supervisor = supervisors.get(row.supervisor_email) if row.supervisor_email else None
        values = {
            "name": row.name,
            "timezone": row.timezone,
            "language": row.language,
            "team_id": team_ids.get(row.team) if row.team else None,
            "supervisor_id": supervisor.pk if supervisor else None,
        }
        if agent is None:
            # No usable password: the invitation (a password-reset email) comes with activation.
            user = User(email=row.email, password=make_password(None), is_active=True)
            created_users.append(user)
            new_agents.append((user, Agent(organization=organization, external_id=key, **values)))
            continue
        if any(getattr(agent, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(agent, name, value)
            changed_agents.append(agent)
        if agent.user.email != row.email:
            agent.user.email = row.email
            changed_users.append(agent.user)
    User.objects.bulk_create(created_users)
    for user, agent in new_agents:
        agent.user = user
    Agent.objects.bulk_create([agent for _user, agent in new_agents])
    Agent.objects.bulk_update(changed_agents, ["name", "timezone", "language", "team", "supervisor"])
    User.objects.bulk_update(changed_users, ["email"])
    # Agents the WFM no longer lists have left: their logins end (sessions too). Not the other way
    # round: an agent listed again is not switched back on, a supervisor may have had a reason.
    gone = (
        [agent for key, agent in existing.items() if key not in listed and agent.user.is_active]
        if listed is not None
        else []
    )
    for agent in gone:
        user_set_active(user=agent.user, active=False)
    _replace_skills(organization, parsed, skill_ids)
    issues.counts.update(
        agents_created=len(new_agents), agents_updated=len(changed_agents), agents_deactivated=len(gone)
    )


def _replace_skills(organization: Organization, parsed: dict, skill_ids: dict[str, int]) -> None:
    agent_ids = dict(Agent.objects.filter(organization=organization).values_list("external_id", "pk"))
    wanted = {
        (agent_ids[key], skill_ids[skill], level)
        for key, row in parsed.items()
        if key in agent_ids
        for skill, level in row.skills
    }
    current = set(
        AgentSkill.objects.filter(
            agent__organization=organization, agent__external_id__in=list(parsed)
        ).values_list("agent_id", "skill_id", "level")
    )
    stale = current - wanted
    for agent_id, skill_id, _level in stale:
        AgentSkill.objects.filter(agent_id=agent_id, skill_id=skill_id).delete()
    AgentSkill.objects.bulk_create(
        [AgentSkill(agent_id=a, skill_id=s, level=level) for a, s, level in wanted - current],
        update_conflicts=True,
        unique_fields=["agent", "skill"],
        update_fields=["level"],
    )


# --- time off: earned balances and interval staffing ----------------------------------------------


def _section(section: str, raw: object, issues: _Issues) -> list | None:
    """A time-off section's rows; None when the export has no such section (nothing to change)."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        issues.skip(section, section, "not a list")
        return None
    return raw


def _sync_balances(organization: Organization, raw: object, issues: _Issues, *, now: dt.datetime) -> None:
    """Earned balances by (agent, code): the agents and codes listed get theirs, the rest stay."""
    section = "time_off_balances"
    listed = _section(section, raw, issues)
    if listed is None:
        return
    agents = dict(
        Agent.objects.filter(organization=organization, user__is_active=True).values_list("external_id", "pk")
    )
    codes, open_to_time_off = {}, {}
    for code, pk, time_off, active in ActivityCode.objects.filter(organization=organization).values_list(
        "code", "pk", "open_for_time_off", "active"
    ):
        # A retired code is offered for no request any more: no balance either.
        codes[code], open_to_time_off[code] = pk, time_off and active
    parsed: dict[tuple[str, str], rows.BalanceRow] = {}
    duplicated: set[tuple[str, str]] = set()
    for index, row in enumerate(listed):
        try:
            balance = rows.balance_row(row, agents=agents, codes=open_to_time_off)
        except rows.BadRow as exc:
            reference = f"{row.get('agent')}/{row.get('code')}" if isinstance(row, dict) else f"#{index}"
            issues.skip(section, reference, str(exc))
            continue
        key = (balance.agent, balance.code)
        if key in parsed:
            duplicated.add(key)
        parsed[key] = balance
    for key in duplicated:
        issues.skip(section, "/".join(key), "listed more than once")
        del parsed[key]
    counts = time_off_balances_upsert(
        organization=organization,
        balances=[
            EarnedBalance(
                agent_id=agents[row.agent],
                activity_code_id=codes[row.code],
                earned_minutes=row.earned_minutes,
                as_of=row.as_of,
            )
            for row in parsed.values()
        ],
        now=now,
    )
    issues.counts.update({f"{section}_{name}": value for name, value in counts.items() if name != "deleted"})


def _sync_staffing(
    organization: Organization, raw: object, team_ids: dict[str, int], issues: _Issues, *, now: dt.datetime
) -> None:
    """Interval staffing: each (team, date) the export lists inside the sync window is replaced by
    its rows; a skipped row leaves its interval as it was; other days and teams stay."""
    section = "staffing"
    listed = _section(section, raw, issues)
    if listed is None:
        return
    zone = organization_zone(organization)
    window = sync_window(organization, now=now)
    parsed: dict[tuple[str | None, dt.datetime], rows.StaffingRow] = {}
    duplicated: set[tuple[str | None, dt.datetime]] = set()
    kept: set[tuple[str | None, dt.datetime]] = set()  # the (team, start) of a skipped row
    for index, row in enumerate(listed):
        try:
            interval = rows.staffing_row(row, teams=team_ids, zone=zone, window=window)
        except rows.BadRow as exc:
            if isinstance(row, dict):
                reference = rows.staffing_reference(row.get("team"), row.get("date"), row.get("start"))
                key = rows.staffing_key(row, teams=team_ids, zone=zone)
                if key is not None:
                    kept.add(key)
            else:
                reference = f"#{index}"
            issues.skip(section, reference, str(exc))
            continue
        if interval is None:
            continue  # outside the window
        key = (interval.team, interval.start)
        if key in parsed:
            duplicated.add(key)
        parsed[key] = interval
    for key in duplicated:
        issues.skip(section, parsed.pop(key).reference, "listed more than once")
    kept |= duplicated
    for key in _overlapping(parsed.values()):
        issues.skip(section, parsed.pop(key).reference, "overlaps another interval of the team")
        kept.add(key)

    def team_id(team: str | None) -> int | None:
        return None if team is None else team_ids[team]

    counts = staffing_intervals_replace(
        organization=organization,
        days={(team_id(row.team), row.date) for row in parsed.values()},
        intervals=[
            IntervalStaffing(
                team_id=team_id(row.team),
                start=row.start,
                minutes=row.minutes,
                required=row.required,
                scheduled=row.scheduled,
            )
            for row in parsed.values()
        ],
        keep={(team_id(team), start) for team, start in kept},
        now=now,
    )
    issues.counts.update({f"{section}_{name}": value for name, value in counts.items()})


def _overlapping(intervals: Iterable[rows.StaffingRow]) -> set[tuple[str | None, dt.datetime]]:
    """The (team, start) of every interval that overlaps another of its team: both are skipped, the
    export contradicts itself."""
    by_team: dict[str | None, list[rows.StaffingRow]] = {}
    for interval in intervals:
        by_team.setdefault(interval.team, []).append(interval)
    found = set()
    for team, listed in by_team.items():
        listed.sort(key=lambda interval: interval.start)
        end_so_far, last = None, None
        for interval in listed:
            if end_so_far is not None and interval.start < end_so_far:
                found.add((team, interval.start))
                found.add((team, last.start))  # type: ignore[union-attr]
            end = interval.start + dt.timedelta(minutes=interval.minutes)
            if end_so_far is None or end > end_so_far:
                end_so_far, last = end, interval
    return found


# --- schedules --------------------------------------------------------------------------------------


def sync_window(organization: Organization, *, now: dt.datetime) -> tuple[dt.date, dt.date]:
    today = now.astimezone(organization_zone(organization)).date()
    return (
        today - dt.timedelta(days=settings.WFM_SYNC_DAYS_BACK),
        today + dt.timedelta(days=settings.WFM_SYNC_DAYS_AHEAD),
    )


def organization_zone(organization: Organization) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(organization.default_timezone)


@dataclass
class _Pending:
    """What the reading pass leaves for the writing one: the changed days, compactly."""

    agents: dict[str, Agent]
    codes: dict[str, int]
    changed: list[tuple[int, dt.date, str, str]]  # (agent id, date, the day as JSON, its hash)


def _read_schedules(
    organization: Organization,
    days: Iterable[dict],
    issues: _Issues,
    *,
    start: dt.date,
    end: dt.date,
    only_agent: Agent | None = None,
) -> _Pending:
    """The day rows stream by and only the changed ones are kept, compactly (a day whose hash
    matches the stored one is not even validated)."""
    # Only activated agents are fed: a newly activated agent sees its schedule after the next run.
    fed = Agent.objects.filter(organization=organization, activated_at__isnull=False, user__is_active=True)
    if only_agent is not None:
        fed = fed.filter(pk=only_agent.pk)
    agents = {agent.external_id: agent for agent in fed}
    codes = dict(ActivityCode.objects.filter(organization=organization).values_list("code", "pk"))
    zone_of = {key: agent.zone for key, agent in agents.items()}
    # The WFM has days for agents who have not activated the app yet: not fed, and not an error
    # (counted as days_not_fed).
    not_fed = set(
        Agent.objects.filter(organization=organization)
        .exclude(pk__in=[a.pk for a in agents.values()])
        .values_list("external_id", flat=True)
    )
    pk_of = {key: agent.pk for key, agent in agents.items()}
    # The window's dates, one object each: the 420,000 keys below share 49 dates instead of their own.
    dates = {
        start + dt.timedelta(days=n): start + dt.timedelta(days=n) for n in range((end - start).days + 1)
    }
    known = {
        (agent_id, dates[date]): wfm_hash
        for agent_id, date, wfm_hash in ScheduleDay.objects.filter(
            agent__in=list(agents.values()), date__gte=start, date__lte=end
        ).values_list("agent_id", "date", "wfm_hash")
    }
    changed: list[tuple[int, dt.date, str, str]] = []
    listed: set[tuple[int, dt.date]] = set()
    duplicated: set[tuple[int, dt.date]] = set()
    seen = not_fed_days = 0
    for index, raw in enumerate(days):
        seen += 1
        try:
            if isinstance(raw, dict) and raw.get("agent") in not_fed:
                not_fed_days += 1
                continue
            external, date = rows.day_key(raw, agents=pk_of)
            if date not in dates:
                continue
            key = (pk_of[external], dates[date])
            if key in listed:
                duplicated.add(key)
                continue
            listed.add(key)
            content, content_hash = rows.day_content(raw, zone_of[external])
        except rows.BadRow as exc:
            reference = f"{raw.get('agent')}/{raw.get('date')}" if isinstance(raw, dict) else f"#{index}"
            issues.skip("schedules", str(reference)[:200], str(exc))
            continue
        if known.get(key) != content_hash:
            changed.append((key[0], key[1], content, content_hash))
    issues.counts.update(days_seen=seen)
    if not_fed_days:
        issues.counts.update(days_not_fed=not_fed_days)
    external_id = {agent.pk: key for key, agent in agents.items()}
    for agent_id, date in duplicated:
        issues.skip("schedules", f"{external_id[agent_id]}/{date}", "the day is listed more than once")
    changed = [day for day in changed if (day[0], day[1]) not in duplicated]
    changed.sort(key=lambda day: (day[0], day[1]))
    issues.counts.update(days_unchanged=len(listed) - len(duplicated) - len(changed))
    return _Pending(agents=agents, codes=codes, changed=changed)


def _write_schedules(
    organization: Organization,
    pending: _Pending,
    issues: _Issues,
    *,
    now: dt.datetime,
    wfm_copy_at: dt.datetime | None,
) -> None:
    """The changed days validated and written in batches, in (agent, date) order."""
    agents, codes = pending.agents, pending.codes
    zone_of = {key: agent.zone for key, agent in agents.items()}
    copy_at = _copy_time(organization, wfm_copy_at)
    local_since = _local_changes_since(organization.pk, copy_at) if pending.changed else {}
    by_pk = {agent.pk: agent for agent in agents.values()}
    batch: list[tuple[Agent, rows.DayRow, str]] = []
    with _BatchWriter(issues, copy_at=copy_at) as writer:
        for agent_id, date, content, content_hash in pending.changed:
            agent = by_pk[agent_id]
            local_source = local_since.get((agent_id, date))
            if local_source is not None:
                issues.conflict(
                    f"{agent.external_id}/{date}",
                    f"changed here ({local_source}) after the WFM's copy: the local change is kept",
                )
                continue
            try:
                day = rows.day_row_from_content(
                    agent.external_id, date, content, zone=zone_of[agent.external_id], codes=codes
                )
            except rows.BadRow as exc:
                issues.skip("schedules", f"{agent.external_id}/{date}", str(exc))
                continue
            # A batch ends between agents: an agent's days are in one transaction, so two writers
            # never hold neighbouring days of one agent (a night shift moved against the next
            # morning would look like an overlap, or deadlock, by the order they commit in).
            if len(batch) >= BATCH_DAYS and batch[-1][0] is not agent:
                writer.submit(batch)
                batch = []
            batch.append((agent, day, content_hash))
        if batch:
            writer.submit(batch)
    Agent.objects.filter(pk__in=[agent.pk for agent in agents.values()]).update(last_synced_at=now)


def _aware(value: object) -> dt.datetime | None:
    """The export's `generated_at`, when it is a datetime with its offset."""
    try:
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _copy_time(organization: Organization, generated_at: dt.datetime | None) -> dt.datetime | None:
    """When the WFM made its copy: the export's `generated_at`; without one, when the last
    successful sync began."""
    if generated_at is not None:
        return generated_at
    return (
        SyncRun.objects.filter(organization=organization, status=RunStatus.SUCCEEDED)
        .exclude(trigger="activation")
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )


def _local_changes_since(
    organization_id: int, copy_at: dt.datetime | None, *, keys: list[tuple[int, dt.date]] | None = None
) -> dict[tuple[int, dt.date], str]:
    """The (agent, date) days of the organisation (of `keys`, if given) changed here (an approved
    request, time off, a swap, a supervisor) after the WFM made its copy, with what changed them:
    that change wins over the copy. One query, whatever the number of changes."""
    if copy_at is None:
        return {}
    changes = ScheduleChange.objects.filter(
        agent__organization_id=organization_id, source__in=_LOCAL_SOURCES, created_at__gt=copy_at
    )
    if keys is not None:
        changes = changes.filter(agent_id__in={a for a, _d in keys}, date__in={d for _a, d in keys})
    found = {
        (agent_id, date): source
        for agent_id, date, source in changes.values_list("agent_id", "date", "source")
    }
    return found if keys is None else {key: found[key] for key in keys if key in found}


_Batch = list[tuple[Agent, rows.DayRow, str]]  # (agent, validated day, the WFM's hash of it)


def _plan(agent: Agent, day: rows.DayRow, content_hash: str) -> DayPlan:
    return DayPlan(
        agent=agent,
        date=day.date,
        published=day.published,
        note=day.note,
        wfm_hash=content_hash,
        activities=list(day.activities),
    )


class _BatchWriter:
    """Writes the batches, each in its own transaction. On PostgreSQL, outside a caller's
    transaction, `WRITERS` threads with their own connections do it while this one validates the
    next batch: a batch spends about as long waiting for PostgreSQL (the COPY's indexes, the foreign
    key checks at commit, the days' exclusion constraint) as in Python, and the machine has two
    cores. Batches commit in any order; each is whole. A writer's error stops the rest (batches
    not begun are dropped) and is raised when the block ends, or at the next `submit`."""

    def __init__(self, issues: _Issues, *, copy_at: dt.datetime | None) -> None:
        self.issues = issues
        self.copy_at = copy_at
        self.concurrent = connection.vendor == "postgresql" and not connection.in_atomic_block
        self.queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=WRITERS)
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.results: list[_Issues] = []

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop(drop=exc_type is not None)
        if exc_type is None and self.errors:
            raise self.errors[0]

    def submit(self, batch: _Batch) -> None:
        if not self.concurrent:
            _apply_days(batch, self.issues, self.copy_at)
            return
        if self.errors:
            raise self.errors[0]  # __exit__ stops the threads
        if not self.threads:
            self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(WRITERS)]
            for thread in self.threads:
                thread.start()
        self.queue.put(batch)

    def _stop(self, *, drop: bool) -> None:
        if drop or self.errors:
            self._drop_waiting()
        for _thread in self.threads:
            self.queue.put(None)
        interrupted: BaseException | None = None
        for thread in self.threads:
            # Not even a time limit (Celery's soft limit, an exception raised in this thread) may
            # leave a writer running after the run is recorded and the organisation's lock is gone.
            while thread.is_alive():
                try:
                    thread.join()
                except BaseException as exc:  # noqa: BLE001  (raised below, once the writers are done)
                    interrupted = interrupted or exc
                    self.errors.append(exc)  # the writers skip what is still queued
        self.threads = []
        for result in self.results:
            self.issues.merge(result)
        self.results = []
        if interrupted is not None:
            raise interrupted

    def _drop_waiting(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.queue.get_nowait()

    def _work(self) -> None:
        issues = _Issues(self.issues.run)
        self.results.append(issues)
        try:
            while (batch := self.queue.get()) is not None:
                if not self.errors:
                    _apply_days(batch, issues, self.copy_at)
        except BaseException as exc:  # noqa: BLE001  (raised again in the sync's thread)
            self.errors.append(exc)
            while self.queue.get() is not None:  # let submit() and _stop() through
                pass
        finally:
            connection.close()


def _apply_days(batch: _Batch, issues: _Issues, copy_at: dt.datetime | None) -> None:
    """One transaction for the batch; if the schedules service refuses it (an overlap with a day
    outside the export, say), day by day, skipping the ones it refuses."""
    try:
        with transaction.atomic():
            _write(batch, issues, copy_at)
        return
    except ApplicationError:
        pass
    for agent, day, content_hash in batch:
        try:
            with transaction.atomic():
                _write([(agent, day, content_hash)], issues, copy_at)
        except ApplicationError as exc:
            issues.skip("schedules", f"{agent.external_id}/{day.date}", exc.detail)


def _write(batch: _Batch, issues: _Issues, copy_at: dt.datetime | None) -> None:
    # A day changed here while this run was reading (a request approved meanwhile) is newer than
    # the WFM's copy too: looked for again under the days' locks, so none slips in before the write.
    keys = [(agent.pk, day.date) for agent, day, _hash in batch]
    # Approved time off on these days is laid over what the WFM sends (issue 11, point 3); its
    # requests are locked before the days, in the order a cancellation takes them.
    time_off = time_off_requests_lock(keys=keys)
    schedule_days_lock(keys=keys)
    late = _local_changes_since(batch[0][0].organization_id, copy_at, keys=keys)
    for agent, day, _hash in batch:
        if (agent.pk, day.date) in late:
            issues.conflict(
                f"{agent.external_id}/{day.date}",
                f"changed here ({late[(agent.pk, day.date)]}) after the WFM's copy: the local change is kept",
            )
    plans = [
        _plan(agent, day, content_hash)
        for agent, day, content_hash in batch
        if (agent.pk, day.date) not in late
    ]
    if time_off:
        overlaid = schedule_days_apply_over_time_off(plans=plans, request_ids=time_off, reason="WFM sync")
        result = overlaid.result
        if overlaid.laid or overlaid.recounted:
            issues.counts.update(days_time_off_laid=overlaid.laid, time_off_days_recounted=overlaid.recounted)
    else:
        result = schedule_days_apply(plans=plans, source=ActivitySource.WFM, reason="WFM sync")
    # A day whose row changed but whose content did not (only its stored hash is refreshed) counts
    # as unchanged: days_changed + days_unchanged are the days the run fed.
    issues.counts.update(
        days_changed=result.days_written,
        days_unchanged=len(plans) - result.days_written,
        days_notified=result.notified_days,
    )
