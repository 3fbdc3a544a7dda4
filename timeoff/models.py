import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.timezone import now as utc_now
from django.utils.translation import gettext_lazy as _

from em_agent.models import Agent, Organization, Team
from schedules.models import ActivityCode, Decision


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
        verbose_name = _("absence request")
        verbose_name_plural = _("absence requests")
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
        verbose_name = _("earned balance")
        verbose_name_plural = _("earned balances")
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
        verbose_name = _("staffing interval")
        verbose_name_plural = _("staffing intervals")
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


# --- CXone time off: requests, their days, limits, policies and balances --------------------------


class TimeOffSettings(models.Model):
    """An organisation's time-off settings; an organisation without a row has the defaults
    (`timeoff_settings_for`)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="time_off_settings"
    )
    # The hours a whole day counts when the WFM has not published it yet (Monday first).
    monday_hours = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal(8))
    tuesday_hours = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal(8))
    wednesday_hours = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal(8))
    thursday_hours = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal(8))
    friday_hours = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal(8))
    saturday_hours = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal(0))
    sunday_hours = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal(0))
    # Where a whole day of time off sits in a day that has no activities yet (an unpublished day):
    # from this local time for the day's hours, so the agent sees it in the schedule.
    day_start = models.TimeField(default=dt.time(9, 0))
    # Interval self-service: an interval is offered for automatic approval while the scheduled agents
    # without this one stay at or above required + auto_margin, for a supervisor's approval while
    # they stay at or above required - approval_margin, and not at all below that.
    interval_auto_margin = models.PositiveSmallIntegerField(default=0)
    interval_approval_margin = models.PositiveSmallIntegerField(default=1)

    class Meta:
        verbose_name = _("time-off settings")
        verbose_name_plural = _("time-off settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(monday_hours__gte=0, monday_hours__lte=24)
                & Q(tuesday_hours__gte=0, tuesday_hours__lte=24)
                & Q(wednesday_hours__gte=0, wednesday_hours__lte=24)
                & Q(thursday_hours__gte=0, thursday_hours__lte=24)
                & Q(friday_hours__gte=0, friday_hours__lte=24)
                & Q(saturday_hours__gte=0, saturday_hours__lte=24)
                & Q(sunday_hours__gte=0, sunday_hours__lte=24),
                name="time_off_settings_default_hours_0_to_24",
            )
        ]

    def __str__(self) -> str:
        return f"time-off settings of {self.organization_id}"

    def default_minutes(self) -> list[int]:
        """Monday first, in whole minutes."""
        days = (
            self.monday_hours,
            self.tuesday_hours,
            self.wednesday_hours,
            self.thursday_hours,
            self.friday_hours,
            self.saturday_hours,
            self.sunday_hours,
        )
        return [int(Decimal(hours) * 60) for hours in days]


def timeoff_settings_for(organization: Organization) -> TimeOffSettings:
    """The organisation's settings, or (unsaved) the defaults."""
    try:
        return organization.time_off_settings
    except TimeOffSettings.DoesNotExist:
        return TimeOffSettings(organization=organization)


class TimeOffPolicy(models.Model):
    """How an organisation keeps the balance of one time-off code: how low it may go and, where the
    WFM exports no balance for it, how it is earned (an accrual rule)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="time_off_policies")
    activity_code = models.ForeignKey(
        ActivityCode, on_delete=models.CASCADE, related_name="time_off_policies"
    )
    floor_hours = models.DecimalField(
        max_digits=7,
        decimal_places=2,
        default=Decimal(0),
        help_text=_("How far below zero the balance may go: 0, or a negative number of hours."),
    )
    # The accrual rule: used only for agents the WFM sends no balance of this code for.
    accrual_hours_per_month = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Hours earned on the first of each month; empty: no accrual (the WFM's balance only)."),
    )
    accrual_start = models.DateField(
        null=True,
        blank=True,
        help_text=_(
            "The date the accrual starts from: the starting hours on it, each month's from the next first."
        ),
    )
    starting_hours = models.DecimalField(
        max_digits=7,
        decimal_places=2,
        default=Decimal(0),
        help_text=_("What an agent has on the start date."),
    )
    carry_over_cap_hours = models.DecimalField(
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("At most this many unused hours carry into the next year; empty: all of them."),
    )

    class Meta:
        verbose_name = _("time-off policy")
        verbose_name_plural = _("time-off policies")
        ordering = ["organization", "activity_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "activity_code"], name="time_off_policy_one_per_code"
            ),
            models.CheckConstraint(
                condition=Q(floor_hours__lte=0), name="time_off_policy_floor_not_positive"
            ),
            models.CheckConstraint(
                condition=Q(accrual_hours_per_month__isnull=True) | Q(accrual_hours_per_month__gte=0),
                name="time_off_policy_accrual_not_negative",
            ),
            # Without a start, "earned" would restart every year while "used" does not.
            models.CheckConstraint(
                condition=Q(accrual_hours_per_month__isnull=True) | Q(accrual_start__isnull=False),
                name="time_off_policy_accrual_has_a_start",
            ),
            models.CheckConstraint(
                condition=Q(carry_over_cap_hours__isnull=True) | Q(carry_over_cap_hours__gte=0),
                name="time_off_policy_cap_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.activity_code}: floor {self.floor_hours} h"


class BalanceAdjustment(models.Model):
    """A supervisor's correction of an agent's earned hours of a code, with why: the audit row."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="time_off_adjustments")
    activity_code = models.ForeignKey(ActivityCode, on_delete=models.PROTECT, related_name="+")
    minutes = models.IntegerField(help_text=_("Added to what the agent earned (negative: taken off)."))
    reason = models.CharField(max_length=500)
    made_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    made_at = models.DateTimeField(default=utc_now)

    class Meta:
        verbose_name = _("balance adjustment")
        verbose_name_plural = _("balance adjustments")
        ordering = ["-made_at", "-id"]
        indexes = [models.Index(fields=["agent", "activity_code"], name="balance_adjustment_agent_code")]
        constraints = [
            models.CheckConstraint(
                condition=Q(minutes__gte=-MAX_EARNED_MINUTES, minutes__lte=MAX_EARNED_MINUTES)
                & ~Q(minutes=0),
                name="balance_adjustment_minutes_within_limits",
            )
        ]

    def __str__(self) -> str:
        return f"{self.minutes:+d} min for {self.agent_id} ({self.reason})"


class LimitUnit(models.TextChoices):
    AGENTS = "agents", _("Agents off")
    HOURS = "hours", _("Hours off")


class TimeOffLimit(models.Model):
    """How much time off a day allows, for the whole organisation (team empty) or one team: the
    default (date empty) or one date's own. Only approved time off takes a place."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="time_off_limits")
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="time_off_limits"
    )
    date = models.DateField(null=True, blank=True, help_text=_("Empty: every date without its own limit."))
    unit = models.CharField(max_length=10, choices=LimitUnit.choices, default=LimitUnit.AGENTS)
    capacity = models.DecimalField(
        max_digits=7, decimal_places=2, help_text=_("Agents off, or hours off, the day allows.")
    )

    class Meta:
        verbose_name = _("time-off limit")
        verbose_name_plural = _("time-off limits")
        ordering = ["organization", "team", "date"]
        # One default and one row per date, for each team and for the organisation (NULLs are
        # distinct in a unique index, hence one partial constraint per case).
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "team", "date"],
                condition=Q(team__isnull=False, date__isnull=False),
                name="time_off_limit_team_date",
            ),
            models.UniqueConstraint(
                fields=["organization", "team"],
                condition=Q(team__isnull=False, date__isnull=True),
                name="time_off_limit_team_default",
            ),
            models.UniqueConstraint(
                fields=["organization", "date"],
                condition=Q(team__isnull=True, date__isnull=False),
                name="time_off_limit_organization_date",
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(team__isnull=True, date__isnull=True),
                name="time_off_limit_organization_default",
            ),
            models.CheckConstraint(condition=Q(capacity__gte=0), name="time_off_limit_capacity_not_negative"),
        ]

    def __str__(self) -> str:
        scope = self.team.name if self.team is not None else "organisation"
        return f"{scope} {self.date or 'default'}: {self.capacity} {self.unit}"


class TimeOffKind(models.TextChoices):
    FULL_DAY = "full_day", _("Whole days")
    PARTIAL_DAY = "partial_day", _("Part of a day")


class TimeOffStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    DENIED = "denied", _("Denied")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    # Approved, then cancelled by the agent before it began: the schedule was restored.
    CANCELLED = "cancelled", _("Cancelled")


class TimeOffSubstatus(models.TextChoices):
    WAITLISTED = "waitlisted", _("Waitlisted")


# What takes a place in a limit and hours of the balance (planned or used), and what blocks another
# request over the same time.
HOLDING = (TimeOffStatus.PENDING, TimeOffStatus.APPROVED)


class TimeOffRequest(Decision):
    """A CXone agent's time off: whole consecutive days, or part of one published day (also what an
    interval request becomes). Its days (`TimeOffDay`) keep the hours each counts; an approval writes
    the time-off activity into them as one change group (`change_group`), which a cancellation undoes."""

    status = models.CharField(max_length=20, choices=TimeOffStatus.choices, default=TimeOffStatus.PENDING)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="time_off_requests")
    kind = models.CharField(max_length=20, choices=TimeOffKind.choices)
    activity_code = models.ForeignKey(
        ActivityCode, on_delete=models.PROTECT, related_name="time_off_requests"
    )
    start_date = models.DateField()
    end_date = models.DateField()
    # The span the time off takes: the first day's start to the last day's end (UTC instants).
    start = models.DateTimeField()
    end = models.DateTimeField()
    minutes = models.PositiveIntegerField(help_text=_("What the request counts against the balance."))
    comment = models.CharField(max_length=500, blank=True)
    # Chosen as consecutive intervals offered by staffing (self-service), not typed in.
    from_intervals = models.BooleanField(default=False)
    # Pending, on the waitlist of a full limit since `waitlisted_at` (its place in the queue).
    substatus = models.CharField(max_length=20, choices=TimeOffSubstatus.choices, blank=True)  # "": none
    waitlisted_at = models.DateTimeField(null=True, blank=True)
    change_group = models.UUIDField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("time-off request")
        verbose_name_plural = _("time-off requests")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["agent", "-id"], name="time_off_request_agent"),
            models.Index(
                fields=["waitlisted_at", "id"],
                condition=Q(status="pending", substatus="waitlisted"),
                name="time_off_request_waitlist",
            ),
            models.Index(
                # What the lapse scans: pending requests whose time off began.
                fields=["start"],
                condition=Q(status="pending"),
                name="time_off_request_pending_start",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="time_off_request_end_after_start"),
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="time_off_request_end_date_after_start"
            ),
            models.CheckConstraint(
                condition=Q(substatus="") | (Q(status="pending") & Q(waitlisted_at__isnull=False)),
                name="time_off_request_waitlisted_while_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"time off of {self.agent_id} {self.start_date}..{self.end_date}: {self.status}"

    def keep_days(self, days: list["TimeOffDay"]) -> None:
        """`days` (in date order) as `self.days.all()` answers from now on, as prefetch_related
        leaves them: the service that wrote them reads them again (to apply an approval, to
        answer the request) without a query."""
        kept = TimeOffDay.objects.filter(request=self)
        # What Django's prefetch_one_level sets (django-stubs do not declare _prefetch_done).
        kept._result_cache = list(days)
        kept._prefetch_done = True  # type: ignore[attr-defined]
        self._prefetched_objects_cache = {**getattr(self, "_prefetched_objects_cache", {}), "days": kept}

    @property
    def partial_start(self) -> dt.datetime | None:
        return self.start if self.kind == TimeOffKind.PARTIAL_DAY else None

    @property
    def partial_end(self) -> dt.datetime | None:
        return self.end if self.kind == TimeOffKind.PARTIAL_DAY else None


class TimeOffDay(models.Model):
    """One local day of a request: the span it takes that day and the minutes it counts (what an
    approval writes into the schedule, what limits and the balance count). `organization` repeats
    the agent's so that a day's limit is one indexed read."""

    request = models.ForeignKey(TimeOffRequest, on_delete=models.CASCADE, related_name="days")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="time_off_days")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    minutes = models.PositiveIntegerField()

    class Meta:
        verbose_name = _("day of time off")
        verbose_name_plural = _("days of time off")
        ordering = ["date", "start"]
        indexes = [
            models.Index(fields=["agent", "date"], name="time_off_day_agent_date"),
            models.Index(fields=["organization", "date"], name="time_off_day_organization_date"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="time_off_day_end_after_start"),
            models.UniqueConstraint(fields=["request", "date"], name="time_off_day_one_per_date"),
        ]

    def __str__(self) -> str:
        return f"{self.date}: {self.minutes} min of request {self.request_id}"
