"""Housekeeping tasks run by Celery beat. Each is idempotent: running it twice removes nothing more."""

import datetime as dt
import logging
from importlib import import_module

from celery import shared_task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="em_agent.sessions_clear_expired")
def sessions_clear_expired() -> int:
    """Deletes sessions past their expiry, and the user-session records that pointed at them."""
    from allauth.usersessions.models import UserSession
    from django.contrib.sessions.models import Session

    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()
    orphaned, _ = UserSession.objects.exclude(session_key__in=Session.objects.values("session_key")).delete()
    logger.info("cleared expired sessions; %d user-session records removed", orphaned)
    return orphaned


@shared_task(name="em_agent.activation_counters_prune")
def activation_counters_prune() -> int:
    """Deletes attempt counters whose window closed long ago (they would restart at zero anyway)."""
    from activation.models import AttemptCounter

    horizon = timezone.now() - dt.timedelta(seconds=settings.ACTIVATION_FAILURE_WINDOW_SECONDS * 2)
    deleted, _ = AttemptCounter.objects.filter(window_started_at__lt=horizon).delete()
    return deleted
