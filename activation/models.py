from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ActivationCode(models.Model):
    """A one-time code a supervisor gives an agent to activate the app. Only its keyed hash is kept."""

    agent = models.ForeignKey("em_agent.Agent", on_delete=models.CASCADE, related_name="activation_codes")
    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True, editable=False)
    redeemed_from = models.GenericIPAddressField(null=True, blank=True, editable=False)
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("issued_at")), name="code_expires_after_issue"
            ),
        ]
        indexes = [
            models.Index(
                fields=["agent"],
                condition=Q(redeemed_at__isnull=True, voided_at__isnull=True),
                name="code_open_per_agent",
            )
        ]

    def __str__(self) -> str:
        return f"code for {self.agent} issued {self.issued_at:%Y-%m-%d %H:%M}"

    @property
    def state(self) -> str:
        if self.redeemed_at:
            return "redeemed"
        if self.voided_at:
            return "voided"
        if self.expires_at <= timezone.now():
            return "expired"
        return "open"


class AttemptCounter(models.Model):
    """Failed activation attempts per agent or client address, in a window opened by the first one.

    A row per key, updated under a row lock, so concurrent guesses are counted exactly."""

    key = models.CharField(max_length=200, unique=True)
    window_started_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.count} since {self.window_started_at:%Y-%m-%d %H:%M}"
