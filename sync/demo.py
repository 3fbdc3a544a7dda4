"""The demo's WFM (`seed_demo`): its organisations' rosters and schedules as an export in the
documented format (docs/wfm-export.md), a directory per organisation, which the sync then loads like
any other WFM's."""

from __future__ import annotations

import datetime as dt
import json
import os
import zoneinfo
from dataclasses import asdict, dataclass
from pathlib import Path

from em_agent.models import Language, WfmSystem
from schedules.demo import WORK_CODES, activity_code_specs, demo_schedule_rows

EXPORT_FORMAT = {"format": "em-agent-wfm-export", "version": 1}


@dataclass(frozen=True)
class DemoAgent:
    email: str
    name: str
    external_id: str
    team: str
    language: str
    activated: bool
    skills: tuple[tuple[str, int], ...]
    timezone: str | None = None
    totp: bool = False


@dataclass(frozen=True)
class DemoOrganization:
    slug: str
    name: str
    wfm_system: str
    zone: str
    mfa_required: bool
    supervisor: tuple[str, str, str]
    teams: tuple[tuple[str, str], ...]
    skills: tuple[tuple[str, str], ...]
    agents: tuple[DemoAgent, ...]


ORGANIZATIONS = (
    DemoOrganization(
        slug="contoso-cxone",
        name="Contoso Care (CXone)",
        wfm_system=WfmSystem.CXONE,
        zone="Europe/Amsterdam",
        mfa_required=False,
        supervisor=("sam@contoso.demo", "Sam", "Jansen"),
        teams=(("T-SALES", "Sales"), ("T-CARE", "Customer care")),
        skills=(("S-NL", "Dutch"), ("S-EN", "English"), ("S-BILL", "Billing")),
        agents=(
            DemoAgent(
                "anna@contoso.demo",
                "Anna de Vries",
                "C-1001",
                "T-CARE",
                Language.NL,
                True,
                (("S-NL", 3), ("S-EN", 2)),
            ),
            DemoAgent(
                "bram@contoso.demo",
                "Bram Bakker",
                "C-1002",
                "T-CARE",
                Language.NL,
                True,
                (("S-NL", 3), ("S-EN", 2)),
            ),
            DemoAgent(
                "chloe@contoso.demo",
                "Chloé Martin",
                "C-1003",
                "T-SALES",
                Language.EN,
                True,
                (("S-EN", 3),),
            ),
            DemoAgent(
                "daan@contoso.demo",
                "Daan Visser",
                "C-1004",
                "T-SALES",
                Language.NL,
                True,
                (("S-NL", 1), ("S-EN", 1)),
            ),
            DemoAgent(
                "eva@contoso.demo",
                "Eva Smit",
                "C-1005",
                "T-CARE",
                Language.NL,
                False,
                (("S-NL", 2),),
            ),
        ),
    ),
    DemoOrganization(
        slug="fabrikam-iex",
        name="Fabrikam Support (IEX)",
        wfm_system=WfmSystem.IEX,
        zone="America/New_York",
        mfa_required=False,
        supervisor=("pat@fabrikam.demo", "Pat", "Miller"),
        teams=(("EAST", "East coast"), ("WEST", "West coast")),
        skills=(("EN", "English"), ("ES", "Spanish"), ("TECH", "Tech support")),
        agents=(
            DemoAgent(
                "frank@fabrikam.demo",
                "Frank Lopez",
                "X-2001",
                "EAST",
                Language.EN,
                True,
                (("EN", 3), ("ES", 2)),
            ),
            DemoAgent(
                "grace@fabrikam.demo",
                "Grace Kim",
                "X-2002",
                "EAST",
                Language.EN,
                True,
                (("EN", 3), ("TECH", 2)),
            ),
            DemoAgent(
                "hugo@fabrikam.demo",
                "Hugo Reyes",
                "X-2003",
                "WEST",
                Language.EN,
                True,
                (("EN", 2),),
                "America/Los_Angeles",
            ),
            DemoAgent(
                "iris@fabrikam.demo",
                "Iris Chen",
                "X-2004",
                "WEST",
                Language.EN,
                False,
                (("EN", 2), ("TECH", 1)),
            ),
        ),
    ),
    DemoOrganization(
        slug="northwind-mfa",
        name="Northwind Secure (CXone, MFA)",
        wfm_system=WfmSystem.CXONE,
        zone="Europe/London",
        mfa_required=True,
        supervisor=("quinn@northwind.demo", "Quinn", "Taylor"),
        teams=(("NW", "Northwind"),),
        skills=(("EN", "English"),),
        agents=(
            DemoAgent(
                "jack@northwind.demo",
                "Jack Wilson",
                "N-3001",
                "NW",
                Language.EN,
                True,
                (("EN", 2),),
                totp=True,
            ),
            DemoAgent(
                "kate@northwind.demo",
                "Kate Brown",
                "N-3002",
                "NW",
                Language.EN,
                False,
                (("EN", 1),),
            ),
        ),
    ),
)


def demo_roster(*, spec: DemoOrganization, now: dt.datetime) -> dict[str, object]:
    roster: dict[str, object] = {
        **EXPORT_FORMAT,
        "generated_at": _generated_at(spec, now),
        "teams": [{"external_id": key, "name": name} for key, name in spec.teams],
        "skills": [{"external_id": key, "name": name} for key, name in spec.skills],
        "activity_codes": [asdict(code) for code in activity_code_specs(wfm_system=spec.wfm_system)],
        "agents": [
            {
                "external_id": agent.external_id,
                "name": agent.name,
                "email": agent.email,
                "timezone": agent.timezone or spec.zone,
                "language": agent.language,
                "team": agent.team,
                "supervisor_email": spec.supervisor[0],
                "skills": [{"skill": skill, "level": level} for skill, level in agent.skills],
            }
            for agent in spec.agents
        ],
    }
    if spec.wfm_system == WfmSystem.CXONE:
        # CXone WFM counts earned time off and interval staffing; IEX organisations file absences.
        roster["time_off_balances"] = demo_time_off_balances(spec=spec, now=now)
        roster["staffing"] = demo_staffing(spec=spec, now=now)
    return roster


# Earned hours of each time-off code, for every agent, counted by the WFM on the 1st of January.
DEMO_EARNED_HOURS = {"VAC": 200, "PERSONAL": 16}


def demo_time_off_balances(*, spec: DemoOrganization, now: dt.datetime) -> list[dict[str, object]]:
    as_of = dt.date(now.astimezone(zoneinfo.ZoneInfo(spec.zone)).year, 1, 1)
    codes = [
        code.code
        for code in activity_code_specs(wfm_system=spec.wfm_system)
        if code.open_for_time_off and code.code in DEMO_EARNED_HOURS
    ]
    return [
        {
            "agent": agent.external_id,
            "code": code,
            "earned_hours": DEMO_EARNED_HOURS[code],
            "as_of": as_of.isoformat(),
        }
        for agent in spec.agents
        for code in codes
    ]


STAFFING_DAYS = 14  # from today on, in the organisation's zone
OPENING = (dt.time(8, 0), dt.time(20, 0))  # every day: the demo's shifts run from 08:00 to 20:00
INTERVAL = dt.timedelta(minutes=30)
# The team's agents the demo does not have logins for, planned by the WFM all the same.
OTHER_AGENTS_PER_TEAM = 8
# Scheduled minus required, by two-hour block of the day (rotating by day and team): comfortable
# (+4: 3 to spare without one agent, so time off there can be approved at once), tight (+1: exactly
# the requirement without the agent, a supervisor decides) and short (-2: nothing to offer).
SURPLUS_ROTATION = (4, 1, 4, -2, 4, 1)


def demo_staffing(*, spec: DemoOrganization, now: dt.datetime) -> list[dict[str, object]]:
    """Staffing per team and 30-minute interval over the opening hours of the coming 14 days: the
    team's agents whom the demo schedules put on work (phone, email, chat) for the whole interval,
    plus the team's other agents; required follows from the block's surplus."""
    zone = zoneinfo.ZoneInfo(spec.zone)
    today = now.astimezone(zone).date()
    dates = [today + dt.timedelta(days=offset) for offset in range(STAFFING_DAYS)]
    working = _work_spans(spec, now)
    rows: list[dict[str, object]] = []
    for team_index, (team, _name) in enumerate(spec.teams):
        members = [agent.external_id for agent in spec.agents if agent.team == team]
        for date in dates:
            moment = dt.datetime.combine(date, OPENING[0], tzinfo=zone)
            close = dt.datetime.combine(date, OPENING[1], tzinfo=zone)
            while moment < close:
                start = moment.astimezone(dt.UTC)
                end = start + INTERVAL
                on_work = sum(
                    any(begin <= start and end <= finish for begin, finish in working.get(agent, ()))
                    for agent in members
                )
                scheduled = OTHER_AGENTS_PER_TEAM + on_work
                block = (moment.hour - OPENING[0].hour) // 2
                surplus = SURPLUS_ROTATION[(block + date.toordinal() + team_index) % len(SURPLUS_ROTATION)]
                rows.append(
                    {
                        "team": team,
                        "date": date.isoformat(),
                        "start": f"{moment:%H:%M}",
                        "minutes": INTERVAL.seconds // 60,
                        "required": max(scheduled - surplus, 0),
                        "scheduled": scheduled,
                    }
                )
                moment += INTERVAL
    return rows


def _work_spans(spec: DemoOrganization, now: dt.datetime) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """Each agent's work activities in the demo export, as UTC instants (no demo shift touches the
    hours a DST change skips or repeats, nor runs past midnight)."""
    zones = {agent.external_id: zoneinfo.ZoneInfo(agent.timezone or spec.zone) for agent in spec.agents}
    agents = [(agent.external_id, agent.timezone or spec.zone) for agent in spec.agents]
    spans: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for day in demo_schedule_rows(slug=spec.slug, agents=agents, now=now):
        date, zone = dt.date.fromisoformat(day["date"]), zones[day["agent"]]
        for activity in day["activities"]:
            if activity["code"] in WORK_CODES:
                spans.setdefault(day["agent"], []).append(
                    tuple(  # type: ignore[arg-type]
                        dt.datetime.combine(
                            date, dt.time.fromisoformat(activity[key]), tzinfo=zone
                        ).astimezone(dt.UTC)
                        for key in ("start", "end")
                    )
                )
    return spans


def demo_schedules(*, spec: DemoOrganization, now: dt.datetime) -> dict[str, object]:
    agents = [(agent.external_id, agent.timezone or spec.zone) for agent in spec.agents]
    return {
        **EXPORT_FORMAT,
        "generated_at": _generated_at(spec, now),
        "days": demo_schedule_rows(slug=spec.slug, agents=agents, now=now),
    }


def demo_export_write(*, spec: DemoOrganization, directory: Path, now: dt.datetime) -> None:
    """Writes `roster.json` and `schedules.json` into `directory`, each replaced whole: a sync that
    reads the directory meanwhile (the nightly one) sees the old file or the new, never half of one."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in (
        ("roster.json", demo_roster(spec=spec, now=now)),
        ("schedules.json", demo_schedules(spec=spec, now=now)),
    ):
        partial = directory / f".{name}.partial"
        partial.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(partial, directory / name)


def _generated_at(spec: DemoOrganization, now: dt.datetime) -> str:
    return now.astimezone(zoneinfo.ZoneInfo(spec.zone)).isoformat(timespec="seconds")
