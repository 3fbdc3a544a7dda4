"""WFM connectors: where an organisation's export comes from. They hand over raw, untrusted JSON;
the sync validates every row (sync.rows)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import ijson

from sync.models import SourceKind, WfmSource

# A file larger than this is refused rather than read into memory (10,000 agents x 49 days of
# schedules is ~150 MB of JSON; the roster far less).
MAX_FILE_BYTES = 512 * 1024 * 1024


class ConnectorError(Exception):
    """The export could not be read at all (missing, unreachable, not JSON): the run fails, nothing
    is written. A bad row is not this: it is skipped with its reason."""


FORMAT = "em-agent-wfm-export"


def check_format(document: dict, *, name: str) -> None:
    """A version-1 reader refuses another format or version (docs/wfm-export.md): the meaning of
    the rows may differ. Both may be left out."""
    if document.get("format", FORMAT) != FORMAT:
        raise ConnectorError(
            f"{name} is not an EM Agent WFM export: format {str(document.get('format'))[:60]!r}"
        )
    if document.get("version", 1) != 1:
        raise ConnectorError(
            f"{name}: export version {str(document.get('version'))[:20]!r}; this reader knows 1"
        )


class WfmConnector(Protocol):
    def roster(self) -> dict:
        """{"teams": [...], "skills": [...], "activity_codes": [...], "agents": [...]}"""
        ...

    def schedule_days(self, *, start: dt.date, end: dt.date) -> Iterator[dict]:
        """Day rows from start to end inclusive: {"agent", "date", "published", "note", "activities"}."""
        ...


class DirectoryConnector:
    """`<location>/roster.json` and `<location>/schedules.json` ({"days": [...]}), as docs/wfm-export.md
    describes: the embedded default and what seed_demo writes and loads. The day rows are streamed
    (ijson): 10,000 agents' schedules are ~150 MB of JSON, over 1 GB as Python objects at once."""

    def __init__(self, location: str | Path) -> None:
        self.location = Path(location)

    def _path(self, name: str) -> Path:
        path = self.location / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ConnectorError(f"{path} does not exist") from None
        except OSError as exc:
            raise ConnectorError(f"{path} cannot be read: {exc}") from exc
        if size > MAX_FILE_BYTES:
            raise ConnectorError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        return path

    def roster(self) -> dict:
        path = self._path("roster.json")
        try:
            with path.open(encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConnectorError(f"{path} cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            raise ConnectorError(f"{path} does not hold a JSON object")
        return data

    def schedule_days(self, *, start: dt.date, end: dt.date) -> Iterator[dict]:
        path = self._path("schedules.json")
        low, high = start.isoformat(), end.isoformat()
        try:
            with path.open("rb") as handle:
                found, header = _header(ijson.parse(handle))
                if not found:
                    raise ConnectorError(f"{path} has no list of days")
                if not {"format", "version"} <= header.keys():
                    # Keys in another order (sorted: "days" first): one more pass over the events.
                    handle.seek(0)
                    header = {**_header(ijson.parse(handle), stop_at_days=False)[1], **header}
                check_format(header, name=str(path))
                handle.seek(0)
                # items() straight on the file, not on the events above: 3x faster (the C parser).
                for day in ijson.items(handle, "days.item", use_float=True):
                    # Out-of-window rows are left out here; malformed ones go on to be skipped with a reason.
                    date = day.get("date") if isinstance(day, dict) else None
                    if isinstance(date, str) and len(date) == 10 and not low <= date <= high:
                        continue
                    yield day
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise ConnectorError(f"{path} cannot be read: {exc}") from exc
        except OSError as exc:
            raise ConnectorError(f"{path} cannot be read: {exc}") from exc


def _header(
    events: Iterator[tuple[str, str, object]], *, stop_at_days: bool = True
) -> tuple[bool, dict[str, object]]:
    """Whether the document is an object with a "days" list, and its top-level plain values
    (format, version, generated_at) on the way; by default read only up to "days"."""
    header: dict[str, object] = {}
    found = False
    for prefix, event, value in events:
        if prefix == "":
            if event in ("start_map", "map_key"):
                continue
            return found, header  # its end, or not an object at all
        if prefix == "days" and event == "start_array":
            found = True
            if stop_at_days:
                return found, header
        elif "." not in prefix and event in ("string", "number", "boolean", "null"):
            header[prefix] = value
    return found, header


def connector_for(source: WfmSource) -> WfmConnector:
    if source.kind == SourceKind.DIRECTORY:
        return DirectoryConnector(source.location)
    if source.kind == SourceKind.HTTP:
        from sync.http_connector import HttpConnector

        return HttpConnector.from_source(source)
    raise ConnectorError(f"unknown WFM source kind {source.kind!r}")
