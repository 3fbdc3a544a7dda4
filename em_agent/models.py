"""Core models every app leans on: users, organisations, agents, teams and skills."""

import datetime as dt
import zoneinfo
from functools import cache
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.timezone import now as utc_now
from django.utils.translation import gettext_lazy as _


@cache
def _known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in _known_time_zones():
        raise ValidationError(_("%(value)s is not a known IANA time zone."), params={"value": value})


class WfmSystem(models.TextChoices):
    CXONE = "cxone", "CXone WFM"
    IEX = "iex", "IEX WFM Integrated"


class Language(models.TextChoices):
    EN = "en", "English"
    NL = "nl", "Nederlands"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        if password:
            user.set_password(password)
        else:
            # Provisioned agents get no usable password; they set one through the reset email.
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields) -> "User":
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields) -> "User":
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A login. Agents have an `agent` profile; supervisors are staff tied to one organisation."""

    username = None  # type: ignore[assignment]
    email = models.EmailField(_("email address"), unique=True)
    organization = models.ForeignKey(
        "em_agent.Organization",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff",
        help_text=_("For supervisors: the one organisation they manage. Empty for superusers."),
    )
    # An agent reads in its own language (Agent.language); this is a supervisor's, for the emails and
    # notifications they get (an absence reported, time off cancelled).
    language = models.CharField(
        _("language"),
        max_length=2,
        choices=Language.choices,
        default=Language.EN,
        help_text=_("For supervisors: the language of their emails."),
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            # One account per address whatever its case: Anna@X and anna@x are the same person.
            models.UniqueConstraint(Lower("email"), name="user_email_unique_case_insensitive")
        ]

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    # Email instead of username; the stubs expect the username-based manager.
    objects = UserManager()  # type: ignore[assignment, misc]

    def __str__(self) -> str:
        return self.email

    @property
    def is_supervisor(self) -> bool:
        return self.is_active and self.is_staff and self.organization_id is not None


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    wfm_system = models.CharField(max_length=10, choices=WfmSystem.choices, default=WfmSystem.CXONE)
    mfa_required = models.BooleanField(default=False)
    default_timezone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    session_idle_timeout_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(60)],
        help_text=_("Overrides the default inactivity timeout (60 minutes); never longer."),
    )
    absence_horizon_days = models.PositiveSmallIntegerField(
        default=28, validators=[MinValueValidator(1), MaxValueValidator(366)]
    )
    nightly_sync_time = models.TimeField(
        default=dt.time(2, 0),
        help_text=_("Local time (default time zone) of the nightly WFM sync."),
    )
    created_at = models.DateTimeField(default=utc_now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(session_idle_timeout_minutes__isnull=True)
                | Q(session_idle_timeout_minutes__gte=5, session_idle_timeout_minutes__lte=60),
                name="organization_idle_timeout_5_to_60",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def idle_timeout_minutes(self) -> int:
        # An organisation may shorten the timeout, never lengthen it.
        default = settings.SESSION_IDLE_TIMEOUT_MINUTES
        return min(self.session_idle_timeout_minutes or default, default)

    def next_sync_at(self, *, now: dt.datetime) -> dt.datetime:
        zone = zoneinfo.ZoneInfo(self.default_timezone)
        local_now = now.astimezone(zone)
        candidate = dt.datetime.combine(local_now.date(), self.nightly_sync_time, tzinfo=zone)
        if candidate <= local_now:
            candidate = dt.datetime.combine(
                local_now.date() + dt.timedelta(days=1), self.nightly_sync_time, tzinfo=zone
            )
        # Through UTC and back: on the spring-forward night 02:00 does not exist and becomes 03:00.
        return candidate.astimezone(dt.UTC).astimezone(zone)


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    external_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="team_unique_external_id")
        ]

    def __str__(self) -> str:
        return self.name


class Agent(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="agents")
    external_id = models.CharField(_("WFM external id"), max_length=100)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, validators=[validate_time_zone])
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="supervised_agents",
        limit_choices_to={"is_staff": True},
    )
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="agents")
    activated_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=utc_now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="agent_unique_external_id")
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.user.email}>"

    def clean(self) -> None:
        # Nothing of one organisation may hang off another's agent.
        errors = {}
        if self.team is not None and self.team.organization_id != self.organization_id:
            errors["team"] = _("The team belongs to another organisation.")
        if self.supervisor is not None and self.supervisor.organization_id not in (
            None,
            self.organization_id,
        ):
            errors["supervisor"] = _("The supervisor belongs to another organisation.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_activated(self) -> bool:
        return self.activated_at is not None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def sync_pending(self) -> bool:
        """Activated, but the nightly sync has not brought its skills and schedule since."""
        if self.activated_at is None:
            return False
        return self.last_synced_at is None or self.last_synced_at < self.activated_at


class Skill(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="skills")
    external_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="skill_unique_external_id")
        ]

    def __str__(self) -> str:
        return self.name


class AgentSkill(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="agent_skills")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="agent_skills")
    level = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )

    class Meta:
        ordering = ["skill__name"]
        constraints = [models.UniqueConstraint(fields=["agent", "skill"], name="agent_skill_unique")]

    def __str__(self) -> str:
        return f"{self.skill} ({self.level})"

    def clean(self) -> None:
        if self.skill_id and self.agent_id and self.skill.organization_id != self.agent.organization_id:
            raise ValidationError({"skill": _("The skill belongs to another organisation.")})
