"""The approval engine: one set of organisation rules decides schedule requests, time off and swaps.

A request is declined at once when a blackout period covers any of its dates. Otherwise the most
specific active rule applies (a rule for the request's activity code before the type's general rule,
then the lowest priority): its action when every condition holds, its fallback (a supervisor, or an
automatic decision) when one fails. The conditions are small objects the engine asks in turn (lead
time, the daily maximum of requests, the limits of days or intervals, the balance); each looks only at
what the rule and the request's facts give it, so a request type adds what it knows (time off: its
limits and balance) without the engine knowing the type. Without a rule a supervisor decides. The
verdict says which rule decided, why, in words the agent reads, and which conditions failed (so time
off can put a request whose only failure is a full limit on the waitlist).

Counting requests of a day races with the next request of that day: `approval_days_lock` serialises
the counters of a request type, organisation and day (an advisory lock, namespaced per type)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_noop

from em_agent.messages import Reason
from em_agent.models import Organization
from schedules.models import ApprovalRule, BlackoutPeriod, RequestType, RuleAction

_BLACKOUT_FIELD = {
    RequestType.SCHEDULE: "applies_to_schedule",
    RequestType.TIME_OFF: "applies_to_time_off",
    RequestType.SWAP: "applies_to_swap",
}


@dataclass(frozen=True)
class DateRange:
    """The local days a request covers, first to last, both included."""

    first: dt.date
    last: dt.date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"a date range cannot end ({self.last}) before it starts ({self.first})")

    @classmethod
    def one(cls, date: dt.date) -> DateRange:
        return cls(date, date)

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class LimitUse:
    """One day's limit, or one interval's, as this request would meet it, counted in the limit's own
    unit (agents off, or hours off): what it allows, what approved requests already take, and what
    this one would take."""

    date: dt.date
    capacity: Decimal
    used: Decimal
    wanted: Decimal
    # The interval's start, aware in the agent's zone (its wall time is what the reason names);
    # None: the limit of the whole day.
    interval_start: dt.datetime | None = None
    # Whose limit: a team's (its id), or the organisation's (None).
    team_id: int | None = None

    @property
    def full(self) -> bool:
        return self.used + self.wanted > self.capacity


@dataclass(frozen=True)
class BalanceUse:
    """The agent's balance of the request's activity code, in hours: what remains (earned - used -
    planned), what the request would take, and how low the organisation lets it go."""

    remaining: Decimal
    wanted: Decimal
    floor: Decimal = Decimal(0)

    @property
    def short(self) -> bool:
        return self.remaining - self.wanted < self.floor


@dataclass(frozen=True)
class RequestFacts:
    """What the engine knows of a request. The counts, limits and balance are callables: only a rule
    that has a condition on them pays for them (a count that takes a lock, a balance that sums)."""

    organization: Organization
    request_type: str
    dates: DateRange  # the local days the request changes: blackouts count over all of them
    starts_at: dt.datetime  # when the requested change begins: the lead time counts to here
    activity_code_id: int | None = None
    # Approved and pending requests of this type on that day within the rule's reach (its activity
    # code, when it has one), this one excluded: the rule's `max_per_day` (see same_day_counter).
    same_day_count: Callable[[ApprovalRule], int] | None = None
    # Every day's (or interval's) limit the request would take a place of.
    limits: Callable[[], Sequence[LimitUse]] | None = None
    balance: Callable[[], BalanceUse] | None = None


class Condition(Protocol):
    """One condition of a rule: None when it holds (or does not apply), else why it fails."""

    @property
    def name(self) -> str: ...  # what Verdict.failed calls it

    def failure(self, *, rule: ApprovalRule, facts: RequestFacts, now: dt.datetime) -> Reason | None: ...


@dataclass(frozen=True)
class LeadTime:
    name: str = "lead_time"

    def failure(self, *, rule: ApprovalRule, facts: RequestFacts, now: dt.datetime) -> Reason | None:
        if rule.min_lead_hours is None or facts.starts_at - now >= dt.timedelta(hours=rule.min_lead_hours):
            return None
        return Reason(gettext_noop("requests need %(hours)d hours' notice"), {"hours": rule.min_lead_hours})


@dataclass(frozen=True)
class DailyMaximum:
    name: str = "daily_maximum"

    def failure(self, *, rule: ApprovalRule, facts: RequestFacts, now: dt.datetime) -> Reason | None:
        if rule.max_per_day is None or facts.same_day_count is None:
            return None
        if facts.same_day_count(rule) < rule.max_per_day:
            return None
        return Reason(
            gettext_noop("the day already has the maximum of %(count)d requests"), {"count": rule.max_per_day}
        )


@dataclass(frozen=True)
class WithinLimits:
    name: str = "limit_full"

    def failure(self, *, rule: ApprovalRule, facts: RequestFacts, now: dt.datetime) -> Reason | None:
        if facts.limits is None:
            return None
        full = [limit for limit in facts.limits() if limit.full]
        if not full:
            return None
        first = min(full, key=lambda limit: (limit.date, limit.interval_start or now))
        if first.interval_start is None:
            return Reason(gettext_noop("the limit of %(date)s is reached"), {"date": first.date})
        return Reason(
            gettext_noop("the limit of %(date)s at %(time)s is reached"),
            {"date": first.date, "time": first.interval_start.strftime("%H:%M")},
        )


@dataclass(frozen=True)
class EnoughBalance:
    name: str = "insufficient_balance"

    def failure(self, *, rule: ApprovalRule, facts: RequestFacts, now: dt.datetime) -> Reason | None:
        if facts.balance is None:
            return None
        balance = facts.balance()
        if not balance.short:
            return None
        return Reason(
            gettext_noop("the balance is not enough (%(remaining)s hours left, %(wanted)s asked)"),
            {"remaining": _hours(balance.remaining), "wanted": _hours(balance.wanted)},
        )


def _hours(value: Decimal) -> str:
    # A string: a reason's parameters are kept as JSON. "7.5", "8", "-2.25".
    return format(value.quantize(Decimal("0.01")).normalize(), "f")


# Asked in this order; every failure is named in the reason, in this order.
CONDITIONS: tuple[Condition, ...] = (LeadTime(), DailyMaximum(), WithinLimits(), EnoughBalance())


@dataclass(frozen=True)
class Verdict:
    action: str  # a RuleAction
    rule: ApprovalRule | None
    reason: Reason
    # The names of the conditions that failed (Condition.name; "blackout" for a blackout date).
    failed: tuple[str, ...] = ()


def approval_rule_for(*, facts: RequestFacts) -> ApprovalRule | None:
    rules = ApprovalRule.objects.filter(
        organization=facts.organization, request_type=facts.request_type, active=True
    ).filter(Q(activity_code__isnull=True) | Q(activity_code_id=facts.activity_code_id))
    return min(
        rules,
        key=lambda rule: (rule.activity_code_id is None, rule.priority, rule.pk),
        default=None,
    )


def approval_evaluate(
    *, facts: RequestFacts, now: dt.datetime, conditions: Sequence[Condition] = CONDITIONS
) -> Verdict:
    blackout = (
        BlackoutPeriod.objects.filter(
            organization=facts.organization,
            start_date__lte=facts.dates.last,
            end_date__gte=facts.dates.first,
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
            failed=("blackout",),
        )
    rule = approval_rule_for(facts=facts)
    if rule is None:
        return Verdict(RuleAction.MANUAL, None, Reason(gettext_noop("A supervisor decides.")))

    failures = [
        (condition.name, reason)
        for condition in conditions
        if (reason := condition.failure(rule=rule, facts=facts, now=now)) is not None
    ]
    if failures:
        failed = tuple(name for name, _reason in failures)
        why = [reason for _name, reason in failures]
        action = rule.when_conditions_fail
        if action == RuleAction.AUTO_DECLINE:
            return Verdict(
                action, rule, Reason(gettext_noop("Declined automatically: %(why)s."), {"why": why}), failed
            )
        return Verdict(
            action, rule, Reason(gettext_noop("Sent to a supervisor: %(why)s."), {"why": why}), failed
        )
    msgid = {
        RuleAction.AUTO_APPROVE: gettext_noop("Approved automatically."),
        RuleAction.AUTO_DECLINE: gettext_noop("Declined automatically: not open to requests."),
        RuleAction.MANUAL: gettext_noop("A supervisor decides."),
    }[RuleAction(rule.action)]
    return Verdict(rule.action, rule, Reason(msgid))


# Strictest first: when two activity codes' rules disagree, the stricter wins.
_STRICTNESS = {RuleAction.AUTO_DECLINE: 0, RuleAction.MANUAL: 1, RuleAction.AUTO_APPROVE: 2}


def approval_evaluate_strictest(
    *,
    facts: RequestFacts,
    activity_code_ids: Iterable[int | None],
    now: dt.datetime,
    conditions: Sequence[Condition] = CONDITIONS,
) -> Verdict:
    """The strictest verdict of the rules of every activity code the request touches (turning a
    phone block into training is judged by the phone block's rule too, not only by training's; a
    swap by both shifts' codes). On a tie the first code's (in the order given) stands."""
    codes = list(dict.fromkeys(activity_code_ids))
    if not codes:
        raise ValueError("a request touches at least one activity code (None: the type's general rule)")
    verdicts = [
        approval_evaluate(facts=replace(facts, activity_code_id=code), now=now, conditions=conditions)
        for code in codes
    ]
    return min(verdicts, key=lambda verdict: _STRICTNESS[RuleAction(verdict.action)])


def _lock_key(request_type: str, organization_id: int, date: dt.date) -> int:
    """A signed 64-bit advisory-lock key of its own per request type, organisation and day: the
    single-key space, apart from the two-key locks others take (the sync's per organisation)."""
    digest = hashlib.blake2b(
        f"approval:{request_type}:{organization_id}:{date.isoformat()}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def approval_days_lock(*, request_type: str, organization_id: int, dates: Iterable[dt.date]) -> None:
    """Serialises, to the end of the transaction, whatever counts requests of this type in the
    organisation on these days (a daily maximum, a day's limit): two requests at once cannot both
    take the last place. The days in order, so two requests of overlapping ranges never deadlock.
    (PostgreSQL; SQLite, the demo's database, has one writer at a time anyway.)"""
    if connection.vendor != "postgresql":
        return
    keys = [_lock_key(request_type, organization_id, date) for date in sorted(set(dates))]
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def same_day_counter(
    *,
    request_type: str,
    organization_id: int,
    date: dt.date,
    requests: Callable[[ApprovalRule], QuerySet],
) -> Callable[[ApprovalRule], int]:
    """The `same_day_count` of RequestFacts: `requests(rule)` are the approved and pending requests
    of the day within the rule's reach, this one excluded; counted under approval_days_lock (held to
    the end of the transaction, in which the request is saved and decided)."""

    def count(rule: ApprovalRule) -> int:
        approval_days_lock(request_type=request_type, organization_id=organization_id, dates=[date])
        return requests(rule).count()

    return count
