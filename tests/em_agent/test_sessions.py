"""Inactivity timeout, passive calls, absolute lifetime, and sessions ended by deactivation."""

import pytest
import time_machine
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session

from em_agent.services import agent_set_active

pytestmark = pytest.mark.django_db

START = "2026-12-01 08:00:00 +00:00"


def test_59_minutes_idle_still_works(logged_in, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        traveller.shift(59 * 60)
        assert client.get("/api/v1/me").status_code == 200


def test_61_minutes_idle_ends_the_session_for_good(logged_in, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        traveller.shift(61 * 60)

        response = client.get("/api/v1/me")
        assert response.status_code == 401
        assert response.json()["code"] == "session_expired"

        traveller.shift(-30 * 60)  # even if the clock looked kinder, the token is gone
        again = client.get("/api/v1/me")
        assert again.status_code == 401
        assert again.json()["code"] == "session_expired"
        assert not UserSession.objects.filter(user=agent.user).exists()


def test_activity_keeps_a_session_alive_past_60_minutes(logged_in, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        for _ in range(4):
            traveller.shift(40 * 60)
            assert client.get("/api/v1/me").status_code == 200


def test_the_allauth_endpoints_are_guarded_too(logged_in, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        traveller.shift(61 * 60)
        response = client.get("/_allauth/app/v1/auth/session")
        assert response.status_code == 401
        assert response.json()["code"] == "session_expired"


def test_passive_polls_do_not_keep_a_session_alive(logged_in, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        for _ in range(5):
            traveller.shift(11 * 60)
            assert (
                client.get("/api/v1/notifications/unacknowledged-count").status_code == 200
            )  # checked, but not activity
        traveller.shift(6 * 60)  # 61 minutes since the last real activity

        response = client.get("/api/v1/notifications/unacknowledged-count")
        assert response.status_code == 401
        assert response.json()["code"] == "session_expired"


def test_a_passive_poll_after_the_timeout_is_refused(logged_in, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        traveller.shift(61 * 60)
        assert client.get("/api/v1/notifications/unacknowledged-count").json()["code"] == "session_expired"


def test_the_absolute_lifetime_ends_a_busy_session(logged_in, agent, settings):
    assert settings.SESSION_ABSOLUTE_LIFETIME_HOURS == 12
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        for _ in range(23):  # a call every 30 minutes for 11.5 hours
            traveller.shift(30 * 60)
            assert client.get("/api/v1/me").status_code == 200
        traveller.shift(30 * 60)

        response = client.get("/api/v1/me")
        assert response.status_code == 401
        assert response.json()["code"] == "session_expired"


def test_an_organisation_override_applies_to_sessions_already_open(logged_in, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        agent.organization.session_idle_timeout_minutes = 15
        agent.organization.save()
        traveller.shift(2 * 60)  # the cached timeout of the organisation is at most a minute old
        assert client.get("/api/v1/me").status_code == 200
        traveller.shift(16 * 60)

        assert client.get("/api/v1/me").json()["code"] == "session_expired"


def test_an_organisation_cannot_lengthen_the_timeout(agent):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        type(agent.organization).objects.filter(pk=agent.organization.pk).update(
            session_idle_timeout_minutes=600
        )


def test_an_organisation_override_is_honoured(logged_in, agent):
    agent.organization.session_idle_timeout_minutes = 15
    agent.organization.save()
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        me = client.get("/api/v1/me").json()
        assert me["session_idle_timeout_minutes"] == 15
        traveller.shift(14 * 60)
        assert client.get("/api/v1/me").status_code == 200
        traveller.shift(16 * 60)
        assert client.get("/api/v1/me").json()["code"] == "session_expired"


def test_the_activity_stamp_is_written_at_most_once_a_minute(logged_in, agent):
    with time_machine.travel(START, tick=False) as traveller:
        client = logged_in(agent)
        before = Session.objects.get(session_key=client.token).session_data
        traveller.shift(20)
        client.get("/api/v1/me")
        assert Session.objects.get(session_key=client.token).session_data == before
        traveller.shift(60)
        client.get("/api/v1/me")
        assert Session.objects.get(session_key=client.token).session_data != before


def test_deactivating_an_agent_ends_its_sessions_at_once(
    logged_in, agent, django_capture_on_commit_callbacks
):
    phone = logged_in(agent)
    tablet = logged_in(agent)
    assert UserSession.objects.filter(user=agent.user).count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        agent_set_active(agent=agent, active=False)

    assert not Session.objects.filter(session_key__in=[phone.token, tablet.token]).exists()
    assert not UserSession.objects.filter(user=agent.user).exists()
    # Reactivating later does not bring the old tokens back.
    agent_set_active(agent=agent, active=True)
    assert phone.get("/api/v1/me").status_code == 401
    assert tablet.get("/api/v1/me").status_code == 401


def test_logout_ends_only_that_session(logged_in, agent):
    phone = logged_in(agent)
    tablet = logged_in(agent)

    phone.delete("/_allauth/app/v1/auth/session")

    assert phone.get("/api/v1/me").status_code == 401
    assert tablet.get("/api/v1/me").status_code == 200
