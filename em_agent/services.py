from django.db import transaction

from em_agent.models import Agent


@transaction.atomic
def agent_set_active(*, agent: Agent, active: bool) -> Agent:
    """Deactivates or reactivates an agent's login. Deactivation ends its sessions at once (the
    receiver in em_agent.receivers does it for every path that deactivates a user)."""
    user = agent.user
    if user.is_active != active:
        user.is_active = active
        user.save(update_fields=["is_active"])
    return agent
