import functools

from django.db import transaction
from django.dispatch import receiver

from em_agent.models import Agent
from em_agent.signals import agent_activated
from sync.models import WfmSource


@receiver(agent_activated)
def sync_right_after_activation(sender, *, agent: Agent, **kwargs) -> None:
    if WfmSource.objects.filter(organization_id=agent.organization_id, sync_on_activation=True).exists():
        from sync.tasks import sync_agent

        transaction.on_commit(functools.partial(sync_agent.delay, agent.pk))
