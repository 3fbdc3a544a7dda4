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
