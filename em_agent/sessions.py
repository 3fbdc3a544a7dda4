"""Session bookkeeping for the inactivity timeout, the absolute lifetime and ending sessions.

The app's token is the Django session key (allauth headless, client "app"); the admin uses the same
sessions through a cookie. Stamps are epoch seconds in the session itself, so every web process sees
the same state. See docs/sessions.md.
"""

import hashlib
import time

from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.headless.internal import sessionkit
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.core.cache import cache
from django.utils import timezone

from em_agent.models import Organization, User

LOGIN_AT = "em_login_at"
LAST_ACTIVITY_AT = "em_last_activity_at"
ORGANIZATION_ID = "em_organization_id"

_ORG_TIMEOUT_CACHE_SECONDS = 60


def now_epoch() -> float:
    return timezone.now().timestamp()


def _organization_id_of(user: User) -> int | None:
    agent = getattr(user, "agent", None)
    if agent is not None:
        return agent.organization_id
    return user.organization_id


def stamp_login(*, session: SessionBase, user: User) -> None:
    now = now_epoch()
    session[LOGIN_AT] = now
    session[LAST_ACTIVITY_AT] = now
    session[ORGANIZATION_ID] = _organization_id_of(user)


# Each process also keeps the value a few seconds: every request reads it, and a Redis round trip
# per request was a measurable part of a schedule read (bench/schedule_api.py). Another process
# sees an admin's change within these seconds; the process that saved it, at once.
_LOCAL_SECONDS = 10
_local: dict[int, tuple[int, float]] = {}


def idle_timeout_minutes(*, organization_id: int | None) -> int:
    """The organisation's timeout as it is now (cached a minute, dropped when an admin saves the
    organisation), so a change applies to live sessions."""
    if organization_id is None:
        return settings.SESSION_IDLE_TIMEOUT_MINUTES
    kept = _local.get(organization_id)
    now = time.monotonic()
    if kept is not None and kept[1] > now:
        return kept[0]
    minutes = _shared_idle_timeout_minutes(organization_id)
    _local[organization_id] = (minutes, now + _LOCAL_SECONDS)
    return minutes


def _shared_idle_timeout_minutes(organization_id: int) -> int:

    def load() -> int:
        organization = Organization.objects.filter(pk=organization_id).first()
        return organization.idle_timeout_minutes if organization else settings.SESSION_IDLE_TIMEOUT_MINUTES

    minutes = cache.get_or_set(f"org-idle-timeout:{organization_id}", load, _ORG_TIMEOUT_CACHE_SECONDS)
    return int(minutes) if minutes else settings.SESSION_IDLE_TIMEOUT_MINUTES


def forget_idle_timeout(*, organization_id: int) -> None:
    _local.pop(organization_id, None)
    cache.delete(f"org-idle-timeout:{organization_id}")


def expiry_reason(*, session: SessionBase, now: float) -> str | None:
    """Why a logged-in session is over, or None while it may go on."""
    login_at = session.get(LOGIN_AT)
    last_activity_at = session.get(LAST_ACTIVITY_AT)
    if login_at is None or last_activity_at is None:
        return "unstamped"  # not logged in through a path that stamps: never trusted
    idle_minutes = idle_timeout_minutes(organization_id=session.get(ORGANIZATION_ID))
    if now - last_activity_at >= idle_minutes * 60:
        return "idle"
    if now - login_at >= settings.SESSION_ABSOLUTE_LIFETIME_HOURS * 3600:
        return "absolute"
    return None


def touch(*, session: SessionBase, now: float) -> bool:
    """Records activity, writing the session at most once per interval. False if it vanished meanwhile."""
    if now - session[LAST_ACTIVITY_AT] < settings.SESSION_ACTIVITY_WRITE_INTERVAL_SECONDS:
        return True
    session[LAST_ACTIVITY_AT] = now
    try:
        session.save()
    except UpdateError:  # ended (logout, deactivation) between our read and this write
        return False
    return True


def lookup(token: str) -> SessionBase | None:
    return sessionkit.lookup_session(token)


def session_user_id(session: SessionBase) -> str | None:
    return session.get(SESSION_KEY)


def used_mfa(session: SessionBase) -> bool:
    records = session.get(AUTHENTICATION_METHODS_SESSION_KEY) or []
    return any(isinstance(record, dict) and record.get("method") == "mfa" for record in records)


def _expired_marker_key(token: str) -> str:
    return "expired-session:" + hashlib.sha256(token.encode()).hexdigest()


def end(*, session: SessionBase, token: str | None = None) -> None:
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


def end_all_for_user(*, user: User) -> int:
    """Ends every session of a user at once (deactivation): app tokens and admin cookies alike."""
    from allauth.usersessions.models import UserSession

    ended = 0
    for user_session in UserSession.objects.filter(user_id=user.pk):
        user_session.end()
        ended += 1
    return ended
