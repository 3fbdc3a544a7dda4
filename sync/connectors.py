"""WFM connectors: where an organisation's export comes from. They hand over raw, untrusted JSON;
the sync validates every row (sync.rows)."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import ijson
from django.conf import settings

from sync.models import SourceKind, WfmSource

# A file larger than this is refused rather than read (10,000 agents x 49 days of schedules is
# ~150 MB of JSON; the roster far less); also the default bound of an HTTP export's spool.
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

    def schedules_file(self, *, start: dt.date, end: dt.date) -> AbstractContextManager[Path]:
        """A local file with the schedules document of the window (docs/wfm-export.md), whole when
        the block begins: a connector that downloads spools it to a temporary file first, removed
        when the block ends. The sync reads it (read_schedule_days) inside its transaction, so
        nothing may be left to fetch over the network by then."""
        ...


class DirectoryConnector:
    """`<location>/roster.json` and `<location>/schedules.json` ({"days": [...]}), as docs/wfm-export.md
    describes: the embedded default and what seed_demo writes and loads. The files are on local disk
    and read where they are: nothing to spool."""

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

    @contextmanager
    def schedules_file(self, *, start: dt.date, end: dt.date) -> Iterator[Path]:
        yield self._path("schedules.json")


def read_schedule_days(path: Path, *, start: dt.date, end: dt.date) -> Iterator[dict]:
    """The day rows of a schedules document from start to end inclusive, streamed (ijson): 10,000
    agents' schedules are ~150 MB of JSON, over 1 GB as Python objects at once. Out-of-window rows
    are left out here; malformed ones go on to be skipped with a reason (sync.rows)."""
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
                date = day.get("date") if isinstance(day, dict) else None
                if isinstance(date, str) and len(date) == 10 and not low <= date <= high:
                    continue
                yield day
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise ConnectorError(f"{path} cannot be read: {exc}") from exc
    except OSError as exc:
        raise ConnectorError(f"{path} cannot be read: {exc}") from exc


def spool_max_bytes() -> int:
    return int(getattr(settings, "WFM_SYNC_SPOOL_MAX_BYTES", MAX_FILE_BYTES))


@contextmanager
def spooled_schedules(days: Iterable[object], *, name: str) -> Iterator[Path]:
    """The day rows, all of them, written to a temporary schedules document (in
    WFM_SYNC_SPOOL_DIR, or the system's temporary directory) before the block begins, and removed
    when it ends, whatever happens. Bounded by WFM_SYNC_SPOOL_MAX_BYTES: an export larger than that
    is refused as it arrives, rather than filling the disk."""
    limit = spool_max_bytes()
    try:
        handle = tempfile.NamedTemporaryFile(  # closed below, removed in the finally
            mode="wb",
            prefix="wfm-spool-",
            suffix=".json",
            dir=getattr(settings, "WFM_SYNC_SPOOL_DIR", None),
            delete=False,
        )
    except OSError as exc:
        raise ConnectorError(f"{name}: the export cannot be spooled: {exc}") from exc
    path = Path(handle.name)
    try:
        try:
            with handle:
                written = handle.write(_SPOOL_HEADER)
                separator = b"\n"
                for day in days:
                    try:
                        row = json.dumps(day, separators=(",", ":"), allow_nan=False).encode()
                    except ValueError:
                        raise ConnectorError(
                            f"{name}: a day row holds NaN or Infinity, which is not JSON"
                        ) from None
                    written += len(separator) + len(row)
                    if written > limit:
                        raise ConnectorError(
                            f"{name}: the schedules are larger than {limit} bytes, the limit of the "
                            "spool (setting WFM_SYNC_SPOOL_MAX_BYTES): stopped before changing anything"
                        )
                    handle.write(separator)
                    handle.write(row)
                    separator = b",\n"
                handle.write(b"\n]}\n")
        except OSError as exc:
            raise ConnectorError(f"{name}: the export cannot be spooled to {path.parent}: {exc}") from exc
        yield path
    finally:
        path.unlink(missing_ok=True)


_SPOOL_HEADER = json.dumps({"format": FORMAT, "version": 1})[:-1].encode() + b', "days": ['


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
