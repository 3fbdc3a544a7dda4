"""HttpConnector against a real HTTP server on loopback (aiohttp in a background thread)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from sync.connectors import ConnectorError, connector_for
from sync.http_connector import HttpConnector
from sync.models import SourceKind, WfmSource
from tests.sync.fake_wfm import TOKEN, FakeWfm, answer

ROSTER = {
    "teams": [{"id": "T1", "name": "Billing"}],
    "skills": [{"id": "S1", "name": "French"}],
    "activity_codes": [{"id": "BRK", "name": "Break"}],
    "agents": [{"id": "A1", "email": "anna@example.com", "team": "T1"}],
}
START, END = dt.date(2026, 3, 2), dt.date(2026, 3, 7)
DAYS: list[dict[str, Any]] = [
    {"agent": "A1", "date": (START + dt.timedelta(days=n)).isoformat(), "published": True, "activities": []}
    for n in range(6)
]
PAGE_SIZE = 2  # six days: three pages


@pytest.fixture
def wfm() -> Iterator[FakeWfm]:
    server = FakeWfm(roster=ROSTER, days=DAYS, page_size=PAGE_SIZE).start()
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connector(wfm: FakeWfm, sleeps: list[float]) -> HttpConnector:
    return HttpConnector(wfm.base_url, TOKEN, sleep=sleeps.append)


def test_the_roster_is_read_with_the_bearer_token(connector, wfm, sleeps):
    assert connector.roster() == ROSTER
    assert wfm.seen == [("/roster", {})]
    assert wfm.unauthorised == 0
    assert sleeps == []


def test_a_wrong_token_is_a_401_and_is_not_retried(wfm, sleeps):
    connector = HttpConnector(wfm.base_url, "not-the-token", sleep=sleeps.append)

    with pytest.raises(ConnectorError, match="401"):
        connector.roster()
    assert wfm.unauthorised == 1
    assert sleeps == []


def test_schedule_days_follow_next_through_three_pages_with_the_dates(connector, wfm):
    assert list(connector.schedule_days(start=START, end=END)) == DAYS
    window = {"start": "2026-03-02", "end": "2026-03-07"}
    assert wfm.seen == [
        ("/schedules", window),
        ("/schedules", {**window, "page": "2"}),
        ("/schedules", {**window, "page": "3"}),
    ]


def test_schedule_days_are_fetched_a_page_at_a_time_as_they_are_read(connector, wfm):
    days = connector.schedule_days(start=START, end=END)
    assert wfm.seen == []

    assert next(days) == DAYS[0]
    assert next(days) == DAYS[1]
    assert len(wfm.seen) == 1
    assert next(days) == DAYS[2]
    assert len(wfm.seen) == 2


def test_days_outside_the_window_asked_for_are_left_out(connector, wfm):
    # An API that ignores the window: what it sends outside it must not overwrite other days.
    wfm.script["/schedules"].append(answer(200, json.dumps({"days": DAYS, "next": None})))
    window = {"start": START + dt.timedelta(days=1), "end": START + dt.timedelta(days=2)}

    assert list(connector.schedule_days(**window)) == DAYS[1:3]


def test_a_503_is_retried_after_a_jittered_backoff_and_logged_without_the_token(
    connector, wfm, sleeps, caplog
):
    wfm.script["/roster"].append(answer(503, "busy"))

    with caplog.at_level(logging.WARNING, logger="sync.http_connector"):
        assert connector.roster() == ROSTER
    assert len(wfm.seen) == 2
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5
    assert f"{wfm.base_url}/roster" in caplog.text
    assert "503" in caplog.text
    assert TOKEN not in caplog.text


def test_a_429_waits_as_long_as_retry_after_says(connector, wfm, sleeps):
    wfm.script["/schedules"].append(answer(429, "slow down", {"Retry-After": "1"}))

    assert list(connector.schedule_days(start=START, end=END)) == DAYS
    assert sleeps == [1]
    assert len(wfm.seen) == 4


def test_an_unreachable_api_is_retried_with_backoff_then_fails(sleeps):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    connector = HttpConnector(f"http://127.0.0.1:{port}", TOKEN, sleep=sleeps.append)

    with pytest.raises(ConnectorError, match="after 5 attempts"):
        connector.roster()
    assert len(sleeps) == 4
    assert sleeps != [0.5, 1, 2, 4]  # jittered
    assert all(base / 2 <= slept <= base for base, slept in zip([0.5, 1, 2, 4], sleeps, strict=True))


def test_a_read_timeout_is_retried(wfm, sleeps):
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.5)
        return web.json_response(ROSTER)

    wfm.script["/roster"].append(slow)
    connector = HttpConnector(wfm.base_url, TOKEN, timeout=(5, 0.2), sleep=sleeps.append)

    assert connector.roster() == ROSTER
    assert len(wfm.seen) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_4xx_fail_at_once_with_their_status(connector, wfm, sleeps, status):
    wfm.script["/roster"].append(answer(status))

    with pytest.raises(ConnectorError, match=str(status)):
        connector.roster()
    assert len(wfm.seen) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "other_origin",
    [
        "http://localhost:{port}/schedules",
        "http://127.0.0.1:{other_port}/schedules",
        "https://127.0.0.1:{port}/schedules",
    ],
    ids=["host", "port", "scheme"],
)
def test_a_next_link_to_another_origin_is_refused(connector, wfm, other_origin):
    wfm.next_links[1] = other_origin.format(port=wfm.port, other_port=wfm.port + 1)

    days = connector.schedule_days(start=START, end=END)
    assert [next(days), next(days)] == DAYS[:2]
    with pytest.raises(ConnectorError, match="untrusted upstream"):
        next(days)
    assert len(wfm.seen) == 1


def test_a_next_link_that_loops_stops_at_the_page_bound(wfm):
    wfm.next_links[1] = "/schedules?start=2026-03-02&end=2026-03-07&page=1"  # relative, back to itself
    connector = HttpConnector(wfm.base_url, TOKEN, max_pages=3)

    with pytest.raises(ConnectorError, match="more than 3 pages"):
        list(connector.schedule_days(start=START, end=END))
    assert len(wfm.seen) == 3


@pytest.mark.parametrize("body", ["<html>Maintenance</html>", "[1, 2, 3]", ""])
def test_a_body_that_is_not_a_json_object_is_refused(connector, wfm, sleeps, body):
    wfm.script["/roster"].append(answer(200, body))

    with pytest.raises(ConnectorError, match="JSON"):
        connector.roster()
    assert sleeps == []


def test_a_page_without_a_list_of_days_is_refused(connector, wfm):
    wfm.script["/schedules"].append(answer(200, '{"items": []}'))

    with pytest.raises(ConnectorError, match="no list of days"):
        list(connector.schedule_days(start=START, end=END))


def test_a_page_of_another_export_version_is_refused(connector, wfm):
    wfm.script["/schedules"].insert(
        0,
        answer(200, json.dumps({"format": "em-agent-wfm-export", "version": 2, "days": DAYS, "next": None})),
    )

    with pytest.raises(ConnectorError, match="version '2'"):
        list(connector.schedule_days(start=START, end=END))


async def _chunked_megabyte(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()  # no Content-Length: only counting what arrives can stop it
    await response.prepare(request)
    for _ in range(1024):
        await response.write(b" " * 1024)
    await response.write_eof()
    return response


@pytest.mark.parametrize(
    "respond", [answer(200, " " * 1024 * 1024), _chunked_megabyte], ids=["content-length", "chunked"]
)
def test_a_response_larger_than_the_bound_is_refused(wfm, respond):
    wfm.script["/roster"].append(respond)
    connector = HttpConnector(wfm.base_url, TOKEN, max_page_bytes=64 * 1024)

    with pytest.raises(ConnectorError, match="larger than 65536 bytes"):
        connector.roster()


# --- from a WfmSource ------------------------------------------------------------------------------


def _source(location: str, setting: str = "WFM_ACME_TOKEN") -> WfmSource:
    return WfmSource(kind=SourceKind.HTTP, location=location, token_setting=setting)


def test_connector_for_an_http_source_reads_the_token_from_the_environment(wfm, monkeypatch):
    monkeypatch.setenv("WFM_ACME_TOKEN", TOKEN)

    connector = connector_for(_source(wfm.base_url + "/"))

    assert isinstance(connector, HttpConnector)
    assert connector.roster() == ROSTER


def test_the_token_may_come_from_settings(wfm, monkeypatch, settings):
    monkeypatch.delenv("WFM_ACME_TOKEN", raising=False)
    settings.WFM_ACME_TOKEN = TOKEN

    assert HttpConnector.from_source(_source(wfm.base_url)).roster() == ROSTER


def test_a_missing_token_names_the_variable(monkeypatch):
    monkeypatch.delenv("WFM_ACME_TOKEN", raising=False)

    with pytest.raises(ConnectorError, match="WFM_ACME_TOKEN"):
        HttpConnector.from_source(_source("https://wfm.example.com/api"))


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", ""])
def test_only_wfm_settings_can_be_sent_as_a_token(monkeypatch, name):
    monkeypatch.setenv("DATABASE_URL", "postgres://user:password@db/em")

    with pytest.raises(ConnectorError, match="WFM_"):
        HttpConnector.from_source(_source("https://wfm.example.com/api", setting=name))


@pytest.mark.parametrize(
    "location",
    ["ftp://wfm.example.com/export", "/srv/wfm", "https://user:pw@wfm.example.com/api", "https://"],
)
def test_the_location_must_be_an_http_url_without_credentials(monkeypatch, location):
    monkeypatch.setenv("WFM_ACME_TOKEN", TOKEN)

    with pytest.raises(ConnectorError):
        HttpConnector.from_source(_source(location))
