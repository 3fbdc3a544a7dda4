"""The nightly sync in beat: every quarter of an hour, the organisations whose sync time has come
(02:00 in their own zone by default) and that have not synced since are handed to a worker. Safe to
fire twice: the organisation lock lets one run, and a run started since the due time counts."""

import datetime as dt
import functools
import zoneinfo

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from em_agent.models import Agent, Organization
from sync.models import RunStatus, SyncRun
from sync.services import wfm_sync


@shared_task(
    name="sync.sync_organization",
    # Well under the broker's visibility timeout (3,600 s), so a long sync is never redelivered.
    soft_time_limit=2700,
    time_limit=3000,
)
def sync_organization(organization_id: int, trigger: str = "schedule") -> str | None:
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return None
    return wfm_sync(organization=organization, trigger=trigger).status


@shared_task(name="sync.sync_agent", soft_time_limit=600, time_limit=900)
def sync_agent(agent_id: int) -> str | None:
    """One agent's schedule, right after it activated the app (WfmSource.sync_on_activation)."""
    agent = Agent.objects.select_related("organization").filter(pk=agent_id).first()
    if agent is None:
        return None
    return wfm_sync(organization=agent.organization, trigger="activation", only_agent=agent).status


def last_due_at(organization: Organization, *, now: dt.datetime) -> dt.datetime:
    """The latest moment at or before now when the nightly sync was due, in the organisation's zone."""
    zone = zoneinfo.ZoneInfo(organization.default_timezone)
    local = now.astimezone(zone)
    due = dt.datetime.combine(local.date(), organization.nightly_sync_time, tzinfo=zone)
    if due > local:
        due -= dt.timedelta(days=1)
    return due.astimezone(dt.UTC)


@shared_task(name="sync.run_due_syncs")
def run_due_syncs() -> int:
    now = timezone.now()
    handed_out = 0
    for organization in Organization.objects.filter(wfm_source__isnull=False):
        due = last_due_at(organization, now=now)
        done = (
            SyncRun.objects.filter(
                organization=organization,
                started_at__gte=due,
                status__in=[RunStatus.RUNNING, RunStatus.SUCCEEDED],
            )
            .exclude(trigger="activation")
            .exists()
        )  # one agent's run is not the organisation's
        if not done:
            transaction.on_commit(functools.partial(sync_organization.delay, organization.pk))
            handed_out += 1
    return handed_out
