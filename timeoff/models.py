from django.db import models
from django.db.models import Q
from django.utils.timezone import now as utc_now
from django.utils.translation import gettext_lazy as _

from em_agent.models import Agent, Organization, Team
from schedules.models import ActivityCode


class AbsenceStatus(models.TextChoices):
    # IEX WFM Integrated decides nothing here: the request is handed to the supervisor and the WFM,
    # whose next export carries the outcome into the schedule.
    SUBMITTED = "submitted", _("Submitted")


class AbsenceRequest(models.Model):
    """An IEX organisation's absence request: one local day, whole or from a start to an end time,
    with an exception code; recorded and emailed to the supervisor, never approved here."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="absence_requests")
    date = models.DateField(help_text=_("The local day of the absence (the agent's zone)."))
    exception_code = models.ForeignKey(
        ActivityCode, on_delete=models.PROTECT, related_name="absence_requests"
    )
    full_day = models.BooleanField(default=False)
    # A partial absence's instants (UTC); a whole day has none: it is the local day, 23 to 25 hours.
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=20, choices=AbsenceStatus.choices, default=AbsenceStatus.SUBMITTED)
    created_at = models.DateTimeField(default=utc_now, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["agent", "-id"], name="absence_request_agent"),
            models.Index(fields=["agent", "date"], name="absence_request_agent_date"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(full_day=True) & Q(start__isnull=True) & Q(end__isnull=True))
                | (
                    Q(full_day=False)
                    & Q(start__isnull=False)
                    & Q(end__isnull=False)
                    & Q(end__gt=models.F("start"))
                ),
                name="absence_request_whole_day_or_times",
            )
        ]

    def __str__(self) -> str:
        return f"Absence of {self.agent_id} on {self.date}: {self.status}"


# The export's limits (docs/wfm-export.md): earned hours within +-10,000, agents per interval within 100,000.
MAX_EARNED_MINUTES = 10_000 * 60
MAX_AGENTS_PER_INTERVAL = 100_000
INTERVAL_MINUTES = (15, 30, 60)


class TimeOffBalance(models.Model):
    """What an agent has earned of one time-off code, as the WFM counted it on `as_of`. Earned only:
    used, planned and pending hours follow from the agent's requests, so they are never stored here
    and a sync cannot contradict them."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="time_off_balances")
    activity_code = models.ForeignKey(
        ActivityCode, on_delete=models.PROTECT, related_name="time_off_balances"
    )
    # Whole minutes, not hours: sums stay exact; the export's hours (2 decimals) round to a minute and
    # back to the same hours (0.01 h is 0.6 min, never a half).
    earned_minutes = models.IntegerField()
    as_of = models.DateField(help_text=_("The date the WFM counted the balance at."))
    updated_at = models.DateTimeField(default=utc_now)

    class Meta:
        ordering = ["agent", "activity_code"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "activity_code"], name="time_off_balance_one_per_code"),
            models.CheckConstraint(
                condition=Q(earned_minutes__gte=-MAX_EARNED_MINUTES, earned_minutes__lte=MAX_EARNED_MINUTES),
                name="time_off_balance_earned_within_limits",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.activity_code_id}: {self.earned_minutes} min as of {self.as_of}"


class StaffingInterval(models.Model):
    """The WFM's staffing of one interval: agents required and scheduled, for a team or (team null)
    for the whole organisation. Time off at interval level is offered where scheduled stays above
    required without the agent."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="staffing_intervals"
    )
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="staffing_intervals"
    )
    start = models.DateTimeField(help_text=_("The interval's start (stored in UTC)."))
    minutes = models.PositiveSmallIntegerField(
        default=30, choices=[(length, f"{length} min") for length in INTERVAL_MINUTES]
    )
    required = models.PositiveIntegerField()
    scheduled = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=utc_now)

    class Meta:
        ordering = ["organization", "team", "start"]
        constraints = [
            # Two partial constraints, as NULLs are distinct in a unique index: one row per start for
            # each team, and one for the whole organisation (team null), on SQLite and PostgreSQL alike.
            models.UniqueConstraint(
                fields=["organization", "team", "start"],
                condition=Q(team__isnull=False),
                name="staffing_interval_one_per_team_start",
            ),
            models.UniqueConstraint(
                fields=["organization", "start"],
                condition=Q(team__isnull=True),
                name="staffing_interval_one_per_organization_start",
            ),
            models.CheckConstraint(
                condition=Q(minutes__in=INTERVAL_MINUTES), name="staffing_interval_minutes_15_30_60"
            ),
            models.CheckConstraint(
                condition=Q(required__gte=0, required__lte=MAX_AGENTS_PER_INTERVAL)
                & Q(scheduled__gte=0, scheduled__lte=MAX_AGENTS_PER_INTERVAL),
                name="staffing_interval_agents_within_limits",
            ),
        ]
        # A team's intervals over a time range are read through the partial unique indexes (team = x
        # implies team IS NOT NULL; the organisation's own through the other); the sync reads all of
        # an organisation's over its window through this one.
        indexes = [models.Index(fields=["organization", "start"], name="staffing_interval_range")]

    def __str__(self) -> str:
        return f"{self.team_id or 'organisation'} at {self.start:%Y-%m-%d %H:%M} UTC: {self.scheduled}/{self.required}"
