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
from schedules.demo import activity_code_specs, demo_schedule_rows

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
                (("S-NL", 2), ("S-BILL", 1)),
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
    return {
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
