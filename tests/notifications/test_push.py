"""The push gateway with the real firebase-admin client against a fake FCM on loopback."""

import logging
import socket
import uuid
import warnings
from collections import Counter

import firebase_admin
import pytest
from firebase_admin import exceptions, messaging

from notifications import push
from notifications.push import FcmGateway, LoggingGateway, PushMessage, PushOutcome
from tests.notifications.fake_fcm import FakeFcm, StubCredential, write_service_account


@pytest.fixture(scope="module")
def fake_server():
    with FakeFcm() as server:
        yield server


@pytest.fixture
def fcm(fake_server):
    fake_server.reset()
    return fake_server


@pytest.fixture
def firebase_app():
    app = firebase_admin.initialize_app(
        StubCredential(), {"projectId": "test", "httpTimeout": 10}, name=f"test-{uuid.uuid4()}"
    )
    yield app
    firebase_admin.delete_app(app)


@pytest.fixture
def gateway(firebase_app, fcm):
    return FcmGateway(firebase_app, send_url=fcm.send_url)


@pytest.fixture
def fresh_gateway():
    push.reset_gateway()
    yield
    push.reset_gateway()


def message(token: str, notification_id: int = 1, **data: str) -> PushMessage:
    return PushMessage(
        token=token,
        notification_id=notification_id,
        title="Swap offered",
        body="Ann offers you her shift on Friday",
        data=data,
        collapse_key=f"n{notification_id}",
    )


def test_messages_are_sent_with_the_notification_id_and_a_collapse_key(gateway, fcm):
    results = gateway.send([message("device-a", 41, kind="swap_offered"), message("device-b", 42)])

    assert [r.outcome for r in results] == [PushOutcome.SENT, PushOutcome.SENT]
    assert [r.token for r in results] == ["device-a", "device-b"]
    accepted = {a.token: a for a in fcm.accepted}
    assert {r.message_id for r in results} == {a.message_id for a in accepted.values()}
    assert all(r.message_id.startswith("projects/test/messages/") for r in results)
    first = accepted["device-a"]
    assert first.notification_id == "41"
    assert first.message["data"] == {"kind": "swap_offered", "notification_id": "41"}
    assert first.android_collapse_key == "n41"
    assert first.apns_collapse_id == "n41"
    assert first.message["notification"] == {
        "title": "Swap offered",
        "body": "Ann offers you her shift on Friday",
    }


def test_the_target_goes_out_as_token_without_deprecation_warnings(gateway, fcm):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = gateway.send([message(f"device-{n}", n) for n in range(20)])

    assert {r.outcome for r in results} == {PushOutcome.SENT}
    assert all("fid" not in a.message and a.message["token"] == a.token for a in fcm.accepted)


@pytest.mark.parametrize(
    ("token", "outcome"),
    [
        ("unregistered-1", PushOutcome.UNREGISTERED),
        ("invalid-1", PushOutcome.INVALID_TOKEN),
        ("mismatch-1", PushOutcome.SENDER_MISMATCH),
        ("badarg-1", PushOutcome.FAILED),
    ],
)
def test_fcm_errors_are_classified_and_not_retried(gateway, fcm, token, outcome):
    [result] = gateway.send([message(token)])

    assert result.outcome == outcome
    assert result.message_id is None
    assert result.error
    assert fcm.requests_for(token) == 1
    assert fcm.accepted == []


def test_a_503_is_retried_by_the_sdk_itself(gateway, fcm):
    [result] = gateway.send([message("flaky-2-a")])

    assert result.outcome == PushOutcome.SENT
    assert fcm.requests_for("flaky-2-a") == 3
    assert fcm.accepted_tokens() == ["flaky-2-a"]


def test_when_the_sdk_gives_up_on_503_the_caller_is_told_to_retry_and_a_later_send_succeeds(gateway, fcm):
    [first] = gateway.send([message("flaky-5-a")])

    # firebase-admin tries 5 times (4 retries of a 503) before giving up.
    assert first.outcome == PushOutcome.RETRY
    assert "UNAVAILABLE" in first.error
    assert fcm.requests_for("flaky-5-a") == 5
    assert fcm.accepted == []

    [later] = gateway.send([message("flaky-5-a")])

    assert later.outcome == PushOutcome.SENT
    assert fcm.accepted_tokens() == ["flaky-5-a"]


def test_a_429_is_not_retried_by_the_sdk_and_its_retry_after_is_reported(gateway, fcm):
    [result] = gateway.send([message("quota-a")])

    assert result.outcome == PushOutcome.QUOTA
    assert result.retry_after == 7
    # Left to itself, the SDK would sleep the Retry-After inside send_each and try again.
    assert fcm.requests_for("quota-a") == 1

    [later] = gateway.send([message("quota-a")])

    assert later.outcome == PushOutcome.SENT
    assert fcm.requests_for("quota-a") == 2


def test_a_quota_error_without_retry_after_waits_at_least_a_minute():
    response = type("Response", (), {"headers": {}, "status_code": 429})()
    error = messaging.QuotaExceededError("Quota exceeded", http_response=response)

    result = push._result_for_error("device", error)

    assert result.outcome == PushOutcome.QUOTA
    assert result.retry_after == 60


def test_1200_messages_go_in_three_send_each_calls_each_accepted_once(gateway, fcm, monkeypatch, caplog):
    chunk_sizes = []
    real_send_each = messaging.send_each

    def counting_send_each(messages, dry_run=False, app=None):
        chunk_sizes.append(len(messages))
        return real_send_each(messages, dry_run=dry_run, app=app)

    monkeypatch.setattr(messaging, "send_each", counting_send_each)
    messages = [message(f"bulk-{n}", n) for n in range(1200)]

    with caplog.at_level(logging.WARNING, logger="urllib3"):
        results = gateway.send(messages)

    assert chunk_sizes == [500, 500, 200]
    assert [r.token for r in results] == [m.token for m in messages]
    assert {r.outcome for r in results} == {PushOutcome.SENT}
    assert len({r.message_id for r in results}) == 1200
    accepted = Counter(fcm.accepted_tokens())
    assert len(accepted) == 1200
    assert set(accepted.values()) == {1}
    assert sorted(int(a.notification_id) for a in fcm.accepted) == list(range(1200))
    # One pooled connection per send_each thread: none opened and thrown away.
    assert "Connection pool is full" not in caplog.text


def test_a_mixed_batch_keeps_its_order(gateway, fcm):
    tokens = ["ok-1", "unregistered-2", "quota-3", "invalid-4", "flaky-1-5", "mismatch-6", "badarg-7", "ok-8"]

    results = gateway.send([message(token, n) for n, token in enumerate(tokens)])

    assert [r.token for r in results] == tokens
    assert [r.outcome for r in results] == [
        PushOutcome.SENT,
        PushOutcome.UNREGISTERED,
        PushOutcome.QUOTA,
        PushOutcome.INVALID_TOKEN,
        PushOutcome.SENT,
        PushOutcome.SENDER_MISMATCH,
        PushOutcome.FAILED,
        PushOutcome.SENT,
    ]
    assert sorted(fcm.accepted_tokens()) == ["flaky-1-5", "ok-1", "ok-8"]


def test_a_message_that_succeeded_is_never_sent_again(gateway, fcm):
    good = [message(f"ok-{n}", n) for n in range(50)]
    batch = [*good[:25], message("flaky-2-x", 100), message("flaky-5-y", 101), *good[25:]]

    results = gateway.send(batch)
    # The caller sends again only what it was told to retry.
    retry = [m for m, r in zip(batch, results, strict=True) if r.outcome == PushOutcome.RETRY]
    assert [m.token for m in retry] == ["flaky-5-y"]
    [again] = gateway.send(retry)

    assert again.outcome == PushOutcome.SENT
    assert all(fcm.requests_for(m.token) == 1 for m in good)
    assert fcm.requests_for("flaky-2-x") == 3  # the SDK's retries of the 503s, then accepted
    assert set(Counter(fcm.accepted_tokens()).values()) == {1}
    assert len(fcm.accepted) == 52


def test_a_message_the_sdk_cannot_encode_fails_alone(gateway, fcm):
    bad = PushMessage(
        token="device-bad", notification_id=2, title="t", body="b", data={"n": 3}, collapse_key="n2"
    )  # type: ignore[dict-item]

    results = gateway.send([message("device-a", 1), bad, message("device-c", 3)])

    assert [r.outcome for r in results] == [PushOutcome.SENT, PushOutcome.FAILED, PushOutcome.SENT]
    assert "invalid message" in results[1].error
    assert sorted(fcm.accepted_tokens()) == ["device-a", "device-c"]


def test_an_unreachable_fcm_means_retry(firebase_app):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    gateway = FcmGateway(
        firebase_app, send_url=f"http://127.0.0.1:{port}/v1/projects/{{project_id}}/messages:send"
    )

    results = gateway.send([message("device-a", 1), message("device-b", 2)])

    assert [r.outcome for r in results] == [PushOutcome.RETRY, PushOutcome.RETRY]
    assert all("UNAVAILABLE" in r.error for r in results)


def test_if_send_each_fails_as_a_whole_every_message_of_the_chunk_is_retried(gateway, fcm, monkeypatch):
    def broken_send_each(messages, dry_run=False, app=None):
        raise exceptions.UnknownError(
            "Unknown error while making remote service calls: can't start new thread"
        )

    monkeypatch.setattr(messaging, "send_each", broken_send_each)

    results = gateway.send([message("device-a", 1), message("device-b", 2)])

    assert [r.outcome for r in results] == [PushOutcome.RETRY, PushOutcome.RETRY]


def test_without_credentials_the_logging_gateway_says_so(settings, fresh_gateway, caplog):
    settings.FCM_CREDENTIALS_FILE = ""

    with caplog.at_level(logging.INFO, logger="notifications.push"):
        gateway = push.get_gateway()
        results = gateway.send([message("device-a", 7), message("device-b", 8)])

    assert isinstance(gateway, LoggingGateway)
    assert push.get_gateway() is gateway
    warnings_logged = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings_logged] == [
        "push notifications are logged, not sent: FCM_CREDENTIALS_FILE is not set"
    ]
    assert [(r.outcome, r.message_id) for r in results] == [
        (PushOutcome.SENT, "logged/1"),
        (PushOutcome.SENT, "logged/2"),
    ]
    assert "notification 7" in caplog.text


def test_with_a_credentials_file_the_gateway_sends_through_fcm(settings, fresh_gateway, fcm, tmp_path):
    settings.FCM_CREDENTIALS_FILE = str(write_service_account(tmp_path / "sa.json", token_uri=fcm.token_uri))
    settings.FCM_SEND_URL = fcm.send_url

    gateway = push.get_gateway()
    [result] = gateway.send([message("device-a", 9)])

    assert isinstance(gateway, FcmGateway)
    assert result.outcome == PushOutcome.SENT
    assert fcm.accepted_tokens() == ["device-a"]
    assert fcm.token_requests == 1  # the service account's OAuth exchange, against the fake too
