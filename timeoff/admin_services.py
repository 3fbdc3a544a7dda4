"""What supervisors change in the time-off admin beside the decisions (those are timeoff.services'):
an agent's balance, corrected with a reason (an audit row), and the limits, whose raising lets the
waitlist move up. Each is authorised here as the decisions are (`can_decide_for`), so the admin's
scoping is not the only gate."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status

from em_agent.authorization import can_decide_for
from em_agent.exceptions import ApplicationError
from em_agent.models import Agent, Organization, User
from schedules.models import ActivityCode
from timeoff.balances import balance_for_code
from timeoff.balances import hours as in_hours
from timeoff.models import MAX_EARNED_MINUTES, BalanceAdjustment, TimeOffLimit


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("validation_error", _("The input is not valid."), fields={field: [message]})


def _authorize(*, by: User, organization: Organization) -> None:
    if not can_decide_for(user=by, organization=organization):
        raise ApplicationError(
            "permission_denied",
            _("You may not change the time off of this organisation."),
            status_code=status.HTTP_403_FORBIDDEN,
        )


@transaction.atomic
def balance_adjust(
    *, agent: Agent, activity_code: ActivityCode, hours: Decimal, reason: str, by: User
) -> BalanceAdjustment:
    """Adds `hours` (negative: takes off) to what the agent has earned of the code, recorded
    with who, when and why. Refused when it would take the remaining balance below the code's
    floor: the floor is the organisation's promise that a balance never goes lower, so lowering
    it is a change of the policy, not of one agent's balance. Adding is never refused (a balance
    below the floor after a sync is corrected upwards)."""
    _authorize(by=by, organization=agent.organization)
    if activity_code.organization_id != agent.organization_id:
        raise _invalid("activity_code", _("The activity code belongs to another organisation."))
    minutes = int((Decimal(hours) * 60).to_integral_value(rounding=ROUND_HALF_UP))
    if minutes == 0:
        raise _invalid("hours", _("Enter a number of hours other than 0."))
    if abs(minutes) > MAX_EARNED_MINUTES:
        raise _invalid("hours", _("At most %(hours)d hours at a time.") % {"hours": MAX_EARNED_MINUTES // 60})
    reason = reason.strip()
    if not reason:
        raise _invalid("reason", _("Say why: the agent's balance history keeps it."))
    # The agent's row, as time off is requested and approved under it: an approval checking the
    # balance and this adjustment lowering it never both pass on the same hours.
    Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk).first()
    now = timezone.now()
    balance = balance_for_code(
        agent=agent, activity_code=activity_code, today=now.astimezone(agent.zone).date()
    )
    if minutes < 0 and balance.remaining + minutes < balance.floor:
        raise _invalid(
            "hours",
            _(
                "This would leave %(remaining)s hours of %(code)s, below the floor of %(floor)s hours "
                "(approved and planned time off included)."
            )
            % {
                "remaining": in_hours(balance.remaining + minutes),
                "code": activity_code.name,
                "floor": in_hours(balance.floor),
            },
        )
    return BalanceAdjustment.objects.create(
        agent=agent,
        activity_code=activity_code,
        minutes=minutes,
        reason=reason[:500],
        made_by=by,
        made_at=now,
    )


def _frees_room(previous: TimeOffLimit | None, limit: TimeOffLimit) -> bool:
    """Whether a waitlisted request may fit now: a new limit (a date's own can be above the
    default), another scope, date or unit, or a higher capacity. Only a lowered one cannot."""
    if previous is None:
        return True
    if (previous.team_id, previous.date, previous.unit) != (limit.team_id, limit.date, limit.unit):
        return True
    return Decimal(limit.capacity) > Decimal(previous.capacity)


def _advance_after_commit(organization_id: int, dates: list[dt.date | None]) -> None:
    from timeoff.tasks import advance_waitlist  # the task module imports the services

    # A default limit (no date) is every date's: the whole waitlist is looked at again.
    days = None if None in dates else sorted({date.isoformat() for date in dates if date is not None})
    transaction.on_commit(lambda: advance_waitlist.delay(organization_id, days), robust=True)


@transaction.atomic
def time_off_limit_save(*, limit: TimeOffLimit, by: User) -> TimeOffLimit:
    """Saves a new or changed limit; one that may leave room for waitlisted requests has them
    decided again after commit (first come first served, by the engine)."""
    _authorize(by=by, organization=limit.organization)
    if limit.team is not None and limit.team.organization_id != limit.organization_id:
        raise _invalid("team", _("The team belongs to another organisation."))
    previous = (
        TimeOffLimit.objects.select_for_update().filter(pk=limit.pk).order_by().first()
        if limit.pk is not None
        else None
    )
    if previous is not None and previous.organization_id != limit.organization_id:
        raise _invalid("organization", _("A limit stays with its organisation."))
    limit.save()
    if _frees_room(previous, limit):
        _advance_after_commit(limit.organization_id, [limit.date, previous.date if previous else limit.date])
    return limit


@transaction.atomic
def time_off_limit_delete(*, limit: TimeOffLimit, by: User) -> None:
    """Removes a limit: its days are limited by the default, or the organisation's, or not at
    all, so the waitlist of those days is decided again after commit."""
    _authorize(by=by, organization=limit.organization)
    organization_id, date = limit.organization_id, limit.date
    limit.delete()
    _advance_after_commit(organization_id, [date])
