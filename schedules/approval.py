"""The approval engine: one set of organisation rules decides schedule requests, time off and swaps.

A request is declined at once on a blackout date. Otherwise the most specific active rule applies (a
rule for the request's activity code before the type's general rule, then the lowest priority): its
action when every condition holds (lead time, a daily maximum), its fallback (a supervisor, or an
automatic decline) when one fails. Without a rule a supervisor decides. The verdict says which rule
decided and why, in words the agent reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from em_agent.models import Organization
from schedules.models import ApprovalRule, BlackoutPeriod, RequestType, RuleAction

_BLACKOUT_FIELD = {
    RequestType.SCHEDULE: "applies_to_schedule",
    RequestType.TIME_OFF: "applies_to_time_off",
    RequestType.SWAP: "applies_to_swap",
}


@dataclass(frozen=True)
class Reason:
    """A decision's reason, kept as its untranslated message and parameters so that each reader
    gets it in their own language (the agent in the app, a supervisor in the admin). A parameter
    may itself be a list of reasons, joined with "; "."""

    msgid: str
    params: dict = field(default_factory=dict)

    def render(self, language: str | None = None) -> str:
        if language is not None:
            with translation.override(language):
                return self.render()
        values = {
            name: "; ".join(part.render() for part in value) if isinstance(value, list) else value
            for name, value in self.params.items()
        }
        return gettext(self.msgid) % values if values else gettext(self.msgid)

    def as_json(self) -> dict:
        return {
            "msgid": self.msgid,
            "params": {
                name: [part.as_json() for part in value] if isinstance(value, list) else value
                for name, value in self.params.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> Reason:
        return cls(
            data["msgid"],
            {
                name: [cls.from_json(part) for part in value] if isinstance(value, list) else value
                for name, value in data.get("params", {}).items()
            },
        )


@dataclass(frozen=True)
class RequestFacts:
    organization: Organization
    request_type: str
    date: dt.date  # the (first) local day the request changes
    starts_at: dt.datetime  # when the requested change begins: the lead time counts to here
    activity_code_id: int | None = None
    # Approved and pending requests of this type on that day within the rule's reach (its activity
    # code, when it has one), this one excluded. A callable: only a rule with a daily maximum pays.
    same_day_count: Callable[[ApprovalRule], int] | None = None


@dataclass(frozen=True)
class Verdict:
    action: str  # a RuleAction
    rule: ApprovalRule | None
    reason: Reason


def approval_rule_for(*, facts: RequestFacts) -> ApprovalRule | None:
    rules = ApprovalRule.objects.filter(
        organization=facts.organization, request_type=facts.request_type, active=True
    ).filter(Q(activity_code__isnull=True) | Q(activity_code_id=facts.activity_code_id))
    return min(
        rules,
        key=lambda rule: (rule.activity_code_id is None, rule.priority, rule.pk),
        default=None,
    )


def approval_evaluate(*, facts: RequestFacts, now: dt.datetime) -> Verdict:
    blackout = (
        BlackoutPeriod.objects.filter(
            organization=facts.organization,
            start_date__lte=facts.date,
            end_date__gte=facts.date,
            **{_BLACKOUT_FIELD[RequestType(facts.request_type)]: True},
        )
        .order_by("start_date")
        .first()
    )
    if blackout is not None:
        return Verdict(
            RuleAction.AUTO_DECLINE,
            None,
            Reason(
                gettext_noop("No requests are taken for this date: %(reason)s."), {"reason": blackout.reason}
            ),
        )
    rule = approval_rule_for(facts=facts)
    if rule is None:
        return Verdict(RuleAction.MANUAL, None, Reason(gettext_noop("A supervisor decides.")))

    failed: list[Reason] = []
    if rule.min_lead_hours is not None and facts.starts_at - now < dt.timedelta(hours=rule.min_lead_hours):
        failed.append(
            Reason(gettext_noop("requests need %(hours)d hours' notice"), {"hours": rule.min_lead_hours})
        )
    if rule.max_per_day is not None and facts.same_day_count is not None:
        if facts.same_day_count(rule) >= rule.max_per_day:
            failed.append(
                Reason(
                    gettext_noop("the day already has the maximum of %(count)d requests"),
                    {"count": rule.max_per_day},
                )
            )
    if failed:
        action = rule.when_conditions_fail
        if action == RuleAction.AUTO_DECLINE:
            return Verdict(
                action, rule, Reason(gettext_noop("Declined automatically: %(why)s."), {"why": failed})
            )
        return Verdict(action, rule, Reason(gettext_noop("Sent to a supervisor: %(why)s."), {"why": failed}))
    reason = {
        RuleAction.AUTO_APPROVE: gettext_noop("Approved automatically."),
        RuleAction.AUTO_DECLINE: gettext_noop("Declined automatically: not open to requests."),
        RuleAction.MANUAL: gettext_noop("A supervisor decides."),
    }[RuleAction(rule.action)]
    return Verdict(rule.action, rule, Reason(reason))
