"""The push gateway: sends push messages through Firebase Cloud Messaging and says, per message, what
the caller must do next. It knows nothing of Django models: the delivery layer hands it plain data.

Delivery through FCM is at least once, never exactly once: FCM has no idempotency key, so a request
whose answer is lost may have been accepted. Every message therefore carries its notification id in
the data and a collapse key, so the app drops a duplicate and the OS replaces rather than stacks it.
"""

from __future__ import annotations

import email.utils
import enum
import itertools
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import firebase_admin
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from firebase_admin import credentials, exceptions, messaging
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from notifications.push_async import AsyncFcmGateway

logger = logging.getLogger(__name__)

FCM_APP_NAME = "em-agent"
# send_each's own limit; it sends each message as one HTTP request on a thread of its own.
MAX_CHUNK = 500
HTTP_TIMEOUT_SECONDS = 10
# FCM: after QUOTA_EXCEEDED back off at least a minute when no Retry-After says otherwise.
QUOTA_DEFAULT_RETRY_AFTER = 60.0

# firebase-admin 7.7.0's DEFAULT_RETRY_CONFIG (5 tries on 500/503 with backoff 0, 1, 2, 4 s; one
# retry on a connect or read error), changed in two ways:
# - respect_retry_after_header=False. urllib3's default is True, under which the SDK also retries a
#   429 (and a 503) that carries Retry-After, sleeping for as long as the header says (capped at 6 h)
#   inside one of send_each's threads. A quota is per project, so sleeping per message helps nothing
#   and holds the worker: a 429 comes back at once as QUOTA with its retry_after, and the caller
#   defers. A 503 is still retried here, on the backoff.
# - jitter, so 500 threads that got a 503 at the same moment do not come back at the same moment.
# Once these retries are spent the message comes back UnavailableError/InternalError, which we call
# RETRY: the caller's backoff (minutes) starts where the SDK's (seconds) gave up.
_FCM_RETRY = Retry(
    connect=1,
    read=1,
    status=4,
    status_forcelist=[500, 503],
    allowed_methods=None,
    raise_on_status=False,
    backoff_factor=0.5,
    backoff_jitter=0.5,
    respect_retry_after_header=False,
)


@dataclass(frozen=True)
class PushMessage:
    token: str  # the device's push address as the app registered it (an FCM registration token)
    notification_id: int  # sent in the data as "notification_id" so the app can drop duplicates
    title: str
    body: str
    data: dict[str, str]  # extra data payload (strings only)
    collapse_key: str  # android collapse_key and apns-collapse-id, e.g. f"n{notification_id}"


class PushOutcome(enum.StrEnum):  # values: the names in lower case
    SENT = enum.auto()
    UNREGISTERED = enum.auto()  # the token is gone: disable or delete the device
    INVALID_TOKEN = enum.auto()  # likewise
    SENDER_MISMATCH = enum.auto()  # the token belongs to another sender: flag the device
    RETRY = enum.auto()  # unavailable, internal or transport error: retry later with backoff
    QUOTA = enum.auto()  # quota exceeded: wait retry_after seconds
    FAILED = enum.auto()  # permanent for this message (e.g. an invalid argument in it)


@dataclass(frozen=True)
class PushResult:
    token: str
    outcome: PushOutcome
    message_id: str | None = None  # FCM's name for the message, when SENT
    retry_after: float | None = None  # seconds, for QUOTA (and for RETRY when FCM said)
    error: str = ""


class PushGateway(Protocol):
    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        """One result per message, in the same order; never raises for a message's own error."""
        ...


def _fcm_message(message: PushMessage) -> messaging.Message:
    fcm = messaging.Message(
        data={**message.data, "notification_id": str(message.notification_id)},
        notification=messaging.Notification(title=message.title, body=message.body),
        android=messaging.AndroidConfig(collapse_key=message.collapse_key),
        apns=messaging.APNSConfig(headers={"apns-collapse-id": message.collapse_key}),
    )
    # The target goes out as the v1 API's `token` field, set after construction. firebase-admin 7.5+
    # deprecates Message(token=...) in favour of `fid` (a Firebase installation ID) and warns on every
    # construction (ignored by Python's default filters, but recorded one by one under pytest or
    # -X dev: 100,000 for one fan-out). `fid` is the wrong field for what our devices register
    # (FirebaseMessaging.getToken()'s registration token; API.md `POST /devices {"token"}`), whereas
    # `token` carries both (Firebase support, firebase-android-sdk #8316: a FID sent as `token` is
    # delivered). The warning lives only in __init__ and the encoder serialises `.token` as before,
    # so this sends exactly what token= would, with no warning and without touching the process-wide
    # warning filters (catch_warnings is not thread-safe). The tests pin both.
    fcm.token = message.token
    return fcm


def _retry_after(exc: exceptions.FirebaseError) -> float | None:
    response = exc.http_response
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - timezone.now()).total_seconds(), 0.0)


def _is_invalid_token(exc: exceptions.FirebaseError) -> bool:
    # FCM says INVALID_ARGUMENT both for a bad token and for a bad message; only the text tells them
    # apart ("The registration token is not a valid FCM registration token").
    text = str(exc).lower()
    return "registration token" in text and ("not a valid" in text or "invalid" in text)


def _result_for_error(token: str, exc: exceptions.FirebaseError) -> PushResult:
    error = f"{exc.code}: {exc}"
    status = exc.http_response.status_code if exc.http_response is not None else None
    if isinstance(exc, messaging.UnregisteredError):
        return PushResult(token, PushOutcome.UNREGISTERED, error=error)
    if isinstance(exc, messaging.SenderIdMismatchError):
        return PushResult(token, PushOutcome.SENDER_MISMATCH, error=error)
    if isinstance(exc, exceptions.ResourceExhaustedError):  # QuotaExceededError, or a bare 429
        retry_after = _retry_after(exc)
        return PushResult(
            token,
            PushOutcome.QUOTA,
            retry_after=QUOTA_DEFAULT_RETRY_AFTER if retry_after is None else retry_after,
            error=error,
        )
    if isinstance(exc, exceptions.InvalidArgumentError):
        outcome = PushOutcome.INVALID_TOKEN if _is_invalid_token(exc) else PushOutcome.FAILED
        return PushResult(token, outcome, error=error)
    if isinstance(exc, exceptions.UnknownError) and status is None:
        if isinstance(exc.cause, requests.exceptions.JSONDecodeError):
            # The SDK parses a body only after raise_for_status(): this was a 2xx, FCM took the
            # message. Sending it again would be a duplicate.
            return PushResult(
                token, PushOutcome.SENT, error=f"accepted, but the answer was unreadable: {exc}"
            )
        return PushResult(token, PushOutcome.RETRY, error=error)  # a transport error without a response
    if isinstance(
        exc, exceptions.UnavailableError | exceptions.InternalError | exceptions.DeadlineExceededError
    ) or (status is not None and status >= 500):
        # Connection refused or reset, a timeout, or a 5xx the SDK's own retries did not get past.
        return PushResult(token, PushOutcome.RETRY, retry_after=_retry_after(exc), error=error)
    # A bare 404 (no UNREGISTERED detail) or 403 means a wrong URL, project or permission on our
    # side: FAILED, never a reason to drop the device.
    return PushResult(token, PushOutcome.FAILED, error=error)


def _encoding_error(message: messaging.Message) -> str | None:
    try:
        str(message)  # the SDK's own encoder and validation, as send_each runs them
    except ValueError as exc:
        return str(exc)
    return None


class FcmGateway:
    """Sends through firebase-admin's `send_each`, at most `chunk_size` (≤ 500) messages a call."""

    def __init__(self, app: firebase_admin.App, *, send_url: str | None = None, chunk_size: int = MAX_CHUNK):
        if not 1 <= chunk_size <= MAX_CHUNK:
            raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK}")
        self.app = app
        self.chunk_size = chunk_size
        # firebase-admin has no public hook for the endpoint or the HTTP adapter; both live on the
        # app's messaging service, so this changes this app only (not the class-wide FCM_URL).
        service = messaging._get_messaging_service(app)
        if send_url:
            service._fcm_url = send_url.format(app.project_id, project_id=app.project_id)
        url = urlsplit(service._fcm_url)
        # send_each runs one thread per message. The SDK's own adapter keeps 100 connections
        # (10 for any other host), so a chunk of 500 would open and throw away the other 400 on
        # every call ("Connection pool is full, discarding connection"): the-blue-alliance #9321.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=chunk_size, max_retries=_FCM_RETRY)
        session = service._client.session
        session.mount(f"{url.scheme}://{url.netloc}/", adapter)
        # requests re-reads the proxy variables and ~/.netrc from the environment on every request
        # (a fifth of each request's CPU in bench/fanout.py). Read the proxies once, here, and stop.
        session.proxies.update(requests.utils.get_environ_proxies(service._fcm_url))
        session.trust_env = False
        self.send_url = service._fcm_url

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        results: list[PushResult] = []
        for start in range(0, len(messages), self.chunk_size):
            chunk = messages[start : start + self.chunk_size]
            results.extend(self._send_chunk(chunk, [_fcm_message(message) for message in chunk]))
        return results

    def _send_chunk(
        self, chunk: Sequence[PushMessage], fcm_messages: list[messaging.Message]
    ) -> list[PushResult]:
        try:
            batch = messaging.send_each(fcm_messages, app=self.app)
        except ValueError:
            # send_each encodes every message before it sends any: nothing of this chunk went out.
            return self._send_encodable(chunk, fcm_messages)
        except Exception as exc:
            # Network and HTTP errors never get here: send_each returns them per message. What does
            # is a local failure (e.g. no thread could be started) part-way through, after which some
            # of the chunk may have been accepted. RETRY for all of them may duplicate those; the
            # alternative is to lose the rest silently. A duplicate carries the same notification id
            # and collapse key, so the app drops it.
            logger.exception(
                "send_each failed as a whole; all %d messages of the chunk will be retried", len(chunk)
            )
            return [PushResult(m.token, PushOutcome.RETRY, error=f"send_each failed: {exc!r}") for m in chunk]
        results = []
        for message, response in zip(chunk, batch.responses, strict=True):
            if response.exception is None:
                results.append(PushResult(message.token, PushOutcome.SENT, message_id=response.message_id))
            else:
                results.append(_result_for_error(message.token, response.exception))
        return results

    def _send_encodable(
        self, chunk: Sequence[PushMessage], fcm_messages: list[messaging.Message]
    ) -> list[PushResult]:
        results: list[PushResult | None] = []
        sendable: list[int] = []
        for index, (message, fcm) in enumerate(zip(chunk, fcm_messages, strict=True)):
            problem = _encoding_error(fcm)
            if problem is None:
                sendable.append(index)
                results.append(None)
            else:
                results.append(
                    PushResult(message.token, PushOutcome.FAILED, error=f"invalid message: {problem}")
                )
        if sendable:
            sent = self._send_chunk([chunk[i] for i in sendable], [fcm_messages[i] for i in sendable])
            for index, result in zip(sendable, sent, strict=True):
                results[index] = result
        return [result for result in results if result is not None]


class LoggingGateway:
    """Used when no FCM credentials are configured (the demo): logs what it would have sent."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        results = []
        for message in messages:
            with self._lock:
                number = next(self._counter)
            logger.info(
                "push logged, not sent: logged/%d to device %s… notification %d: %s",
                number,
                message.token[:8],
                message.notification_id,
                message.title,
            )
            results.append(PushResult(message.token, PushOutcome.SENT, message_id=f"logged/{number}"))
        return results


_gateway: PushGateway | None = None
_gateway_lock = threading.Lock()


def get_gateway() -> PushGateway:
    """The process's gateway, built from settings on first use: FCM with `FCM_CREDENTIALS_FILE`
    (and `FCM_SEND_URL`, to aim it at another endpoint) through the transport `FCM_TRANSPORT`
    names, else the LoggingGateway."""
    global _gateway
    with _gateway_lock:
        if _gateway is None:
            _gateway = _build_gateway()
        return _gateway


def reset_gateway() -> None:
    """Forgets the gateway and its firebase app; the next get_gateway() reads the settings again."""
    global _gateway
    with _gateway_lock:
        close = getattr(_gateway, "close", None)
        if close is not None:
            close()
        _gateway = None
        _delete_app()


def _delete_app() -> None:
    try:
        firebase_admin.delete_app(firebase_admin.get_app(FCM_APP_NAME))
    except ValueError:
        pass  # there was none


TRANSPORTS = ("sdk", "async")


def _build_gateway() -> PushGateway:
    path = getattr(settings, "FCM_CREDENTIALS_FILE", "")
    if not path:
        logger.warning("push notifications are logged, not sent: FCM_CREDENTIALS_FILE is not set")
        return LoggingGateway()
    transport = settings.FCM_TRANSPORT
    if transport not in TRANSPORTS:
        raise ImproperlyConfigured(f"FCM_TRANSPORT must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
    _delete_app()  # one inherited from a parent process (see below)
    app = firebase_admin.initialize_app(
        credentials.Certificate(path), {"httpTimeout": HTTP_TIMEOUT_SECONDS}, name=FCM_APP_NAME
    )
    send_url = getattr(settings, "FCM_SEND_URL", None) or None
    gateway: FcmGateway | AsyncFcmGateway
    if transport == "async":
        from notifications.push_async import AsyncFcmGateway

        gateway = AsyncFcmGateway(app, send_url=send_url)
    else:
        gateway = FcmGateway(app, send_url=send_url)
    logger.info(
        "push notifications are sent through FCM (project %s) at %s, transport %s",
        app.project_id,
        gateway.send_url,
        transport,
    )
    return gateway


def _forget_after_fork() -> None:
    # A forked child (a Celery prefork worker) must not share its parent's pooled connections.
    global _gateway, _gateway_lock
    _gateway = None
    _gateway_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
