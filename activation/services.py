import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status

from activation import codes, limits
from activation.models import ActivationCode
from em_agent.exceptions import ApplicationError
from em_agent.models import Agent, User
from em_agent.signals import agent_activated


@dataclass(frozen=True)
class IssuedCode:
    """The clear code exists only here, to be shown once."""

    code: str
    record: ActivationCode


@transaction.atomic
def activation_code_issue(
    *, agent: Agent, issued_by: User | None = None, ttl_hours: int | None = None
) -> IssuedCode:
    ttl_hours = ttl_hours if ttl_hours is not None else settings.ACTIVATION_CODE_TTL_HOURS
    if not 1 <= ttl_hours <= 24 * 30:
        raise ApplicationError("invalid_ttl", _("An activation code lives between 1 hour and 30 days."))
    now = timezone.now()
    # Lock the agent so two supervisors issuing at once still leave exactly one open code.
    locked = Agent.objects.select_for_update().get(pk=agent.pk)
    if locked.is_activated:
        raise ApplicationError(
            "already_activated", _("%(name)s has already activated the app.") % {"name": locked.name}
        )
    ActivationCode.objects.filter(agent=agent, redeemed_at__isnull=True, voided_at__isnull=True).update(
        voided_at=now
    )
    clear = codes.generate()
    record = ActivationCode.objects.create(
        agent=agent,
        code_hash=codes.digest(clear),
        issued_by=issued_by,
        issued_at=now,
        expires_at=now + dt.timedelta(hours=ttl_hours),
    )
    return IssuedCode(code=clear, record=record)


@transaction.atomic
def activation_codes_issue(*, agents: list[Agent], issued_by: User) -> list[tuple[Agent, IssuedCode]]:
    """Codes for several agents at once (the admin action): all or none. Activated agents are skipped."""
    return [
        (agent, activation_code_issue(agent=agent, issued_by=issued_by))
        for agent in agents
        if not agent.is_activated
    ]


def _invalid_code() -> ApplicationError:
    # One answer for wrong, expired, used, voided and someone else's code: no oracle.
    return ApplicationError(
        "invalid_activation_code",
        _("This activation code is not valid. Check it, or ask your supervisor for a new one."),
        fields={"code": [_("This activation code is not valid.")]},
    )


def agent_activate(*, agent: Agent, code: str, address: str | None) -> Agent:
    """Redeems a code for the agent. Single use even under concurrent redemptions."""
    if agent.is_activated:
        raise ApplicationError(
            "already_activated",
            _("This app is already activated."),
            status_code=status.HTTP_409_CONFLICT,
        )
    wait = limits.reserve_attempt(agent_id=agent.pk, address=address)
    if wait is not None:
        raise ApplicationError(
            "throttled",
            _("Too many attempts. Try again in %(minutes)d minutes.")
            % {"minutes": max(1, (wait + 59) // 60)},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(wait)},
        )
    if _redeem(agent=agent, code=code, address=address):
        limits.release_attempt(agent_id=agent.pk, address=address)
        agent.refresh_from_db()
        agent_activated.send(sender=Agent, agent=agent)
        return agent
    agent.refresh_from_db(fields=["activated_at"])
    if agent.is_activated:
        raise ApplicationError(
            "already_activated",
            _("This app is already activated."),
            status_code=status.HTTP_409_CONFLICT,
        )
    raise _invalid_code()


@transaction.atomic
def _redeem(*, agent: Agent, code: str, address: str | None) -> bool:
    now = timezone.now()
    # The conditional UPDATE is the claim: of racing redemptions exactly one matches the row.
    claimed = ActivationCode.objects.filter(
        agent=agent,
        code_hash=codes.digest(code),
        redeemed_at__isnull=True,
        voided_at__isnull=True,
        expires_at__gt=now,
    ).update(redeemed_at=now, redeemed_from=address)
    if claimed != 1:
        return False
    Agent.objects.filter(pk=agent.pk, activated_at__isnull=True).update(activated_at=now)
    ActivationCode.objects.filter(agent=agent, redeemed_at__isnull=True, voided_at__isnull=True).update(
        voided_at=now
    )
    return True
