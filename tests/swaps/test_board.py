"""The swap board (GET /swaps?box=board): open board offers the caller could take."""

import datetime as dt

import pytest
import time_machine

from tests.factories import AgentFactory
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
