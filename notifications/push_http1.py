"""The async FCM transport's HTTP/1.1 client: a bounded pool of keep-alive connections to FCM's send
endpoint, one request at a time on each, on asyncio's own protocol layer.

Why not aiohttp's client: a push is one small POST and a small JSON answer, and aiohttp's request
machinery (URL objects, cookie jar, header multidicts, response and timer objects, a task per
request) cost 105-120 us of CPU per request on the benchmark's machine, this client 40-50 us
(bench/profile_batch.py --transport async). At 100,000 messages a fan-out, that difference decides
whether the worker or FCM is the limit (issue 13).

What it speaks: HTTP/1.1 with keep-alive; answers framed by Content-Length, chunked transfer coding
(trailers skipped) or the connection's end; 1xx answers skipped; `Connection: close` honoured;
HTTPS with the CA bundle requests uses (certifi, as firebase-admin's own transport), and an HTTP
proxy (requests' environment variables, read by the caller), tunnelled with CONNECT for HTTPS.
What it does not: redirects, compression (it sends no Accept-Encoding), cookies, pipelining,
HTTP/2. A broken connection or an answer it cannot read is an HttpError (an OSError, as a refused
connection is), and the connection is not reused.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import requests.certs

# A connection unused for this long is closed rather than reused: FCM's front end drops idle ones
# after a few minutes, and a request sent on a connection as it closes fails for nothing.
KEEPALIVE_SECONDS = 60.0
MAX_HEAD = 64 * 1024  # bytes of status line and headers; FCM's are well under 1 KB

_CHUNKED = -1
_UNTIL_CLOSE = -2


class HttpError(ConnectionError):
    """The connection broke before the answer was whole, or the answer was not HTTP/1.1."""


class HttpAnswer(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class _Head(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...]
    length: int  # bytes of body, or _CHUNKED, or _UNTIL_CLOSE
    keep_alive: bool


def _read_head(raw: bytes, *, tunnel: bool) -> _Head | None:
    """The status line and headers; None for a 1xx (informational) answer."""
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise HttpError(f"not an HTTP/1.1 answer: {lines[0][:100]!r}")
    status = int(code)
    if status < 200:
        return None
    headers = []
    length: int | None = None
    chunked = False
    connection = ""
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpError(f"a malformed header line: {line[:100]!r}")
        name, value = name.strip(), value.strip()
        headers.append((name, value))
        lower = name.lower()
        if lower == "content-length":
            if not value.isdigit() or (length is not None and length != int(value)):
                raise HttpError(f"a bad Content-Length: {value[:100]!r}")
            length = int(value)
        elif lower == "transfer-encoding":
            chunked = value.lower().rsplit(",", 1)[-1].strip() == "chunked"
            if not chunked:
                raise HttpError(f"a transfer coding this client does not read: {value[:100]!r}")
        elif lower == "connection":
            connection = value.lower()
    keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if tunnel and status < 300:
        length, keep_alive = 0, True  # the connection is the tunnel now (RFC 9110 9.3.6)
    elif status in (204, 304):
        length = 0  # no body, whatever the headers say (RFC 9112 6.3)
    elif chunked:
        length = _CHUNKED  # it overrides a Content-Length (RFC 9112 6.3)
    elif length is None:
        length, keep_alive = _UNTIL_CLOSE, False
    return _Head(status, tuple(headers), length, keep_alive)


def _dechunk(buffer: bytearray) -> tuple[bytes, int] | None:
    """(body, bytes used) of a whole chunked body at the start of `buffer`, or None while it is not."""
    pieces: list[bytes] = []
    position = 0
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(f"a bad chunk size: {size_text[:40]!r}") from None
        position = line_end + 2
        if size == 0:
            if buffer[position : position + 2] == b"\r\n":
                return b"".join(pieces), position + 2
            trailers_end = buffer.find(b"\r\n\r\n", position)  # trailer fields: read, not kept
            if trailers_end < 0:
                return None
            return b"".join(pieces), trailers_end + 4
        if len(buffer) < position + size + 2:
            return None
        if buffer[position + size : position + size + 2] != b"\r\n":
            raise HttpError("a chunk without its CRLF")
        pieces.append(bytes(buffer[position : position + size]))
        position += size + 2


class Http1Connection(asyncio.Protocol):
    """One connection: one request at a time, its answer read as the bytes come in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[HttpAnswer] | None = None
        self._head: _Head | None = None
        self._tunnel = False

    # --- asyncio's callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (create_connection)
        self.reusable = True

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing was asked: a server that talks out of turn is not reused
            self.reusable = False
            self._close()
            return
        self._buffer += data
        try:
            self._parse()
        except HttpError as error:
            self._fail(error)

    def eof_received(self) -> bool:
        self.reusable = False
        head = self._head
        if self._waiter is not None and head is not None and head.length == _UNTIL_CLOSE:
            self._finish(head, bytes(self._buffer))
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(HttpError(f"the connection closed before the answer was whole ({exc!r})"))

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
        self._waiter, self._head, self._tunnel = waiter, None, tunnel
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

    def _parse(self) -> None:
        buffer = self._buffer
        while self._waiter is not None:
            if self._head is None:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        raise HttpError("an answer's head longer than 64 KB")
                    return
                head = _read_head(bytes(buffer[:end]), tunnel=self._tunnel)
                del buffer[: end + 4]
                if head is None:
                    continue  # 1xx: the real answer follows
                self._head = head
            head = self._head
            if head.length == _UNTIL_CLOSE:
                return  # eof_received finishes it
            if head.length == _CHUNKED:
                whole = _dechunk(buffer)
                if whole is None:
                    return
                body, used = whole
            else:
                if len(buffer) < head.length:
                    return
                body, used = bytes(buffer[: head.length]), head.length
            del buffer[:used]
            self._finish(head, body)

    def _finish(self, head: _Head, body: bytes) -> None:
        waiter, self._waiter, self._head = self._waiter, None, None
        # Bytes past the answer were never asked for: the connection's state is unknown.
        self.reusable = head.keep_alive and not self._buffer and self.transport is not None
        if not self.reusable:
            self._close()
        if waiter is not None and not waiter.done():
            waiter.set_result(HttpAnswer(head.status, head.headers, body))

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
        self._buffer.clear()
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
