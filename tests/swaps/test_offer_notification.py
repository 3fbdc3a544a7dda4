"""The swap_offer notification names what is offered: a swap, or a shift given away."""

import pytest
import time_machine

from notifications.kinds import kind_get, params_validate
from tests.schedules.factories import shift
from tests.swaps.test_swaps import DAY, NOW, offer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _offer_note(client) -> dict:
    (note,) = [n for n in client.get("/api/v1/notifications").json()["results"] if n["kind"] == "swap_offer"]
    return note


def test_a_give_away_is_offered_as_a_shift_given_not_as_a_swap(logged_in, agent, teammate):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    assert offer(logged_in(agent), kind="give_away", recipients=[teammate.pk]).status_code == 201

    note = _offer_note(logged_in(teammate))

    assert note["title"] == "Shift offered to you"
    assert note["body"] == "Alice offers you their shift on Tuesday 8 December, without taking one of yours."
    # The same kind: the app's accept and decline work as for a swap.
    assert note["actions"] == ["accept_swap", "decline_swap"]


def test_a_swap_is_still_offered_as_a_swap(logged_in, agent, teammate):
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    shift(teammate, DAY, ("LATE", "13:00", "21:00"))
    assert offer(logged_in(agent), recipients=[teammate.pk]).status_code == 201

    note = _offer_note(logged_in(teammate))

    assert (note["title"], note["body"]) == (
        "Shift swap offer",
        "Alice offers to swap shifts with you on Tuesday 8 December.",
    )


def test_a_variant_the_kind_does_not_have_is_refused():
    with pytest.raises(ValueError, match="no variant"):
        params_validate(
            kind_get("swap_offer"), {"swap_id": 1, "from_name": "Alice", "date": DAY, "variant": "gift"}
        )
