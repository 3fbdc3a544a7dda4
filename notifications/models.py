from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from notifications.kinds import KIND_CHOICES


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
    # Why FCM rejected the token (unregistered, invalid, sender mismatch), with disabled_at.
    disabled_reason = models.CharField(max_length=40, blank=True)
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


class Notification(models.Model):
    """One thing to tell one person. Title and body are rendered when read (notifications.kinds)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40, choices=KIND_CHOICES)
    params = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Actionable kinds (a swap offer) stop offering their actions at this time.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The inbox: a user's visible notifications, newest first.
            models.Index(
                fields=["user", "-id"], condition=Q(deleted_at__isnull=True), name="notification_inbox"
            ),
            # The bell: one index-only count per poll.
            models.Index(
                fields=["user", "created_at"],
                condition=Q(acknowledged_at__isnull=True, deleted_at__isnull=True),
                name="notification_unacknowledged",
            ),
            models.Index(fields=["created_at"], name="notification_retention"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"


class Channel(models.TextChoices):
    PUSH = "push", "Push"
    EMAIL = "email", "Email"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class Delivery(models.Model):
    """The outbox: one row per notification and channel, written in the notifying transaction and
    claimed by a conditional update before anything is sent."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When a task was last asked to send it (null: no task has it). The sweeper hands a pending row
    # out again only when no task has claimed it for a while, so a long queue (a 100,000-message
    # fan-out takes minutes) is not enqueued a second time every minute.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="delivery_one_per_channel"),
        ]
        indexes = [
            # What the sweeper and the workers scan: due pending rows, and claims that may be lost.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_due"),
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="delivery_claimed"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} delivery of {self.notification_id}: {self.status}"


class EmailOptOut(models.Model):
    """An agent turned email off for one kind (push stays on: the app is the primary channel)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_opt_outs"
    )
    kind = models.CharField(max_length=40, choices=KIND_CHOICES)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="email_opt_out_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} no email for {self.kind}"


class PushReceipt(models.Model):
    """FCM accepted this delivery's message for this token: a retry of the delivery skips the token,
    so a message FCM accepted is never sent again."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="push_receipts")
    token = models.CharField(max_length=512)
    message_id = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["delivery", "token"], name="push_receipt_once_per_token")
        ]

    def __str__(self) -> str:
        return f"push of delivery {self.delivery_id} accepted for a device"
