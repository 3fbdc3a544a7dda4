"""The HTTP JSON API connector: `GET {base}/roster` and the pages of `GET {base}/schedules`.

What comes back is untrusted (OWASP API10, unsafe consumption of APIs): a page must be a JSON object
no larger than a bound, a `next` link must stay on the base URL's origin, and pagination stops after
a bound. Rows are validated later, by the sync (sync.rows)."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.utils import timezone

from sync.connectors import ConnectorError, check_format, spooled_schedules
from sync.models import WfmSource

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
# Per socket read, not for the whole body: a large page that keeps arriving is not cut off.
READ_TIMEOUT_SECONDS = 60.0
# Backoff 0.5, 1, 2, 4 s (each jittered down to half), so a run gives up after ~8 s of a dead API.
MAX_RETRIES = 4
BACKOFF_BASE_SECONDS = 0.5
# An API asking for longer than this is still retried, after this long: the run holds a worker.
MAX_RETRY_AFTER_SECONDS = 60.0
MAX_PAGE_BYTES = 64 * 1024 * 1024
MAX_PAGES = 10_000
_CHUNK_BYTES = 1024 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Only settings named like this can be sent as a token, so a source cannot be pointed at SECRET_KEY,
# DATABASE_URL or any other secret of the process and send it to a server of its choosing.
TOKEN_SETTING_NAME = re.compile(r"WFM_[A-Z0-9_]+")


class _BearerAuth(requests.auth.AuthBase):
    # As session.auth (not a default header) so that trust_env's ~/.netrc lookup never replaces it.
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL without credentials in it; ConnectorError otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConnectorError(f"{url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConnectorError(f"{url!r} is not an http or https URL")
    if parts.username is not None or parts.password is not None:
        # They would end up in logs and in SyncRun.error; the token has its own place.
        raise ConnectorError(f"{parts.hostname}: a WFM API URL may not carry credentials")
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - timezone.now()).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class HttpConnector:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
        max_retries: int = MAX_RETRIES,
        max_page_bytes: int = MAX_PAGE_BYTES,
        max_pages: int = MAX_PAGES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.origin = _origin(base_url)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_page_bytes = max_page_bytes
        self.max_pages = max_pages
        self.sleep = sleep
        self.session = requests.Session()
        self.session.auth = _BearerAuth(token)
        self.session.headers["Accept"] = "application/json"

    @classmethod
    def from_source(cls, source: WfmSource, *, sleep: Callable[[float], None] = time.sleep) -> HttpConnector:
        name = source.token_setting
        if not TOKEN_SETTING_NAME.fullmatch(name):
            raise ConnectorError(
                f"the WFM source's token setting {name!r} must name an environment variable or setting "
                "starting with WFM_ (e.g. WFM_ACME_TOKEN)"
            )
        token = os.environ.get(name) or getattr(settings, name, None)
        if not token or not isinstance(token, str):
            raise ConnectorError(f"the WFM API token is missing: set the environment variable {name}")
        return cls(source.location, token, sleep=sleep)

    def roster(self) -> dict:
        return self._get(f"{self.base_url}/roster")

    def schedules_file(self, *, start: dt.date, end: dt.date) -> AbstractContextManager[Path]:
        """Every page downloaded (retries, Retry-After waits and all) into a bounded temporary file
        before the sync opens its transaction: no page is fetched while rows are locked."""
        return spooled_schedules(self.schedule_days(start=start, end=end), name=f"{self.base_url}/schedules")

    def schedule_days(self, *, start: dt.date, end: dt.date) -> Iterator[dict]:
        """The window's day rows, a page at a time as they are read."""
        url = f"{self.base_url}/schedules"
        params: dict[str, str] | None = {"start": start.isoformat(), "end": end.isoformat()}
        low, high = start.isoformat(), end.isoformat()
        for _ in range(self.max_pages):
            page = self._get(url, params)
            days, next_url = page.get("days"), page.get("next")
            if not isinstance(days, list):
                raise ConnectorError(f"{url}: the page has no list of days")
            if next_url is not None and not isinstance(next_url, str):
                raise ConnectorError(f"{url}: the page's next link is not a URL")
            check_format(page, name=url)
            del page  # one page in memory at a time: this one goes before the next is fetched
            for day in days:
                # As DirectoryConnector: out-of-window rows are left out here, malformed ones go on
                # to be skipped with a reason.
                date = day.get("date") if isinstance(day, dict) else None
                if isinstance(date, str) and len(date) == 10 and not low <= date <= high:
                    continue
                yield day
            del days
            if next_url is None:
                return
            # The link may be relative; resolved, it must stay where the token was meant to go.
            next_absolute = urljoin(url, next_url)
            if _origin(next_absolute) != self.origin:
                raise ConnectorError(
                    f"{url}: refusing the next link {next_absolute!r}, which leaves {self.base_url} "
                    "(an untrusted upstream)"
                )
            url, params = next_absolute, None
        raise ConnectorError(f"{self.base_url}/schedules: more than {self.max_pages} pages, stopping")

    def _get(self, url: str, params: dict[str, str] | None = None) -> dict:
        """The JSON object at url, retrying what may pass (connection errors, timeouts, 429, 5xx)."""
        for attempt in range(self.max_retries + 1):
            try:
                return self._get_once(url, params)
            except _Retryable as exc:
                if attempt == self.max_retries:
                    raise ConnectorError(f"GET {url} failed after {attempt + 1} attempts: {exc}") from None
                base = BACKOFF_BASE_SECONDS * 2**attempt
                # Jitter, so the organisations' syncs that failed together do not come back together.
                delay = random.uniform(base / 2, base) if exc.retry_after is None else exc.retry_after  # noqa: S311
                logger.warning(
                    "WFM API GET %s: %s; retry %d of %d in %.1f s",
                    url,
                    exc,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _get_once(self, url: str, params: dict[str, str] | None) -> dict:
        try:
            # No redirects: one could send the token's requests to another host, past the next-link check.
            with self.session.get(
                url, params=params, timeout=self.timeout, stream=True, allow_redirects=False
            ) as response:
                status = f"{response.status_code} {response.reason}"
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Retryable(status, _retry_after(response))
                if response.status_code != 200:
                    raise ConnectorError(f"GET {response.url} answered {status}")
                body = self._read_body(response)
        except requests.exceptions.SSLError as exc:
            # A certificate that does not verify will not verify on the next try either.
            raise ConnectorError(f"GET {url}: {exc}") from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        except requests.RequestException as exc:
            raise ConnectorError(f"GET {url}: {exc}") from None
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConnectorError(f"GET {url} did not answer JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConnectorError(f"GET {url} did not answer a JSON object")
        return data

    def _read_body(self, response: requests.Response) -> bytes:
        too_large = ConnectorError(
            f"GET {response.url}: the response is larger than {self.max_page_bytes} bytes"
        )
        # Counted as it arrives and decoded (not trusting Content-Length), so a small gzip of a huge
        # body is refused as well.
        body = bytearray()
        for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
            body += chunk
            if len(body) > self.max_page_bytes:
                raise too_large
        return bytes(body)
