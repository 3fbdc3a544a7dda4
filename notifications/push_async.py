"""The async FCM transport (FCM_TRANSPORT=async): the same gateway as push.FcmGateway, with the HTTP
work done on one event loop per process (notifications.push_http1's keep-alive HTTP/1.1 client)
instead of firebase-admin's synchronous stack.

firebase-admin keeps what it is good at: the credential and its access token (refreshed before it
expires, one token for the whole chunk), the `Message` model and its JSON encoding, and the error
types an FCM answer maps to. Only the requests are ours: a chunk's messages go out concurrently over
a bounded pool of keep-alive connections, each retried as firebase-admin's own transport would retry
it (push._FCM_RETRY), and every answer is turned into the same PushResult as push.FcmGateway's.
(The first version sent them with aiohttp's client; push_http1 says why it no longer does.)

It reaches into three private helpers of firebase-admin 7.7.0 (pinned in pyproject.toml):
`_MessagingService.encode_message` (the body), `_MessagingService._build_fcm_error_httpx` and
`_utils.handle_platform_error_from_httpx` (an error answer -> the SDK's exception). The tests compare
the body, the headers and the classification with the SDK's own transport, so an upgrade that
changes them fails there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple

import firebase_admin
import google.auth.exceptions
import google.auth.transport.requests
import httpx
import requests
from firebase_admin import _http_client, _utils, exceptions, messaging

from notifications.push import (
    HTTP_TIMEOUT_SECONDS,
    MAX_CHUNK,
    PushMessage,
    PushOutcome,
    PushResult,
    _fcm_message,
    _result_for_error,
)
from notifications.push_http1 import Http1Pool, HttpError

logger = logging.getLogger(__name__)

# Connections to FCM per worker process. The SDK opens one per message of a chunk (500 threads);
# a chunk here shares these, kept alive from chunk to chunk and task to task.
CONNECTIONS = 100
# As push._FCM_RETRY: 500/503 four more times, a connect or read error (a timeout, a connection
# cut mid-answer) once more, backoff 0, 1, 2, 4 s plus up to 0.5 s of jitter; 429 never (the
# caller defers the delivery by its Retry-After).
STATUS_RETRIES = 4
ERROR_RETRIES = 1
RETRY_STATUSES = frozenset({500, 503})
BACKOFF_FACTOR = 0.5
BACKOFF_MAX = 120.0
BACKOFF_JITTER = 0.5
# A chunk's requests (a resend after a 401 included) get no longer than this: what has no answer
# by then is RETRY (the delivery is tried again later), so a slow FCM costs a task at most this per
# chunk, plus the token's refresh (google-auth: 3 tries of httpTimeout), inside the task's time limit
# (tests/notifications/test_push.py checks the sum over a batch's chunks).
CHUNK_DEADLINE_SECONDS = 30.0
TOKEN_TRIES = 3  # google-auth's attempts at the OAuth endpoint (google.auth._exponential_backoff)


class Answer(NamedTuple):
    """FCM's answer to one request, or the transport error that stood in for it."""

    status: int | None
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    error: BaseException | None = None


class ChunkDeadlineError(Exception):
    pass


class AsyncFcmGateway:
    """Sends `chunk_size` (<= 500) messages concurrently at a time, over at most `connections`
    keep-alive connections."""

    def __init__(
        self,
        app: firebase_admin.App,
        *,
        send_url: str | None = None,
        chunk_size: int = MAX_CHUNK,
        connections: int = CONNECTIONS,
        chunk_deadline: float = CHUNK_DEADLINE_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ):
        if not 1 <= chunk_size <= MAX_CHUNK:
            raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK}")
        self.app = app
        self.chunk_size = chunk_size
        self.connections = connections
        self.chunk_deadline = chunk_deadline
        self._ssl_context = ssl_context  # None: the CA bundle requests (and so the SDK) uses
        self.timeout = float(app.options.get("httpTimeout", HTTP_TIMEOUT_SECONDS))
        service = messaging._get_messaging_service(app)
        if send_url:
            # As FcmGateway: the app's own messaging service is aimed there too, so nothing sent
            # with this app (the SDK's calls included) reaches another endpoint.
            service._fcm_url = send_url.format(app.project_id, project_id=app.project_id)
        self.send_url = service._fcm_url
        # The very headers the SDK's transport sends (its FCM headers and its metrics header).
        self._headers = {
            **service._fcm_headers,
            **_http_client.METRICS_HEADERS,
            "Content-Type": "application/json",
        }
        # The credential the SDK's own client uses: one token, refreshed by google-auth.
        self._credential = app.credential.get_credential()
        self._token_lock = threading.Lock()
        # google-auth waits 120 s for the OAuth endpoint by default; a task cannot.
        self._auth_request = functools.partial(google.auth.transport.requests.Request(), timeout=self.timeout)
        # As FcmGateway: the proxy settings read once, not per request.
        proxies = requests.utils.get_environ_proxies(self.send_url)
        self._proxy = proxies.get(self.send_url.split(":", 1)[0]) or proxies.get("all") or None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: Http1Pool | None = None
        self._pid = 0
        self._loop_lock = threading.Lock()

    # --- the contract ----------------------------------------------------------------------------

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        results: list[PushResult] = []
        for start in range(0, len(messages), self.chunk_size):
            results.extend(self._send_chunk(messages[start : start + self.chunk_size]))
        return results

    @property
    def worst_chunk_seconds(self) -> float:
        """The longest one chunk can take: its requests' deadline, the wait for the loop to give
        them up, and two token refreshes (before the chunk and after a 401)."""
        return self.chunk_deadline + 5 + 2 * TOKEN_TRIES * (self.timeout + 2)

    def close(self) -> None:
        """Closes the connections and stops the loop (reset_gateway; a fresh one starts on use)."""
        with self._loop_lock:
            loop, pool, thread = self._loop, self._pool, self._thread
            self._loop = self._pool = self._thread = None
            if loop is None or thread is None or self._pid != os.getpid():
                return
            if pool is not None:
                asyncio.run_coroutine_threadsafe(_close_pool(pool), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    # --- one chunk -------------------------------------------------------------------------------

    def _send_chunk(self, chunk: Sequence[PushMessage]) -> list[PushResult]:
        results: list[PushResult | None] = [None] * len(chunk)
        bodies: list[tuple[int, bytes]] = []
        encoder = BodyEncoder()
        for index, message in enumerate(chunk):
            try:
                body = encoder.body(message)
            except ValueError as exc:  # as send_each: a message the SDK refuses fails alone
                results[index] = PushResult(
                    message.token, PushOutcome.FAILED, error=f"invalid message: {exc}"
                )
                continue
            bodies.append((index, body))
        for (index, _body), answer in zip(
            bodies, self._answers([body for _index, body in bodies]), strict=True
        ):
            results[index] = self._result(chunk[index].token, answer)
        return [result for result in results if result is not None]

    def _answers(self, bodies: list[bytes]) -> list[Answer]:
        deadline = time.monotonic() + self.chunk_deadline
        answers: list[Answer] = []
        try:
            token = self._token()
            answers = self._post_all(bodies, token, deadline=deadline)
            # A 401 means the token was revoked or expired early; nothing was accepted, so those
            # requests go again once, with a fresh token shared by all of them.
            unauthorised = [n for n, answer in enumerate(answers) if answer.status == 401]
            if unauthorised:
                token = self._token(stale=token)
                again = self._post_all([bodies[n] for n in unauthorised], token, deadline=deadline)
                for n, answer in zip(unauthorised, again, strict=True):
                    answers[n] = answer
        except (google.auth.exceptions.GoogleAuthError, requests.exceptions.RequestException) as exc:
            # No token: what went out with the old one stands as answered, the rest is retried later.
            logger.warning("push: cannot get an FCM access token: %r", exc)
            failed = Answer(None, error=exc)
            answers = [failed if answer.status == 401 else answer for answer in answers] or [failed] * len(
                bodies
            )
        return answers

    def _token(self, *, stale: str | None = None) -> str:
        """The current access token; refreshed when google-auth says it is about to expire (3 min
        45 s before), or when `stale` (the token FCM refused) is still the current one."""
        with self._token_lock:
            credential = self._credential
            if not credential.valid or (stale is not None and credential.token == stale):
                credential.refresh(self._auth_request)
            return credential.token

    def _result(self, token: str, answer: Answer) -> PushResult:
        if answer.status is not None and 200 <= answer.status < 300:
            try:
                name = json.loads(answer.body)["name"]
            except (ValueError, KeyError, TypeError) as exc:
                # A 2xx: FCM took the message. Sending it again would be a duplicate.
                return PushResult(
                    token, PushOutcome.SENT, error=f"accepted, but the answer was unreadable: {exc!r}"
                )
            return PushResult(token, PushOutcome.SENT, message_id=name)
        return _result_for_error(token, self._firebase_error(answer))

    def _firebase_error(self, answer: Answer) -> exceptions.FirebaseError:
        """The exception firebase-admin's own transport would have raised for this answer."""
        error = answer.error
        if answer.status is None:
            if isinstance(error, ChunkDeadlineError):
                return exceptions.DeadlineExceededError(
                    f"No answer within the chunk's deadline: {error}", cause=error
                )
            if isinstance(error, TimeoutError):
                return exceptions.DeadlineExceededError(
                    f"Timed out while making an API call: {error!r}", cause=error
                )
            if isinstance(
                error, google.auth.exceptions.GoogleAuthError | requests.exceptions.RequestException
            ):
                return exceptions.UnavailableError(f"Cannot get an access token: {error!r}", cause=error)
            if isinstance(error, OSError):  # HttpError included
                return exceptions.UnavailableError(
                    f"Failed to establish a connection: {error!r}", cause=error
                )
            return exceptions.UnknownError(
                f"Unknown error while making a remote service call: {error!r}", cause=error
            )
        response = httpx.Response(
            answer.status,
            headers=list(answer.headers),
            content=answer.body,
            request=httpx.Request("POST", self.send_url),
        )
        status_error = httpx.HTTPStatusError(
            f"HTTP {answer.status}", request=response.request, response=response
        )
        return _utils.handle_platform_error_from_httpx(
            status_error, messaging._MessagingService._build_fcm_error_httpx
        )

    # --- the event loop, in a thread of its own --------------------------------------------------

    def _post_all(self, bodies: list[bytes], token: str, *, deadline: float) -> list[Answer]:
        if not bodies:
            return []
        loop = self._running_loop()
        seconds = max(deadline - time.monotonic(), 0.0)
        future = asyncio.run_coroutine_threadsafe(self._chunk(bodies, token, seconds), loop)
        try:
            return future.result(timeout=seconds + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return [Answer(None, error=ChunkDeadlineError("the event loop did not answer"))] * len(bodies)
        except BaseException:
            # The task's soft time limit (or a shutdown) interrupted the wait: stop the requests.
            future.cancel()
            raise

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None or self._pid != os.getpid():  # none yet, or inherited by a fork
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="fcm-async", daemon=True)
                thread.start()
                # No Accept, Accept-Encoding or User-Agent: FCM's answers are a few bytes of JSON,
                # and every header is work on both ends of 100,000 requests.
                self._pool = Http1Pool(
                    self.send_url,
                    headers=self._headers,
                    connect_timeout=self.timeout,
                    proxy=self._proxy,
                    ssl_context=self._ssl_context,
                )
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
            return self._loop

    async def _chunk(self, bodies: list[bytes], token: str, seconds: float) -> list[Answer]:
        answers: list[Answer | None] = [None] * len(bodies)
        authorization = f"Bearer {token}"
        position = iter(range(len(bodies)))
        pool = self._pool
        if pool is None:  # closed by reset_gateway() meanwhile
            return [Answer(None, error=HttpError("the gateway was closed"))] * len(bodies)

        async def one_connection() -> None:
            # A fixed number of senders taking the next message: no task per message, and never more
            # requests at a time than the pool's connections.
            for index in position:
                answers[index] = await self._post(
                    pool, pool.request_bytes(bodies[index], authorization=authorization)
                )

        senders = [asyncio.ensure_future(one_connection()) for _ in range(min(self.connections, len(bodies)))]
        _done, pending = await asyncio.wait(senders, timeout=seconds)
        for sender in pending:
            sender.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            logger.warning(
                "push: %d of %d requests had no answer within %.0f s; they will be retried",
                sum(answer is None for answer in answers),
                len(bodies),
                seconds,
            )
        late = ChunkDeadlineError(f"{self.chunk_deadline:.0f} s")
        return [answer if answer is not None else Answer(None, error=late) for answer in answers]

    async def _post(self, pool: Http1Pool, request: bytes) -> Answer:
        status_retries = error_retries = 0
        while True:
            try:
                connection = await pool.acquire()
            except (OSError, TimeoutError) as error:  # refused, unreachable, TLS, or no connect in time
                if error_retries >= ERROR_RETRIES:
                    return Answer(None, error=error)
                error_retries += 1
                await asyncio.sleep(_backoff(status_retries + error_retries))
                continue
            try:
                answer = await connection.request(request, timeout=self.timeout)
            except (OSError, TimeoutError) as error:  # cut, reset, unreadable, or no answer in time
                if error_retries >= ERROR_RETRIES:
                    return Answer(None, error=error)
                error_retries += 1
                await asyncio.sleep(_backoff(status_retries + error_retries))
                continue
            finally:
                pool.release(connection)
            if answer.status in RETRY_STATUSES and status_retries < STATUS_RETRIES:
                status_retries += 1
                await asyncio.sleep(_backoff(status_retries + error_retries))
                continue
            if answer.status < 300:
                return Answer(answer.status, answer.body)
            return Answer(answer.status, answer.body, answer.headers)


async def _close_pool(pool: Http1Pool) -> None:
    pool.close()
    await asyncio.sleep(0)  # the transports' connection_lost callbacks run: their sockets close


def encode_body(message: PushMessage) -> bytes:
    """The request body firebase-admin's encoder makes of one message."""
    encoded = messaging._MessagingService.encode_message(_fcm_message(message))
    return json.dumps({"message": encoded}, separators=(",", ":")).encode()


# Stand-ins for what differs from message to message of one text; each must appear in the encoded
# template exactly as often as the message has it (the token once, the id once, the collapse key in
# android and apns), else that text is encoded message by message.
_TOKEN_STAND_IN = "\x00em-agent-token\x00"  # noqa: S105  (not a secret: a placeholder)
_NOTIFICATION_ID_STAND_IN = -8_406_927_315_570_118_642
_COLLAPSE_KEY_STAND_IN = "\x00em-agent-collapse-key\x00"


class BodyEncoder:
    """Request bodies of one chunk, firebase-admin's encoder run once per distinct text instead of
    once per message (a fifth of the worker's CPU per message): a fan-out's messages differ only in
    their token, notification id and collapse key, which are spliced into the encoded template as
    the JSON strings the encoder itself would have written (tests/notifications/test_push.py compares
    the bodies byte for byte with encode_body's)."""

    def __init__(self) -> None:
        self._templates: dict[tuple[object, ...], list[bytes | int] | None] = {}

    def body(self, message: PushMessage) -> bytes:
        if not message.token or not message.collapse_key:
            return encode_body(message)  # the encoder's own refusal, or its own handling
        key = (message.title, message.body, tuple(message.data.items()))
        try:
            template = self._templates[key]
        except KeyError:
            template = self._templates[key] = _template(message)
        if template is None:
            return encode_body(message)
        values = (
            json.dumps(message.token).encode(),
            b'"%d"' % message.notification_id,
            json.dumps(message.collapse_key).encode(),
        )
        return b"".join(values[part] if isinstance(part, int) else part for part in template)


def _template(message: PushMessage) -> list[bytes | int] | None:
    """The encoded body of `message`'s text as literal pieces and slots (0 token, 1 notification id,
    2 collapse key); None when the stand-ins do not come out exactly as often as they go in."""
    probe = PushMessage(
        token=_TOKEN_STAND_IN,
        notification_id=_NOTIFICATION_ID_STAND_IN,
        title=message.title,
        body=message.body,
        data=message.data,
        collapse_key=_COLLAPSE_KEY_STAND_IN,
    )
    encoded = encode_body(probe)  # a text the SDK refuses raises here, as it would for the message
    stand_ins = [
        (json.dumps(_TOKEN_STAND_IN).encode(), 0, 1),
        (b'"%d"' % _NOTIFICATION_ID_STAND_IN, 1, 1),
        (json.dumps(_COLLAPSE_KEY_STAND_IN).encode(), 2, 2),
    ]
    found: list[tuple[int, int, int]] = []  # (position, length, slot)
    for text, slot, expected in stand_ins:
        if encoded.count(text) != expected:
            return None
        position = -1
        for _ in range(expected):
            position = encoded.index(text, position + 1)
            found.append((position, len(text), slot))
    found.sort()
    template: list[bytes | int] = []
    end = 0
    for position, length, slot in found:
        if position < end:
            return None  # overlapping stand-ins: cannot happen with these, but never guess
        template += [encoded[end:position], slot]
        end = position + length
    template.append(encoded[end:])
    return template


def _backoff(retries: int) -> float:
    """urllib3's backoff (none before the first retry, then factor x 2^(n-1)) with its jitter."""
    base = 0.0 if retries <= 1 else min(BACKOFF_FACTOR * 2 ** (retries - 1), BACKOFF_MAX)
    return base + random.uniform(0, BACKOFF_JITTER)  # noqa: S311  (jitter, not security)
