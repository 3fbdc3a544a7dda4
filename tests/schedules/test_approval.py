"""The approval engine's facts as time off and swaps need them: a date range (blackouts over all of
it), limits per day or interval, the balance, conditions asked in turn and only when a rule has
them, the strictest of several codes' rules, and the same-day lock namespaced per request type."""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import transaction

from schedules.approval import (
    BalanceUse,
    DateRange,
    LimitUse,
    RequestFacts,
    approval_days_lock,
    approval_evaluate,
    approval_evaluate_strictest,
    same_day_counter,
)
from schedules.models import ApprovalRule, BlackoutPeriod, RequestType, RuleAction, ScheduleRequest
from tests.conftest import run_together
from tests.schedules.factories import ActivityCodeFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
FIRST = dt.date(2026, 12, 14)


def _facts(org, **kwargs) -> RequestFacts:
    values = {
        "organization": org,
        "request_type": RequestType.TIME_OFF,
        "dates": DateRange(FIRST, FIRST + dt.timedelta(days=4)),
        "starts_at": dt.datetime(2026, 12, 13, 23, 0, tzinfo=dt.UTC),
        **kwargs,
    }
    return RequestFacts(**values)


def _rule(org, **kwargs) -> ApprovalRule:
    return ApprovalRule.objects.create(organization=org, request_type=RequestType.TIME_OFF, **kwargs)


def test_a_date_range_is_ordered_and_lists_its_days():
    assert DateRange(FIRST, FIRST + dt.timedelta(days=2)).days() == [
        FIRST,
        FIRST + dt.timedelta(days=1),
        FIRST + dt.timedelta(days=2),
    ]
    assert DateRange.one(FIRST).days() == [FIRST]
    with pytest.raises(ValueError):
        DateRange(FIRST, FIRST - dt.timedelta(days=1))


def test_a_blackout_on_any_day_of_the_range_declines_the_whole_request(org):
    _rule(org, action=RuleAction.AUTO_APPROVE)
    BlackoutPeriod.objects.create(
        organization=org,
        start_date=FIRST + dt.timedelta(days=3),
        end_date=FIRST + dt.timedelta(days=9),
        reason="Peak",
    )
    verdict = approval_evaluate(facts=_facts(org), now=NOW)
    assert (verdict.action, verdict.failed) == (RuleAction.AUTO_DECLINE, ("blackout",))
    assert verdict.reason.render("en") == "No requests are taken for this date: Peak."

    before = _facts(org, dates=DateRange(FIRST - dt.timedelta(days=5), FIRST + dt.timedelta(days=2)))
    assert approval_evaluate(facts=before, now=NOW).action == RuleAction.AUTO_APPROVE
    # A blackout for swaps only does not touch time off.
    BlackoutPeriod.objects.update(applies_to_time_off=False)
    assert approval_evaluate(facts=_facts(org), now=NOW).action == RuleAction.AUTO_APPROVE


def test_a_full_day_limit_fails_its_condition_with_the_day_named(org):
    _rule(org, action=RuleAction.AUTO_APPROVE, when_conditions_fail=RuleAction.MANUAL)
    limits = [
        LimitUse(date=FIRST, capacity=Decimal(2), used=Decimal(1), wanted=Decimal(1)),
        LimitUse(date=FIRST + dt.timedelta(days=1), capacity=Decimal(2), used=Decimal(2), wanted=Decimal(1)),
    ]
    verdict = approval_evaluate(facts=_facts(org, limits=lambda: limits), now=NOW)
    assert (verdict.action, verdict.failed) == (RuleAction.MANUAL, ("limit_full",))
    assert verdict.reason.render("en") == "Sent to a supervisor: the limit of Tuesday 15 December is reached."

    room = [LimitUse(date=FIRST, capacity=Decimal(2), used=Decimal(1), wanted=Decimal(1))]
    assert (
        approval_evaluate(facts=_facts(org, limits=lambda: room), now=NOW).action == RuleAction.AUTO_APPROVE
    )


def test_an_interval_limit_in_hours_names_the_intervals_wall_time(org, agent):
    _rule(org, action=RuleAction.AUTO_APPROVE, when_conditions_fail=RuleAction.AUTO_DECLINE)
    start = dt.datetime.combine(FIRST, dt.time(14, 30), tzinfo=agent.zone)
    hours = [
        LimitUse(
            date=FIRST,
            capacity=Decimal("4"),
            used=Decimal("3.75"),
            wanted=Decimal("0.5"),
            interval_start=start,
        )
    ]
    verdict = approval_evaluate(facts=_facts(org, limits=lambda: hours), now=NOW)
    assert verdict.failed == ("limit_full",)
    assert (
        verdict.reason.render("en")
        == "Declined automatically: the limit of Monday 14 December at 14:30 is reached."
    )


def test_the_balance_holds_down_to_its_floor(org):
    _rule(org, action=RuleAction.AUTO_APPROVE, when_conditions_fail=RuleAction.AUTO_DECLINE)

    def verdict(remaining, wanted, floor="0"):
        balance = BalanceUse(remaining=Decimal(remaining), wanted=Decimal(wanted), floor=Decimal(floor))
        return approval_evaluate(facts=_facts(org, balance=lambda: balance), now=NOW)

    assert verdict("16", "16").action == RuleAction.AUTO_APPROVE  # to exactly zero
    short = verdict("15.5", "16")
    assert (short.action, short.failed) == (RuleAction.AUTO_DECLINE, ("insufficient_balance",))
    assert short.reason.render("en") == (
        "Declined automatically: the balance is not enough (15.5 hours left, 16 asked)."
    )
    assert verdict("4", "8", floor="-4").action == RuleAction.AUTO_APPROVE  # a negative floor allowed
    assert verdict("4", "8.25", floor="-4").failed == ("insufficient_balance",)


def test_every_failed_condition_is_named_in_order(org):
    _rule(org, action=RuleAction.AUTO_APPROVE, min_lead_hours=24 * 30, when_conditions_fail=RuleAction.MANUAL)
    verdict = approval_evaluate(
        facts=_facts(
            org,
            limits=lambda: [LimitUse(date=FIRST, capacity=Decimal(0), used=Decimal(0), wanted=Decimal(1))],
            balance=lambda: BalanceUse(remaining=Decimal(0), wanted=Decimal(8)),
        ),
        now=NOW,
    )
    assert verdict.failed == ("lead_time", "limit_full", "insufficient_balance")
    assert verdict.reason.render("en") == (
        "Sent to a supervisor: requests need 720 hours' notice; the limit of Monday 14 December is reached;"
        " the balance is not enough (0 hours left, 8 asked)."
    )


def test_no_rule_no_condition_is_asked(org):
    """A supervisor decides; the balance (a sum) and the limits (a count under a lock) are not paid for."""
    asked = []
    facts = _facts(org, limits=lambda: asked.append("limits") or [], balance=lambda: asked.append("balance"))
    verdict = approval_evaluate(facts=facts, now=NOW)
    assert verdict.action == RuleAction.MANUAL and verdict.rule is None
    assert asked == []


def test_the_strictest_of_several_codes_rules_wins(org):
    phone = ActivityCodeFactory(organization=org, code="PHONE")
    vacation = ActivityCodeFactory(organization=org, code="VAC")
    _rule(org, activity_code=vacation, action=RuleAction.AUTO_APPROVE)
    manual = _rule(org, activity_code=phone, action=RuleAction.MANUAL)
    verdict = approval_evaluate_strictest(
        facts=_facts(org), activity_code_ids=[vacation.pk, phone.pk], now=NOW
    )
    assert (verdict.action, verdict.rule) == (RuleAction.MANUAL, manual)
    declining = _rule(org, action=RuleAction.AUTO_DECLINE)  # the general rule: for codes without their own
    other = ActivityCodeFactory(organization=org, code="TRAIN")
    verdict = approval_evaluate_strictest(
        facts=_facts(org), activity_code_ids=[vacation.pk, other.pk], now=NOW
    )
    assert (verdict.action, verdict.rule) == (RuleAction.AUTO_DECLINE, declining)
    with pytest.raises(ValueError):
        approval_evaluate_strictest(facts=_facts(org), activity_code_ids=[], now=NOW)


def test_the_same_day_counter_counts_what_the_caller_gives_it_under_the_types_lock(org, agent):
    rule = _rule(org, max_per_day=1)
    seen = []

    def requests(rule_asked):
        seen.append(rule_asked)
        return ScheduleRequest.objects.filter(agent=agent)

    count = same_day_counter(
        request_type=RequestType.TIME_OFF, organization_id=org.pk, date=FIRST, requests=requests
    )
    assert count(rule) == 0 and seen == [rule]


def _held_for(request_type: str, org_id: int, date: dt.date, seconds: float, started: threading.Event):
    def hold():
        with transaction.atomic():
            approval_days_lock(request_type=request_type, organization_id=org_id, dates=[date])
            started.set()
            time.sleep(seconds)

    return hold


def _waited(request_type: str, org_id: int, date: dt.date, started: threading.Event):
    def wait():
        started.wait(10)
        begun = time.monotonic()
        with transaction.atomic():
            approval_days_lock(request_type=request_type, organization_id=org_id, dates=[date])
        return time.monotonic() - begun

    return wait


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("other_type", "other_date", "waits"),
    [
        (RequestType.TIME_OFF, FIRST, True),  # the same counter: the second waits for the first
        (RequestType.SWAP, FIRST, False),  # another type's counter of that day: no waiting
        (RequestType.TIME_OFF, FIRST + dt.timedelta(days=1), False),  # another day
    ],
)
def test_the_day_lock_is_namespaced_per_request_type_and_day(postgres, org, other_type, other_date, waits):
    started = threading.Event()
    _none, waited = run_together(
        [
            _held_for(RequestType.TIME_OFF, org.pk, FIRST, 1.0, started),
            _waited(other_type, org.pk, other_date, started),
        ]
    )
    assert (waited > 0.7) is waits, waited
