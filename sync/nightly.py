"""The nightly sync: one run per organisation and night, claimed when it is handed to a worker.

Every quarter of an hour beat calls `nightly_syncs_hand_out`. For each organisation with a WFM
source the night due last (02:00 in its zone by default) has one `NightlySync` row, inserted in the
transaction that hands its task to the broker (after commit); the unique (organisation, night)
lets two beats at once insert it once. It is handed out again only by a conditional update that
one beat wins: when a planned retry is due, or when its task never started for longer than the
broker could still deliver it (the message was lost). The task starts a run only by a conditional
update from queued to running, so a message delivered twice, or a second one for the same claim,
runs nothing. A failed attempt is retried after 15, 30, 60, 120 minutes, up to
WFM_SYNC_RETRIES_PER_NIGHT retries; the next night starts over.

An operator's run (Sync now, the command, seed_demo) that succeeded after the due time leaves the
night nothing to do, as before; one agent's run after its activation is not the organisation's."""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from em_agent.models import Organization
from sync.models import NightlySync, NightStatus, RunStatus, SyncRun
from sync.services import wfm_sync

logger = logging.getLogger(__name__)

# The nightly task's limits (sync.tasks): well under the broker's visibility timeout (3,600 s), so
# Redis never hands a running sync to a second worker.
SOFT_TIME_LIMIT_SECONDS = 2700
TIME_LIMIT_SECONDS = 3000
# A night still running this long after its attempt started has lost its worker (killed at the
# time limit, or the machine went away): the attempt counts as failed.
LOST_RUN_AFTER = dt.timedelta(seconds=TIME_LIMIT_SECONDS + 300)
_OPEN = [NightStatus.QUEUED, NightStatus.RUNNING, NightStatus.RETRY_PLANNED]


def retries_per_night() -> int:
    return int(getattr(settings, "WFM_SYNC_RETRIES_PER_NIGHT", 4))


def retry_delay(attempts: int) -> dt.timedelta:
    """After the first failed attempt 15 minutes, then 30, 60, 120, ... (WFM_SYNC_RETRY_MINUTES)."""
    return dt.timedelta(minutes=int(getattr(settings, "WFM_SYNC_RETRY_MINUTES", 15)) * 2 ** (attempts - 1))


def redispatch_after() -> dt.timedelta:
    """How long a claim may stay queued before its task is handed out again. Until the broker's
    visibility timeout has passed, a message handed out may still be waiting its turn in a long
    queue, or be on its way back from a worker that died holding it (Redis redelivers an unacked
    message after that timeout): sending another only adds a message that will find the claim
    taken. After it, nothing will bring the message back (the broker was down when it was sent, or
    lost it). Even then a second message is harmless: whichever starts first runs, the other
    finds the night running or done."""
    default = getattr(settings, "CELERY_BROKER_VISIBILITY_TIMEOUT_SECONDS", 3600)
    return dt.timedelta(seconds=int(getattr(settings, "WFM_SYNC_REDISPATCH_AFTER_SECONDS", default)))


def due_at(organization: Organization, night: dt.date) -> dt.datetime:
    """When the sync of that night is due, in UTC. A sync time the clocks skip (02:00 in Amsterdam
    on the spring-forward night) is due when they jump (03:00); a time they repeat (autumn), at its
    first occurrence."""
    zone = zoneinfo.ZoneInfo(organization.default_timezone)
    return dt.datetime.combine(night, organization.nightly_sync_time, tzinfo=zone).astimezone(dt.UTC)


def night_of(organization: Organization, *, now: dt.datetime) -> tuple[dt.date, dt.datetime]:
    """The latest night whose sync is due at or before now, and when it was due. Compared as
    instants, not as wall-clock times (an aware comparison in one zone ignores DST)."""
    night = now.astimezone(zoneinfo.ZoneInfo(organization.default_timezone)).date()
    due = due_at(organization, night)
    if due > now:
        night -= dt.timedelta(days=1)
        due = due_at(organization, night)
    return night, due


def _covering_run(organization_id: int, *, since: dt.datetime) -> SyncRun | None:
    """A full run that succeeded after the night's due time: the night has nothing left to do."""
    return (
        SyncRun.objects.filter(
            organization_id=organization_id, status=RunStatus.SUCCEEDED, started_at__gte=since
        )
        .exclude(trigger="activation")  # one agent's schedule is not the organisation's sync
        .order_by("started_at")
        .first()
    )


def _dispatch(night_id: int) -> None:
    from sync.tasks import sync_night

    # Robust: a broker that is down must not undo the claim; the claim is handed out again later.
    transaction.on_commit(lambda: sync_night.delay(night_id), robust=True)


def nightly_syncs_hand_out(*, now: dt.datetime | None = None) -> int:
    """Beat, every quarter of an hour; safe to fire twice, and two at once. Returns the number of
    nights handed to a worker."""
    now = now or timezone.now()
    handed_out = 0
    for organization in Organization.objects.filter(wfm_source__isnull=False).order_by("pk"):
        handed_out += _hand_out(organization, now=now)
    return handed_out


@transaction.atomic
def _hand_out(organization: Organization, *, now: dt.datetime) -> bool:
    night, due = night_of(organization, now=now)
    _settle_lost_runs(organization, now=now)
    # Nights before this one that were still to run are over: this night's run replaces them.
    NightlySync.objects.filter(
        organization=organization, night__lt=night, status__in=[NightStatus.QUEUED, NightStatus.RETRY_PLANNED]
    ).update(status=NightStatus.SUPERSEDED, next_attempt_at=None, finished_at=now)
    covering = _covering_run(organization.pk, since=due)
    claim = NightlySync.objects.filter(organization=organization, night=night).first()
    if claim is None:
        try:
            with transaction.atomic():  # a savepoint: the other beat's insert wins, this one is undone
                claim = NightlySync.objects.create(
                    organization=organization,
                    night=night,
                    due_at=due,
                    queued_at=now,
                    status=NightStatus.QUEUED if covering is None else NightStatus.SUCCEEDED,
                    finished_at=None if covering is None else now,
                    covered_by=covering,
                )
        except IntegrityError:
            return False  # another beat claimed this night a moment ago
        if covering is not None:
            return False
        _dispatch(claim.pk)
        return True
    if covering is not None:  # an operator's run since: a waiting message will find nothing to do
        NightlySync.objects.filter(
            pk=claim.pk, status__in=[NightStatus.QUEUED, NightStatus.RETRY_PLANNED]
        ).update(status=NightStatus.SUCCEEDED, next_attempt_at=None, covered_by=covering, finished_at=now)
        return False
    if claim.status == NightStatus.RETRY_PLANNED:
        if NightlySync.objects.filter(
            pk=claim.pk, status=NightStatus.RETRY_PLANNED, next_attempt_at__lte=now
        ).update(status=NightStatus.QUEUED, next_attempt_at=None, queued_at=now):
            _dispatch(claim.pk)
            return True
    elif claim.status == NightStatus.QUEUED:
        # Its task never started: lost, if the broker can no longer deliver it.
        if NightlySync.objects.filter(
            pk=claim.pk, status=NightStatus.QUEUED, queued_at__lte=now - redispatch_after()
        ).update(queued_at=now):
            logger.warning(
                "nightly sync %s of %s was never started: handed out again", night, organization.slug
            )
            _dispatch(claim.pk)
            return True
    return False


def _settle_lost_runs(organization: Organization, *, now: dt.datetime) -> None:
    for night in NightlySync.objects.filter(
        organization=organization, status=NightStatus.RUNNING, started_at__lte=now - LOST_RUN_AFTER
    ):
        if _settle(night, succeeded=False, now=now):
            # Its record would say "running" for ever.
            SyncRun.objects.filter(night=night, status=RunStatus.RUNNING).update(
                status=RunStatus.FAILED,
                finished_at=now,
                error="the worker stopped before the run ended (no result within the task's time limit)",
            )


def _settle(night: NightlySync, *, succeeded: bool, now: dt.datetime) -> bool:
    """The attempt `night.attempts` ended: the night succeeded, or gets a retry, or has none left
    (the cap, or the retry would come after the next night's sync). Only while that attempt is
    still the night's running one."""
    if succeeded:
        values: dict = {"status": NightStatus.SUCCEEDED, "next_attempt_at": None}
    else:
        retry_at = now + retry_delay(night.attempts)
        next_night = due_at(night.organization, night.night + dt.timedelta(days=1))
        if night.attempts - 1 < retries_per_night() and retry_at < next_night:
            values = {"status": NightStatus.RETRY_PLANNED, "next_attempt_at": retry_at}
        else:
            values = {"status": NightStatus.FAILED, "next_attempt_at": None}
    return bool(
        NightlySync.objects.filter(pk=night.pk, status=NightStatus.RUNNING, attempts=night.attempts).update(
            finished_at=now, **values
        )
    )


def nightly_sync_run(*, night_id: int) -> SyncRun | None:
    """The task of a claimed night: one attempt, if the night is still queued; nothing if it is
    running, done, or gone (a message delivered twice, or handed out again)."""
    night = NightlySync.objects.select_related("organization").filter(pk=night_id).first()
    if night is None:
        return None
    now = timezone.now()
    queued = NightlySync.objects.filter(pk=night.pk, status=NightStatus.QUEUED)
    covering = _covering_run(night.organization_id, since=night.due_at)
    if covering is not None:  # an operator synced while this waited in the queue
        queued.update(status=NightStatus.SUCCEEDED, covered_by=covering, finished_at=now)
        return None
    if not queued.update(
        status=NightStatus.RUNNING, started_at=now, finished_at=None, attempts=F("attempts") + 1
    ):
        return None
    night.refresh_from_db()
    # A run skipped because another held the organisation's lock counts as an attempt that did not
    # succeed: retried like a failure (if the other run succeeded, the retry finds it and stops).
    run = wfm_sync(organization=night.organization, trigger="schedule", night=night)
    _settle(night, succeeded=run.status == RunStatus.SUCCEEDED, now=timezone.now())
    return run
