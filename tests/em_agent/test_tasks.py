import datetime as dt

import pytest
import time_machine
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django_celery_beat.models import PeriodicTask

from activation.limits import reserve_attempt
from activation.models import AttemptCounter
from em_agent.tasks import activation_counters_prune, sessions_clear_expired

pytestmark = pytest.mark.django_db


def test_housekeeping_is_scheduled_in_beat():
    tasks = set(PeriodicTask.objects.values_list("task", flat=True))

    assert {"em_agent.sessions_clear_expired", "em_agent.activation_counters_prune"} <= tasks


def test_expired_sessions_are_cleared_twice_safely(logged_in, agent, teammate):
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False) as traveller:
        logged_in(agent)
        traveller.shift(dt.timedelta(hours=6))
        live = logged_in(teammate)
        traveller.shift(dt.timedelta(hours=7))  # the first session is past its 12 hours

        sessions_clear_expired()
        sessions_clear_expired()

    assert list(Session.objects.values_list("session_key", flat=True)) == [live.token]
    assert list(UserSession.objects.values_list("user", flat=True)) == [teammate.user_id]


def test_old_attempt_counters_are_pruned(agent):
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False) as traveller:
        reserve_attempt(agent_id=agent.pk, address="192.0.2.1")
        traveller.shift(dt.timedelta(hours=3))
        reserve_attempt(agent_id=agent.pk, address="192.0.2.2")

        assert activation_counters_prune() == 1  # the first address's window is long closed
        assert activation_counters_prune() == 0

    assert AttemptCounter.objects.filter(key="address:192.0.2.2").exists()
