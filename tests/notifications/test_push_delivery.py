"""Push delivery from the outbox through the real firebase-admin client to the local fake FCM, by
each transport (FCM_TRANSPORT: "sdk", firebase-admin's send_each; "async", asyncio HTTP/1.1)."""

import datetime as dt
import time
import uuid

import firebase_admin
import pytest
import time_machine
from firebase_admin import credentials

from notifications import delivery as delivery_module
from notifications.delivery import Outcome, PushPlan, deliveries_send, push_classify
from notifications.models import Channel, Delivery, DeliveryStatus, Device, PushReceipt
from notifications.push import PushOutcome, PushResult
from notifications.services import notify
from tests.factories import AgentFactory
from tests.notifications.fake_fcm import FakeFcm, StubCredential, write_service_account
from tests.notifications.gateways import TRANSPORTS, build_gateway, close_gateway

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def fake_server():
    with FakeFcm() as server:
        yield server


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    return request.param


@pytest.fixture
def use_gateway(fake_server, monkeypatch, transport):
    """Makes the delivery send through a gateway of this test's transport on `app`."""
    built = []

    def use(app, **options):
        gateway = build_gateway(transport, app, send_url=fake_server.send_url, **options)
        built.append(gateway)
        monkeypatch.setattr(delivery_module, "get_gateway", lambda: gateway)
        return gateway

    yield use
    for gateway in built:
        close_gateway(gateway)


@pytest.fixture
def fcm(fake_server, use_gateway):
    fake_server.reset()
    app = firebase_admin.initialize_app(
        StubCredential(), {"projectId": "test"}, name=f"delivery-{uuid.uuid4()}"
    )
    use_gateway(app)
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


def _agents_with_two_devices(org, count: int):
    agents = AgentFactory.create_batch(count, organization=org)
    Device.objects.bulk_create(
        [
            Device(agent=agent, token=f"{kind}-{agent.pk}", platform="android", trusted=True)
            for agent in agents
            for kind in ("phone", "tablet")
        ]
    )
    notify(recipients=agents, kind="schedule_adjusted", params={"date": "2026-12-03"})
    return list(Delivery.objects.filter(channel=Channel.PUSH).values_list("pk", flat=True))


def test_a_token_revoked_in_the_middle_of_a_batch_is_refreshed_and_every_message_goes_once(
    org, fake_server, use_gateway, tmp_path, transport
):
    fake_server.reset()
    path = write_service_account(tmp_path / "sa.json", token_uri=fake_server.token_uri)
    app = firebase_admin.initialize_app(credentials.Certificate(str(path)), name=f"sa-{uuid.uuid4()}")
    try:
        use_gateway(app)
        ids = _agents_with_two_devices(org, 300)  # 600 messages: two chunks
        fake_server.revoke_tokens(after=250)  # the token stops working inside the first chunk

        report = deliveries_send(ids=ids)
    finally:
        firebase_admin.delete_app(app)

    assert report.sent == 300
    assert fake_server.refused_unauthenticated > 0
    assert fake_server.token_requests >= 2
    assert fake_server.stats() == {"requests": 600, "accepted": 600, "duplicates": 0}
    assert PushReceipt.objects.count() == 600


def test_an_answer_cut_off_is_retried_and_recorded_once(fcm, agent, transport):
    _device(agent, "phone-8")
    _device(agent, "cut-8")  # the fake closes the connection in the middle of its first answer
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=True) as traveller:
        delivery = _push_delivery(agent)
        deliveries_send(ids=[delivery.pk])
        delivery.refresh_from_db()
        if transport == "sdk":  # firebase-admin hands the cut back as an error: the delivery waits
            assert delivery.status == DeliveryStatus.PENDING
            traveller.shift(dt.timedelta(minutes=2))
            deliveries_send(ids=[delivery.pk])
            delivery.refresh_from_db()

    assert delivery.status == DeliveryStatus.SENT
    assert fcm.requests_for("cut-8") == 2
    assert fcm.requests_for("phone-8") == 1
    assert sorted(fcm.accepted_tokens()) == ["cut-8", "phone-8"]
    assert sorted(PushReceipt.objects.filter(delivery=delivery).values_list("token", flat=True)) == [
        "cut-8",
        "phone-8",
    ]


def test_a_slow_fcm_leaves_the_batch_pending_in_bounded_time(fake_server, use_gateway, agent):
    fake_server.reset()
    fake_server.slow_seconds = 5
    app = firebase_admin.initialize_app(
        StubCredential(), {"projectId": "test", "httpTimeout": 1}, name=f"slow-{uuid.uuid4()}"
    )
    try:
        use_gateway(app)
        _device(agent, "slow-9")
        delivery = _push_delivery(agent)
        started = time.monotonic()
        report = deliveries_send(ids=[delivery.pk])
        elapsed = time.monotonic() - started
    finally:
        firebase_admin.delete_app(app)

    assert elapsed < 4  # two tries of the 1 s timeout, not the fake's 5 s
    assert report.retried == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert "DEADLINE_EXCEEDED" in delivery.last_error or "UNAVAILABLE" in delivery.last_error
    assert not PushReceipt.objects.exists()


# --- the classification of a batch's answers: pure ---------------------------------------------


def _plan(targets, owners, delivered_before=(), settled=None) -> PushPlan:
    return PushPlan(
        settled=settled or {},
        targets=targets,
        delivered_before=set(delivered_before),
        messages=[],  # not read by the classification
        owners=owners,
    )


def _result(outcome, error="", retry_after=None):
    return PushResult(
        "token",
        outcome,
        message_id="m" if outcome == PushOutcome.SENT else None,
        error=error,
        retry_after=retry_after,
    )


def test_classify_sent_to_one_device_and_rejected_by_another_is_sent_with_the_error():
    plan = _plan({1: [10, 11]}, [(1, 10), (1, 11)])

    outcomes, dead = push_classify(plan, [_result(PushOutcome.SENT), _result(PushOutcome.FAILED, "bad ttl")])

    assert outcomes == {1: Outcome(DeliveryStatus.SENT, "bad ttl")}
    assert dead == {}


def test_classify_rejected_everywhere_is_failed_and_a_retry_wins_over_both():
    plan = _plan({1: [10], 2: [20, 21]}, [(1, 10), (2, 20), (2, 21)])
    results = [
        _result(PushOutcome.FAILED, "bad ttl"),
        _result(PushOutcome.QUOTA, "quota", retry_after=7),
        _result(PushOutcome.RETRY, "unavailable", retry_after=2),
    ]

    outcomes, _dead = push_classify(plan, results)

    assert outcomes[1] == Outcome(DeliveryStatus.FAILED, "bad ttl")
    assert outcomes[2] == Outcome(DeliveryStatus.PENDING, "unavailable", retry_after=7)


def test_classify_dead_devices_are_disabled_and_a_delivery_with_only_dead_ones_is_skipped():
    plan = _plan({1: [10, 11], 2: [20, 21]}, [(1, 10), (1, 11), (2, 20), (2, 21)])
    results = [
        _result(PushOutcome.UNREGISTERED),
        _result(PushOutcome.SENDER_MISMATCH),
        _result(PushOutcome.INVALID_TOKEN),
        _result(PushOutcome.SENT),
    ]

    outcomes, dead = push_classify(plan, results)

    assert outcomes == {
        1: Outcome(DeliveryStatus.SKIPPED, "every device was rejected by FCM"),
        2: Outcome(),
    }
    assert dead == {10: "unregistered", 11: "sender_mismatch", 20: "invalid_token"}


def test_classify_an_earlier_receipt_counts_and_nothing_in_the_plan_changes():
    settled = {3: Outcome(DeliveryStatus.SKIPPED, "no trusted device")}
    plan = _plan({1: [10, 11], 2: [20]}, [(1, 11)], delivered_before={1, 2}, settled=settled)

    outcomes, _dead = push_classify(plan, [_result(PushOutcome.FAILED, "bad ttl")])

    # 1 reached device 10 in an earlier attempt; 2 had nothing left to send.
    assert outcomes == {1: Outcome(DeliveryStatus.SENT, "bad ttl"), 2: Outcome(), 3: settled[3]}
    assert plan.settled == {3: Outcome(DeliveryStatus.SKIPPED, "no trusted device")}
    assert plan.delivered_before == {1, 2}


def test_a_text_is_rendered_once_per_language_and_each_reader_gets_their_own(fcm, org, monkeypatch):
    agents = AgentFactory.create_batch(4, organization=org, language="en")
    agents[3].language = "nl"
    agents[3].save()
    for agent in agents:
        _device(agent, f"phone-{agent.pk}")
    notify(recipients=agents, kind="schedule_adjusted", params={"date": "2026-12-03"})
    rendered = []
    real_texts = delivery_module._texts

    def counting_texts(notification, reader):
        rendered.append(reader.language)
        return real_texts(notification, reader)

    monkeypatch.setattr(delivery_module, "_texts", counting_texts)

    deliveries_send(ids=list(Delivery.objects.filter(channel=Channel.PUSH).values_list("pk", flat=True)))

    assert sorted(rendered) == ["en", "nl"]
    titles = {a.token: a.message["notification"]["title"] for a in fcm.accepted}
    assert titles[f"phone-{agents[3].pk}"] == "Planning gewijzigd"
    assert {titles[f"phone-{agent.pk}"] for agent in agents[:3]} == {"Schedule changed"}


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_receipts_are_written_once_by_either_path(agent, vendor, monkeypatch):
    from django.db import connection

    if vendor == "postgresql" and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL")
    monkeypatch.setattr(connection, "vendor", vendor)  # sqlite: bulk_create, as on the demo's database
    first, second = _push_delivery(agent), _push_delivery(agent)

    delivery_module._receipts_write([(first.pk, "phone-1", "m/1"), (first.pk, "tablet-1", "m/2")])
    delivery_module._receipts_write([(first.pk, "phone-1", "m/again"), (second.pk, "phone-1", "m/3")])

    assert sorted(PushReceipt.objects.values_list("delivery_id", "token", "message_id")) == [
        (first.pk, "phone-1", "m/1"),
        (first.pk, "tablet-1", "m/2"),
        (second.pk, "phone-1", "m/3"),
    ]
    assert all(receipt.sent_at is not None for receipt in PushReceipt.objects.all())
