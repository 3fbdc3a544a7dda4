"""The async transport's HTTP/1.1 client (notifications.push_http1): how it reads an answer however
it is framed and however the bytes arrive, what it does with a broken one, HTTPS, a proxy, and which
connections it keeps."""

import asyncio
import contextlib
import threading
import uuid
from urllib.parse import urlsplit

import firebase_admin
import pytest

from notifications import push_http1
from notifications.push import PushMessage, PushOutcome
from notifications.push_async import AsyncFcmGateway
from notifications.push_http1 import Http1Connection, Http1Pool, HttpError
from tests.notifications.fake_fcm import FakeFcm, StubCredential, tls_contexts


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def exchange(answer: bytes, *, split: bool = False, eof: bool = False, timeout: float = 5.0):
    """One request on a connection whose peer answers `answer` (byte by byte with `split`):
    (the answer or the exception, the connection, its transport)."""

    async def run():
        connection = Http1Connection()
        transport = RecordingTransport()
        connection.connection_made(transport)
        request = asyncio.ensure_future(connection.request(b"POST / HTTP/1.1\r\n\r\n", timeout=timeout))
        await asyncio.sleep(0)
        for piece in [answer[n : n + 1] for n in range(len(answer))] if split else [answer]:
            if not transport.closed:
                connection.data_received(piece)
        if eof:
            connection.eof_received()
            connection.connection_lost(None)
        try:
            return await request, connection, transport
        except (OSError, TimeoutError) as error:
            return error, connection, transport

    return asyncio.run(run())


OK = b'{"name": "projects/test/messages/1"}'


@pytest.mark.parametrize("split", [False, True], ids=["whole", "byte-by-byte"])
def test_an_answer_with_a_content_length_is_read_whole_and_its_connection_kept(split):
    answer, connection, transport = exchange(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(OK), OK),
        split=split,
    )

    assert answer == (200, (("Content-Type", "application/json"), ("Content-Length", str(len(OK)))), OK)
    assert connection.reusable and not transport.closed
    assert transport.written == b"POST / HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize("split", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize(
    "end", [b"0\r\n\r\n", b"0;last\r\nX-Trailer: 1\r\nY: 2\r\n\r\n"], ids=["plain", "trailers"]
)
def test_a_chunked_answer_is_joined_with_extensions_and_trailers_skipped(split, end):
    body = b"a;ext=1\r\n" + OK[:10] + b"\r\n" + b"%x\r\n" % (len(OK) - 10) + OK[10:] + b"\r\n" + end

    answer, connection, transport = exchange(
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n" + body, split=split
    )

    assert answer.status == 404
    assert answer.body == OK
    assert connection.reusable and not transport.closed


def test_an_informational_answer_is_skipped_for_the_real_one():
    answer, connection, _transport = exchange(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    )

    assert (answer.status, answer.body) == (200, b"{}")
    assert connection.reusable


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0"],
)
def test_an_answer_that_ends_the_connection_is_read_and_the_connection_not_reused(head):
    answer, connection, transport = exchange(head + b"{}")

    assert (answer.status, answer.body) == (200, b"{}")
    assert not connection.reusable and transport.closed


def test_an_answer_without_a_length_lasts_until_the_connection_ends():
    answer, connection, _transport = exchange(b"HTTP/1.1 200 OK\r\n\r\n" + OK, split=True, eof=True)

    assert (answer.status, answer.body) == (200, OK)
    assert not connection.reusable


def test_a_no_content_answer_has_no_body_and_bytes_nobody_asked_for_end_the_connection():
    answer, connection, transport = exchange(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nextra")

    assert (answer.status, answer.body) == (204, b"")
    assert not connection.reusable and transport.closed


@pytest.mark.parametrize(
    "answer",
    [
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
        # Both framings: a sign of response splitting (RFC 9112 6.3), refused rather than guessed.
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * (push_http1.MAX_HEAD + 1),
    ],
    ids=[
        "not-http",
        "status",
        "header",
        "length",
        "two-lengths",
        "chunked-and-length",
        "chunk-size",
        "chunk-crlf",
        "head-size",
    ],
)
def test_an_answer_it_cannot_read_is_an_error_and_its_connection_closed(answer):
    error, connection, transport = exchange(answer)

    assert isinstance(error, HttpError)
    assert not connection.reusable and transport.closed


@pytest.mark.parametrize(
    "answer",
    [
        b'HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{"na',
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"na\r\n',
        # A coding it cannot undo lasts until the end (RFC 9112 6.3), and is not an answer even then.
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{"na',
    ],
    ids=["length", "chunked", "coding"],
)
def test_a_connection_cut_mid_answer_is_an_error(answer):
    error, connection, _transport = exchange(answer, eof=True)

    assert isinstance(error, HttpError)
    assert "closed before the answer was whole" in str(error)
    assert not connection.reusable


def test_no_answer_within_the_timeout_is_a_timeout_and_the_connection_is_closed():
    error, connection, transport = exchange(b"HTTP/1.1 200 OK\r\n", timeout=0.05)

    assert isinstance(error, TimeoutError)
    assert not connection.reusable and transport.closed


def test_a_request_on_a_connection_closed_meanwhile_fails_at_once():
    async def run():
        connection = Http1Connection()
        transport = RecordingTransport()
        connection.connection_made(transport)
        transport.closed = True
        with pytest.raises(HttpError, match="closed before the request was written"):
            await connection.request(b"POST / HTTP/1.1\r\n\r\n", timeout=60)
        assert transport.written == b""

    asyncio.run(run())


def test_the_request_carries_the_fixed_headers_the_token_and_the_length():
    pool = Http1Pool(
        "https://fcm.googleapis.com/v1/projects/p/messages:send",
        headers={"X-GOOG-API-FORMAT-VERSION": "2", "Content-Type": "application/json"},
        connect_timeout=10,
    )

    assert pool.request_bytes(b'{"message":{}}', authorization="Bearer t") == (
        b"POST /v1/projects/p/messages:send HTTP/1.1\r\nHost: fcm.googleapis.com\r\n"
        b"X-GOOG-API-FORMAT-VERSION: 2\r\nContent-Type: application/json\r\n"
        b'Authorization: Bearer t\r\nContent-Length: 14\r\n\r\n{"message":{}}'
    )


# --- over real sockets ---------------------------------------------------------------------------


class Server:
    """A loopback HTTP/1.1 server that answers each request with `answer` and, with `close_after`,
    closes the connection after that many answers without saying so (as a server's idle timeout)."""

    def __init__(self, *, close_after: int | None = None) -> None:
        self.close_after = close_after
        self.connections = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(OK), OK))
                await writer.drain()
                answered += 1
                if self.close_after is not None and answered >= self.close_after:
                    break
        writer.close()


def test_the_pool_does_not_reuse_a_connection_the_server_closed_or_one_idle_too_long(monkeypatch):
    async def run():
        server = Server(close_after=1)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        pool = Http1Pool(f"http://127.0.0.1:{port}/send", headers={}, connect_timeout=5)
        for _ in range(3):
            connection = await pool.acquire()
            answer = await connection.request(pool.request_bytes(b"{}", authorization="Bearer t"), timeout=5)
            pool.release(connection)
            assert answer.body == OK
            await asyncio.sleep(0.05)  # the server's close arrives
        closed_by_server = server.connections

        server.close_after = None
        monkeypatch.setattr(push_http1, "KEEPALIVE_SECONDS", 0.2)
        connection = await pool.acquire()
        await connection.request(pool.request_bytes(b"{}", authorization="Bearer t"), timeout=5)
        pool.release(connection)
        kept = await pool.acquire()  # at once: the same connection
        pool.release(kept)
        await asyncio.sleep(0.3)
        fresh = await pool.acquire()  # idle too long: a new one
        pool.release(fresh)
        pool.close()
        listener.close()
        await listener.wait_closed()
        return closed_by_server, kept is connection, fresh is connection, server.connections

    closed_by_server, same, reused_after_idle, connections = asyncio.run(run())

    assert closed_by_server == 3  # every request on a new connection, none failed on a dead one
    assert same and not reused_after_idle
    assert connections == 5


def message(token: str, notification_id: int) -> PushMessage:
    return PushMessage(token, notification_id, "Title", "Body", {"kind": "test"}, f"n{notification_id}")


@pytest.fixture
def firebase_app():
    app = firebase_admin.initialize_app(
        StubCredential(), {"projectId": "test", "httpTimeout": 5}, name=f"test-{uuid.uuid4()}"
    )
    yield app
    firebase_admin.delete_app(app)


@pytest.fixture
def tls(tmp_path):
    return tls_contexts(tmp_path)


def test_the_gateway_sends_over_https_and_verifies_the_certificate(firebase_app, tls):
    server_context, client_context = tls
    with FakeFcm(ssl_context=server_context) as fcm:
        trusting = AsyncFcmGateway(
            firebase_app, send_url=fcm.send_url, ssl_context=client_context, connections=4
        )
        # The default context (the CA bundle requests uses) does not know the fake's certificate.
        default = AsyncFcmGateway(firebase_app, send_url=fcm.send_url, connections=4)
        try:
            sent = trusting.send([message(f"device-{n}", n) for n in range(40)])
            refused = default.send([message("device-x", 99)])
        finally:
            trusting.close()
            default.close()

    assert fcm.send_url.startswith("https://127.0.0.1:")
    assert {r.outcome for r in sent} == {PushOutcome.SENT}
    assert len(fcm.accepted) == 40
    assert len(fcm.connections) <= 4
    assert [r.outcome for r in refused] == [PushOutcome.RETRY]
    assert "CERTIFICATE_VERIFY_FAILED" in refused[0].error


class Proxy:
    """An HTTP proxy on loopback: CONNECT tunnels, and plain requests in absolute form, passed on."""

    def __init__(self) -> None:
        self.heads: list[str] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head.decode("latin-1"))
        method, target, _version = head.split(b"\r\n", 1)[0].decode().split(" ")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.0 200 Connection established\r\n\r\n")
        else:
            url = urlsplit(target)
            upstream_reader, upstream_writer = await asyncio.open_connection(url.hostname, url.port)
            upstream_writer.write(head)
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    def __enter__(self) -> "Proxy":
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            loop.run_forever()
            server.close()
            tunnels = asyncio.all_tasks(loop)
            for tunnel in tunnels:
                tunnel.cancel()

            async def ended() -> None:
                await asyncio.gather(*tunnels, return_exceptions=True)

            loop.run_until_complete(ended())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def __exit__(self, *exc_info) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def no_proxy_bypass(monkeypatch):
    for name in (
        "NO_PROXY",
        "no_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_https_goes_through_the_proxys_connect_tunnel_with_its_credentials(
    firebase_app, tls, no_proxy_bypass
):
    server_context, client_context = tls
    with FakeFcm(ssl_context=server_context) as fcm, Proxy() as proxy:
        no_proxy_bypass.setenv("HTTPS_PROXY", f"http://bench%40user:s%3Acret@127.0.0.1:{proxy.port}")
        gateway = AsyncFcmGateway(
            firebase_app, send_url=fcm.send_url, ssl_context=client_context, connections=3
        )
        try:
            results = gateway.send([message(f"device-{n}", n) for n in range(30)])
        finally:
            gateway.close()

    assert {r.outcome for r in results} == {PushOutcome.SENT}
    assert len(fcm.accepted) == 30
    assert 1 <= len(proxy.heads) <= 3  # one tunnel per connection, the requests inside it
    for head in proxy.heads:
        assert head.startswith(f"CONNECT 127.0.0.1:{fcm.port} HTTP/1.1\r\n")
        assert "Proxy-Authorization: Basic YmVuY2hAdXNlcjpzOmNyZXQ=\r\n" in head  # bench@user:s:cret
        assert "Authorization: Bearer" not in head.replace(
            "Proxy-Authorization", ""
        )  # FCM's token stays inside


def test_plain_http_goes_to_the_proxy_in_absolute_form(firebase_app, no_proxy_bypass):
    with FakeFcm() as fcm, Proxy() as proxy:
        no_proxy_bypass.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        gateway = AsyncFcmGateway(firebase_app, send_url=fcm.send_url, connections=1)
        try:
            results = gateway.send([message("device-a", 1)])
        finally:
            gateway.close()

    assert [r.outcome for r in results] == [PushOutcome.SENT]
    assert proxy.heads[0].startswith(
        f"POST http://127.0.0.1:{fcm.port}/v1/projects/test/messages:send HTTP/1.1\r\n"
    )
    assert fcm.accepted_tokens() == ["device-a"]
