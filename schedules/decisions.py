"""The decision lifecycle every request type shares: schedule requests now, time off and swaps next.

A request is a `schedules.models.Decision` subclass; its type describes itself once in a `Lifecycle`
(its model, the change an approval makes, what the agent is told) and these functions do the rest the
same way for all of them:

- claim: the request's row locked and still pending, so two deciders at once (two supervisors, a
  supervisor and the lapse task, the waitlist) decide it once; for a person, only after the one
  authorisation check (`em_agent.authorization.can_decide_for`), before the status is told;
- approve: the type's `apply` callback in the decision's transaction (anything it raises undoes the
  decision), then the decision recorded and the agent told;
- deny, with the reason the agent reads; withdraw by the agent; lapse when the time came first;
- follow a verdict of the approval engine (approve, decline, or leave it to a supervisor with the
  engine's reason).

A reason is a supervisor's own words or a `schedules.approval.Reason`, kept untranslated so each
reader gets it in their language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from rest_framework import status

from em_agent.authorization import can_decide_for
from em_agent.exceptions import ApplicationError
from em_agent.messages import Reason
from em_agent.models import Agent, Organization, User
from notifications.services import notify_each
from schedules.approval import Verdict
from schedules.models import ApprovalRule, Decision, RequestStatus, RuleAction

D = TypeVar("D", bound=Decision)


def _the_agent(decision) -> Sequence[Agent]:
    return [decision.agent]


def _agents_organization(decision) -> Organization:
    return decision.agent.organization


@dataclass(frozen=True)
class Lifecycle(Generic[D]):
    """One request type's part in the lifecycle. The defaults fit a model with an `agent` (the one
    who asked, told of the decision, whose organisation decides)."""

    model: type[D]
    approved_kind: str  # the notification kinds (notifications.kinds) the agent gets
    denied_kind: str
    # The change an approval makes, in the decision's transaction: `apply(request, actor)` (actor
    # None: the engine decided). It sets what it records on the request in `applied_fields`.
    apply: Callable[[D, User | None], None]
    # The notification's parameters (the request's id and its dates); the denial's reason is added.
    params: Callable[[D], dict]
    applied_fields: tuple[str, ...] = ()
    # Before a person's approval: what was true when the agent asked must still be (a future time,
    # a published day); raises an ApplicationError otherwise.
    check_approvable: Callable[[D, dt.datetime], None] | None = None
    # Just before a decision (approved, denied, withdrawn) is saved, with the new status: what the
    # type keeps beside its status follows it (time off leaves its waitlist). Fields in applied_fields.
    on_record: Callable[[D, str], None] | None = None
    organization: Callable[[D], Organization] = _agents_organization
    recipients: Callable[[D], Sequence[Agent]] = _the_agent
    # Joined when the request is locked (only its own row is locked: see decision_lock).
    related: tuple[str, ...] = field(default=("agent__organization",))


_DECISION_FIELDS = (
    "status",
    "status_reason",
    "status_reason_i18n",
    "decided_by",
    "decided_by_rule",
    "decided_at",
)


def decision_lock(*, lifecycle: Lifecycle[D], pk: int) -> D:
    # Only the request's own row: locking the joined agent and organisation would hold up every
    # writer that refers to them (and deadlocked against schedule writes, found by review).
    return (
        lifecycle.model._default_manager.select_for_update(of=("self",))
        .select_related(*lifecycle.related)
        .get(pk=pk)
    )


def _ensure_pending(decision: Decision) -> None:
    if decision.status != RequestStatus.PENDING:
        raise ApplicationError(
            "not_pending",
            _("This request is no longer pending (%(status)s).") % {"status": decision.get_status_display()},
            status_code=status.HTTP_409_CONFLICT,
        )


def decision_claim(*, lifecycle: Lifecycle[D], pk: int, actor: User | None) -> D:
    """The request, locked and still pending, for a person's decision: refused (403) unless the
    actor may decide for the request's organisation. The admin scopes its queue too, but the rule
    lives here so that every caller is held to it; an actor of None is refused like anyone else:
    only the engine's paths (decision_claim_pending, decision_follow_verdict) decide without one."""
    decision = decision_lock(lifecycle=lifecycle, pk=pk)
    # Before the status: someone refused learns nothing of the request, not even that it was decided.
    if not can_decide_for(user=actor, organization=lifecycle.organization(decision)):
        raise ApplicationError(
            "permission_denied",
            _("You may not decide on requests of this organisation."),
            status_code=status.HTTP_403_FORBIDDEN,
        )
    _ensure_pending(decision)
    return decision


def decision_claim_pending(*, lifecycle: Lifecycle[D], pk: int) -> D:
    """The request, locked and still pending, for the engine's own decision (the lapse task, a
    waitlist advancing): 409 `not_pending` when someone decided it first."""
    decision = decision_lock(lifecycle=lifecycle, pk=pk)
    _ensure_pending(decision)
    return decision


def decision_set_reason(decision: Decision, reason: Reason | str) -> None:
    if isinstance(reason, Reason):
        decision.status_reason_i18n = reason.as_json()
        decision.status_reason = reason.render(settings.LANGUAGE_CODE)[:500]  # for searching in the admin
    else:
        decision.status_reason_i18n = None
        decision.status_reason = reason[:500]


def _record(
    lifecycle: Lifecycle[D],
    decision: D,
    status_value: str,
    *,
    actor: User | None,
    rule: ApprovalRule | None,
    reason: Reason | str,
) -> None:
    decision.status = status_value
    if lifecycle.on_record is not None:
        lifecycle.on_record(decision, status_value)
    decision_set_reason(decision, reason)
    decision.decided_by = actor
    decision.decided_by_rule = rule
    decision.decided_at = timezone.now()
    decision.save(update_fields=[*_DECISION_FIELDS, *lifecycle.applied_fields])


def _approve(
    lifecycle: Lifecycle[D],
    decision: D,
    *,
    actor: User | None,
    rule: ApprovalRule | None,
    reason: Reason | str,
) -> None:
    lifecycle.apply(decision, actor)
    _record(lifecycle, decision, RequestStatus.APPROVED, actor=actor, rule=rule, reason=reason)
    notify_each(
        kind=lifecycle.approved_kind,
        items=[(agent, lifecycle.params(decision)) for agent in lifecycle.recipients(decision)],
    )


def _deny(
    lifecycle: Lifecycle[D],
    decision: D,
    *,
    actor: User | None,
    rule: ApprovalRule | None,
    reason: Reason | str,
) -> None:
    _record(lifecycle, decision, RequestStatus.DENIED, actor=actor, rule=rule, reason=reason)
    items = []
    for agent in lifecycle.recipients(decision):
        params = lifecycle.params(decision)
        reason = decision.reason_param()  # rendered when read, in the reader's language
        if reason:
            params["reason"] = reason
        items.append((agent, params))
    notify_each(kind=lifecycle.denied_kind, items=items)


def decision_follow_verdict(*, lifecycle: Lifecycle[D], decision: D, verdict: Verdict) -> None:
    """The engine's decision on a request it has just saved or claimed (decision_claim_pending):
    approved (applied) or declined by the verdict's rule, or left pending for a supervisor with the
    engine's reason. In the caller's transaction."""
    if verdict.action == RuleAction.AUTO_APPROVE:
        _approve(lifecycle, decision, actor=None, rule=verdict.rule, reason=verdict.reason)
    elif verdict.action == RuleAction.AUTO_DECLINE:
        _deny(lifecycle, decision, actor=None, rule=verdict.rule, reason=verdict.reason)
    else:
        decision_set_reason(decision, verdict.reason)
        decision.save(update_fields=["status_reason", "status_reason_i18n"])


def _name(user: User) -> str:
    return user.get_full_name() or user.email


@transaction.atomic
def decision_approve(*, lifecycle: Lifecycle[D], pk: int, actor: User, reason: str = "") -> D:
    """A person's approval: the change is applied in this transaction, or nothing is."""
    decision = decision_claim(lifecycle=lifecycle, pk=pk, actor=actor)
    if lifecycle.check_approvable is not None:
        lifecycle.check_approvable(decision, timezone.now())
    _approve(
        lifecycle,
        decision,
        actor=actor,
        rule=None,
        reason=reason or Reason(gettext_noop("Approved by %(name)s."), {"name": _name(actor)}),
    )
    return decision


@transaction.atomic
def decision_deny(*, lifecycle: Lifecycle[D], pk: int, actor: User, reason: str = "") -> D:
    decision = decision_claim(lifecycle=lifecycle, pk=pk, actor=actor)
    _deny(
        lifecycle,
        decision,
        actor=actor,
        rule=None,
        reason=reason or Reason(gettext_noop("Denied by %(name)s."), {"name": _name(actor)}),
    )
    return decision


def decision_withdraw(*, lifecycle: Lifecycle[D], decision: D, by: User) -> None:
    """The agent takes back its own pending request. `decision`: fetched for the agent (its scoped
    selector, locked), in the caller's transaction."""
    if decision.status != RequestStatus.PENDING:
        raise ApplicationError(
            "not_pending",
            _("Only a pending request can be withdrawn."),
            status_code=status.HTTP_409_CONFLICT,
        )
    _record(lifecycle, decision, RequestStatus.WITHDRAWN, actor=by, rule=None, reason="")


def decisions_lapse(*, lifecycle: Lifecycle[D], pending: Iterable[int], reason: Reason) -> int:
    """Denies the given pending requests (those whose time came before anyone decided) with
    `reason`, telling the agent: a request cannot wait in the queue for ever. Each in its own
    transaction, so a supervisor deciding one at the same moment simply wins it. How many lapsed."""
    denied = 0
    for pk in pending:
        try:
            with transaction.atomic():
                decision = decision_claim_pending(lifecycle=lifecycle, pk=pk)
                _deny(lifecycle, decision, actor=None, rule=None, reason=reason)
            denied += 1
        except (ApplicationError, lifecycle.model.DoesNotExist):
            continue  # decided (or gone) meanwhile
    return denied
