"""Push delivery from the outbox through the real firebase-admin client to the local fake FCM."""

import datetime as dt
import uuid

import firebase_admin
import pytest
import time_machine

from notifications import delivery as delivery_module
from notifications.delivery import deliveries_send
from notifications.models import Channel, Delivery, DeliveryStatus, Device, PushReceipt
from notifications.push import FcmGateway
from notifications.services import notify
from tests.notifications.fake_fcm import FakeFcm, StubCredential

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def fake_server():
    with FakeFcm() as server:
        yield server


@pytest.fixture
def fcm(fake_server, monkeypatch):
    fake_server.reset()
    app = firebase_admin.initialize_app(
        StubCredential(), {"projectId": "test"}, name=f"delivery-{uuid.uuid4()}"
    )
    gateway = FcmGateway(app, send_url=fake_server.send_url)
    monkeypatch.setattr(delivery_module, "get_gateway", lambda: gateway)
    yield fake_server
    firebase_admin.delete_app(app)


def _device(agent, token, trusted=True, platform="android"):
    return Device.objects.create(agent=agent, token=token, platform=platform, trusted=trusted)


def _push_delivery(agent) -> Delivery:
    notification = notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})[0]
    return notification.deliveries.get(channel=Channel.PUSH)


def test_every_trusted_device_gets_the_message_once(fcm, agent):
    _device(agent, "phone-1")
    _device(agent, "tablet-1", platform="ios")
    _device(agent, "untrusted-1", trusted=False)  # registered without the organisation's MFA
    delivery = _push_delivery(agent)

    report = deliveries_send(ids=[delivery.pk])
    deliveries_send(ids=[delivery.pk])  # a redelivered task

    assert report.messages == 2
    assert sorted(fcm.accepted_tokens()) == ["phone-1", "tablet-1"]
    assert {accepted.notification_id for accepted in fcm.accepted} == {str(delivery.notification_id)}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert PushReceipt.objects.filter(delivery=delivery).count() == 2


def test_an_unregistered_token_is_disabled_and_the_rest_delivered(fcm, agent):
    _device(agent, "phone-2")
    gone = _device(agent, "unregistered-2")
    delivery = _push_delivery(agent)

    deliveries_send(ids=[delivery.pk])

    gone.refresh_from_db()
    assert gone.disabled_at is not None and gone.disabled_reason == "unregistered"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    next_one = _push_delivery(agent)
    deliveries_send(ids=[next_one.pk])
    assert fcm.requests_for("unregistered-2") == 1  # never tried again


def test_a_quota_error_waits_its_retry_after_and_never_resends_what_was_accepted(fcm, agent):
    _device(agent, "phone-3")
    _device(agent, "quota-3")  # the fake answers 429 with Retry-After: 7 the first time
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        delivery = _push_delivery(agent)
        deliveries_send(ids=[delivery.pk])
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.next_attempt_at - dt.datetime.now(dt.UTC) >= dt.timedelta(seconds=7)

        traveller.shift(dt.timedelta(seconds=31))
        deliveries_send(ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert fcm.requests_for("phone-3") == 1  # accepted the first time: not sent again
    assert fcm.accepted_tokens().count("quota-3") == 1
    assert fcm.stats()["duplicates"] == 0


def test_no_trusted_device_means_skipped(fcm, agent):
    _device(agent, "untrusted-4", trusted=False)
    delivery = _push_delivery(agent)

    deliveries_send(ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SKIPPED
    assert fcm.stats()["requests"] == 0


def test_the_push_text_is_in_the_agents_language(fcm, agent):
    agent.language = "nl"
    agent.save()
    _device(agent, "phone-5")

    deliveries_send(ids=[_push_delivery(agent).pk])

    [accepted] = fcm.accepted
    assert accepted.message["notification"]["title"] == "Planning gewijzigd"
    assert accepted.android_collapse_key == f"n{accepted.notification_id}"


def test_a_sender_mismatch_disables_and_flags_the_device(fcm, agent, caplog):
    _device(agent, "phone-6")
    foreign = _device(agent, "mismatch-6")

    deliveries_send(ids=[_push_delivery(agent).pk])

    foreign.refresh_from_db()
    assert foreign.disabled_reason == "sender_mismatch"
    assert "another FCM sender" in caplog.text


def test_nothing_is_pushed_to_a_deactivated_agent(fcm, agent):
    _device(agent, "phone-7")
    delivery = _push_delivery(agent)
    agent.user.is_active = False
    agent.user.save()

    deliveries_send(ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SKIPPED
    assert fcm.stats()["requests"] == 0


def test_receipts_are_written_after_each_chunk(org, monkeypatch):
    from notifications.push import PushOutcome, PushResult
    from tests.factories import AgentFactory

    agents = AgentFactory.create_batch(300, organization=org)
    for agent in agents:
        _device(agent, f"a-{agent.pk}")
        _device(agent, f"b-{agent.pk}", platform="ios")
    notify(recipients=agents, kind="schedule_adjusted", params={"date": "2026-12-03"})
    seen_before_each_call = []

    class RecordingGateway:  # FCM's edge: what matters here is when receipts are written
        def send(self, messages):
            seen_before_each_call.append((len(messages), PushReceipt.objects.count()))
            return [PushResult(m.token, PushOutcome.SENT, message_id=f"m/{m.token}") for m in messages]

    monkeypatch.setattr(delivery_module, "get_gateway", lambda: RecordingGateway())
    ids = list(Delivery.objects.filter(channel=Channel.PUSH).values_list("pk", flat=True))

    deliveries_send(ids=ids)

    assert seen_before_each_call == [(500, 0), (100, 500)]
    assert PushReceipt.objects.count() == 600
