"""Schedules: activity codes, the agent's days (published flag, day note) and the activities in them,
and the journal of every change (what it replaced, so it can be undone exactly).

Activities are UTC instants plus the agent's zone; a day is a local date. An activity belongs to the
local day it starts on and may run past midnight (a night shift)."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.timezone import now as utc_now
from django.utils.translation import gettext_lazy as _

from em_agent.models import Agent, Organization


class ActivityCategory(models.TextChoices):
    WORK = "work", _("Work")
    BREAK = "break", _("Break")
    MEAL = "meal", _("Meal")
    MEETING = "meeting", _("Meeting")
    TRAINING = "training", _("Training")
    TIME_OFF = "time_off", _("Time off")
    ABSENCE = "absence", _("Absence")
    OTHER = "other", _("Other")


class ActivityCode(models.Model):
    """What an activity is, as the WFM names it. `code` is the WFM's key for it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="activity_codes")
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    category = models.CharField(
        max_length=20, choices=ActivityCategory.choices, default=ActivityCategory.WORK
    )
    color = models.CharField(
        max_length=7,
        default="#4A90D9",
        validators=[RegexValidator(r"^#[0-9A-Fa-f]{6}$", _("A colour as #RRGGBB."))],
    )
    paid = models.BooleanField(default=True)
    # The uses an agent may pick it for (GET /activity-codes?usage=...).
    open_for_requests = models.BooleanField(_("open to schedule requests"), default=False)
    open_for_time_off = models.BooleanField(_("open to time off"), default=False)
    open_for_absence = models.BooleanField(_("an IEX exception code"), default=False)
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=utc_now)

    class Meta:
        ordering = ["organization", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"], name="activity_code_unique_per_organization"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class ScheduleDay(models.Model):
    """One agent's local day: published by the WFM or not, with the day's note."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="schedule_days")
    date = models.DateField()
    published = models.BooleanField(default=False)
    note = models.TextField(blank=True, max_length=2000)
    updated_at = models.DateTimeField(default=utc_now)
    # The content hash of the WFM's last copy of this day (the sync compares it; issue 5).
    wfm_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["agent", "date"]
        constraints = [models.UniqueConstraint(fields=["agent", "date"], name="schedule_day_unique")]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.date}"


class ActivitySource(models.TextChoices):
    WFM = "wfm", _("WFM")
    REQUEST = "request", _("Schedule request")
    TIME_OFF = "time_off", _("Time off")
    SWAP = "swap", _("Swap")
    SUPERVISOR = "supervisor", _("Supervisor")


class Activity(models.Model):
    """No two activities of an agent overlap: checked by the service everywhere, and on PostgreSQL by
    an exclusion constraint too (migration 0002), so no race can write an overlap."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="activities")
    day = models.ForeignKey(ScheduleDay, on_delete=models.CASCADE, related_name="activities")
    activity_code = models.ForeignKey(ActivityCode, on_delete=models.PROTECT, related_name="activities")
    start = models.DateTimeField()
    end = models.DateTimeField()
    note = models.TextField(blank=True, max_length=2000)
    source = models.CharField(max_length=20, choices=ActivitySource.choices, default=ActivitySource.WFM)

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="activity_end_after_start")
        ]
        indexes = [models.Index(fields=["agent", "start"], name="activity_agent_start")]

    def __str__(self) -> str:
        return f"{self.activity_code_id} {self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M}"


class ScheduleChange(models.Model):
    """The journal: one row per changed day, with the day as it was and as it became, so a change
    (an approved request, time off, a swap) can be reverted to exactly what it replaced."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="schedule_changes")
    date = models.DateField()
    source = models.CharField(max_length=20, choices=ActivitySource.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    before = models.JSONField()
    after = models.JSONField()
    reverts = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=utc_now)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["agent", "date"], name="schedule_change_agent_date")]

    def __str__(self) -> str:
        return f"{self.source} change of {self.agent_id} on {self.date}"
