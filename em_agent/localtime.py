"""Wall-clock times in an agent's zone: does a local time exist on a date, and which instant is it.

One answer for every caller (the admin's day form, the sync's export rows, time off), so a time the
clocks skip is refused the same way everywhere and a time they repeat means the same instant.
In the hour the clocks repeat (fall back) a wall time happens twice: `fold=0` is the first (still
summer time), `fold=1` the second, as in PEP 495. In the hour they skip (spring forward) it never
happens: refused, never moved to a neighbouring time."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo


class NonexistentLocalTime(ValueError):
    """A wall time in the gap the clocks skip on that date."""

    def __init__(self, date: dt.date, time: dt.time, zone: zoneinfo.ZoneInfo) -> None:
        self.date, self.time, self.zone = date, time, zone
        super().__init__(f"{time:%H:%M} does not exist on {date} in {zone.key} (the clocks go forward)")


def local_time_exists(date: dt.date, time: dt.time, zone: zoneinfo.ZoneInfo) -> bool:
    wall = dt.datetime.combine(date, time, tzinfo=zone)
    # A wall time in the gap does not survive the round trip through UTC: it never happened.
    return wall.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None)


def local_time_is_ambiguous(date: dt.date, time: dt.time, zone: zoneinfo.ZoneInfo) -> bool:
    """True in the hour the clocks repeat: the time happens twice (choose with `fold`)."""
    first = dt.datetime.combine(date, time, tzinfo=zone)
    # The two folds also differ in the gap (PEP 495); there the time does not exist at all.
    return first.utcoffset() != first.replace(fold=1).utcoffset() and local_time_exists(date, time, zone)


def local_datetime(date: dt.date, time: dt.time, zone: zoneinfo.ZoneInfo, *, fold: int = 0) -> dt.datetime:
    """The instant of a wall time on a date, aware in `zone`; in the repeated hour `fold` chooses
    (0: the first occurrence). NonexistentLocalTime for a time the clocks skip."""
    if not local_time_exists(date, time, zone):
        raise NonexistentLocalTime(date, time, zone)
    return dt.datetime.combine(date, time, tzinfo=zone).replace(fold=fold)


def local_day_bounds(date: dt.date, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The local day as UTC instants [begin, end): 23, 24 or 25 hours. A midnight the clocks skip
    (some zones change at 00:00) begins the day at the change, which is what fold 0 gives."""
    begin = dt.datetime.combine(date, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    return begin, end


@functools.lru_cache(maxsize=8192)
def steady_utc_midnight(zone: zoneinfo.ZoneInfo, date: dt.date) -> dt.datetime | None:
    """The UTC instant of the date's local midnight when the whole day keeps one offset (every wall
    time is then midnight plus its minutes, no look-up needed); None on a day the clocks change."""
    first = dt.datetime.combine(date, dt.time(0, 0), tzinfo=zone)
    if first.utcoffset() != dt.datetime.combine(date, dt.time(23, 59), tzinfo=zone).utcoffset():
        return None
    return first.astimezone(dt.UTC)
