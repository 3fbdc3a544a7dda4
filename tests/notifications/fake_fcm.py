"""A fake FCM HTTP v1 endpoint on loopback, for the real firebase-admin client to talk to.

A real concurrent server (aiohttp): `send_each` opens one connection per message, up to 500 at once,
and the standard library's `http.server` refuses some of them and caps out near 150 messages/second.

Behaviour is scripted by the token's prefix:
  unregistered-...  404 UNREGISTERED              mismatch-...  403 SENDER_ID_MISMATCH
  invalid-...       400 INVALID_ARGUMENT (the registration token is not valid)
  badarg-...        400 INVALID_ARGUMENT (something else in the message)
  flaky-<n>-...     503 for the first n requests, then accepted
  quota-...         429 QUOTA_EXCEEDED with `Retry-After: 7` on the first request, then accepted
  cut-...           the first request's answer is cut off mid-body (the connection closed under
                    it; nothing accepted), then accepted
  slow-...          answered after `slow_seconds` (30); by then a client that gave up is gone, and
                    a request whose client is gone is never accepted
  anything else     accepted: 200 {"name": "projects/<project>/messages/<uuid>"}

Access tokens: `POST /token` hands out `fake-access-token-<n>`; `revoke_tokens()` (or
`revoke_tokens(after=N)`, once N messages were accepted) makes every token handed out so far answer
401 UNAUTHENTICATED, as FCM does for an expired or revoked one. Any other bearer token is accepted.

In tests: `with FakeFcm() as fcm:` runs it in a background thread; `fcm.send_url` is what the client
is pointed at; `FakeFcm(ssl_context=...)` serves HTTPS (`tls_contexts` makes a certificate for it). Standalone (for the benchmark): `python -m tests.notifications.fake_fcm --port N`,
with `GET /stats` for the counts and `POST /reset` to forget them.

`POST /token` answers the OAuth token request of a service account whose `token_uri` points here, so
the production code path (a service-account JSON file) runs unchanged: see `write_service_account`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google.auth.credentials
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from firebase_admin import credentials

PROJECT_ID = "test"
QUOTA_RETRY_AFTER = "7"
FLAKY = re.compile(r"flaky-(\d+)-")
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_RECORDED_HEADERS = ("content-type", "x-goog-api-format-version", "x-firebase-client", "x-goog-api-client")


@dataclass(frozen=True)
class Accepted:
    token: str
    notification_id: str | None
    android_collapse_key: str | None
    apns_collapse_id: str | None
    message_id: str
    message: dict[str, Any]
    authorization: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # the client's _RECORDED_HEADERS


def _error(http_status: int, status: str, message: str, fcm_code: str | None = None) -> web.Response:
    error: dict[str, Any] = {"code": http_status, "message": message, "status": status}
    if fcm_code:
        error["details"] = [{"@type": _FCM_ERROR_TYPE, "errorCode": fcm_code}]
    return web.json_response({"error": error}, status=http_status)


class FakeFcm:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.requests: Counter[str] = Counter()  # every request that reached us, per token
        self.accepted: list[Accepted] = []
        self.token_requests = 0
        self.slow_seconds = 30.0
        self.connections: set[tuple[str, int]] = set()  # client (address, port) of every request
        self.refused_unauthenticated = 0
        self._revoked: set[str] = set()
        self._revoke_after: int | None = None
        self._hold_after: int | None = None
        self._lock = threading.Lock()  # handlers run on the server's loop, tests read from theirs
        self._loop: asyncio.AbstractEventLoop | None = None
        # Closed by hold(): requests wait unanswered, as if FCM were slow, until release().
        self._gate: asyncio.Event | None = None
        self.waiting = 0
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # --- what tests read -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    @property
    def send_url(self) -> str:
        return f"{self.base_url}/v1/projects/{{project_id}}/messages:send"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    def requests_for(self, token: str) -> int:
        with self._lock:
            return self.requests[token]

    def accepted_tokens(self) -> list[str]:
        with self._lock:
            return [accepted.token for accepted in self.accepted]

    def stats(self) -> dict[str, int]:
        with self._lock:
            pairs = Counter((a.token, a.notification_id) for a in self.accepted)
            return {
                "requests": sum(self.requests.values()),
                "accepted": len(self.accepted),
                "duplicates": sum(count - 1 for count in pairs.values()),
            }

    def hold(self, *, after: int | None = None) -> None:
        """Keeps every new send request waiting (the test can then kill a client mid-request); with
        `after`, only once that many messages were accepted."""
        assert self._loop is not None and self._gate is not None
        if after is None:
            self._loop.call_soon_threadsafe(self._gate.clear)
        else:
            with self._lock:
                self._hold_after = after

    def revoke_tokens(self, *, after: int | None = None) -> None:
        """Every access token handed out so far is refused from now on (or once `after` messages
        were accepted)."""
        with self._lock:
            if after is None:
                self._revoked.update(self._issued())
            else:
                self._revoke_after = after

    def _issued(self) -> set[str]:
        return {f"fake-access-token-{n}" for n in range(1, self.token_requests + 1)}

    def release(self) -> None:
        assert self._loop is not None and self._gate is not None
        self._loop.call_soon_threadsafe(self._gate.set)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.accepted.clear()
            self.token_requests = 0
            self.connections.clear()
            self.refused_unauthenticated = 0
            self._revoked.clear()
            self._revoke_after = self._hold_after = None
            self.slow_seconds = 30.0

    # --- the HTTP side ---------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**2)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        app.router.add_post("/token", self._token)
        app.router.add_get("/stats", self._stats)
        app.router.add_post("/reset", self._reset)
        return app

    async def _send(self, request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            return _error(401, "UNAUTHENTICATED", "Request is missing required authentication credential.")
        peer = request.transport.get_extra_info("peername") if request.transport else None
        with self._lock:
            if peer:
                self.connections.add(tuple(peer[:2]))
            if self._revoke_after is not None and len(self.accepted) >= self._revoke_after:
                self._revoked.update(self._issued())
                self._revoke_after = None
            revoked = authorization[len("Bearer ") :] in self._revoked
            if revoked:
                self.refused_unauthenticated += 1
        if revoked:
            return _error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials: the token expired."
            )
        try:
            message = (await request.json())["message"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        token = message.get("token") or message.get("fid") or ""
        with self._lock:
            self.requests[token] += 1
            attempt = self.requests[token]

        if token.startswith("unregistered-"):
            return _error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        if token.startswith("mismatch-"):
            return _error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
        if token.startswith("invalid-"):
            return _error(
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                "INVALID_ARGUMENT",
            )
        if token.startswith("badarg-"):
            return _error(
                400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'", "INVALID_ARGUMENT"
            )
        if token.startswith("quota-") and attempt == 1:
            response = _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for the device.", "QUOTA_EXCEEDED")
            response.headers["Retry-After"] = QUOTA_RETRY_AFTER
            return response
        flaky = FLAKY.match(token)
        if flaky and attempt <= int(flaky.group(1)):
            return _error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
        if token.startswith("cut-") and attempt == 1:
            return await self._cut(request)
        if token.startswith("slow-"):
            await asyncio.sleep(self.slow_seconds)
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)  # the client gave up: never answered, never accepted

        with self._lock:
            if self._hold_after is not None and len(self.accepted) >= self._hold_after:
                self._hold_after = None
                if self._gate is not None:
                    self._gate.clear()
        if self._gate is not None and not self._gate.is_set():
            with self._lock:
                self.waiting += 1
            await self._gate.wait()
            with self._lock:
                self.waiting -= 1
            if request.transport is None or request.transport.is_closing():
                # The client died while we held its request: never answered, so never accepted.
                return web.Response(status=499)

        project = request.match_info["project"]
        accepted = Accepted(
            token=token,
            notification_id=(message.get("data") or {}).get("notification_id"),
            android_collapse_key=(message.get("android") or {}).get("collapse_key"),
            apns_collapse_id=((message.get("apns") or {}).get("headers") or {}).get("apns-collapse-id"),
            message_id=f"projects/{project}/messages/{uuid.uuid4()}",
            message=message,
            authorization=authorization,
            headers=tuple((name, request.headers.get(name, "")) for name in _RECORDED_HEADERS),
        )
        with self._lock:
            self.accepted.append(accepted)
        return web.json_response({"name": accepted.message_id})

    async def _cut(self, request: web.Request) -> web.StreamResponse:
        """A 200 whose body never arrives whole: the connection closes after its first bytes."""
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = 100
        await response.prepare(request)
        await response.write(b'{"name": "projects/')
        if request.transport is not None:
            request.transport.close()
        return response

    async def _token(self, request: web.Request) -> web.Response:
        await request.read()
        with self._lock:
            self.token_requests += 1
            number = self.token_requests
        return web.json_response(
            {"access_token": f"fake-access-token-{number}", "expires_in": 3600, "token_type": "Bearer"}
        )

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response(self.stats())

    async def start_async(self) -> None:
        self._gate = asyncio.Event()
        self._gate.set()
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        # A backlog above send_each's burst of 500 connects, so none waits for a SYN retransmit.
        site = web.TCPSite(self._runner, self.host, self.port, backlog=2048, ssl_context=self.ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- in a background thread ------------------------------------------------------------------

    def start(self) -> FakeFcm:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-fcm", daemon=True)
        self._thread.start()
        started.wait(timeout=10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeFcm:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- credentials for the real client -------------------------------------------------------------


class _AlwaysValidGoogleCredentials(google.auth.credentials.Credentials):
    def __init__(self) -> None:
        super().__init__()
        self.token = "fake-access-token"

    def refresh(self, request: object) -> None:
        self.token = "fake-access-token"


class StubCredential(credentials.Base):
    """A firebase-admin credential whose access token is always valid: no OAuth round trip."""

    def __init__(self) -> None:
        self._credential = _AlwaysValidGoogleCredentials()

    def get_credential(self) -> google.auth.credentials.Credentials:
        return self._credential


def tls_contexts(directory: Path, host: str = "127.0.0.1") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: a self-signed certificate for `host`, and a client that trusts only it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-fcm.crt", directory / "fake-fcm.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


def write_service_account(path: Path, *, token_uri: str, project_id: str = PROJECT_ID) -> Path:
    """A service-account JSON with a fresh key whose OAuth token endpoint is `token_uri` (the fake's)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"push@{project_id}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    fake = FakeFcm(args.host, args.port)
    print(f"fake FCM on {fake.base_url}: send URL {fake.send_url}, token URI {fake.token_uri}", flush=True)
    web.run_app(fake.make_app(), host=args.host, port=args.port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main()
