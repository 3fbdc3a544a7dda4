"""Demo data: three organisations, a supervisor each and a handful of agents with known passwords, and
six weeks of schedules for the activated agents (`schedules.demo`)."""

import datetime as dt
from dataclasses import dataclass

import pyotp
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from allauth.mfa.utils import decrypt
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from em_agent.models import Agent, AgentSkill, Language, Organization, Skill, Team, User, WfmSystem
from schedules.demo import demo_schedules_seed

DEFAULT_PASSWORD = "demo-pass-2026"  # noqa: S105  (demo accounts only; --password to change)


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

SUPERUSER_EMAIL = "admin@em-agent.demo"


class Command(BaseCommand):
    help = "Creates or refreshes the demo organisations, supervisors, agents and schedules (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Password of every demo account.")

    def handle(self, *args, password: str, **options) -> None:
        now = timezone.now()
        rows: list[tuple[str, str, str]] = []
        schedules: list[str] = []
        with transaction.atomic():
            admin = self._user(
                SUPERUSER_EMAIL,
                password,
                first_name="Demo",
                last_name="Admin",
                is_staff=True,
                is_superuser=True,
            )
            rows.append(("superuser", admin.email, "all organisations"))
            for spec in ORGANIZATIONS:
                rows.extend(self._organization(spec, password, now))
                schedules.append(self._schedules(spec, now))
        self._print(rows, password)
        self.stdout.write("Schedules (a week back, five ahead; the last week not yet published):")
        for line in schedules:
            self.stdout.write(line)

    def _user(self, email: str, password: str, **fields) -> User:
        user, _created = User.objects.update_or_create(email=email, defaults={"is_active": True, **fields})
        user.set_password(password)
        user.save(update_fields=["password"])
        return user

    def _organization(
        self, spec: DemoOrganization, password: str, now: dt.datetime
    ) -> list[tuple[str, str, str]]:
        org, _ = Organization.objects.update_or_create(
            slug=spec.slug,
            defaults={
                "name": spec.name,
                "wfm_system": spec.wfm_system,
                "default_timezone": spec.zone,
                "mfa_required": spec.mfa_required,
            },
        )
        email, first, last = spec.supervisor
        supervisor = self._user(
            email, password, first_name=first, last_name=last, is_staff=True, organization=org
        )
        rows = [("supervisor", email, org.name)]
        teams = {
            external_id: Team.objects.update_or_create(
                organization=org, external_id=external_id, defaults={"name": name}
            )[0]
            for external_id, name in spec.teams
        }
        skills = {
            external_id: Skill.objects.update_or_create(
                organization=org, external_id=external_id, defaults={"name": name}
            )[0]
            for external_id, name in spec.skills
        }
        for demo in spec.agents:
            first_name, _, last_name = demo.name.partition(" ")
            user = self._user(demo.email, password, first_name=first_name, last_name=last_name)
            agent, created = Agent.objects.update_or_create(
                user=user,
                defaults={
                    "organization": org,
                    "external_id": demo.external_id,
                    "name": demo.name,
                    "timezone": demo.timezone or spec.zone,
                    "language": demo.language,
                    "supervisor": supervisor,
                    "team": teams[demo.team],
                },
            )
            if demo.activated and agent.activated_at is None:
                agent.activated_at = now - dt.timedelta(days=30)
                agent.last_synced_at = now - dt.timedelta(days=1)
                agent.save(update_fields=["activated_at", "last_synced_at"])
            elif not demo.activated and agent.activated_at is not None:
                # Re-seeding restores the not-yet-activated agents, so activation can be tried again.
                agent.activated_at = None
                agent.save(update_fields=["activated_at"])
            for skill_id, level in demo.skills:
                AgentSkill.objects.update_or_create(
                    agent=agent, skill=skills[skill_id], defaults={"level": level}
                )
            note = "activated" if demo.activated else "NOT activated: issue a code to try activation"
            if demo.totp:
                note += f"; TOTP secret {self._totp_secret(user)}"
            rows.append((f"agent ({org.wfm_system})", demo.email, f"{org.name}, {note}"))
        return rows

    def _schedules(self, spec: DemoOrganization, now: dt.datetime) -> str:
        # After the agents: only the activated ones get a schedule, as only they are synced.
        org = Organization.objects.get(slug=spec.slug)
        result = demo_schedules_seed(organization=org, now=now)
        line = (
            f"  {org.name}: {result.agents} agent{'s' if result.agents != 1 else ''}, "
            f"{result.days} days ({result.working_days} working), "
            f"{result.activities} activities; {result.changed_days} days written"
        )
        if result.kept_days:
            line += f", {result.kept_days} days with local changes kept"
        return line

    def _totp_secret(self, user: User) -> str:
        authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
        if authenticator is None:
            authenticator = TOTP.activate(user, pyotp.random_base32(length=32)).instance
        return decrypt(authenticator.data["secret"])

    def _print(self, rows: list[tuple[str, str, str]], password: str) -> None:
        self.stdout.write(self.style.SUCCESS("Demo data ready. Every account's password: " + password))
        width = max(len(email) for _, email, _ in rows)
        for role, email, note in rows:
            self.stdout.write(f"  {role:<16} {email:<{width}}  {note}")
        self.stdout.write(
            "Admin: /admin/ (supervisors, the superuser). API docs: /api/docs/.\n"
            'App login: POST /_allauth/app/v1/auth/login {"email", "password"}; then the header X-Session-Token.\n'
            "Activation code for a not-yet-activated agent: python manage.py issue_activation_code EMAIL"
        )
