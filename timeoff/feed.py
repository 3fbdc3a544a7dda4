"""What the WFM sync writes for time off: the agents' earned balances and the interval staffing, set
based (a few statements whatever the number of rows). The sync checks the export's rows and resolves
their references; these functions take ids and exact values, and write only what differs."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from django.db import transaction
from django.db.models import Q

from em_agent.localtime import local_day_bounds
from em_agent.models import Organization
from timeoff.models import StaffingInterval, TimeOffBalance

# Rows per statement: well inside SQLite's and PostgreSQL's limits on parameters.
BATCH = 1000


class FeedCounts(TypedDict):
    created: int
    updated: int
    unchanged: int
    deleted: int


@dataclass(frozen=True)
class EarnedBalance:
    agent_id: int
    activity_code_id: int
    earned_minutes: int
    as_of: dt.date


@dataclass(frozen=True)
class IntervalStaffing:
    team_id: int | None  # None: the whole organisation
    start: dt.datetime  # aware
    minutes: int
    required: int
    scheduled: int


@transaction.atomic
def time_off_balances_upsert(
    *, organization: Organization, balances: Sequence[EarnedBalance], now: dt.datetime
) -> FeedCounts:
    """Each (agent, code) of `balances` gets that earned balance; other agents' and codes' balances
    stay as they are. A balance equal to the stored one is not written (nor its `updated_at`)."""
    stored = {
        (agent_id, code_id): (minutes, as_of)
        for agent_id, code_id, minutes, as_of in TimeOffBalance.objects.filter(
            agent__organization=organization
        ).values_list("agent_id", "activity_code_id", "earned_minutes", "as_of")
    }
    writes, created = [], 0
    for balance in balances:
        key = (balance.agent_id, balance.activity_code_id)
        current = stored.get(key)
        if current == (balance.earned_minutes, balance.as_of):
            continue
        created += current is None
        writes.append(
            TimeOffBalance(
                agent_id=balance.agent_id,
                activity_code_id=balance.activity_code_id,
                earned_minutes=balance.earned_minutes,
                as_of=balance.as_of,
                updated_at=now,
            )
        )
    # One upsert for new and changed rows alike: a balance another writer created meanwhile (an
    # accrual, a supervisor) is updated, not a unique violation that fails the sync.
    TimeOffBalance.objects.bulk_create(
        writes,
        batch_size=BATCH,
        update_conflicts=True,
        unique_fields=["agent", "activity_code"],
        update_fields=["earned_minutes", "as_of", "updated_at"],
    )
    return FeedCounts(
        created=created,
        updated=len(writes) - created,
        unchanged=len(balances) - len(writes),
        deleted=0,
    )


@transaction.atomic
def staffing_intervals_replace(
    *,
    organization: Organization,
    days: Collection[tuple[int | None, dt.date]],
    intervals: Sequence[IntervalStaffing],
    keep: Collection[tuple[int | None, dt.datetime]] = (),
    now: dt.datetime,
) -> FeedCounts:
    """Replaces the staffing of each (team, local date) of `days` (dates in the organisation's
    default zone; team None: the organisation's own) by `intervals`: an interval that starts on one
    of those days and is not among them is removed, unless its (team, start) is in `keep` (a row the
    sync skipped leaves its interval as it was). Intervals of other days and teams stay. Equal
    intervals are not written. `intervals` must start on the `days` and name each (team, start) once."""
    zone = zoneinfo.ZoneInfo(organization.default_timezone)
    days = set(days)
    bounds = {key: local_day_bounds(key[1], zone) for key in days}
    if not bounds:
        return FeedCounts(created=0, updated=0, unchanged=0, deleted=0)
    teams = {team for team, _date in days}
    in_teams = Q(team_id__in=[team for team in teams if team is not None])
    if None in teams:
        in_teams |= Q(team__isnull=True)
    # The organisation's intervals over the span of the days, of the teams named: one range read.
    stored: dict[tuple[int | None, dt.datetime], tuple[int, int, int, int]] = {
        (team_id, start): (pk, minutes, required, scheduled)
        for pk, team_id, start, minutes, required, scheduled in StaffingInterval.objects.filter(
            in_teams,
            organization=organization,
            start__gte=min(begin for begin, _end in bounds.values()),
            start__lt=max(end for _begin, end in bounds.values()),
        ).values_list("pk", "team_id", "start", "minutes", "required", "scheduled")
    }
    wanted = {(interval.team_id, interval.start): interval for interval in intervals}
    new, changed = [], []
    for key, interval in wanted.items():
        current = stored.get(key)
        values = (interval.minutes, interval.required, interval.scheduled)
        if current is None:
            new.append(
                StaffingInterval(
                    organization=organization,
                    team_id=interval.team_id,
                    start=interval.start,
                    minutes=interval.minutes,
                    required=interval.required,
                    scheduled=interval.scheduled,
                    updated_at=now,
                )
            )
        elif current[1:] != values:
            changed.append(
                StaffingInterval(
                    pk=current[0],
                    minutes=interval.minutes,
                    required=interval.required,
                    scheduled=interval.scheduled,
                    updated_at=now,
                )
            )
    kept = set(keep)
    gone = [
        pk
        for (team_id, start), (pk, *_values) in stored.items()
        if (team_id, start) not in wanted
        and (team_id, start) not in kept
        and _on_listed_day(team_id, start, days=days, zone=zone)
    ]
    for chunk in _chunks(gone):
        StaffingInterval.objects.filter(pk__in=chunk).delete()
    # Plain inserts: an upsert cannot name a partial unique index portably, and the sync (one run
    # per organisation at a time) is the only writer of new intervals.
    StaffingInterval.objects.bulk_create(new, batch_size=BATCH)
    StaffingInterval.objects.bulk_update(
        changed, ["minutes", "required", "scheduled", "updated_at"], batch_size=BATCH
    )
    return FeedCounts(
        created=len(new),
        updated=len(changed),
        unchanged=len(wanted) - len(new) - len(changed),
        deleted=len(gone),
    )


def _on_listed_day(
    team_id: int | None,
    start: dt.datetime,
    *,
    days: Collection[tuple[int | None, dt.date]],
    zone: zoneinfo.ZoneInfo,
) -> bool:
    return (team_id, start.astimezone(zone).date()) in days


def _chunks(values: list[int]) -> Iterable[list[int]]:
    for index in range(0, len(values), BATCH):
        yield values[index : index + BATCH]
