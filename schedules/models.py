"""Schedules: activity codes, the agent's days (published flag, day note) and the activities in them,
and the journal of every change (what it replaced, so it can be undone exactly).

Activities are UTC instants plus the agent's zone; a day is a local date. An activity belongs to the
local day it starts on and may run past midnight (a night shift)."""

from __future__ import annotations

from collections.abc import Collection

from django.conf import settings
from django.core import checks
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.timezone import now as utc_now
from django.utils.translation import gettext_lazy as _

from em_agent.messages import Reason
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
    # From the first activity's start to the last one's end (none: no activities), kept by the
    # schedule service. On PostgreSQL no two days of an agent overlap (migration 0008): since every
    # activity starts on its own day, that is exactly "no activity overlaps another day's".
    first_start = models.DateTimeField(null=True, blank=True, editable=False)
    last_end = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        # By id, not "agent": that would order by the agent's name, a join on every read of days.
        ordering = ["agent_id", "date"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "date"], name="schedule_day_unique"),
            # What an activity's (day, agent) foreign key points at.
            models.UniqueConstraint(fields=["id", "agent"], name="schedule_day_id_agent"),
            models.CheckConstraint(
                condition=Q(first_start__isnull=True, last_end__isnull=True)
                | Q(last_end__gt=F("first_start")),
                name="schedule_day_span",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent.name}, {self.date:%Y-%m-%d}"


class ActivitySource(models.TextChoices):
    WFM = "wfm", _("WFM")
    REQUEST = "request", _("Schedule request")
    TIME_OFF = "time_off", _("Time off")
    SWAP = "swap", _("Swap")
    SUPERVISOR = "supervisor", _("Supervisor")


class ActivityQuerySet(models.QuerySet):
    def of_agent(self, agent_id: int) -> ActivityQuerySet:
        """The agent's activities, the day's agent named too: with a condition on the days' dates,
        PostgreSQL then reads the agent's days by (agent, date) instead of hashing every agent's day
        of those dates, which it does when it knows only the activities' agent (it cannot tell that
        an agent's activities lie on that agent's days): 2 ms a date at 800 agents against 0.04."""
        return self.filter(agent_id=agent_id, day__agent_id=agent_id)

    def of_agents(self, agent_ids: Collection[int]) -> ActivityQuerySet:
        """As of_agent, for a few agents."""
        ids = sorted(agent_ids)
        return self.filter(agent_id__in=ids, day__agent_id__in=ids)


class Activity(models.Model):
    """No two activities of an agent overlap: within a day the schedule service checks it (it writes
    a day only under the day's row lock), and between days, on PostgreSQL, an exclusion constraint on
    the days' spans does too (migration 0008), so no race can write an overlap."""

    # On PostgreSQL one foreign key, (day, agent) -> the day's (id, agent) (migration 0008), holds
    # both: the day exists and is this agent's. One check per row instead of two: a first sync
    # writes 2.5 million rows. The agent is indexed by activity_agent_start (agent first).
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="activities", db_index=False, db_constraint=False
    )
    day = models.ForeignKey(
        ScheduleDay, on_delete=models.CASCADE, related_name="activities", db_constraint=False
    )
    activity_code = models.ForeignKey(ActivityCode, on_delete=models.PROTECT, related_name="activities")
    start = models.DateTimeField()
    end = models.DateTimeField()
    note = models.TextField(blank=True, max_length=2000)
    source = models.CharField(max_length=20, choices=ActivitySource.choices, default=ActivitySource.WFM)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="activity_end_after_start")
        ]
        indexes = [models.Index(fields=["agent", "start"], name="activity_agent_start")]

    def __str__(self) -> str:
        zone = self.agent.zone
        return f"{self.activity_code.code} {self.start.astimezone(zone):%Y-%m-%d %H:%M}-{self.end.astimezone(zone):%H:%M}"


def activity_references() -> list[models.ForeignObject]:
    """Every foreign key to Activity, whichever app declares it (a schedule request, a time-off day,
    a swap offer), hidden ones (related_name "+") included. The schedule service deletes activities
    with one raw DELETE, not Django's collector (a sync removes thousands), so it clears these itself
    first (schedules.bulk.activities_delete): a row pointing at a removed activity loses the link
    instead of breaking the commit. Read from the model registry, not a list to register in: a new
    referrer cannot be forgotten."""
    return [
        relation.field
        for relation in Activity._meta.get_fields(include_hidden=True)
        if isinstance(relation, models.ForeignObjectRel) and not relation.many_to_many
    ]


@checks.register(checks.Tags.models)
def _activity_references_are_set_null(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for field in activity_references():
        on_delete = field.remote_field.on_delete
        if on_delete is models.SET_NULL or (on_delete is models.CASCADE and field.model._meta.auto_created):
            continue  # cleared, or (a many-to-many's own table) deleted, by activities_delete
        errors.append(
            checks.Error(
                f"{field.model._meta.label}.{field.name} points at an Activity with on_delete="
                f"{getattr(on_delete, '__name__', on_delete)}",
                hint="Use on_delete=models.SET_NULL, null=True: the schedule service replaces activities "
                "in bulk and clears the references to the ones it removes.",
                obj=field,
                id="schedules.E001",
            )
        )
    return errors


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
    # The rows one call of the schedule service wrote share a group: one decision (time off over a
    # week, a swap of two agents' days) is one group, undone together (schedule_change_group_undo).
    group = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=utc_now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["agent", "date"], name="schedule_change_agent_date"),
            models.Index(fields=["group"], name="schedule_change_group"),
        ]

    def __str__(self) -> str:
        return f"{self.source} change of {self.agent_id} on {self.date}"


class CalendarFeed(models.Model):
    """A personal iCalendar URL for phone calendars: a random token, not the session. Stored as a hash
    (to find it) and encrypted (to show the URL again); deleting the row revokes the URL."""

    agent = models.OneToOneField(Agent, on_delete=models.CASCADE, related_name="calendar_feed")
    token_hash = models.CharField(max_length=64, unique=True)
    token_encrypted = models.TextField()
    created_at = models.DateTimeField(default=utc_now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"calendar feed of {self.agent_id}"


# --- the approval engine's rules (shared by schedule requests, time off and swaps) ---------------


class RequestType(models.TextChoices):
    SCHEDULE = "schedule", _("Schedule request")
    TIME_OFF = "time_off", _("Time off")
    SWAP = "swap", _("Swap")


class RuleAction(models.TextChoices):
    AUTO_APPROVE = "auto_approve", _("Approve automatically")
    MANUAL = "manual", _("Send to a supervisor")
    AUTO_DECLINE = "auto_decline", _("Decline automatically")


class ApprovalRule(models.Model):
    """What happens to a request of a type (and, optionally, one activity code): its action when every
    condition holds, and the fallback when one fails. The most specific active rule applies (a code's
    own rule before the type's general one, then the lowest priority number). No rule: a supervisor
    decides."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="approval_rules")
    request_type = models.CharField(max_length=20, choices=RequestType.choices)
    activity_code = models.ForeignKey(
        ActivityCode,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approval_rules",
        help_text=_("Empty: every activity code of the type."),
    )
    action = models.CharField(max_length=20, choices=RuleAction.choices, default=RuleAction.MANUAL)
    min_lead_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("The request must start at least this many hours ahead.")
    )
    max_per_day = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "At most this many approved or pending requests of the type on one day in the organisation."
        ),
    )
    when_conditions_fail = models.CharField(
        max_length=20,
        choices=[
            (RuleAction.MANUAL, RuleAction.MANUAL.label),
            (RuleAction.AUTO_DECLINE, RuleAction.AUTO_DECLINE.label),
        ],
        default=RuleAction.MANUAL,
    )
    # Time off: a request whose only failing condition is a full limit waits in line (pending,
    # waitlisted) instead, and is approved when a place frees, first come first served.
    waitlist_when_full = models.BooleanField(
        default=False,
        help_text=_("Time off: when only the limit is full, put the request on the waitlist instead."),
    )
    priority = models.PositiveSmallIntegerField(default=100)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["organization", "request_type", "priority", "id"]

    def __str__(self) -> str:
        target = self.activity_code.code if self.activity_code is not None else "*"
        return f"{self.get_request_type_display()} {target}: {self.get_action_display()}"


class BlackoutPeriod(models.Model):
    """Dates on which requests of the chosen types are declined automatically (a holiday peak)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="blackout_periods")
    start_date = models.DateField()
    end_date = models.DateField()
    reason = models.CharField(max_length=200)
    applies_to_schedule = models.BooleanField(default=True)
    applies_to_time_off = models.BooleanField(default=True)
    applies_to_swap = models.BooleanField(default=True)

    class Meta:
        ordering = ["organization", "start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="blackout_end_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.start_date}-{self.end_date}: {self.reason}"


class RequestStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    DENIED = "denied", _("Denied")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class Decision(models.Model):
    """Who or what decided a request, when and why: shared by every kind of request."""

    status = models.CharField(max_length=20, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    # A supervisor's own words; or, when a rule or the system decided, the reason kept untranslated
    # (schedules.approval.Reason) so each reader gets it in their language: see `reason_text`.
    status_reason = models.CharField(max_length=500, blank=True)
    status_reason_i18n = models.JSONField(null=True, blank=True, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # PROTECT: a rule that decided requests is retired (active off), not deleted, so the record of
    # who decided stays whole.
    decided_by_rule = models.ForeignKey(
        ApprovalRule, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=utc_now)

    class Meta:
        abstract = True

    def reason_param(self) -> Reason | str:
        """The reason as a notification keeps it: untranslated when it is one of ours (each reader
        gets it in their language), else a supervisor's own words."""
        if self.status_reason_i18n:
            return Reason.from_json(self.status_reason_i18n)
        return self.status_reason

    def reason_text(self, language: str | None = None) -> str:
        """The reason in the active language (or `language`)."""
        reason = self.reason_param()
        return reason.render(language) if isinstance(reason, Reason) else reason


class RequestAction(models.TextChoices):
    ADD = "add", _("Add")
    EDIT = "edit", _("Edit")
    CANCEL = "cancel", _("Cancel")


class ScheduleRequest(Decision):
    """An agent's request to add, edit or cancel one activity of a published future day."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="schedule_requests")
    action = models.CharField(max_length=10, choices=RequestAction.choices)
    date = models.DateField(help_text=_("The local day the request changes."))
    activity = models.ForeignKey(
        Activity, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests"
    )
    # The id of the activity asked about, kept when the activity itself is gone (an approved cancel).
    activity_ref = models.BigIntegerField(null=True, blank=True, editable=False)
    activity_code = models.ForeignKey(
        ActivityCode, on_delete=models.PROTECT, null=True, blank=True, related_name="requests"
    )
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(max_length=500, blank=True)
    change = models.ForeignKey(
        ScheduleChange, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["agent", "-id"], name="schedule_request_agent"),
            models.Index(fields=["date"], condition=Q(status="pending"), name="schedule_request_pending"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(start__isnull=True) | Q(end__gt=F("start")),
                name="schedule_request_end_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} request of {self.agent_id} for {self.date}: {self.status}"
