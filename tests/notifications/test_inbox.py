import datetime as dt

import pytest
import time_machine

from notifications.models import Channel, Delivery, Notification
from notifications.services import email_preferences_set, notify

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications"
NOW = "2026-12-01 09:00:00 +00:00"


def _adjusted(agent, date="2026-12-03"):
    return notify(recipients=[agent], kind="schedule_adjusted", params={"date": date})[0]


def test_the_inbox_shows_the_last_7_days_newest_first(logged_in, agent):
    with time_machine.travel("2026-11-23 09:00:00 +00:00", tick=False) as traveller:
        _adjusted(agent, "2026-11-24")  # 8 days before NOW: gone from the inbox
        traveller.shift(dt.timedelta(days=2))
        older = _adjusted(agent, "2026-11-26")
        traveller.move_to(NOW)
        newer = _adjusted(agent, "2026-12-02")
        client = logged_in(agent)

        body = client.get(URL).json()

    assert [item["id"] for item in body["results"]] == [newer.id, older.id]
    assert body["next"] is None
    first = body["results"][0]
    assert first["kind"] == "schedule_adjusted"
    assert first["title"] == "Schedule changed"
    assert first["body"] == "Your schedule for Wednesday 2 December has changed."
    assert first["acknowledged"] is False
    assert first["data"] == {"date": "2026-12-02"}
    assert first["actions"] == []
    assert first["created_at"] == "2026-12-01T10:00:00+01:00"


def test_texts_follow_the_agents_language_at_once(logged_in, agent):
    _adjusted(agent)
    client = logged_in(agent)
    assert client.get(URL).json()["results"][0]["title"] == "Schedule changed"

    agent.language = "nl"
    agent.save()

    item = client.get(URL).json()["results"][0]
    assert item["title"] == "Planning gewijzigd"
    assert item["body"] == "Uw planning voor donderdag 3 december is gewijzigd."


def test_a_swap_offer_carries_its_id_and_actions_until_it_expires(logged_in, agent):
    with time_machine.travel(NOW, tick=False) as traveller:
        notify(
            recipients=[agent],
            kind="swap_offer",
            params={"swap_id": 17, "from_name": "Bob", "date": "2026-12-03"},
            expires_at=dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC),
        )
        client = logged_in(agent)
        item = client.get(URL).json()["results"][0]
        assert item["data"] == {"swap_id": 17, "date": "2026-12-03"}
        assert item["actions"] == ["accept_swap", "decline_swap"]
        assert item["body"] == "Bob offers to swap shifts with you on Thursday 3 December."

        traveller.shift(dt.timedelta(days=1, hours=4))
        client = logged_in(agent)
        assert client.get(URL).json()["results"][0]["actions"] == []


def test_the_count_acknowledge_and_delete(logged_in, agent):
    first, second = _adjusted(agent), _adjusted(agent, "2026-12-04")
    client = logged_in(agent)
    count_url = f"{URL}/unacknowledged-count"
    assert client.get(count_url).json() == {"count": 2}

    refused = client.delete(f"{URL}/{first.id}")
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_acknowledged"

    acknowledged = client.post(f"{URL}/{first.id}/acknowledge")
    assert acknowledged.status_code == 200
    assert acknowledged.json()["acknowledged"] is True
    assert client.post(f"{URL}/{first.id}/acknowledge").status_code == 200  # again: still fine
    assert client.get(count_url).json() == {"count": 1}

    assert client.delete(f"{URL}/{first.id}").status_code == 204
    assert [item["id"] for item in client.get(URL).json()["results"]] == [second.id]
    assert client.delete(f"{URL}/{first.id}").status_code == 404


def test_an_outsider_gets_404(logged_in, agent, outsider, teammate):
    mine = _adjusted(agent)

    for other in (outsider, teammate):
        client = logged_in(other)
        assert client.post(f"{URL}/{mine.id}/acknowledge").status_code == 404
        assert client.delete(f"{URL}/{mine.id}").status_code == 404
        assert client.get(URL).json()["results"] == []
        assert client.get(f"{URL}/unacknowledged-count").json() == {"count": 0}
    mine.refresh_from_db()
    assert mine.acknowledged_at is None


def test_the_count_is_one_query(logged_in, agent, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for day in range(3):
        _adjusted(agent, f"2026-12-0{day + 1}")
    client = logged_in(agent)
    client.get(f"{URL}/unacknowledged-count")  # warm the session caches

    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"{URL}/unacknowledged-count").json() == {"count": 3}

    notification_queries = [
        query["sql"] for query in captured if "notifications_notification" in query["sql"]
    ]
    assert len(notification_queries) == 1 and "COUNT(" in notification_queries[0]


def test_the_inbox_is_paginated(logged_in, agent):
    made = [_adjusted(agent, f"2026-12-{day:02d}") for day in range(1, 6)]
    client = logged_in(agent)

    first = client.get(URL, {"page_size": 3}).json()
    second = client.client.get(first["next"], HTTP_X_SESSION_TOKEN=client.token).json()

    ids = [item["id"] for item in first["results"] + second["results"]]
    assert ids == [notification.id for notification in reversed(made)]


def test_notify_writes_one_outbox_row_per_channel(agent, supervisor):
    notification = _adjusted(agent)

    assert set(notification.deliveries.values_list("channel", flat=True)) == {Channel.PUSH, Channel.EMAIL}
    to_supervisor = notify(
        recipients=[supervisor],
        kind="time_off_cancelled",
        params={"request_id": 3, "agent_name": "Alice", "start_date": "2026-12-07", "end_date": "2026-12-08"},
    )[0]
    assert list(to_supervisor.deliveries.values_list("channel", flat=True)) == [Channel.EMAIL]


def test_email_can_be_turned_off_per_kind_and_push_stays(logged_in, agent):
    client = logged_in(agent)
    preferences = client.get(f"{URL}/preferences").json()["email"]
    assert preferences["swap_offer"] is True
    assert "time_off_cancelled" not in preferences  # that one goes to supervisors

    response = client.put(f"{URL}/preferences", {"email": {"schedule_adjusted": False}})

    assert response.status_code == 200
    assert response.json()["email"]["schedule_adjusted"] is False
    assert response.json()["email"]["swap_offer"] is True
    notification = _adjusted(agent)
    assert list(notification.deliveries.values_list("channel", flat=True)) == [Channel.PUSH]


def test_unknown_kinds_in_preferences_are_refused(logged_in, agent):
    response = logged_in(agent).put(f"{URL}/preferences", {"email": {"lottery_win": False}})

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "email" in response.json()["fields"]


def test_notifying_a_team_is_a_few_bulk_inserts(org, django_assert_max_num_queries):
    from tests.factories import AgentFactory

    team = AgentFactory.create_batch(120, organization=org)
    email_preferences_set(user=team[0].user, email={"schedule_adjusted": False})

    # savepoint, notifications, opt-outs, agents, deliveries, release: not one per agent
    with django_assert_max_num_queries(8):
        made = notify(recipients=team, kind="schedule_adjusted", params={"date": "2026-12-03"})

    assert len(made) == 120
    assert Notification.objects.count() == 120
    assert Delivery.objects.filter(channel=Channel.PUSH).count() == 120
    assert Delivery.objects.filter(channel=Channel.EMAIL).count() == 119


def test_unknown_kinds_and_bad_params_are_refused(agent):
    from notifications.kinds import UnknownKind

    with pytest.raises(UnknownKind):
        notify(recipients=[agent], kind="lottery_win", params={})
    with pytest.raises(ValueError, match="missing"):
        notify(recipients=[agent], kind="schedule_adjusted", params={})
    with pytest.raises(ValueError, match="expiry"):
        notify(
            recipients=[agent],
            kind="swap_offer",
            params={"swap_id": 1, "from_name": "B", "date": "2026-12-03"},
        )


def test_a_date_parameter_must_be_a_date(agent):
    with pytest.raises(ValueError, match="calendar date"):
        notify(
            recipients=[agent],
            kind="schedule_adjusted",
            params={"date": dt.datetime(2026, 12, 3, 10, tzinfo=dt.UTC)},
        )


def test_agent_kinds_go_to_agents_only(supervisor):
    with pytest.raises(ValueError, match="for agents"):
        notify(recipients=[supervisor], kind="schedule_adjusted", params={"date": "2026-12-03"})


def test_a_transaction_hands_its_notifications_to_workers_once(
    agent, supervisor, monkeypatch, django_capture_on_commit_callbacks
):
    """A decision tells its outcome and the schedule change: one task for both. A notification in a
    savepoint that rolls back is not sent, and does not take the others' dispatch with it."""
    from django.db import transaction

    handed_out: list[list[int]] = []
    monkeypatch.setattr(
        "notifications.services.deliveries_dispatch", lambda ids: handed_out.append(sorted(ids))
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            first = _adjusted(agent)
            try:
                with transaction.atomic():
                    notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-09"})
                    raise RuntimeError("the inner change fails")
            except RuntimeError:
                pass
            with transaction.atomic():  # a savepoint released: its deliveries join the dispatch
                second = notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-10"})[
                    0
                ]

    assert len(callbacks) == 1
    assert len(handed_out) == 1
    sent = set(Delivery.objects.filter(notification__in=[first, second]).values_list("pk", flat=True))
    assert sent == set(handed_out[0]) & set(Delivery.objects.values_list("pk", flat=True))
    assert len(sent) == 4 and not Notification.objects.filter(params__date="2026-12-09").exists()
