"""WFM connectors: where an organisation's export comes from. They hand over raw, untrusted JSON;
the sync validates every row (sync.rows)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sync.models import SourceKind, WfmSource

# A file larger than this is refused rather than read into memory (10,000 agents x 49 days of
# schedules is ~150 MB of JSON; the roster far less).
MAX_FILE_BYTES = 512 * 1024 * 1024


class ConnectorError(Exception):
    """The export could not be read at all (missing, unreachable, not JSON): the run fails, nothing
    is written. A bad row is not this: it is skipped with its reason."""


class WfmConnector(Protocol):
    def roster(self) -> dict:
        """{"teams": [...], "skills": [...], "activity_codes": [...], "agents": [...]}"""
        ...

    def schedule_days(self, *, start: dt.date, end: dt.date) -> Iterator[dict]:
        """Day rows from start to end inclusive: {"agent", "date", "published", "note", "activities"}."""
        ...


class DirectoryConnector:
    """`<location>/roster.json` and `<location>/schedules.json` ({"days": [...]}), as docs/wfm-export.md
    describes: the embedded default and what seed_demo writes and loads."""

    def __init__(self, location: str | Path) -> None:
        self.location = Path(location)

    def _read(self, name: str) -> dict:
        path = self.location / name
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ConnectorError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
            with path.open(encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise ConnectorError(f"{path} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConnectorError(f"{path} cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            raise ConnectorError(f"{path} does not hold a JSON object")
        return data

    def roster(self) -> dict:
        return self._read("roster.json")

    def schedule_days(self, *, start: dt.date, end: dt.date) -> Iterator[dict]:
        days = self._read("schedules.json").get("days")
        if not isinstance(days, list):
            raise ConnectorError("schedules.json has no list of days")
        low, high = start.isoformat(), end.isoformat()
        for day in days:
            # Out-of-window rows are left out here; malformed ones go on to be skipped with a reason.
            date = day.get("date") if isinstance(day, dict) else None
            if isinstance(date, str) and len(date) == 10 and not low <= date <= high:
                continue
            yield day


def connector_for(source: WfmSource) -> WfmConnector:
    if source.kind == SourceKind.DIRECTORY:
        return DirectoryConnector(source.location)
    if source.kind == SourceKind.HTTP:
        from sync.http_connector import HttpConnector

        return HttpConnector.from_source(source)
    raise ConnectorError(f"unknown WFM source kind {source.kind!r}")
