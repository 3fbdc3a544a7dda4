"""The swap board (GET /swaps?box=board): open board offers the caller could take."""

import datetime as dt

import pytest
import time_machine

from swaps.models import SwapRecipient, SwapSettings
from tests.factories import AgentFactory, TeamFactory
from tests.schedules.factories import shift
from tests.swaps.test_swaps import DAY, NOW, offer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _board(client) -> list[int]:
    return [swap["id"] for swap in client.get("/api/v1/swaps?box=board").json()["results"]]


def test_a_swap_shows_to_who_works_that_day_a_give_away_to_who_is_free(logged_in, org, agent, teammate):
    works, free = AgentFactory(organization=org), AgentFactory(organization=org)
    shift(works, DAY, ("LATE", "10:00", "18:00"))
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    swap = offer(logged_in(agent), open=True).json()["id"]
    shift(teammate, DAY + dt.timedelta(days=1), ("EARLY", "09:00", "17:00"))
    give_away = offer(
        logged_in(teammate), date=(DAY + dt.timedelta(days=1)).isoformat(), kind="give_away", open=True
    ).json()["id"]

    assert _board(logged_in(works)) == [give_away, swap]
    assert _board(logged_in(free)) == [give_away]
    assert _board(logged_in(agent)) == [give_away]  # not its own; free the next day
    assert _board(logged_in(teammate)) == []  # no shift on DAY to give back; the give-away is its own


def test_a_declined_board_offer_leaves_the_callers_board(logged_in, org, agent):
    works = AgentFactory(organization=org)
    shift(works, DAY, ("LATE", "10:00", "18:00"))
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    swap = offer(logged_in(agent), open=True).json()["id"]
    client = logged_in(works)

    assert client.post(f"/api/v1/swaps/{swap}/decline").json()["status"] == "open"

    assert _board(client) == []
    assert client.get(f"/api/v1/swaps/{swap}").status_code == 200  # its answer stays readable


def test_a_recipient_sees_its_own_answer_only_the_requester_all(logged_in, org, agent, teammate):
    third = AgentFactory(organization=org, name="Cleo")
    shift(agent, DAY, ("EARLY", "09:00", "17:00"))
    shift(teammate, DAY, ("LATE", "10:00", "18:00"))
    shift(third, DAY, ("MID", "11:00", "19:00"))
    swap = offer(logged_in(agent), recipients=[teammate.pk, third.pk]).json()["id"]
    logged_in(third).post(f"/api/v1/swaps/{swap}/decline")

    mine = logged_in(agent).get(f"/api/v1/swaps/{swap}").json()
    bobs = logged_in(teammate).get(f"/api/v1/swaps/{swap}").json()

    assert {(r["agent"]["name"], r["answer"]) for r in mine["recipients"]} == {
        ("Bob", "pending"),
        ("Cleo", "declined"),
    }
    assert mine["asked_shift"] is None  # two recipients: no single shift asked for yet
    assert [(r["agent"]["name"], r["answer"]) for r in bobs["recipients"]] == [("Bob", "pending")]
    assert bobs["asked_shift"]["activities"][0]["activity_code"]["code"] == "LATE"  # his own


# --- a closed board offer ---
# Once closed, a board offer answers a colleague who could see it on the board and acts on it as it
# answers its recipients (409); what became of it stays with those who took part (its detail is 404
# to that colleague, readable to the requester); outsiders get 404 as before.


@pytest.fixture
def cancelled_board_offer(logged_in, agent, teammate):
    """Alice's board offer, which Bob saw on the board without being told of it (he had no shift
    that day when she offered), then cancelled."""
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    swap = offer(logged_in(agent), open=True).json()["id"]
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    assert not SwapRecipient.objects.filter(swap_id=swap, agent=teammate).exists()
    assert _board(logged_in(teammate)) == [swap]
    assert logged_in(agent).post(f"/api/v1/swaps/{swap}/cancel").json()["status"] == "cancelled"
    return swap


def test_accepting_a_cancelled_board_offer_is_409_swap_not_open(logged_in, teammate, cancelled_board_offer):
    client = logged_in(teammate)

    accepted = client.post(f"/api/v1/swaps/{cancelled_board_offer}/accept")
    declined = client.post(f"/api/v1/swaps/{cancelled_board_offer}/decline")

    assert (accepted.status_code, accepted.json()["code"]) == (409, "swap_not_open")
    assert (declined.status_code, declined.json()["code"]) == (409, "swap_not_open")
    assert client.get(f"/api/v1/swaps/{cancelled_board_offer}").status_code == 404
    assert _board(client) == []  # the board itself shows open offers only


def test_a_closed_board_offer_stays_readable_to_those_who_took_part(logged_in, agent, cancelled_board_offer):
    assert logged_in(agent).get(f"/api/v1/swaps/{cancelled_board_offer}").json()["status"] == "cancelled"


def test_outsiders_still_get_404_for_a_closed_board_offer(logged_in, org, outsider, cancelled_board_offer):
    for path in ("", "/accept", "/decline"):
        method = "get" if not path else "post"
        response = getattr(logged_in(outsider), method)(f"/api/v1/swaps/{cancelled_board_offer}{path}")
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), path


def test_another_teams_colleague_gets_404_when_swaps_stay_within_teams(logged_in, org, agent, teammate):
    SwapSettings.objects.create(organization=org, same_team_only=True)
    care, sales = TeamFactory(organization=org), TeamFactory(organization=org)
    agent.team = teammate.team = care
    agent.save()
    teammate.save()
    other = AgentFactory(organization=org, team=sales)
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(other, DAY, ("LATE", "13:00", "21:00"))
    swap = offer(logged_in(agent), open=True).json()["id"]
    logged_in(agent).post(f"/api/v1/swaps/{swap}/cancel")

    assert logged_in(other).post(f"/api/v1/swaps/{swap}/accept").status_code == 404
    assert logged_in(teammate).post(f"/api/v1/swaps/{swap}/accept").json()["code"] == "swap_not_open"
