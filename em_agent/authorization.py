"""Who may decide for an organisation. Every service that takes a supervisor's decision (schedule
requests now; time off and swaps later) asks here, so the admin's scoping is not the only gate: a
script, a task or a future endpoint calling the service gets the same answer."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from em_agent.models import Organization, User


def can_decide_for(*, user: User | AnonymousUser | None, organization: Organization) -> bool:
    """An active superuser anywhere; an active supervisor (`User.is_supervisor`, the notion the
    admin scopes by) only for its own organisation. Nobody else, and no user at all: an automatic
    decision does not come through a public service."""
    if user is None or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return isinstance(user, User) and user.is_supervisor and user.organization_id == organization.pk
