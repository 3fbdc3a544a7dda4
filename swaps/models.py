"""Shift swaps: an agent offers its shift of a local day (the whole day: every activity that starts
on it) to chosen colleagues or on the open board, in exchange for a colleague's shift (`swap`) or for
nothing (`give_away`); the organisation's settings bound what may be offered and to whom.

A swap is a `schedules.models.Decision`, so the decision lifecycle (a supervisor's approve and deny,
the engine's verdict, the admin's queue) applies to it unchanged. The lifecycle's "pending" is the
swap's "awaiting approval" and its "approved" the swap's "completed": the stored values are the
lifecycle's, the API names them as the contract does (`SwapStatus.api_name`)."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.timezone import now as utc_now
from django.utils.translation import gettext_lazy as _

from em_agent.models import Agent, Organization
from schedules.models import ActivityCode, Decision, RequestStatus


class SwapStatus(models.TextChoices):
    OPEN = "open", _("Open")
    AWAITING_APPROVAL = RequestStatus.PENDING.value, _("Awaiting approval")
    COMPLETED = RequestStatus.APPROVED.value, _("Completed")
    DENIED = RequestStatus.DENIED.value, _("Denied")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")

    @property
    def api_name(self) -> str:
        return _API_NAMES.get(self.value, self.value)


_API_NAMES = {
    RequestStatus.PENDING.value: "awaiting_approval",
    RequestStatus.APPROVED.value: "completed",
}
API_STATUSES = ["open", "awaiting_approval", "completed", "declined", "denied", "expired", "cancelled"]
STATUS_BY_API_NAME = {name: value for value, name in _API_NAMES.items()} | {
    name: name for name in API_STATUSES if name not in _API_NAMES.values()
}
# An offer that still holds the shift: open, or taken and waiting for a supervisor.
LIVE = (SwapStatus.OPEN, SwapStatus.AWAITING_APPROVAL)


class SwapKind(models.TextChoices):
    SWAP = "swap", _("Swap")
    GIVE_AWAY = "give_away", _("Give-away")


class SkillMatching(models.TextChoices):
    AT_LEAST = "at_least", _("Every skill of the shift, at the same or a higher level")
    SAME = "same", _("Exactly the same skills")


class UnequalPaidTime(models.TextChoices):
    ALLOW = "allow", _("Allow")
    REFUSE = "refuse", _("Refuse")
    SUPERVISOR = "supervisor", _("Send to a supervisor")


class SwapSettings(models.Model):
    """An organisation's swap rules (one row; an organisation without one has these defaults)."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="swap_settings")
    allow_swaps = models.BooleanField(default=True)
    allow_give_aways = models.BooleanField(default=True)
    allow_board = models.BooleanField(_("allow the open swap board"), default=True)
    max_open_offers_per_agent = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    # One by default: a second offer of the same shift would promise it twice.
    max_open_offers_per_shift = models.PositiveSmallIntegerField(
        _("open offers per shift"), default=1, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    # Also how many colleagues a board offer is announced to.
    max_recipients = models.PositiveSmallIntegerField(
        _("recipients per offer"), default=20, validators=[MinValueValidator(1), MaxValueValidator(200)]
    )
    min_lead_hours = models.PositiveSmallIntegerField(
        default=24,
        help_text=_("Both shifts must start at least this many hours after the offer or acceptance."),
    )
    max_daily_hours = models.DecimalField(
        max_digits=4, decimal_places=2, default=Decimal(12), validators=[MinValueValidator(Decimal(1))]
    )
    max_weekly_hours = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal(48),
        validators=[MinValueValidator(Decimal(1))],
        help_text=_("Paid hours in the taker's week (Monday to Sunday, in the taker's zone)."),
    )
    # The EU working time directive's daily rest: 11 consecutive hours in every 24.
    min_rest_hours = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal(11))
    max_length_difference_hours = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        null=True,
        blank=True,
        default=Decimal(2),
        help_text=_("The most the two shifts' paid hours may differ; empty: any difference."),
    )
    skill_matching = models.CharField(
        max_length=20, choices=SkillMatching.choices, default=SkillMatching.AT_LEAST
    )
    same_team_only = models.BooleanField(default=False)
    unequal_paid_time = models.CharField(
        max_length=20, choices=UnequalPaidTime.choices, default=UnequalPaidTime.ALLOW
    )
    expiry_hours_before_shift = models.PositiveSmallIntegerField(
        default=2, help_text=_("An offer expires this long before the earlier of the two shifts starts.")
    )
    not_tradable_codes = models.ManyToManyField(
        ActivityCode,
        blank=True,
        related_name="+",
        help_text=_("A shift with one of these cannot be swapped."),
    )

    class Meta:
        verbose_name = _("swap settings")
        verbose_name_plural = _("swap settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(allow_swaps=True) | Q(allow_give_aways=True), name="swap_settings_some_kind"
            )
        ]

    def __str__(self) -> str:
        return f"swap settings of {self.organization_id}"

    @classmethod
    def for_organization(cls, organization: Organization) -> SwapSettings:
        found = cls.objects.filter(organization=organization).first()
        return found if found is not None else cls(organization=organization)


class Swap(Decision):
    """One offer. The shifts are kept as they were when offered (`offered_shift`; each recipient's
    own in its row, and the taker's in `taker_shift`), so an accept can tell whether they changed."""

    status = models.CharField(max_length=20, choices=SwapStatus.choices, default=SwapStatus.OPEN)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="swaps")
    requester = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="swaps_offered")
    kind = models.CharField(max_length=20, choices=SwapKind.choices, default=SwapKind.SWAP)
    date = models.DateField(help_text=_("The requester's local day offered."))
    their_date = models.DateField(null=True, blank=True, help_text=_("The taker's day taken back (a swap)."))
    open = models.BooleanField(_("on the board"), default=False)
    message = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField()
    offered_shift = models.JSONField()
    offered_start = models.DateTimeField()
    offered_end = models.DateTimeField()
    taker = models.ForeignKey(
        Agent, on_delete=models.CASCADE, null=True, blank=True, related_name="swaps_taken"
    )
    taker_shift = models.JSONField(null=True, blank=True)
    # When the taker's shift starts (a swap, once taken): the earlier of the two ends the wait for
    # a supervisor (swaps_expire).
    asked_start = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The exchange's journal rows (schedule_change_group_undo undoes it).
    change_group = models.UUIDField(null=True, blank=True, editable=False)
    # When the days under it were last compared with the snapshots (swaps.services.swaps_recheck).
    checked_at = models.DateTimeField(default=utc_now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(offered_end__gt=F("offered_start")), name="swap_shift_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__lte=F("offered_start")), name="swap_expires_before_shift"
            ),
            models.CheckConstraint(
                condition=Q(kind=SwapKind.SWAP, their_date__isnull=False)
                | Q(kind=SwapKind.GIVE_AWAY, their_date__isnull=True),
                name="swap_their_date_for_swaps_only",
            ),
            models.CheckConstraint(condition=~Q(taker=F("requester")), name="swap_taker_not_requester"),
            models.CheckConstraint(
                condition=~Q(status__in=[SwapStatus.AWAITING_APPROVAL, SwapStatus.COMPLETED])
                | Q(taker__isnull=False, accepted_at__isnull=False),
                name="swap_taken_has_taker",
            ),
        ]
        indexes = [
            models.Index(fields=["requester", "-id"], name="swap_requester"),
            # The live offers of a shift, counted against max_open_offers_per_shift.
            models.Index(
                fields=["requester", "date"],
                condition=Q(status__in=["open", "pending"]),
                name="swap_live_per_shift",
            ),
            models.Index(fields=["expires_at"], condition=Q(status="open"), name="swap_open_expiry"),
            models.Index(
                fields=["organization", "date"], condition=Q(status="open", open=True), name="swap_board"
            ),
            models.Index(
                fields=["checked_at"], condition=Q(status__in=["open", "pending"]), name="swap_live"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.requester_id} on {self.date}: {self.status}"

    @property
    def api_status(self) -> str:
        return SwapStatus(self.status).api_name


class Answer(models.TextChoices):
    PENDING = "pending", _("No answer yet")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    # Could no longer take it: its shift changed, or another colleague took the swap first.
    UNAVAILABLE = "unavailable", _("No longer available")


class SwapRecipient(models.Model):
    """A colleague the offer went to, with its answer and its own shift on `their_date` as it was
    when offered (none for a give-away). A board offer gets a row for whoever answers it."""

    swap = models.ForeignKey(Swap, on_delete=models.CASCADE, related_name="recipients")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="swap_invitations")
    answer = models.CharField(max_length=20, choices=Answer.choices, default=Answer.PENDING)
    answered_at = models.DateTimeField(null=True, blank=True)
    shift = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["swap", "agent"], name="swap_recipient_once"),
            # One winner, also in the database: whatever the code does, two accepted rows cannot exist.
            models.UniqueConstraint(
                fields=["swap"], condition=Q(answer="accepted"), name="swap_one_accepted_recipient"
            ),
        ]
        indexes = [models.Index(fields=["agent", "-swap"], name="swap_recipient_agent")]

    def __str__(self) -> str:
        return f"{self.agent_id} for swap {self.swap_id}: {self.answer}"
