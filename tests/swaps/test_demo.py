"""The demo's swaps (swaps/demo.py, what `seed_demo` adds): Anna and Bram of customer care can swap
with each other, the sales colleagues cannot (and the candidates say why), a swap of Anna's waits for
a supervisor, one of Bram's is on the board, and the organisation's rule approves a swap three days
ahead at once."""

import datetime as dt
import io

import pytest
import time_machine
from django.core.management import call_command

from em_agent.models import Agent
from notifications.models import Notification
from schedules.models import ApprovalRule, ScheduleChange
from swaps.eligibility import NotEligible
from swaps.models import Swap, SwapRecipient
from swaps.selectors import swap_candidates_for_agent, swap_list_for_agent
from swaps.services import swap_accept, swap_offer_create

pytestmark = pytest.mark.django_db
MONDAY = "2026-11-23 12:00:00 +00:00"  # 13:00 in Amsterdam


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.WFM_DEMO_EXPORT_DIR = tmp_path / "wfm-export"


def _seed(when: str) -> None:
    with time_machine.travel(when, tick=False):
        call_command("seed_demo", stdout=io.StringIO())


def _agent(name: str) -> Agent:
    return Agent.objects.select_related("organization").get(user__email=f"{name}@contoso.demo")


def _codes(candidate) -> set[str]:
    return {violation.code for violation in candidate.violations}


def test_a_swap_of_anna_with_bram_two_days_ahead_waits_for_a_supervisor():
    _seed(MONDAY)
    anna, bram = _agent("anna"), _agent("bram")

    swap = Swap.objects.get(requester=anna, status="pending")

    # Tuesday's shifts start in less than 24 hours (the lead time to offer); Wednesday's within
    # the rule's 72, so the swap went to a supervisor.
    assert (swap.date, swap.their_date, swap.taker, swap.kind) == (
        dt.date(2026, 11, 25),
        dt.date(2026, 11, 25),
        bram,
        "swap",
    )
    assert "72 hours' notice" in swap.reason_text("en")
    assert Notification.objects.filter(user=anna.user, kind="swap_accepted", params__swap_id=swap.pk).exists()


def test_an_offer_of_bram_on_the_board_that_anna_may_take_and_the_rule_completes_at_once():
    _seed(MONDAY)
    anna, bram = _agent("anna"), _agent("bram")

    board = list(swap_list_for_agent(agent=anna, box="board"))

    assert [(swap.requester, swap.date, swap.open, swap.status) for swap in board] == [
        (bram, dt.date(2026, 11, 27), True, "open")
    ]
    assert Notification.objects.filter(
        user=anna.user, kind="swap_offer", params__swap_id=board[0].pk
    ).exists()
    with time_machine.travel(MONDAY, tick=False):
        taken = swap_accept(agent=anna, swap_id=board[0].pk)
    # Friday's shifts start more than 72 hours ahead: approved automatically, the days exchanged.
    assert taken.status == "approved" and taken.change_group is not None


def test_bram_has_annas_skills_so_they_may_swap_the_sales_colleagues_may_not():
    _seed(MONDAY)
    anna, chloe = _agent("anna"), _agent("chloe")
    friday = dt.date(2026, 11, 27)

    with time_machine.travel(MONDAY, tick=False):
        annas = swap_candidates_for_agent(agent=anna, date=friday, their_date=friday, include_ineligible=True)
        chloes = swap_candidates_for_agent(
            agent=chloe, date=friday, their_date=friday, include_ineligible=True
        )
        with pytest.raises(NotEligible) as refused:
            swap_offer_create(agent=anna, date=friday, recipients=[chloe.pk])

    assert [(c.agent.name, c.eligible) for c in annas] == [("Bram Bakker", True)]
    # Daan has lower levels of Chloé's English and Dutch she lacks: both ways the skills fail.
    assert [(c.agent.name, _codes(c)) for c in chloes] == [
        ("Daan Visser", {"skill_missing", "skill_level_lower"})
    ]
    assert {v["code"] for v in refused.value.violations} == {"skill_missing", "skill_level_lower"}


def test_every_shift_code_has_the_swap_rule_in_the_cxone_organisations_only():
    _seed(MONDAY)

    rules = ApprovalRule.objects.filter(request_type="swap", activity_code__isnull=False)

    assert {rule.organization.slug for rule in rules} == {"contoso-cxone", "northwind-mfa"}
    assert {rule.activity_code.code for rule in rules if rule.organization.slug == "contoso-cxone"} == {
        "PHONE",
        "EMAIL",
        "CHAT",
        "BREAK",
        "LUNCH",
        "MEETING",
        "TRAINING",
        "COACHING",
    }
    assert {(r.action, r.min_lead_hours, r.when_conditions_fail) for r in rules} == {
        ("auto_approve", 72, "manual")
    }


def test_a_second_seed_adds_nothing():
    _seed(MONDAY)
    before = (
        sorted(Swap.objects.values_list("id", "status", "date")),
        SwapRecipient.objects.count(),
        Notification.objects.count(),
        ApprovalRule.objects.count(),
        ScheduleChange.objects.count(),
    )

    _seed("2026-11-23 15:00:00 +00:00")

    assert (
        sorted(Swap.objects.values_list("id", "status", "date")),
        SwapRecipient.objects.count(),
        Notification.objects.count(),
        ApprovalRule.objects.count(),
        ScheduleChange.objects.count(),
    ) == before


def test_seeded_on_a_thursday_afternoon_only_the_weekend_is_near_so_nothing_awaits():
    _seed("2026-11-26 14:00:00 +00:00")

    # Friday's shifts start in less than 24 hours, and the weekend is off for both.
    assert not Swap.objects.filter(status="pending").exists()
    assert Swap.objects.filter(open=True, status="open", date=dt.date(2026, 11, 30)).count() == 1
