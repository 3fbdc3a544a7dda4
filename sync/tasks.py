"""The sync's tasks. The nightly sync in beat: every quarter of an hour the organisations whose
night has come (02:00 in their own zone by default) get their night claimed and handed to a worker,
once a night (sync.nightly). Safe to fire twice: a claim is handed out once, and its task runs only
a claim still queued."""

from celery import shared_task

from em_agent.models import Agent, Organization
from sync.nightly import SOFT_TIME_LIMIT_SECONDS, TIME_LIMIT_SECONDS, nightly_sync_run, nightly_syncs_hand_out
from sync.services import wfm_sync


@shared_task(name="sync.run_due_syncs")
def run_due_syncs() -> int:
    return nightly_syncs_hand_out()


@shared_task(name="sync.sync_night", soft_time_limit=SOFT_TIME_LIMIT_SECONDS, time_limit=TIME_LIMIT_SECONDS)
def sync_night(night_id: int) -> str | None:
    """One attempt of a claimed night (sync.models.NightlySync)."""
    run = nightly_sync_run(night_id=night_id)
    return run.status if run is not None else None


@shared_task(
    name="sync.sync_organization", soft_time_limit=SOFT_TIME_LIMIT_SECONDS, time_limit=TIME_LIMIT_SECONDS
)
def sync_organization(organization_id: int, trigger: str = "schedule") -> str | None:
    """A run outside the nightly claims: an operator's Sync now (trigger "admin"). The default is
    for the messages the beat sent before nights were claimed."""
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
