from django.db import models
from django.utils import timezone


class Platform(models.TextChoices):
    IOS = "ios", "iOS"
    ANDROID = "android", "Android"


class Device(models.Model):
    """A phone's push address. A token belongs to the agent that registered it last."""

    agent = models.ForeignKey("em_agent.Agent", on_delete=models.CASCADE, related_name="devices")
    token = models.CharField(max_length=512, unique=True)
    platform = models.CharField(max_length=10, choices=Platform.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_seen_at = models.DateTimeField(default=timezone.now)
    # Set when FCM rejects the token; push skips such devices.
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Registered from a session that satisfied the organisation's MFA policy. The contract lets an
    # agent register before enrolling; push goes only to trusted devices, so a password alone never
    # makes a phone receive an MFA organisation's notifications.
    trusted = models.BooleanField(default=False)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [
            models.Index(
                fields=["agent"],
                condition=models.Q(disabled_at__isnull=True),
                name="device_active_per_agent",
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform} device of {self.agent_id}"
