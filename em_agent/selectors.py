from allauth.mfa.models import Authenticator
from django.db.models import Prefetch

from em_agent.models import Agent, AgentSkill


def agent_get_profile(*, user) -> Agent:
    """The logged-in user's agent with all that GET /me shows, in two queries."""
    return (
        Agent.objects.select_related("user", "organization", "supervisor")
        .prefetch_related(Prefetch("agent_skills", queryset=AgentSkill.objects.select_related("skill")))
        .get(user=user)
    )


def user_has_totp(*, user) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
