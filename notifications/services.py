from django.conf import settings
from django.db import transaction
from django.utils import timezone

from em_agent.models import Agent
from notifications.models import Device


@transaction.atomic
def device_register(*, agent: Agent, token: str, platform: str, trusted: bool) -> tuple[Device, bool]:
    """Registers a push token; a token moves to the latest agent that registers it (a shared phone).
    `trusted`: the registering session satisfied the organisation's MFA policy."""
    now = timezone.now()
    fields = {
        "agent": agent,
        "platform": platform,
        "last_seen_at": now,
        "disabled_at": None,
        "trusted": trusted,
    }
    device, created = Device.objects.select_for_update().get_or_create(
        token=token, defaults={**fields, "created_at": now}
    )
    if not created:
        for name, value in fields.items():
            setattr(device, name, value)
        device.save(update_fields=list(fields))
    surplus = Device.objects.filter(agent=agent).order_by("-last_seen_at", "-id")[
        settings.MAX_DEVICES_PER_AGENT :
    ]
    Device.objects.filter(pk__in=list(surplus.values_list("pk", flat=True))).delete()
    return device, created


def device_unregister(*, device: Device) -> None:
    device.delete()
