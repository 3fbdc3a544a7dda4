"""The push gateway with the real firebase-admin client against a fake FCM on loopback, through
both transports (FCM_TRANSPORT): firebase-admin's `send_each` ("sdk") and the asyncio HTTP/1.1 one
("async", notifications.push_http1)."""

import datetime as dt
import json
import logging
import math
import socket
import time
import uuid
import warnings
from collections import Counter

import firebase_admin
import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from firebase_admin import credentials, exceptions, messaging

from notifications import delivery, push, push_async
from notifications.push import FcmGateway, LoggingGateway, PushMessage, PushOutcome
from notifications.push_async import AsyncFcmGateway
from tests.notifications.fake_fcm import FakeFcm, StubCredential, write_service_account
from tests.notifications.gateways import TRANSPORTS, build_gateway, close_gateway


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


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    return request.param


@pytest.fixture
def make_gateway(fcm, transport):
    built = []

    def make(app, **options):
        gateway = build_gateway(transport, app, send_url=options.pop("send_url", fcm.send_url), **options)
        built.append(gateway)
        return gateway

    yield make
    for gateway in built:
        close_gateway(gateway)


@pytest.fixture
def gateway(firebase_app, make_gateway):
    return make_gateway(firebase_app)


@pytest.fixture
def service_account_app(fcm, tmp_path):
    """An app with a real service-account credential whose OAuth endpoint is the fake's: its access
    token is fetched, expires and is refreshed as in production."""
    path = write_service_account(tmp_path / "sa.json", token_uri=fcm.token_uri)
    app = firebase_admin.initialize_app(
        credentials.Certificate(str(path)), {"httpTimeout": 10}, name=f"sa-{uuid.uuid4()}"
    )
    yield app
    firebase_admin.delete_app(app)


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


def test_a_503_is_retried_by_the_transport_itself(gateway, fcm):
    [result] = gateway.send([message("flaky-2-a")])

    assert result.outcome == PushOutcome.SENT
    assert fcm.requests_for("flaky-2-a") == 3
    assert fcm.accepted_tokens() == ["flaky-2-a"]


def test_when_the_transport_gives_up_on_503_the_caller_is_told_to_retry_and_a_later_send_succeeds(
    gateway, fcm
):
    [first] = gateway.send([message("flaky-5-a")])

    # Either transport tries 5 times (4 retries of a 503, firebase-admin's own policy) before giving up.
    assert first.outcome == PushOutcome.RETRY
    assert "UNAVAILABLE" in first.error
    assert fcm.requests_for("flaky-5-a") == 5
    assert fcm.accepted == []

    [later] = gateway.send([message("flaky-5-a")])

    assert later.outcome == PushOutcome.SENT
    assert fcm.accepted_tokens() == ["flaky-5-a"]


def test_a_429_is_not_retried_by_the_transport_and_its_retry_after_is_reported(gateway, fcm):
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


def test_1200_messages_go_in_three_chunks_each_accepted_once(gateway, fcm, monkeypatch, caplog):
    chunk_sizes = []
    real_send_chunk = gateway._send_chunk

    def counting_send_chunk(chunk, *rest):
        chunk_sizes.append(len(chunk))
        return real_send_chunk(chunk, *rest)

    monkeypatch.setattr(gateway, "_send_chunk", counting_send_chunk)
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
    # sdk: one pooled connection per send_each thread, none opened and thrown away; async: a
    # bounded pool kept alive across the chunks.
    assert "Connection pool is full" not in caplog.text
    if isinstance(gateway, AsyncFcmGateway):
        assert len(fcm.connections) <= push_async.CONNECTIONS


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
    assert fcm.requests_for("flaky-2-x") == 3  # the transport's retries of the 503s, then accepted
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


def test_an_unreachable_fcm_means_retry(firebase_app, make_gateway):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    gateway = make_gateway(
        firebase_app, send_url=f"http://127.0.0.1:{port}/v1/projects/{{project_id}}/messages:send"
    )

    results = gateway.send([message("device-a", 1), message("device-b", 2)])

    assert [r.outcome for r in results] == [PushOutcome.RETRY, PushOutcome.RETRY]
    assert all("UNAVAILABLE" in r.error for r in results)


def test_if_send_each_fails_as_a_whole_every_message_of_the_chunk_is_retried(firebase_app, fcm, monkeypatch):
    gateway = FcmGateway(firebase_app, send_url=fcm.send_url)  # the sdk transport's own failure

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


def test_with_a_credentials_file_the_gateway_sends_through_fcm(
    settings, fresh_gateway, fcm, tmp_path, transport
):
    settings.FCM_CREDENTIALS_FILE = str(write_service_account(tmp_path / "sa.json", token_uri=fcm.token_uri))
    settings.FCM_SEND_URL = fcm.send_url
    settings.FCM_TRANSPORT = transport

    gateway = push.get_gateway()
    [result] = gateway.send([message("device-a", 9)])

    assert isinstance(gateway, {"sdk": FcmGateway, "async": AsyncFcmGateway}[transport])
    assert result.outcome == PushOutcome.SENT
    assert fcm.accepted_tokens() == ["device-a"]
    assert fcm.token_requests == 1  # the service account's OAuth exchange, against the fake too


def test_an_unknown_transport_is_refused(settings, fresh_gateway, fcm, tmp_path):
    settings.FCM_CREDENTIALS_FILE = str(write_service_account(tmp_path / "sa.json", token_uri=fcm.token_uri))
    settings.FCM_TRANSPORT = "http3"

    with pytest.raises(ImproperlyConfigured, match="FCM_TRANSPORT must be one of sdk, async"):
        push.get_gateway()


def test_the_default_transport_is_async():
    # The faster in bench/fanout.py (bench/README.md), with every test green for both.
    assert django_settings.FCM_TRANSPORT == "async"


def test_both_transports_send_the_sdks_own_body_and_headers(firebase_app, fcm):
    sent = [message("device-a", 41, kind="swap_offered"), message("device-b", 42, date="2026-12-03")]
    bodies = {}
    headers = {}
    for transport in TRANSPORTS:
        fcm.reset()
        gateway = build_gateway(transport, firebase_app, send_url=fcm.send_url)
        try:
            assert {r.outcome for r in gateway.send(sent)} == {PushOutcome.SENT}
        finally:
            close_gateway(gateway)
        bodies[transport] = {a.token: a.message for a in fcm.accepted}
        headers[transport] = {a.token: dict(a.headers) for a in fcm.accepted}

    # firebase-admin's encoder is the reference: the async body is what send_each would send.
    expected = {m.token: messaging._MessagingService.encode_message(push._fcm_message(m)) for m in sent}
    assert bodies["sdk"] == bodies["async"] == expected
    assert headers["async"] == headers["sdk"]
    assert headers["async"]["device-a"]["x-goog-api-format-version"] == "2"
    assert (
        headers["async"]["device-a"]["x-firebase-client"] == f"fire-admin-python/{firebase_admin.__version__}"
    )
    assert headers["async"]["device-a"]["content-type"].startswith("application/json")


def test_the_async_transport_keeps_a_bounded_pool_of_connections_alive(firebase_app, fcm):
    gateway = AsyncFcmGateway(firebase_app, send_url=fcm.send_url, connections=8)
    try:
        first = gateway.send([message(f"pool-{n}", n) for n in range(300)])
        opened = set(fcm.connections)
        second = gateway.send([message(f"pool-{n}", n) for n in range(300, 600)])
    finally:
        gateway.close()

    assert {r.outcome for r in first + second} == {PushOutcome.SENT}
    assert len(opened) <= 8
    assert fcm.connections == opened  # the second call went over the same connections


def test_the_access_token_is_refreshed_before_it_expires_in_the_middle_of_a_batch(
    service_account_app, make_gateway, fcm, transport
):
    gateway = make_gateway(service_account_app)
    with time_machine.travel(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC), tick=True) as traveller:
        first = gateway.send([message(f"early-{n}", n) for n in range(50)])
        issued_first = fcm.token_requests
        # FCM's tokens last an hour; google-auth refreshes 3 min 45 s before the end.
        traveller.shift(dt.timedelta(minutes=57))
        second = gateway.send([message(f"late-{n}", 100 + n) for n in range(50)])

    assert {r.outcome for r in first + second} == {PushOutcome.SENT}
    used = {a.token: int(a.authorization.rsplit("-", 1)[1]) for a in fcm.accepted}
    assert {used[f"early-{n}"] for n in range(50)} <= set(range(1, issued_first + 1))
    assert {used[f"late-{n}"] for n in range(50)} <= set(range(issued_first + 1, fcm.token_requests + 1))
    assert fcm.refused_unauthenticated == 0  # refreshed before FCM had to refuse it
    if transport == "async":
        assert (issued_first, fcm.token_requests) == (1, 2)  # one token for the whole chunk
    else:
        # google-auth checks the token in each of send_each's threads, which may all refresh it.
        assert 1 <= issued_first < fcm.token_requests
    assert fcm.stats()["duplicates"] == 0


def test_a_token_revoked_mid_chunk_is_refreshed_once_and_nothing_accepted_twice(
    service_account_app, make_gateway, fcm, transport
):
    gateway = make_gateway(service_account_app)
    fcm.revoke_tokens(after=120)  # FCM refuses the chunk's token part-way through it

    results = gateway.send([message(f"device-{n}", n) for n in range(400)])

    assert {r.outcome for r in results} == {PushOutcome.SENT}
    assert fcm.refused_unauthenticated > 0
    assert len(fcm.accepted) == 400
    assert fcm.stats()["duplicates"] == 0
    if transport == "async":
        assert fcm.token_requests == 2  # one refresh, shared by the chunk's refused requests
        assert {a.authorization for a in fcm.accepted} == {
            "Bearer fake-access-token-1",
            "Bearer fake-access-token-2",
        }
    else:
        # google-auth's AuthorizedSession refreshes in every send_each thread that got a 401.
        assert fcm.token_requests >= 2


def test_an_answer_cut_off_mid_body_is_retried_and_accepted_once(gateway, fcm, transport):
    batch = [message("ok-1", 1), message("cut-2", 2), message("ok-3", 3)]

    results = gateway.send(batch)
    if transport == "sdk":
        # requests reads the body after urllib3's retries: the caller is told to retry.
        assert [r.outcome for r in results] == [PushOutcome.SENT, PushOutcome.RETRY, PushOutcome.SENT]
        results[1:2] = gateway.send([batch[1]])

    assert [r.outcome for r in results] == [PushOutcome.SENT] * 3
    assert fcm.requests_for("cut-2") == 2
    assert fcm.accepted_tokens().count("cut-2") == 1
    assert sorted(fcm.accepted_tokens()) == ["cut-2", "ok-1", "ok-3"]
    assert fcm.requests_for("ok-1") == fcm.requests_for("ok-3") == 1


def test_a_slow_fcm_costs_a_bounded_time_and_nothing_it_answers_late_is_accepted(fcm, make_gateway):
    app = firebase_admin.initialize_app(
        StubCredential(), {"projectId": "test", "httpTimeout": 1}, name=f"slow-{uuid.uuid4()}"
    )
    try:
        gateway = make_gateway(app)
        fcm.slow_seconds = 4
        started = time.monotonic()
        results = gateway.send([message(f"slow-{n}", n) for n in range(20)] + [message("ok-1", 99)])
        elapsed = time.monotonic() - started
    finally:
        firebase_admin.delete_app(app)

    # A timeout of 1 s, tried twice (firebase-admin's read retry), with up to 0.5 s of jitter.
    assert elapsed < 3.5
    assert [r.outcome for r in results] == [PushOutcome.RETRY] * 20 + [PushOutcome.SENT]
    time.sleep(fcm.slow_seconds + 0.5)  # the fake's late answers find their clients gone
    assert fcm.accepted_tokens() == ["ok-1"]


def test_the_async_chunk_deadline_bounds_a_chunk_whatever_fcm_does(firebase_app, fcm):
    gateway = AsyncFcmGateway(firebase_app, send_url=fcm.send_url, connections=4, chunk_deadline=1.5)
    fcm.slow_seconds = 8  # under the 10 s timeout: only the deadline stops these
    try:
        started = time.monotonic()
        results = gateway.send([message(f"slow-{n}", n) for n in range(12)])
        elapsed = time.monotonic() - started
        after = gateway.send([message("ok-1", 99)])  # the cancelled requests left the pool usable
    finally:
        gateway.close()

    assert elapsed < 2.5
    assert {r.outcome for r in results} == {PushOutcome.RETRY}
    assert all("DEADLINE_EXCEEDED" in r.error for r in results)
    assert [r.outcome for r in after] == [PushOutcome.SENT]


def test_a_batch_of_slow_chunks_ends_inside_the_tasks_time_limit(firebase_app):
    gateway = AsyncFcmGateway(firebase_app)  # the settings production builds it with
    # The worst batch: every delivery to the most devices, each chunk stopped by its deadline.
    chunks = math.ceil(delivery.BATCH_SIZE * django_settings.MAX_DEVICES_PER_AGENT / delivery.PUSH_CHUNK)

    worst = chunks * gateway.worst_chunk_seconds

    assert gateway.timeout == push.HTTP_TIMEOUT_SECONDS
    assert worst < django_settings.CELERY_TASK_SOFT_TIME_LIMIT, worst


def test_reset_closes_the_async_transport(settings, fresh_gateway, fcm, tmp_path):
    settings.FCM_CREDENTIALS_FILE = str(write_service_account(tmp_path / "sa.json", token_uri=fcm.token_uri))
    settings.FCM_SEND_URL = fcm.send_url
    settings.FCM_TRANSPORT = "async"
    gateway = push.get_gateway()
    gateway.send([message("device-a", 1)])
    thread = gateway._thread
    assert thread is not None and thread.is_alive()

    push.reset_gateway()

    assert not thread.is_alive()
    assert push.get_gateway() is not gateway


def test_the_async_bodies_are_the_sdks_encoding_byte_for_byte_encoded_once_per_text(monkeypatch):
    calls = []
    real_encode = messaging._MessagingService.encode_message
    monkeypatch.setattr(
        messaging._MessagingService,
        "encode_message",
        staticmethod(lambda message: calls.append(message.token) or real_encode(message)),
    )
    texts = [
        ("Planning gewijzigd", 'Je "planning" \\ is aangepast: één dienst', {"date": "2026-12-04"}),
        ("Swap", "Offer from Zoë 🙂", {"swap_id": "7", "kind": "swap_offered"}),
        # The stand-ins themselves in a text: that text is encoded message by message.
        ("-8406927315570118642", "x", {"note": "\x00em-agent-token\x00"}),
    ]
    tokens = ["plain:APA91b-_", 'quo"te\\back', "ünï\u2028code", "\x00em-agent-collapse-key\x00"]
    messages = [
        PushMessage(token, n, title, body, data, f"n{n}" if n % 3 else f'c"{n}\\')
        for n, (token, (title, body, data)) in enumerate(
            (token, text) for text in texts for token in tokens for _ in range(5)
        )
    ]
    expected = [push_async.encode_body(m) for m in messages]
    for body, m in zip(expected, messages, strict=True):  # encode_body is the SDK's encoding
        assert json.loads(body) == {"message": real_encode(push._fcm_message(m))}
    calls.clear()
    encoder = push_async.BodyEncoder()

    bodies = [encoder.body(m) for m in messages]

    assert bodies == expected
    per_message = len(tokens) * 5  # the third text: each message encoded whole
    assert len(calls) == 2 + 1 + per_message


def test_a_message_the_sdk_refuses_is_refused_by_the_async_encoder_too():
    encoder = push_async.BodyEncoder()
    good = PushMessage("device-a", 1, "T", "B", {"kind": "x"}, "n1")
    encoder.body(good)

    for bad in (
        PushMessage("", 2, "T", "B", {"kind": "x"}, "n2"),  # no token
        PushMessage("device-b", 3, "T", "B", {"kind": 3}, "n3"),  # type: ignore[dict-item]  # not a string
    ):
        with pytest.raises(ValueError):
            push_async.encode_body(bad)
        with pytest.raises(ValueError):
            encoder.body(bad)
