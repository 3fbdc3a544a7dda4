"""The async FCM transport's HTTP/1.1 client: a bounded pool of keep-alive connections to FCM's send
endpoint, one request at a time on each, on asyncio's own protocol layer, the answers read by
httptools (node's llhttp parser): their framing (Content-Length, chunked with extensions and
trailers, or the connection's end), 1xx answers, keep-alive and `Connection: close` are its rules,
not this module's.

Why not aiohttp's client: a push is one small POST and a small JSON answer, and aiohttp's request
machinery (URL objects, cookie jar, header multidicts, response and timer objects, a task per
request) cost 105-120 us of CPU per request on the benchmark's machine, this client 40-50 us
(bench/profile_batch.py --transport async). At 100,000 messages a fan-out, that difference decides
whether the worker or FCM is the limit (issue 13). Why httptools and not h11: h11 (pure Python)
took 160 us of CPU to write a request and read its answer, httptools 3 us to read it.

What it speaks besides: HTTPS with the CA bundle requests uses (certifi, as firebase-admin's own
transport), and an HTTP proxy (requests' environment variables, read by the caller), tunnelled
with CONNECT for HTTPS. What it does not: redirects, compression (it sends no Accept-Encoding),
cookies, pipelining, HTTP/2. A broken connection or an answer the parser refuses is an HttpError
(an OSError, as a refused connection is), and the connection is not reused.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import httptools
import requests.certs

# A connection unused for this long is closed rather than reused: FCM's front end drops idle ones
# after a few minutes, and a request sent on a connection as it closes fails for nothing.
KEEPALIVE_SECONDS = 60.0
# Bytes of status lines and headers an answer may have (llhttp sets no bound); FCM's are under 1 KB.
MAX_HEAD = 64 * 1024


class HttpError(ConnectionError):
    """The connection broke before the answer was whole, or the answer was not HTTP/1.1."""


class HttpAnswer(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Http1Connection(asyncio.Protocol):
    """One connection: one request at a time, its answer read as the bytes come in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[HttpAnswer] | None = None
        self._tunnel = False
        # The answer being read: its status once its head is whole (0 before), headers and body.
        self._status = 0
        self._keep_alive = False
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._head_size = 0

    # --- asyncio's callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (create_connection)
        self.reusable = True

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing was asked: a server that talks out of turn is not reused
            self.reusable = False
            self._close()
            return
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            self._fail(HttpError(f"an answer this client cannot read: {error!r}"))
            return
        if self._waiter is not None and not self._status:
            self._head_size += len(data)
            if self._head_size > MAX_HEAD:
                self._fail(HttpError("an answer's head longer than 64 KB"))

    def eof_received(self) -> bool:
        self.reusable = False
        if self._waiter is not None and self._status >= 200:
            names = {name.lower() for name, _value in self._headers}
            if not names & {"content-length", "transfer-encoding"}:
                self._finish()  # an answer without a length lasts until the connection ends
        return False  # close our side too; connection_lost fails an answer cut short

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(HttpError(f"the connection closed before the answer was whole ({exc!r})"))

    # --- httptools' callbacks (inside feed_data) -------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            # Bytes past the answer were never asked for: the connection's state is unknown.
            raise HttpError("an answer nobody asked for")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._keep_alive = self._parser.should_keep_alive()
        if self._tunnel and 200 <= self._status < 300:
            # The connection is the tunnel now (RFC 9110 9.3.6): what follows is TLS, not a body, and
            # a new parser reads the answers that come through it.
            self._parser = httptools.HttpResponseParser(self)
            self._keep_alive = True
            self._finish()

    def on_body(self, body: bytes) -> None:
        if self._waiter is None:
            raise HttpError("bytes nobody asked for")
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:  # 1xx: the real answer follows
            self._status, self._headers, self._body = 0, [], []
            return
        self._finish()

    # --- a request -------------------------------------------------------------------------------

    async def request(self, data: bytes, *, timeout: float, tunnel: bool = False) -> HttpAnswer:
        """Writes one request and waits for its answer, at most `timeout` seconds from the write (an
        FCM answer is a few hundred bytes: there is no slow trickle to allow for)."""
        if self._waiter is not None:
            raise RuntimeError("one request at a time on a connection")
        if self.transport is None or self.transport.is_closing():
            # Closed between acquire() and now: a write would vanish without an error.
            raise HttpError("the connection closed before the request was written")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[HttpAnswer] = loop.create_future()
        self._waiter, self._tunnel = waiter, tunnel
        self._status, self._headers, self._body, self._head_size = 0, [], [], 0
        self.reusable = False  # until the answer is whole and lets the connection be kept
        self.transport.write(data)
        timer = loop.call_later(timeout, self._time_out, waiter, timeout)
        try:
            return await waiter
        finally:
            timer.cancel()
            if not waiter.done():  # cancelled (the chunk's deadline): half a request is not reusable
                self._waiter = None
                self._close()

    def _finish(self) -> None:
        waiter, self._waiter = self._waiter, None
        answer = HttpAnswer(self._status, tuple(self._headers), b"".join(self._body))
        self.reusable = self._keep_alive and self.transport is not None
        if not self.reusable:
            self._close()
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def _fail(self, error: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        self.reusable = False
        self._close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _time_out(self, waiter: asyncio.Future[HttpAnswer], timeout: float) -> None:
        if waiter is self._waiter:
            self._fail(TimeoutError(f"no answer within {timeout:g} s"))

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()  # nothing of ours is left to send on it

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class Http1Pool:
    """Connections to one URL, at most `limit` open: the caller runs at most `limit` requests at a
    time, each between acquire() and release(), so none waits for a free connection."""

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str],
        connect_timeout: float,
        proxy: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        target = urlsplit(url)
        if target.scheme not in ("http", "https") or not target.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = target.hostname
        self.port = target.port or (443 if target.scheme == "https" else 80)
        self.connect_timeout = connect_timeout
        self._ssl = None
        if target.scheme == "https":
            if ssl_context is None:
                ssl_context = ssl.create_default_context(cafile=requests.certs.where())
                ssl_context.set_alpn_protocols(["http/1.1"])  # what this client speaks, said up front
            self._ssl = ssl_context
        authority = self.host if target.port is None else f"{self.host}:{self.port}"
        if ":" in self.host:
            authority = f"[{self.host}]" if target.port is None else f"[{self.host}]:{self.port}"
        self._authority = authority
        path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        self._proxy: tuple[str, int] | None = None
        extra: dict[str, str] = {}
        self._proxy_authorization = ""
        if proxy:
            parsed = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            if parsed.scheme != "http" or not parsed.hostname:
                raise ValueError(f"only an http:// proxy is supported, not {proxy!r}")
            self._proxy = (parsed.hostname, parsed.port or 80)
            if parsed.username is not None:
                credentials = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
                self._proxy_authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
            if self._ssl is None:
                # Plain HTTP through a proxy: the absolute URI, and the proxy's credentials on each request.
                path = f"http://{authority}{path}"
                if self._proxy_authorization:
                    extra["Proxy-Authorization"] = self._proxy_authorization
        lines = [f"POST {path} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{name}: {value}" for name, value in {**headers, **extra}.items()]
        self._prefix = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._idle: list[Http1Connection] = []

    def request_bytes(self, body: bytes, *, authorization: str) -> bytes:
        """The whole request: the fixed head, the bearer token, the body's length, the body."""
        return b"%sAuthorization: %s\r\nContent-Length: %d\r\n\r\n%s" % (
            self._prefix,
            authorization.encode("latin-1"),
            len(body),
            body,
        )

    async def acquire(self) -> Http1Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            connection.close()
        return await asyncio.wait_for(self._connect(), self.connect_timeout)

    def release(self, connection: Http1Connection) -> None:
        if connection.reusable:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def _connect(self) -> Http1Connection:
        loop = asyncio.get_running_loop()
        if self._proxy is None:
            _transport, connection = await loop.create_connection(
                Http1Connection,
                self.host,
                self.port,
                ssl=self._ssl,
                server_hostname=self.host if self._ssl is not None else None,
            )
            return connection
        _transport, connection = await loop.create_connection(Http1Connection, *self._proxy)
        if self._ssl is None:
            return connection
        try:
            return await self._tunnel(loop, connection)
        except BaseException:
            connection.close()
            raise

    async def _tunnel(self, loop: asyncio.AbstractEventLoop, connection: Http1Connection) -> Http1Connection:
        """HTTPS through the proxy: CONNECT, then TLS with FCM inside the tunnel."""
        lines = [f"CONNECT {self.host}:{self.port} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if self._proxy_authorization:
            lines.append(f"Proxy-Authorization: {self._proxy_authorization}")
        answer = await connection.request(
            ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), timeout=self.connect_timeout, tunnel=True
        )
        if answer.status != 200 or not connection.reusable:
            raise HttpError(f"the proxy refused the tunnel: HTTP {answer.status}")
        if connection.transport is None or self._ssl is None:
            raise HttpError("the proxy's connection closed")
        transport = await loop.start_tls(
            connection.transport, connection, self._ssl, server_hostname=self.host
        )
        if transport is None:
            raise HttpError("the proxy's connection closed during the TLS handshake")
        connection.transport = transport  # type: ignore[assignment]  # start_tls gives a stream transport
        connection.reusable = True
        return connection
