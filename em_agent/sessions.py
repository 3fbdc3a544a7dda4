"""Session bookkeeping for the inactivity timeout, the absolute lifetime and ending sessions.

The app's token is the Django session key (allauth headless, client "app"). Stamps are epoch seconds
in the session itself, so every web process sees the same state.
"""

import hashlib
import time

from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.headless.internal import sessionkit
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import cache

LOGIN_AT = "em_login_at"
LAST_ACTIVITY_AT = "em_last_activity_at"
IDLE_TIMEOUT_MINUTES = "em_idle_timeout_minutes"


def idle_timeout_minutes_for(user) -> int:
    agent = getattr(user, "agent", None)
    if agent is not None:
        return agent.organization.idle_timeout_minutes
    return settings.SESSION_IDLE_TIMEOUT_MINUTES


def stamp_login(session: SessionBase, user) -> None:
    now = time.time()
    session[LOGIN_AT] = now
    session[LAST_ACTIVITY_AT] = now
    session[IDLE_TIMEOUT_MINUTES] = idle_timeout_minutes_for(user)


def expiry_reason(session: SessionBase, *, now: float) -> str | None:
    """Why a logged-in session is over, or None while it may go on."""
    login_at = session.get(LOGIN_AT)
    last_activity_at = session.get(LAST_ACTIVITY_AT)
    if login_at is None or last_activity_at is None:
        return "unstamped"  # not logged in through our login path: never trusted for long
    idle_minutes = session.get(IDLE_TIMEOUT_MINUTES, settings.SESSION_IDLE_TIMEOUT_MINUTES)
    if now - last_activity_at >= idle_minutes * 60:
        return "idle"
    if now - login_at >= settings.SESSION_ABSOLUTE_LIFETIME_HOURS * 3600:
        return "absolute"
    return None


def touch(session: SessionBase, *, now: float) -> None:
    """Records activity, writing the session at most once per interval."""
    if now - session[LAST_ACTIVITY_AT] >= settings.SESSION_ACTIVITY_WRITE_INTERVAL_SECONDS:
        session[LAST_ACTIVITY_AT] = now
        session.save()


def lookup(token: str) -> SessionBase | None:
    return sessionkit.lookup_session(token)


def session_user_id(session: SessionBase) -> str | None:
    return session.get(SESSION_KEY)


def used_mfa(session: SessionBase) -> bool:
    records = session.get(AUTHENTICATION_METHODS_SESSION_KEY) or []
    return any(isinstance(record, dict) and record.get("method") == "mfa" for record in records)


def _expired_marker_key(token: str) -> str:
    return "expired-session:" + hashlib.sha256(token.encode()).hexdigest()


def end(session: SessionBase, *, token: str | None = None) -> None:
    """Ends one session for good; a token that ran out keeps answering session_expired."""
    key = session.session_key
    session.flush()
    if token:
        cache.set(_expired_marker_key(token), 1, timeout=settings.SESSION_ABSOLUTE_LIFETIME_HOURS * 3600)
    if key:
        from allauth.usersessions.models import UserSession

        UserSession.objects.filter(session_key=key).delete()


def was_expired(token: str) -> bool:
    return bool(cache.get(_expired_marker_key(token)))


def end_all_for_user(user) -> int:
    """Ends every session of a user at once (logout everywhere, deactivation)."""
    from allauth.usersessions.models import UserSession

    ended = 0
    for user_session in UserSession.objects.filter(user_id=user.pk):
        user_session.end()
        ended += 1
    return ended
