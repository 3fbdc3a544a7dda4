from django.db.models import QuerySet
from django.http import Http404

from em_agent.models import Agent
from notifications.models import Device


def device_get_for_agent(*, agent: Agent, token: str) -> Device:
    """Another agent's device is simply not found."""
    try:
        return Device.objects.get(agent=agent, token=token)
    except Device.DoesNotExist:
        raise Http404 from None


def device_list_for_agent(*, agent: Agent) -> QuerySet[Device]:
    return Device.objects.filter(agent=agent, disabled_at__isnull=True)
