from django.db import transaction
from django.utils import timezone

from em_agent.models import Agent
from notifications.models import Device


@transaction.atomic
def device_register(*, agent: Agent, token: str, platform: str) -> tuple[Device, bool]:
    """Registers a push token; a token moves to the latest agent that registers it (a shared phone)."""
    now = timezone.now()
    device, created = Device.objects.select_for_update().get_or_create(
        token=token,
        defaults={"agent": agent, "platform": platform, "created_at": now, "last_seen_at": now},
    )
    if not created:
        device.agent = agent
        device.platform = platform
        device.last_seen_at = now
        device.disabled_at = None
        device.save(update_fields=["agent", "platform", "last_seen_at", "disabled_at"])
    return device, created


def device_unregister(*, device: Device) -> None:
    device.delete()
