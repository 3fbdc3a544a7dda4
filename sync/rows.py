"""The WFM export's rows, validated one by one: the WFM is untrusted input (OWASP API10). A row that
does not hold is returned as a reason, and the sync skips it; nothing here touches the database."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from em_agent.localtime import NonexistentLocalTime, local_datetime, steady_utc_midnight
from em_agent.models import validate_time_zone
from schedules.models import ActivityCategory, ActivitySource
from schedules.services import ActivitySpec

_WFM = ActivitySource.WFM.value
MAX_ACTIVITIES_PER_DAY = 100
MAX_NOTE = 2000
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class BadRow(Exception):
    """Why a row is skipped; the message is recorded in the run."""


def _text(row: dict, key: str, *, max_length: int, required: bool = True) -> str:
    value = row.get(key, "" if not required else None)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRow(f"{key} is missing or not text")
    if len(value) > max_length:
        raise BadRow(f"{key} is longer than {max_length} characters")
    if "\x00" in value:  # PostgreSQL keeps no NUL in text: the whole batch would fail
        raise BadRow(f"{key} contains a NUL character")
    return value.strip() if key != "note" else value


def _bool(row: dict, key: str, default: bool) -> bool:
    value = row.get(key, default)
    if not isinstance(value, bool):
        raise BadRow(f"{key} is not true or false")
    return value


@dataclass(frozen=True)
class TeamRow:
    external_id: str
    name: str


@dataclass(frozen=True)
class SkillRow:
    external_id: str
    name: str


@dataclass(frozen=True)
class CodeRow:
    code: str
    name: str
    category: str
    color: str
    paid: bool
    open_for_requests: bool
    open_for_time_off: bool
    open_for_absence: bool


@dataclass(frozen=True)
class AgentRow:
    external_id: str
    name: str
    email: str
    timezone: str
    language: str
    team: str | None
    supervisor_email: str | None
    skills: tuple[tuple[str, int], ...]


def team_row(row: object) -> TeamRow:
    if not isinstance(row, dict):
        raise BadRow("not an object")
    return TeamRow(_text(row, "external_id", max_length=100), _text(row, "name", max_length=200))


def skill_row(row: object) -> SkillRow:
    if not isinstance(row, dict):
        raise BadRow("not an object")
    return SkillRow(_text(row, "external_id", max_length=100), _text(row, "name", max_length=200))


def code_row(row: object) -> CodeRow:
    if not isinstance(row, dict):
        raise BadRow("not an object")
    category = row.get("category", ActivityCategory.WORK)
    if category not in ActivityCategory.values:
        raise BadRow(f"unknown category {str(category)[:40]!r}")
    color = row.get("color", "#4A90D9")
    if not isinstance(color, str) or not _COLOR.match(color):
        raise BadRow("color is not #RRGGBB")
    return CodeRow(
        code=_text(row, "code", max_length=40),
        name=_text(row, "name", max_length=200),
        category=category,
        color=color,
        paid=_bool(row, "paid", True),
        open_for_requests=_bool(row, "open_for_requests", False),
        open_for_time_off=_bool(row, "open_for_time_off", False),
        open_for_absence=_bool(row, "open_for_absence", False),
    )


def agent_row(row: object, *, teams: set[str], skills: set[str]) -> AgentRow:
    if not isinstance(row, dict):
        raise BadRow("not an object")
    email = _text(row, "email", max_length=254).lower()
    if not _EMAIL.match(email):
        raise BadRow("email is not an email address")
    zone = _text(row, "timezone", max_length=64)
    try:
        validate_time_zone(zone)
    except Exception:  # noqa: BLE001  (a ValidationError; any failure is a bad row)
        raise BadRow(f"unknown time zone {zone[:64]!r}") from None
    language = row.get("language", "en")
    if language not in ("en", "nl"):
        raise BadRow("language is not en or nl")
    team = row.get("team")
    if team is not None and (not isinstance(team, str) or team not in teams):
        raise BadRow(f"unknown team {str(team)[:100]!r}")
    supervisor = row.get("supervisor_email")
    if supervisor is not None and (not isinstance(supervisor, str) or not _EMAIL.match(supervisor)):
        raise BadRow("supervisor_email is not an email address")
    levels = []
    for entry in row.get("skills") or []:
        if not isinstance(entry, dict) or entry.get("skill") not in skills:
            raise BadRow(f"unknown skill {str(entry)[:100]}")
        level = entry.get("level", 1)
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 20:
            raise BadRow("a skill level is not 1-20")
        levels.append((entry["skill"], level))
    if len({skill for skill, _level in levels}) != len(levels):
        raise BadRow("a skill is listed twice")
    return AgentRow(
        external_id=_text(row, "external_id", max_length=100),
        name=_text(row, "name", max_length=200),
        email=email,
        timezone=zone,
        language=language,
        team=team,
        supervisor_email=supervisor.lower() if supervisor else None,
        skills=tuple(sorted(levels)),
    )


@dataclass(frozen=True)
class DayRow:
    agent: str
    date: dt.date
    published: bool
    note: str
    # As the schedules service takes them (code ids, UTC times), in order: a first sync makes
    # 2.5 million of them, once.
    activities: tuple[ActivitySpec, ...]


# "HH:MM" -> minutes since midnight, for every valid wall time: a look-up instead of a regex per time.
_MINUTES = {f"{hour:02d}:{minute:02d}": hour * 60 + minute for hour in range(24) for minute in range(60)}
_AFTER_MIDNIGHT = [dt.timedelta(minutes=minutes) for minutes in range(24 * 60)]


def _local(date: dt.date, hhmm: object, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    minutes = _MINUTES.get(hhmm) if isinstance(hhmm, str) else None
    if minutes is None:
        raise BadRow(f"time {str(hhmm)[:10]!r} is not HH:MM")
    midnight = steady_utc_midnight(zone, date)
    if midnight is not None:  # nearly every day
        return midnight + _AFTER_MIDNIGHT[minutes]
    try:
        # A time the clocks repeat is its first occurrence (the export's HH:MM cannot say which).
        return local_datetime(date, dt.time(*divmod(minutes, 60)), zone).astimezone(dt.UTC)
    except NonexistentLocalTime as exc:
        raise BadRow(str(exc)) from None


def _at(date: dt.date, midnight: dt.datetime | None, hhmm: object, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """`_local` with the date's `steady_utc_midnight` looked up once per day, not per time."""
    minutes = _MINUTES.get(hhmm) if isinstance(hhmm, str) else None
    if minutes is None:
        raise BadRow(f"time {str(hhmm)[:10]!r} is not HH:MM")
    if midnight is not None:
        return midnight + _AFTER_MIDNIGHT[minutes]
    return _local(date, hhmm, zone)


def day_key(row: object, *, agents: Mapping[str, object]) -> tuple[str, dt.date]:
    """Whose day and which: `agents` are the external ids the sync feeds."""
    if not isinstance(row, dict):
        raise BadRow("not an object")
    agent = row.get("agent")
    if not isinstance(agent, str) or agent not in agents:
        raise BadRow(f"unknown agent {str(agent)[:100]!r}")
    try:
        return agent, dt.date.fromisoformat(row.get("date", ""))
    except (TypeError, ValueError):
        raise BadRow("date is not YYYY-MM-DD") from None


def _canonical(row: dict) -> dict:
    """The day as the sync compares it: its activities as [code, start, end, note] in order of
    their times, so the same day in another form (activities or keys in another order, unknown keys
    added) is the same day. Only its structure is checked here; `_day` checks the rest."""
    raw = row.get("activities", [])
    if not isinstance(raw, list) or len(raw) > MAX_ACTIVITIES_PER_DAY:
        raise BadRow(f"activities is not a list of at most {MAX_ACTIVITIES_PER_DAY}")
    activities = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise BadRow("an activity is not an object")
        activities.append([entry.get("code"), entry.get("start"), entry.get("end"), entry.get("note", "")])
    activities.sort(key=_by_times)
    return {"published": row.get("published", False), "note": row.get("note", ""), "activities": activities}


def _by_times(activity: list) -> tuple[str, str, str]:
    return str(activity[1]), str(activity[2]), str(activity[0])


def day_content(row: dict, zone: zoneinfo.ZoneInfo) -> tuple[str, str]:
    """The day as compact JSON (`_canonical`) and its hash, with the agent's zone (the same wall
    times in another zone are another day). Cheap: a day whose hash matches the stored one is
    skipped without being validated; validation reads this JSON back."""
    content = json.dumps(_canonical(row), separators=(",", ":"), ensure_ascii=False)
    return content, hashlib.blake2b(f"{zone.key}\n{content}".encode(), digest_size=16).hexdigest()


def day_row_from_content(
    agent: str, date: dt.date, content: str, *, zone: zoneinfo.ZoneInfo, codes: Mapping[str, int]
) -> DayRow:
    return _day(agent, date, json.loads(content), zone=zone, codes=codes)


def day_row(row: object, *, zone_of: Mapping[str, zoneinfo.ZoneInfo], codes: Mapping[str, int]) -> DayRow:
    """`zone_of`: the activated agents the sync feeds, by external id, with their zones; `codes`:
    the organisation's activity codes and their ids."""
    agent, date = day_key(row, agents=zone_of)
    return _day(agent, date, _canonical(row), zone=zone_of[agent], codes=codes)  # type: ignore[arg-type]


def _day(
    agent: str, date: dt.date, day: dict, *, zone: zoneinfo.ZoneInfo, codes: Mapping[str, int]
) -> DayRow:
    """`day`: as `_canonical` gives it."""
    activities = []
    next_day = date + dt.timedelta(days=1)
    midnight, next_midnight = steady_utc_midnight(zone, date), steady_utc_midnight(zone, next_day)
    for code, start_text, end_text, note in day["activities"]:
        if not isinstance(code, str) or code not in codes:
            raise BadRow(f"unknown activity code {str(code)[:40]!r}")
        start = _at(date, midnight, start_text, zone)
        if not isinstance(end_text, str) or end_text not in _MINUTES:
            raise BadRow(f"time {str(end_text)[:10]!r} is not HH:MM")
        # An end at or before the start is on the next day (a night shift).
        if end_text > str(start_text):  # both HH:MM by now
            end = _at(date, midnight, end_text, zone)
        else:
            end = _at(next_day, next_midnight, end_text, zone)
        if end - start > dt.timedelta(hours=24) or end <= start:
            raise BadRow(f"the activity at {start_text} lasts longer than 24 hours")
        if not isinstance(note, str) or len(note) > MAX_NOTE or "\x00" in note:
            note = _text({"note": note}, "note", max_length=MAX_NOTE, required=False)  # the reason
        activities.append(ActivitySpec(codes[code], start, end, note, _WFM))
    activities.sort(key=lambda a: a.start)
    for earlier, later in zip(activities, activities[1:], strict=False):
        if later.start < earlier.end:
            raise BadRow("activities overlap")
    return DayRow(
        agent=agent,
        date=date,
        published=_bool(day, "published", False),
        note=_text(day, "note", max_length=MAX_NOTE, required=False),
        activities=tuple(activities),
    )


# --- time off: earned balances and interval staffing (roster.json) -------------------------------------

MAX_EARNED_HOURS = 10_000
MAX_AGENTS_PER_INTERVAL = 100_000
INTERVAL_MINUTES = (15, 30, 60)
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class BalanceRow:
    agent: str
    code: str
    earned_minutes: int
    as_of: dt.date


@dataclass(frozen=True)
class StaffingRow:
    team: str | None  # None: the whole organisation
    date: dt.date
    start_text: str  # HH:MM, as the export wrote it
    start: dt.datetime  # UTC
    minutes: int
    required: int
    scheduled: int

    @property
    def reference(self) -> str:
        return staffing_reference(self.team, self.date, self.start_text)


def staffing_reference(team: object, date: object, start: object) -> str:
    return f"{'(organisation)' if team is None else team}/{date} {start}"


def _date(row: dict, key: str) -> dt.date:
    value = row.get(key)
    try:
        if isinstance(value, str) and len(value) == 10:
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise BadRow(f"{key} is not YYYY-MM-DD")


def _count(row: dict, key: str, *, maximum: int) -> int:
    value = row.get(key)
    # A JSON number with a zero fraction (3.0) is an integer, as JSON Schema has it.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise BadRow(f"{key} is not a whole number from 0 to {maximum}")
    return value


def _earned_minutes(row: dict) -> int:
    value = row.get("earned_hours")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRow("earned_hours is not a number")
    # repr: the shortest text that reads back as the same float, so 7.33 is 7.33, not 7.3299999...
    hours = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not hours.is_finite() or abs(hours) > MAX_EARNED_HOURS:
        raise BadRow(f"earned_hours is not from -{MAX_EARNED_HOURS} to {MAX_EARNED_HOURS}")
    if hours != hours.quantize(_CENT):
        raise BadRow("earned_hours has more than 2 decimals")
    # A hundredth of an hour is 0.6 minutes, never a half: the nearest minute shows as the same hours.
    return int((hours * 60).to_integral_value(ROUND_HALF_EVEN))


def balance_row(row: object, *, agents: Mapping[str, object], codes: Mapping[str, bool]) -> BalanceRow:
    """`agents`: the organisation's active agents by external id; `codes`: its activity codes, True
    for the ones open to time off."""
    if not isinstance(row, dict):
        raise BadRow("not an object")
    agent = _text(row, "agent", max_length=100)
    code = _text(row, "code", max_length=40)
    earned_minutes = _earned_minutes(row)
    as_of = _date(row, "as_of")
    if agent not in agents:
        raise BadRow(f"unknown agent {agent!r}")
    if code not in codes:
        raise BadRow(f"unknown activity code {code!r}")
    if not codes[code]:
        raise BadRow(f"activity code {code!r} is not open to time off")
    return BalanceRow(agent=agent, code=code, earned_minutes=earned_minutes, as_of=as_of)


def staffing_key(
    row: dict, *, teams: Mapping[str, object], zone: zoneinfo.ZoneInfo
) -> tuple[str | None, dt.datetime] | None:
    """The (team, start) a staffing row names, if that much of it can be read: a skipped row leaves
    that interval as it was."""
    team = row.get("team")
    if team is not None and (not isinstance(team, str) or team.strip() not in teams):
        return None
    try:
        return (None if team is None else team.strip()), _local(_date(row, "date"), row.get("start"), zone)
    except BadRow:
        return None


def staffing_row(
    row: object, *, teams: Mapping[str, object], zone: zoneinfo.ZoneInfo, window: tuple[dt.date, dt.date]
) -> StaffingRow | None:
    """`teams`: the organisation's teams by external id; `zone`: its default zone, the one the
    export's dates and times are in. None for a row outside the sync's `window` (ignored, as days are)."""
    if not isinstance(row, dict):
        raise BadRow("not an object")
    date = _date(row, "date")
    if not window[0] <= date <= window[1]:
        return None
    team = row.get("team")
    if team is not None:
        team = _text(row, "team", max_length=100)
        if team not in teams:
            raise BadRow(f"unknown team {team!r}")
    start_text = row.get("start")
    # A time the clocks skip is refused; one they repeat is its first occurrence.
    start = _local(date, start_text, zone)
    minutes = row.get("minutes", 30)
    if isinstance(minutes, float) and minutes.is_integer():
        minutes = int(minutes)
    if isinstance(minutes, bool) or minutes not in INTERVAL_MINUTES:
        raise BadRow("minutes is not 15, 30 or 60")
    return StaffingRow(
        team=team,
        date=date,
        start_text=str(start_text),
        start=start,
        minutes=minutes,
        required=_count(row, "required", maximum=MAX_AGENTS_PER_INTERVAL),
        scheduled=_count(row, "scheduled", maximum=MAX_AGENTS_PER_INTERVAL),
    )
