import datetime as dt

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from em_agent.models import Agent, User
from notifications import kinds
from notifications.models import Device, EmailOptOut, Notification

INBOX_DAYS = 7  # the app shows the notifications of the last 7 days


def device_get_for_agent(*, agent: Agent, token: str) -> Device:
    """Another agent's device is simply not found."""
    try:
        return Device.objects.get(agent=agent, token=token)
    except Device.DoesNotExist:
        raise Http404 from None


def device_list_for_agent(*, agent: Agent) -> QuerySet[Device]:
    return Device.objects.filter(agent=agent, disabled_at__isnull=True)


def _inbox_since(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=INBOX_DAYS)


def notification_list_for_user(*, user: User) -> QuerySet[Notification]:
    """The inbox: the last 7 days, not deleted, newest first."""
    return Notification.objects.filter(
        user=user, deleted_at__isnull=True, created_at__gte=_inbox_since(timezone.now())
    ).order_by("-id")


def notification_unacknowledged_count(*, user: User) -> int:
    return Notification.objects.filter(
        user=user,
        acknowledged_at__isnull=True,
        deleted_at__isnull=True,
        created_at__gte=_inbox_since(timezone.now()),
    ).count()


def notification_get_for_user(*, user: User, notification_id: int) -> Notification:
    """Someone else's notification, a deleted one or one older than the inbox is not found."""
    try:
        return notification_list_for_user(user=user).get(pk=notification_id)
    except Notification.DoesNotExist:
        raise Http404 from None


def email_preferences_for_user(*, user: User) -> dict[str, bool]:
    off = set(EmailOptOut.objects.filter(user=user).values_list("kind", flat=True))
    return {name: name not in off for name, kind in kinds.KINDS.items() if kind.audience == "agent"}
