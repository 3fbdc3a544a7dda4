from django.db import transaction

from em_agent import sessions
from em_agent.models import Agent, User


@transaction.atomic
def user_set_active(*, user: User, active: bool) -> User:
    """The one way to (de)activate a login. Deactivation ends every session of the user at once
    (ASVS 7.4.2): every path (admin, WFM sync, command) goes through here, bulk updates included."""
    if user.is_active != active:
        User.objects.filter(pk=user.pk).update(is_active=active)
        user.is_active = active
    if not active:
        transaction.on_commit(lambda: sessions.end_all_for_user(user=user))
    return user


def agent_set_active(*, agent: Agent, active: bool) -> Agent:
    user_set_active(user=agent.user, active=active)
    return agent
