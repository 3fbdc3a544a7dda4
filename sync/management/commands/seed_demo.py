"""Demo data: three organisations with a supervisor each, whose WFM (`sync.demo`) exports a handful
of agents and six weeks of schedules into a directory per organisation; the WFM sync loads them. The
demo then sets what no export carries: passwords, who has activated the app, an enrolled TOTP,
approval rules and a blackout period."""

import datetime as dt
import zoneinfo
from pathlib import Path

import pyotp
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from em_agent.models import Agent, Organization, User
from schedules.demo import demo_approval_rules_upsert
from schedules.models import ActivityCode
from swaps.demo import demo_swaps_upsert
from sync.demo import ORGANIZATIONS, DemoOrganization, demo_export_write
from sync.models import RunStatus, SourceKind, SyncRun, WfmSource
from sync.services import wfm_sync
from timeoff.demo import demo_time_off_upsert

DEFAULT_PASSWORD = "demo-pass-2026"  # noqa: S105  (demo accounts only; --password to change)
SUPERUSER_EMAIL = "admin@em-agent.demo"
# Printed for every run, 0 or not, so that a second seed visibly changes nothing.
SUMMARY_COUNTS = (
    "agents",
    "agents_created",
    "agents_updated",
    "agents_deactivated",
    "activity_codes",
    "days_seen",
    "days_changed",
    "days_unchanged",
    "conflicts",
)


class Command(BaseCommand):
    help = (
        "Writes the demo WFM export, loads it with the WFM sync and creates or refreshes the demo "
        "organisations, supervisors and logins (idempotent)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Password of every demo account.")

    def handle(self, *args, password: str, **options) -> None:
        now = timezone.now()
        root = Path(settings.WFM_DEMO_EXPORT_DIR)
        rows: list[tuple[str, str, str]] = []
        logins: dict[int, list[tuple[str, str, str]]] = {}
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
            # The WFM owns neither organisations nor supervisors; the roster refers to the supervisors.
            organizations = [self._organization(spec, password, root) for spec in ORGANIZATIONS]
        runs: dict[int, list[SyncRun]] = {}
        for spec, org in zip(ORGANIZATIONS, organizations, strict=True):
            demo_export_write(spec=spec, directory=root / spec.slug, now=now)
            runs[org.pk] = [self._sync(org, now)]
        for spec, org in zip(ORGANIZATIONS, organizations, strict=True):
            # Only activated agents get their schedules, from the first sync after activation: a
            # second run for the agents this seed activated (all of them, the first time).
            fed_before = self._fed(org)
            with transaction.atomic():
                logins[org.pk] = self._agents(spec, org, password, now)
            if self._fed(org) - fed_before:
                runs[org.pk].append(self._sync(org, now))
        # Time-off rules, limits and balances' policies on top of what the WFM sent; the first
        # organisation's first agent gets a waitlisted request to look at.
        for index, (spec, org) in enumerate(zip(ORGANIZATIONS, organizations, strict=True)):
            first = Agent.objects.filter(organization=org, user__email=spec.agents[0].email).first()
            demo_time_off_upsert(
                organization=org,
                today=timezone.localdate(now, zoneinfo.ZoneInfo(org.default_timezone)),
                waitlisted_for=first if index == 0 else None,
            )
            # Swap rules; the first organisation's first two agents get a board offer and a swap
            # awaiting a supervisor.
            demo_swaps_upsert(
                organization=org,
                now=now,
                between=(spec.agents[0].email, spec.agents[1].email) if index == 0 else None,
            )
        for org in organizations:
            rows.extend(logins[org.pk])
        self._print(rows, password)
        self.stdout.write(
            f"WFM sync of the demo export in {root} (schedules from a week back to five weeks ahead, "
            "a sixth planned, not yet published):"
        )
        for org in organizations:
            self.stdout.write(f"  {org.name}: " + "; then ".join(self._describe(run) for run in runs[org.pk]))

    def _user(self, email: str, password: str, **fields) -> User:
        user, _created = User.objects.update_or_create(email=email, defaults={"is_active": True, **fields})
        user.set_password(password)
        user.save(update_fields=["password"])
        return user

    def _organization(self, spec: DemoOrganization, password: str, root: Path) -> Organization:
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
        self._user(email, password, first_name=first, last_name=last, is_staff=True, organization=org)
        WfmSource.objects.update_or_create(
            organization=org,
            defaults={"kind": SourceKind.DIRECTORY, "location": str(root / spec.slug), "token_setting": ""},
        )
        return org

    def _sync(self, org: Organization, now: dt.datetime) -> SyncRun:
        run = wfm_sync(organization=org, trigger="seed_demo", now=now)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"the WFM sync of {org.name} did not succeed: {run.status} {run.error}")
        return run

    def _fed(self, org: Organization) -> set[int]:
        """The agents the sync writes schedules for."""
        return set(
            Agent.objects.filter(
                organization=org, activated_at__isnull=False, user__is_active=True
            ).values_list("pk", flat=True)
        )

    def _agents(
        self, spec: DemoOrganization, org: Organization, password: str, now: dt.datetime
    ) -> list[tuple[str, str, str]]:
        rows = [("supervisor", spec.supervisor[0], org.name)]
        for demo in spec.agents:
            agent = (
                Agent.objects.select_related("user")
                .filter(organization=org, external_id=demo.external_id)
                .first()
            )
            if agent is None:
                raise CommandError(
                    f"the WFM sync did not load {demo.email} of {org.name}: see its skipped rows in the admin"
                )
            user = agent.user
            user.set_password(password)
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
            if demo.activated and agent.activated_at is None:
                agent.activated_at = now - dt.timedelta(days=30)
                agent.save(update_fields=["activated_at"])
            elif not demo.activated and agent.activated_at is not None:
                # Re-seeding restores the not-yet-activated agents, so activation can be tried again.
                agent.activated_at = None
                agent.save(update_fields=["activated_at"])
            note = "activated" if demo.activated else "NOT activated: issue a code to try activation"
            if demo.totp:
                note += f"; TOTP secret {self._totp_secret(user)}"
            rows.append((f"agent ({org.wfm_system})", demo.email, f"{org.name}, {note}"))
        codes = dict(ActivityCode.objects.filter(organization=org).values_list("code", "pk"))
        today = timezone.localdate(now, zoneinfo.ZoneInfo(org.default_timezone))
        demo_approval_rules_upsert(organization=org, codes=codes, today=today)
        return rows

    def _totp_secret(self, user: User) -> str:
        authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
        if authenticator is None:
            authenticator = TOTP.activate(user, pyotp.random_base32(length=32)).instance
        return decrypt(authenticator.data["secret"])

    def _describe(self, run: SyncRun) -> str:
        counts = {name: 0 for name in SUMMARY_COUNTS} | run.counts
        return f"sync {run.status}: " + ", ".join(f"{name} {value}" for name, value in counts.items())

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
