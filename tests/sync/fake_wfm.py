"""A WFM API on loopback (aiohttp in a background thread), for the HTTP connector's tests and the
sync's."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

TOKEN = "wfm-test-token-s3cret"

Scripted = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(status: int, text: str = "", headers: dict[str, str] | None = None) -> Scripted:
    async def respond(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=text, headers=headers)

    return respond


class FakeWfm:
    """A WFM API: `GET /roster`, and `GET /schedules?start&end[&page]` in pages of `page_size` days with an
    absolute `next` link. Every request needs `Authorization: Bearer TOKEN` (401 otherwise).
    `script[path]` holds answers given, in order, before the normal ones; `next_links[page]` replaces
    a page's next link."""

    def __init__(
        self,
        *,
        roster: dict | None = None,
        days: list[dict[str, Any]] | None = None,
        page_size: int = 2,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.roster = roster if roster is not None else {}
        self.days = days if days is not None else []
        self.page_size = page_size
        # Called (in a thread of its own, so it may use the database) before each authorised request
        # is answered, with the request's path.
        self.on_request = on_request
        self.port = 0
        self.seen: list[tuple[str, dict[str, str]]] = []  # path and query of each authorised request
        self.unauthorised = 0
        self.script: dict[str, list[Scripted]] = {"/roster": [], "/schedules": []}
        self.next_links: dict[int, str] = {}
        self._lock = threading.Lock()  # handlers run on the server's thread, tests read from theirs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            with self._lock:
                self.unauthorised += 1
            return web.json_response({"error": "unauthorised"}, status=401)
        with self._lock:
            self.seen.append((request.path, dict(request.query)))
            scripted = self.script[request.path].pop(0) if self.script[request.path] else None
        if self.on_request is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.on_request, request.path)
        if scripted is not None:
            return await scripted(request)
        if request.path == "/roster":
            return web.json_response(self.roster)
        return self._schedules(request)

    def _schedules(self, request: web.Request) -> web.Response:
        try:
            start, end = request.query["start"], request.query["end"]
            page = int(request.query.get("page", "1"))
        except (KeyError, ValueError):
            return web.json_response({"error": "start and end are required"}, status=400)
        days = [day for day in self.days if start <= day["date"] <= end]
        chunk = days[(page - 1) * self.page_size : page * self.page_size]
        more = page * self.page_size < len(days)
        next_link = f"{self.base_url}/schedules?start={start}&end={end}&page={page + 1}" if more else None
        return web.json_response({"days": chunk, "next": self.next_links.get(page, next_link)})

    def start(self) -> FakeWfm:
        started = threading.Event()
        app = web.Application()
        app.router.add_get("/roster", self._handle)
        app.router.add_get("/schedules", self._handle)
        runner = web.AppRunner(app, access_log=None)

        async def serve() -> None:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.port = runner.addresses[0][1]

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(serve())
            started.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-wfm", daemon=True)
        self._thread.start()
        assert started.wait(timeout=10)
        return self

    def stop(self) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
