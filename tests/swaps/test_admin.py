"""The supervisor's swap queue in the admin: both agents' days before and after side by side,
approve and deny one at a time or in bulk, nothing of another organisation."""

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client

from notifications.models import Notification
from swaps.models import Swap, SwapStatus
from swaps.services import swap_accept, swap_offer_create
from tests.factories import AgentFactory
from tests.schedules.factories import shift
from tests.swaps.test_swaps import DAY, NOW, codes_on

pytestmark = pytest.mark.django_db
QUEUE = "/admin/swaps/swap/"


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _awaiting(requester, taker, date=DAY) -> Swap:
    """No approval rule: a supervisor decides."""
    shift(requester, date, ("EARLY", "09:00", "17:00"))
    shift(taker, date, ("LATE", "10:00", "18:00"))
    swap = swap_offer_create(agent=requester, date=date, recipients=[taker.pk])
    swap_accept(agent=taker, swap_id=swap.pk)
    swap.refresh_from_db()
    assert swap.status == SwapStatus.AWAITING_APPROVAL
    return swap


def _decide(client: Client, action: str, swaps, reason: str | None):
    data: dict = {"action": action, "_selected_action": [s.pk for s in swaps]}
    if reason is not None:
        data |= {"apply": "1", "reason": reason}
    return client.post(QUEUE, data)


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_queue_shows_both_agents_days_before_and_after(supervisor, agent, teammate):
    swap = _awaiting(agent, teammate)
    client = _admin(supervisor)

    queue = client.get(QUEUE).content.decode()
    page = client.get(f"{QUEUE}{swap.pk}/change/").content.decode()

    assert "EARLY 09:00–17:00 → LATE 10:00–18:00" in queue  # Alice's day
    assert "LATE 10:00–18:00 → EARLY 09:00–17:00" in queue  # Bob's
    assert "<td>Alice</td><td>Europe/Amsterdam</td>" in page and "deny_selected" in page


def test_approve_exchanges_and_tells_both(supervisor, agent, teammate):
    swap = _awaiting(agent, teammate)

    response = _decide(_admin(supervisor), "approve_selected", [swap], reason="")

    assert _messages(response) == ["1 swap approved."]
    swap.refresh_from_db()
    assert swap.status == SwapStatus.COMPLETED and swap.decided_by == supervisor
    assert codes_on(agent, DAY) == ["LATE"] and codes_on(teammate, DAY) == ["EARLY"]
    assert Notification.objects.filter(kind="swap_approved").count() == 2
    # Decided: the journal's before and after stand, not the days as they are now.
    page = _admin(supervisor).get(f"{QUEUE}{swap.pk}/change/").content.decode()
    assert "EARLY 09:00–17:00</td><td>LATE 10:00–18:00" in page


def test_bulk_deny_needs_a_reason_and_tells_both(supervisor, org, agent, teammate):
    first = _awaiting(agent, teammate)
    second = _awaiting(AgentFactory(organization=org), AgentFactory(organization=org))
    client = _admin(supervisor)

    refused = _decide(client, "deny_selected", [first, second], reason=" ")
    assert refused.status_code == 200 and b"This field is required." in refused.content
    for swap in (first, second):  # the reason page keeps the selection
        assert f'name="_selected_action" value="{swap.pk}"'.encode() in refused.content
    response = _decide(client, "deny_selected", [first, second], reason="Not enough late staff")

    assert _messages(response) == ["2 swaps denied."]
    for swap in (first, second):
        swap.refresh_from_db()
        assert swap.status == SwapStatus.DENIED and swap.status_reason == "Not enough late staff"
    assert codes_on(agent, DAY) == ["EARLY"]
    denied = Notification.objects.filter(kind="swap_denied")
    assert denied.count() == 4 and {n.params["reason"] for n in denied} == {"Not enough late staff"}


def test_a_swap_decided_meanwhile_is_reported(supervisor, agent, teammate):
    swap = _awaiting(agent, teammate)
    _decide(_admin(supervisor), "approve_selected", [swap], reason="")

    again = _decide(_admin(supervisor), "deny_selected", [swap], reason="Too late")

    assert _messages(again) == ["1 swap was not awaiting approval any more."]
    assert Swap.objects.get().status == SwapStatus.COMPLETED


def test_another_organisations_swaps_are_out_of_reach(supervisor, outsider, other_org):
    theirs = _awaiting(outsider, AgentFactory(organization=other_org))
    client = _admin(supervisor)

    assert client.get(f"{QUEUE}{theirs.pk}/change/").status_code == 302
    response = _decide(client, "approve_selected", [theirs], reason="")

    assert _messages(response)[-1] == "No swap was selected."
    assert Swap.objects.get().status == SwapStatus.AWAITING_APPROVAL
    assert str(outsider.name) not in client.get(QUEUE).content.decode()
